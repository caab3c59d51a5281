"""The benchmark harness itself on a tiny dataset (the benchmark never runs in make test)."""
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.__main__ import FIGURE_KEYS
from bench.harness import dataset_rows, percentile
from bench.live import REPORTS, TARGETS, Run, holds, how_answered
from bench.lookups import FIGURE_KEYS as LOOKUP_FIGURE_KEYS


def test_dataset_has_the_mix_the_benchmark_promises():
    end = datetime(2026, 11, 28, 6, tzinfo=timezone.utc)
    rows = [row for batch in dataset_rows(40_000, 1, end) for row in batch]
    assert 30_000 < len(rows) < 55_000
    failures = [row for row in rows if row[7] in ("failed", "bounced")]
    assert failures and all(row[11] for row in failures)       # each says why it failed
    assert all(row[11] is None for row in rows if row[7] not in ("failed", "bounced"))
    assert all(row[12] for row in rows)                         # and who carried it
    templates = {row[5] for row in rows}
    assert len(templates) >= 40
    days = {(end - row[0]).days for row in rows}
    assert max(days) >= 80 and min(days) == 0  # a 90-day tail behind 14 busy days
    recent = sum(1 for row in rows if (end - row[0]).days < 14)
    assert recent > 0.6 * len(rows)
    assert len({(row[0], row[1]) for row in rows}) == len(rows)


def test_every_figure_is_explained_in_the_benchmark_readme():
    readme = (Path(__file__).resolve().parents[2] / "bench" / "README.md").read_text()
    missing = [key for key in FIGURE_KEYS + LOOKUP_FIGURE_KEYS if f"`{key}`" not in readme]
    assert missing == []
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5


def live_result(**changes) -> dict:
    result = {"rate_target": 2000, "all": {"p50_ms": 8.0, "p99_ms": 40.0}, "sealed_from_cache": 0.97,
              "freshness_s": {"max": 0.2}, "rollup_lag_s": {"max": 3.0},
              "ingest": {"batches_dropped": 0, "accepted_per_s": 1990.0}}
    for key, value in changes.items():
        result[key] = value
    return result


def test_a_live_run_holds_only_when_every_target_does():
    assert holds(live_result())
    assert not holds(live_result(all={"p50_ms": TARGETS["p50_ms"] + 1, "p99_ms": 40.0}))
    assert not holds(live_result(sealed_from_cache=0.5))
    assert not holds(live_result(rollup_lag_s={"max": 61.0}))
    assert not holds(live_result(ingest={"batches_dropped": 3, "accepted_per_s": 1990.0}))
    assert not holds(live_result(ingest={"batches_dropped": 0, "accepted_per_s": 1500.0}))


def test_the_incremental_phase_writes_rows_in_the_stored_column_order():
    """The bench's own rows (the incremental fold's hour) must follow the table as it is now:
    a column added to the events left the phase failing on COPY, unseen until a bench run."""
    from bench.__main__ import one_hour_of
    from services.store.schema import EVENT_COLUMNS

    rows = one_hour_of(4, seed=1, now=datetime(2026, 11, 25, 13, 5, tzinfo=timezone.utc))
    assert len(rows) == 4 and all(len(r) == len(EVENT_COLUMNS) for r in rows)
    assert {r[EVENT_COLUMNS.index("status")] for r in rows} == {"sent", "delivered"}


WRK_REPORT = """Running 30s test @ http://127.0.0.1:18082
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    98.16ms   52.71ms 612.40ms   71.58%
    Req/Sec   254.11     61.25   420.00     70.17%
  Latency Distribution
     50%   91.20ms
     75%  124.51ms
     90%  163.02ms
     99%    1.02s 
  15180 requests in 30.04s, 180.22MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:    505.33
Transfer/sec:      6.00MB
"""


def test_wrk_report_is_read_into_figures():
    from bench.__main__ import wrk_figures

    assert wrk_figures(WRK_REPORT) == {"requests": 15180, "rps": 505.33, "p50_ms": 91.2, "p99_ms": 1020.0,
                                       "errors": 7}
    clean = WRK_REPORT.replace("  Socket errors: connect 0, read 2, write 0, timeout 1\n", "").replace(
        "  Non-2xx or 3xx responses: 4\n", "").replace("99%    1.02s", "99%  850.00us")
    assert wrk_figures(clean)["errors"] == 0 and wrk_figures(clean)["p99_ms"] == 0.85


class _Answers:
    """A loopback HTTP/1.1 server answering every GET after `delay` seconds: `.base` as
    bench.harness.Server has it."""

    def __init__(self, delay: float):
        import threading
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # or each answer waits for the client's delayed ACK

            def do_GET(self):
                time.sleep(delay)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # wrk hangs up on what is still in flight when its run ends

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_the_open_loop_offers_its_rate_and_counts_the_sends_it_could_not_make_on_time():
    from bench.__main__ import load_test_open

    quick = _Answers(0.0)
    try:
        result = load_test_open(quick, rate=200, connections=8, seconds=3)
    finally:
        quick.stop()
    # a server that keeps up leaves (nearly) no send late: only a moment when the machine
    # holds wrk's own thread past a due time, which a loaded machine does now and then
    assert result["late_sends"] <= result["requests"] // 100 and result["errors"] == 0
    assert 180 <= result["rps"] <= 210          # the schedule, not as fast as it can
    assert 540 <= result["requests"] <= 630

    slow = _Answers(0.05)  # two connections at 50 ms each carry at most 40 req/s of the 200 due
    try:
        result = load_test_open(slow, rate=200, connections=2, seconds=2)
    finally:
        slow.stop()
    assert result["rps"] < 45
    assert result["late_sends"] > 50


def test_a_report_step_reads_how_reports_were_answered_and_has_no_floor():
    assert how_answered({"data": [], "metadata": {"cached": True, "sealed_buckets": 3}}) == {
        "cached": True, "sealed_buckets": 3}
    assert how_answered({"headline": ["…"], "cached": False}) == {"cached": False}
    run = Run("http://app", "http://floor", 2000, 10, 60, REPORTS)
    run.charts = [(1.0, "trends_7d", 600.0, True, {"cached": False}), (4.0, "trends_7d", 700.0, True, {"cached": True}),
                  (7.0, "trends_7d", 0.0, False, {})]
    result = run.result(0.3)
    assert result["all"]["n"] == 2 and result["all"]["p50_ms"] == 650.0 and result["errors"] == 1
    assert result["answers_from_cache"] == 0.5 and result["all"]["p50_over_floor"] is None
    assert result["sealed_from_cache"] is None and set(result["charts"]) == {"trends_7d"}


def test_instruction_counts_are_read_from_a_dump_and_reported_net_of_the_harness(tmp_path):
    from bench.instructions import _instructions, figures

    dump = tmp_path / "callgrind.out.1"
    dump.write_text("version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\nfl=(1) x.c\nfn=(1) f\n3 90\n\n"
                    "totals: 123456789\n")
    assert _instructions(dump) == 123_456_789
    out = figures({"harness": 1e6, "floor": 11e6, "floor_hit": 2e6, "miss": 16e6, "hit": 3e6})
    assert out["floor_instructions"] == 10_000_000 and out["miss_instructions"] == 15_000_000
    assert out["miss_over_floor"] == 1.5 and out["hit_over_floor"] == 0.2 and out["hit_over_floor_hit"] == 2
    assert out["harness_instructions"] == 1_000_000 and "floor_over_floor" not in out
