"""The benchmark: `python -m bench --events 10000000` (make bench) or `--events 1000000`
(make bench-quick), on Postgres + Redis. Every figure is a median over repeated runs, and
speed-ups are ratios against a baseline measured in the same run. Results go to
bench/results/<timestamp>.json and a table on stdout.

Phases: bulk ingest and the fold of what it wrote, a full rebuild from raw, an incremental
fold of a million events in one hour, HTTP ingest, dashboard queries through the HTTP API
(cache miss, cache hit, the floor — one hand-written SQL query behind a bare WSGI endpoint
— and the same answer straight from raw events), a load test (concurrent clients replaying
a dashboard session mix), freshness (ingest → chart), the dashboard in headless Chromium
(bench.browser: first charts per tab, drill clicks, a tab switch while another computes), lookups by user and notification (bench.lookups), and the live
workload (bench.live: ingest while viewers refresh).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
import redis
import requests
from sqlalchemy import func, select, text

from bench.browser import FIGURE_KEYS as BROWSER_FIGURE_KEYS
from bench.browser import browser_phase
from bench.harness import (
    REDIS,
    RESULTS,
    TEMPLATE_VARIANTS,
    TOKEN,
    Server,
    analyze,
    fresh_schema,
    load_bulk,
    log,
    machine,
    percentile,
    start_floor,
    write_result,
)
from bench.live import live_phase
from bench.lookups import lookup_phase
from services.rollup.fold import index_rebuilt_days, invalidate_all, rollup_pending
from services.store.ingest import store_rows
from services.store.schema import EVENT_COLUMNS, notification_events

FIGURE_KEYS = ("bulk_ingest_events_per_s", "bulk_ingest_with_index_build_events_per_s", "bulk_fold_events_per_s",
               "full_rollup_events_per_s", "incremental_fold_1m_s", "http_ingest_events_per_s", "chart_miss_p50_ms",
               "chart_miss_over_floor", "chart_miss_over_floor_exact", "floor_exact_flask_over_floor",
               "chart_hit_p50_ms", "chart_hit_over_floor",
               "chart_hit_over_floor_hit", "raw_over_rollup_90d", "load_rps", "load_p99_ms", "load_errors",
               "load_wrk_rps", "load_wrk_p99_ms", "load_wrk_errors", "load_open_rps", "load_open_p99_ms",
               "load_open_late_sends", "freshness_s", *BROWSER_FIGURE_KEYS, "live_p50_ms", "live_p99_ms",
               "live_p50_over_floor", "live_sealed_from_cache", "live_ingest_events_per_s", "live_batches_dropped",
               "live_rollup_lag_max_s", "live_freshness_max_s", "live_cpu_busy", "live_highest_rate_holding",
               "live_report_p50_ms", "live_report_p99_ms", "live_report_from_cache", "live_report_cpu_busy",
               "lookup_user_p50_ms", "lookup_notification_p50_ms", "user_activity_p50_ms", "users_ranking_7d_ms",
               "failure_reasons_7d_ms")


# ---------------------------------------------------------------- ingest

def http_ingest(server: Server, events: int, seed: int) -> float:
    """4 clients posting 5,000-event JSON batches; events per second."""
    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(seed)
    batches = []
    for b in range(max(1, events // 5000)):
        offsets = rng.uniform(0, 3 * 86400, 5000)
        batches.append(orjson.dumps([{
            "event_id": f"http-{seed}-{b}-{i}", "created_at": (now - timedelta(seconds=float(o))).isoformat(),
            "channel": ("email", "sms", "push")[i % 3], "status": ("sent", "delivered")[i % 2],
            "template_id": int(i % 50), "processing_time_ms": int(o % 900) if i % 2 else None}
            for i, o in enumerate(offsets)]))
    session_headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(body):
        response = requests.post(server.base + "/api/events", data=body, headers=session_headers, timeout=120)
        response.raise_for_status()
        return response.json()["accepted"]

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        accepted = sum(pool.map(post, batches))
    elapsed = time.perf_counter() - started
    assert accepted == len(batches) * 5000, f"rows in {accepted} != rows sent {len(batches) * 5000}"
    return accepted / elapsed


# ---------------------------------------------------------------- queries

QUERIES = {
    "24h_by_minute": "/api/analytics/chart?metric=events&group_by=time&start=now-24h&granularity=minute",
    "7d_hourly_by_channel": "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-7d",
    "90d_daily_by_channel_status": "/api/analytics/chart?metric=events&group_by=time,channel,status&start=now-90d",
    "drilldown_channel": "/api/analytics/drilldown?start=now-7d",
    "drilldown_template": '/api/analytics/drilldown?start=now-7d&filters={"channel":"email","status":"bounced"}',
    "trends_sms_delivery": "/api/analytics/trends?metric=delivery_rate&days=7&channel=sms",
    "compare_channels": "/api/analytics/compare?metric=delivery_rate&start=now-7d&compare_to=previous_week",
}
FLOOR_OF = {"7d_hourly_by_channel": "delivery_rate_7d"}  # the chart figures' question, answered by bench.floor


def timed_get(session, url: str) -> float:
    started = time.perf_counter()
    session.get(url, timeout=120).raise_for_status()
    return (time.perf_counter() - started) * 1000


def time_queries(server: Server, floor: str, repeats: int) -> dict:
    """Miss (Redis flushed before each request), hit, and the floor (plain, from Redis, and
    exact: see bench.floor), interleaved."""
    cache = redis.Redis.from_url(REDIS)
    session = requests.Session()
    out = {}
    for name, path in QUERIES.items():
        miss, hit, bottom, bottom_hit, bottom_exact, bottom_flask = [], [], [], [], [], []
        for _ in range(repeats):
            cache.flushdb()
            miss.append(timed_get(session, server.base + path))
            hit.append(timed_get(session, server.base + path))
            if name in FLOOR_OF:
                bottom.append(timed_get(session, f"{floor}/?q={FLOOR_OF[name]}"))
                timed_get(session, f"{floor}/?q={FLOOR_OF[name]}&cached=1")  # stores the answer in Redis
                bottom_hit.append(timed_get(session, f"{floor}/?q={FLOOR_OF[name]}&cached=1"))
                # a miss: Redis was flushed before this round
                bottom_exact.append(timed_get(session, f"{floor}/?q={FLOOR_OF[name]}&exact=1"))
                cache.flushdb()  # a miss again, for the same exact floor as a route of a bare Flask app
                bottom_flask.append(timed_get(session, f"{floor}/flask/?q={FLOOR_OF[name]}"))
        out[name] = {"miss_p50_ms": statistics.median(miss), "miss_p95_ms": percentile(miss, 95),
                     "hit_p50_ms": statistics.median(hit), "hit_p95_ms": percentile(hit, 95)}
        if bottom:
            out[name]["floor_p50_ms"] = statistics.median(bottom)
            out[name]["floor_hit_p50_ms"] = statistics.median(bottom_hit)
            out[name]["floor_exact_p50_ms"] = statistics.median(bottom_exact)
            out[name]["floor_exact_flask_p50_ms"] = statistics.median(bottom_flask)
        log(f"  {name}: miss p50 {out[name]['miss_p50_ms']:.1f} ms, hit p50 {out[name]['hit_p50_ms']:.1f} ms"
            + (f", floor p50 {out[name]['floor_p50_ms']:.1f} ms, from Redis"
               f" {out[name]['floor_hit_p50_ms']:.1f} ms, exact {out[name]['floor_exact_p50_ms']:.1f} ms"
               f" (in Flask {out[name]['floor_exact_flask_p50_ms']:.1f} ms)"
               if bottom else ""))
    return out


def raw_baseline_90d(engine, repeats: int) -> float:
    """The 90-day daily chart by channel and status, answered straight from raw events."""
    e = notification_events.c
    day = func.date_trunc("day", e.created_at)
    stmt = (select(day, e.channel, e.status, func.count()).where(e.created_at >= text("now() - interval '90 days'"))
            .group_by(day, e.channel, e.status))
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(stmt).all()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


# ---------------------------------------------------------------- load

SESSION_MIX = [
    "/api/analytics/chart?metric=sent&group_by=channel&start=now-24h",
    "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-7d",
    "/api/analytics/chart?metric=open_rate&group_by=time,channel&start=now-7d",
    "/api/analytics/chart?metric=events&group_by=status&start=now-7d",
    "/api/analytics/chart?metric=p95_processing_time&group_by=time,channel&start=now-24h",
    "/api/analytics/chart?metric=bounce_rate&group_by=template_id&start=now-7d&channel=email",
    "/api/analytics/drilldown?start=now-7d",
    "/api/analytics/chart?metric=events&group_by=time,channel,status&start=now-90d",
]


def load_test(server: Server, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        session = requests.Session()
        i = n
        mine, bad = [], 0
        while time.monotonic() < deadline:
            path = SESSION_MIX[i % len(SESSION_MIX)]
            i += 1
            started = time.perf_counter()
            try:
                ok = session.get(server.base + path, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            mine.append((time.perf_counter() - started) * 1000)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    before = requests.get(server.base + "/api/aggregation/status", timeout=10).json()["cache"]
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    after = requests.get(server.base + "/api/aggregation/status", timeout=10).json()["cache"]
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    return {"clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies),
            "rps": len(latencies) / elapsed, "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "errors": errors[0], "cache_hit_rate": hits / (hits + misses) if hits + misses else None}


WRK = shutil.which("wrk")
WRK_THREADS = 2
# the session mix, each wrk thread starting at its own place in it
_WRK_SCRIPT = """
local paths = {%s}
local threads = {}
local i = 0
function setup(thread) thread:set("offset", math.random(#paths)); table.insert(threads, thread) end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i + offset) %% #paths + 1])
end
"""
# open loop: each thread's n-th request is due at its start + n * period (ms, the script's
# argument), sent by whichever of its connections is free; one sent over 1 ms late is counted
_WRK_PACING = """
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
           int clock_gettime(int, bench_timespec *); ]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
function init(args) period = tonumber(args[1]); late = 0; due = nil end
function delay()
  local t = now_ms()
  due = due or t
  local wait = due - t
  due = due + period
  if wait < -1 then late = late + 1 end
  return wait > 0 and wait or 0
end
function done(summary, latency, requests)
  local n = 0
  for _, thread in ipairs(threads) do n = n + thread:get("late") end
  io.write(string.format("late sends: %d\\n", n))
end
"""
_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(server: Server, connections: int, seconds: float, pacing: str = "", *script_args: str) -> str:
    """wrk's report of the session mix sent over `connections` for `seconds` (answers
    gzip-compressed as the dashboard's are), with `pacing` added to the script."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % ", ".join(f'"{path}"' for path in SESSION_MIX) + pacing)
    try:
        return subprocess.run([WRK, "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{int(seconds)}s",
                               "--latency", "--timeout", "30s", "-H", "Accept-Encoding: gzip", "-s", script.name,
                               server.base, *(("--", *script_args) if script_args else ())],
                              capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        os.unlink(script.name)


def load_test_wrk(server: Server, clients: int, seconds: float) -> dict:
    """The same session mix driven by wrk (Debian package `wrk`, written in C): the load
    generator takes a few percent of a core instead of the Python client's share, so the
    figure is the server's. Closed loop, like the Python client: each connection sends its
    next request when the answer arrives."""
    return {"generator": "wrk", "clients": clients, "seconds": seconds, **wrk_figures(run_wrk(server, clients, seconds))}


OPEN_LOOP_CONNECTIONS = 100  # at 600 req/s each is due every 167 ms: free again long before, unless the p99 is missed


def load_test_open(server: Server, rate: float, connections: int, seconds: float) -> dict:
    """The session mix offered at a fixed `rate` (open loop), the way a target such as
    "600 req/s with p99 <= 100 ms" is meant: requests are due on a schedule whatever the
    answers before them took, so the p99 is that of a server carrying that rate, where the
    closed loop above measures the most it can carry (and a p99 that only grows with its
    connections). A send that finds no free connection goes late and is counted: late
    sends hide waiting from the p99 (coordinated omission), so a run with any is not a
    clean reading. Needs wrk's LuaJIT (Debian's wrk has it)."""
    out = run_wrk(server, connections, seconds, _WRK_PACING, f"{WRK_THREADS * 1000 / rate:.6f}")
    late = re.search(r"late sends: (\d+)", out)
    return {"generator": "wrk, paced", "offered_rps": rate, "connections": connections, "seconds": seconds,
            **wrk_figures(out), "late_sends": int(late.group(1)) if late else None}


def wrk_figures(out: str) -> dict:
    """Requests, rate, p50 and p99 (ms) and errors (socket errors and non-2xx answers) from
    wrk's report (`--latency`)."""
    def ms(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
        return float(number) * _WRK_UNITS[unit]
    percentiles = {int(p): ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)[ \t]*$", out, re.M)}
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad_status = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": percentiles[50], "p99_ms": percentiles[99],
            "errors": (sum(map(int, sockets.groups())) if sockets else 0) + (int(bad_status.group(1)) if bad_status else 0)}


# ---------------------------------------------------------------- freshness and dashboard

def freshness(server: Server, engine) -> float:
    """Seconds from posting an event to seeing it in the chart API (no rollup in between)."""
    template = 987_654
    event = {"event_id": f"fresh-{uuid.uuid4().hex}", "created_at": datetime.now(timezone.utc).isoformat(),
             "channel": "email", "status": "sent", "template_id": template}
    path = f"/api/analytics/chart?metric=sent&group_by=channel&start=now-1h&template_id={template}"
    started = time.perf_counter()
    requests.post(server.base + "/api/events", json=[event], headers={"Authorization": f"Bearer {TOKEN}"},
                  timeout=30).raise_for_status()
    while time.perf_counter() - started < 60:
        data = requests.get(server.base + path, timeout=30).json()["data"]
        if sum(r["value"] or 0 for r in data) >= 1:
            return time.perf_counter() - started
        time.sleep(0.05)
    return float("inf")


# ---------------------------------------------------------------- main

def one_hour_of(events: int, seed: int, now: datetime) -> list[tuple]:
    """`events` rows spread over the last hour complete at `now` (for the incremental fold)."""
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    offsets = np.random.default_rng(seed).uniform(0, 3600, events)
    rows = [(hour + timedelta(seconds=float(o)), f"inc-{i}", None, now, ("email", "sms", "push")[i % 3],
             int(i % 50), None, ("sent", "delivered")[i % 2], 300 if i % 2 else None, 287 if i % 2 else None,
             None, None, None) for i, o in enumerate(offsets)]
    assert len(rows[0]) == len(EVENT_COLUMNS), "rows are stored in EVENT_COLUMNS order"
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--load-clients", type=int, default=50)
    parser.add_argument("--load-rate", type=float, default=600, help="req/s offered in the open-loop load test")
    parser.add_argument("--http-events", type=int, default=200_000)
    parser.add_argument("--live-seconds", type=float, default=300)
    parser.add_argument("--live-runs", type=int, default=2)
    parser.add_argument("--live-rate", type=float, default=2000)
    parser.add_argument("--ramp", default="3000,4000,8000,16000", help="rates for 60-second steps; empty: no ramp")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    figures: dict = {}
    details: dict = {}
    with fresh_schema() as (url, schema, engine):
        end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        log(f"generating and loading {args.events:,} events")
        rows, seconds = load_bulk(engine, args.events, args.seed, end)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(notification_events)).scalar()
        assert stored == rows, f"rows in {stored} != rows sent {rows}"
        figures["bulk_ingest_events_per_s"] = rows / seconds
        details["dataset_rows"] = rows
        log(f"  bulk ingest: {rows:,} rows in {seconds:.1f} s")
        analyze(engine)

        log("rollup of what the bulk ingest wrote (backfilled days rebuilt, deltas folded)")
        started = time.perf_counter()
        report = rollup_pending(engine, raw_retention_days=120)
        figures["bulk_fold_events_per_s"] = (report.events + report.folded_events) / (time.perf_counter() - started)
        details["bulk_fold"] = report.summary()
        log(f"  {report.summary()}")

        log("lookup indexes of the backfilled days (one sorted build per index and day)")
        started = time.perf_counter()
        indexed = index_rebuilt_days(engine)
        index_seconds = time.perf_counter() - started
        figures["bulk_ingest_with_index_build_events_per_s"] = rows / (seconds + index_seconds)
        details["lookup_index_build_s"] = index_seconds
        details["lookup_index_days"] = len(indexed)
        log(f"  {len(indexed)} days in {index_seconds:.1f} s: write and index "
            f"{figures['bulk_ingest_with_index_build_events_per_s']:,.0f} events/s")

        log("full rebuild from raw")
        invalidate_all(engine)
        started = time.perf_counter()
        report = rollup_pending(engine, raw_retention_days=120)
        figures["full_rollup_events_per_s"] = report.events / (time.perf_counter() - started)
        details["full_rollup"] = report.summary()
        log(f"  {report.summary()}")

        hour_events = min(1_000_000, max(10_000, args.events // 10))
        log(f"incremental fold of one hour holding {hour_events:,} new events")
        # one clock for the phase: an hour turning within it would expire an hour of minute
        # rows, which the rerun would count as work
        phase_now = datetime.now(timezone.utc)
        batch = one_hour_of(hour_events, args.seed + 7, phase_now)
        for i in range(0, len(batch), 100_000):
            with engine.begin() as conn:
                store_rows(conn, batch[i:i + 100_000], now=phase_now)
        started = time.perf_counter()
        report = rollup_pending(engine, now=phase_now, raw_retention_days=120)
        figures["incremental_fold_1m_s"] = time.perf_counter() - started
        started = time.perf_counter()
        rerun = rollup_pending(engine, now=phase_now, raw_retention_days=120)
        details["rollup_rerun_ms"] = (time.perf_counter() - started) * 1000
        details["incremental_fold_events"] = hour_events
        assert report.folded_events == hour_events and not rerun.did_work
        log(f"  incremental {figures['incremental_fold_1m_s']:.2f} s, rerun {details['rollup_rerun_ms']:.0f} ms")
        analyze(engine)

        floor, floor_base = start_floor(schema)
        server = Server(url, workers=2, port=18081)
        try:
            log(f"HTTP ingest of {args.http_events:,} events (2 workers, 4 clients)")
            figures["http_ingest_events_per_s"] = http_ingest(server, args.http_events, args.seed)
            rollup_pending(engine, raw_retention_days=120)
            time.sleep(6)  # data at rest: whole answers are cached again
            log("queries through the API, against the floor")
            details["queries"] = time_queries(server, floor_base, args.repeats)
            chart = details["queries"]["7d_hourly_by_channel"]
            figures["chart_miss_p50_ms"] = chart["miss_p50_ms"]
            figures["chart_hit_p50_ms"] = chart["hit_p50_ms"]
            figures["chart_miss_over_floor"] = chart["miss_p50_ms"] / chart["floor_p50_ms"]
            figures["chart_miss_over_floor_exact"] = chart["miss_p50_ms"] / chart["floor_exact_p50_ms"]
            figures["floor_exact_flask_over_floor"] = chart["floor_exact_flask_p50_ms"] / chart["floor_p50_ms"]
            figures["chart_hit_over_floor"] = chart["hit_p50_ms"] / chart["floor_p50_ms"]
            figures["chart_hit_over_floor_hit"] = chart["hit_p50_ms"] / chart["floor_hit_p50_ms"]
            raw_ms = raw_baseline_90d(engine, max(3, args.repeats // 3))
            details["raw_90d_p50_ms"] = raw_ms
            figures["raw_over_rollup_90d"] = raw_ms / details["queries"]["90d_daily_by_channel_status"]["miss_p50_ms"]
            log("freshness")
            figures["freshness_s"] = statistics.median(freshness(server, engine) for _ in range(5))
            log("the dashboard in headless Chromium (bench.browser)")
            browser_figures, details["dashboard"] = browser_phase(server)
            figures.update(browser_figures)
        finally:
            server.stop()
            floor.stop()

        log("lookups by user and by notification (the ingest cost of their indexes: python -m bench.lookups)")
        lookup_figures, details["lookups"] = lookup_phase(url, engine, 200, args.seed, 0, end)
        figures.update({k: v for k, v in lookup_figures.items() if k in FIGURE_KEYS})

        log(f"load: {args.load_clients} clients for {args.load_seconds:.0f} s against 4 workers")
        rollup_pending(engine, raw_retention_days=120)
        time.sleep(6)
        server = Server(url, workers=4, port=18082)
        try:
            details["load"] = load_test(server, args.load_clients, args.load_seconds)
            if WRK:
                log(f"load: the same mix from wrk, {args.load_clients} connections for {args.load_seconds:.0f} s")
                details["load_wrk"] = load_test_wrk(server, args.load_clients, args.load_seconds)
                log(f"load: the same mix offered at {args.load_rate:.0f} req/s (open loop), {args.load_seconds:.0f} s")
                details["load_open"] = load_test_open(server, args.load_rate, OPEN_LOOP_CONNECTIONS,
                                                      args.load_seconds)
        finally:
            server.stop()
        figures["load_rps"] = details["load"]["rps"]
        figures["load_p99_ms"] = details["load"]["p99_ms"]
        figures["load_errors"] = details["load"]["errors"]
        wrk = details.get("load_wrk", {})
        figures["load_wrk_rps"], figures["load_wrk_p99_ms"] = wrk.get("rps"), wrk.get("p99_ms")
        figures["load_wrk_errors"] = wrk.get("errors")
        paced = details.get("load_open", {})
        figures["load_open_rps"], figures["load_open_p99_ms"] = paced.get("rps"), paced.get("p99_ms")
        figures["load_open_late_sends"] = paced.get("late_sends")
        log(f"  Python client {figures['load_rps']:.0f} req/s p99 {figures['load_p99_ms']:.0f} ms"
            + (f"; wrk {wrk['rps']:.0f} req/s p99 {wrk['p99_ms']:.0f} ms, {wrk['errors']} errors" if wrk else
               "; wrk not installed (apt-get install wrk)"))
        if paced:
            log(f"  offered {args.load_rate:.0f} req/s: carried {paced['rps']:.0f} req/s, p50 {paced['p50_ms']:.1f} ms, "
                f"p99 {paced['p99_ms']:.0f} ms, {paced['late_sends']} late sends, {paced['errors']} errors")

        log("live workload")
        ramp = [float(r) for r in args.ramp.split(",") if r]
        details["live"] = live_phase(url, schema, args.live_rate, args.load_clients, args.live_seconds,
                                     args.live_runs, ramp)
        runs = details["live"]["runs"]
        worst = lambda key, f=max: f(r[key] if not isinstance(r[key], dict) else r[key]["max"] for r in runs)  # noqa: E731
        figures["live_p50_ms"] = max(r["all"]["p50_ms"] for r in runs)
        figures["live_p99_ms"] = max(r["all"]["p99_ms"] for r in runs)
        figures["live_p50_over_floor"] = max(r["all"]["p50_over_floor"] for r in runs)
        figures["live_sealed_from_cache"] = min(r["sealed_from_cache"] or 0 for r in runs)
        figures["live_ingest_events_per_s"] = min(r["ingest"]["accepted_per_s"] for r in runs)
        figures["live_batches_dropped"] = sum(r["ingest"]["batches_dropped"] for r in runs)
        figures["live_rollup_lag_max_s"] = worst("rollup_lag_s")
        figures["live_freshness_max_s"] = worst("freshness_s")
        figures["live_cpu_busy"] = max(r["cpu_busy"] for r in runs)
        figures["live_highest_rate_holding"] = details["live"].get("highest_rate_holding")
        reports = details["live"]["reports"]
        figures["live_report_p50_ms"] = reports["all"]["p50_ms"]
        figures["live_report_p99_ms"] = reports["all"]["p99_ms"]
        figures["live_report_from_cache"] = reports["answers_from_cache"]
        figures["live_report_cpu_busy"] = reports["cpu_busy"]

        result = {
            "started": end.isoformat(), "command": " ".join(sys.argv),
            "dataset": {"events": rows, "days": 90, "recent_days": 14, "templates": 12 * TEMPLATE_VARIANTS},
            "machine": machine(engine),
            "figures": {k: round(figures[k], 3) if isinstance(figures[k], float) else figures[k] for k in FIGURE_KEYS},
            "details": details,
        }
    print()
    write_result(args.out, "", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
