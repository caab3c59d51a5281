"""The benchmark: `python -m bench --events 10000000` (make bench) or `--events 1000000`
(make bench-quick), on Postgres + Redis. Every figure is a median over repeated runs, and
speed-ups are ratios against a baseline measured in the same run. Results go to
bench/results/<timestamp>.json and a table on stdout.

Phases: bulk and HTTP ingest, full and incremental rollup, dashboard queries through the
HTTP API (cache miss, cache hit, and the same answer straight from raw events), a load test
(concurrent clients replaying a dashboard session mix), freshness (ingest → chart), and the
time headless Chromium takes to show the Overview's charts.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import orjson
import redis
import requests
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from dashapp.extensions import make_engine
from services import demo
from services.ingest import store_rows
from services.rollup import invalidate_all, rollup_pending
from services.schema import notification_events, upgrade_database

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
TOKEN = "bench-token"
TEMPLATE_VARIANTS = 4  # 12 demo templates × 4 variants ≈ 50 templates
FIGURE_KEYS = ("bulk_ingest_events_per_s", "http_ingest_events_per_s", "full_rollup_events_per_s",
               "incremental_rollup_1m_s", "chart_miss_p50_ms", "chart_hit_p50_ms", "raw_over_rollup_90d",
               "load_rps", "load_p99_ms", "load_errors", "freshness_s", "dashboard_first_charts_s")


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


# ---------------------------------------------------------------- dataset

def dataset_rows(events: int, seed: int, end: datetime):
    """Batches of rows: the demo's realistic mix over the last 14 days plus a 90-day tail at
    a tenth of the rate, with ~50 templates."""
    hours_equivalent = 14 * 24 + 0.1 * 76 * 24
    per_hour = max(1, int(events / 2.35 / hours_equivalent))
    recent_start = end - timedelta(days=14)
    parts = [demo.generate(14, per_hour, seed, end)[0],
             demo.generate(76, max(1, per_hour // 10), seed + 1, recent_start)[0]]
    rng = np.random.default_rng(seed)
    now = datetime.now(timezone.utc)
    for part_no, columns in enumerate(parts):
        total = len(columns["time_us"])
        variants = rng.integers(0, TEMPLATE_VARIANTS, int(columns["notification"].max()) + 1 if total else 0)
        for lo in range(0, total, 100_000):
            hi = min(total, lo + 100_000)
            rows = demo.to_rows(columns, seed * 10 + part_no, now, lo, hi)
            notes = columns["notification"][lo:hi]
            shift = (variants[notes] * 100).tolist()
            yield [r[:5] + (r[5] + s,) + r[6:] for r, s in zip(rows, shift)]


def load_bulk(engine, events: int, seed: int, end: datetime) -> tuple[int, float]:
    """Write every batch through the ingest storage path (COPY, ON CONFLICT de-duplication).
    Returns (rows, seconds spent writing), generation excluded."""
    written, spent = 0, 0.0
    for rows in dataset_rows(events, seed, end):
        started = time.perf_counter()
        with engine.begin() as conn:
            store_rows(conn, rows)
        spent += time.perf_counter() - started
        written += len(rows)
    return written, spent


# ---------------------------------------------------------------- servers

class Server:
    """gunicorn serving the app on a loopback port, for the HTTP phases."""

    def __init__(self, url: str, workers: int, port: int):
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "SCHEDULER": "off", "INGEST_TOKEN": TOKEN,
               "RAW_RETENTION_DAYS": "120", "RATE_LIMIT": "off"}  # one address plays 50 clients
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "-b",
                                      f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
                                     cwd=ROOT, env=env)
        for _ in range(100):
            try:
                if requests.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


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


def time_queries(server: Server, repeats: int) -> dict:
    cache = redis.Redis.from_url(REDIS)
    session = requests.Session()
    out = {}
    for name, path in QUERIES.items():
        miss, hit = [], []
        for _ in range(repeats):
            cache.flushdb()
            started = time.perf_counter()
            response = session.get(server.base + path, timeout=120)
            miss.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
        for _ in range(repeats):
            started = time.perf_counter()
            session.get(server.base + path, timeout=120).raise_for_status()
            hit.append((time.perf_counter() - started) * 1000)
        out[name] = {"miss_p50_ms": statistics.median(miss), "miss_p95_ms": percentile(miss, 95),
                     "hit_p50_ms": statistics.median(hit), "hit_p95_ms": percentile(hit, 95)}
        log(f"  {name}: miss p50 {out[name]['miss_p50_ms']:.1f} ms, hit p50 {out[name]['hit_p50_ms']:.1f} ms")
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


def dashboard_time(server: Server) -> dict:
    from scripts.screenshots import browser

    driver = browser(1440, 1600)
    script = ("return document.querySelectorAll('#kpi-row .kpi-tile').length >= 5 && "
              "['timeseries','channel-bar','status-bar','heatmap'].every(id => "
              "document.querySelector('#' + id + ' .main-svg .trace, #' + id + ' .main-svg .hm, #' + id + ' .annotation'))")
    try:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            driver.get(server.base + "/analytics/?tab=overview&range=7d")
            while not driver.execute_script(script):
                if time.perf_counter() - started > 60:
                    raise RuntimeError("the Overview did not draw its charts within 60 s")
                time.sleep(0.02)
            timings.append(time.perf_counter() - started)
        return {"first_s": timings[0], "cached_s": statistics.median(timings[1:])}
    finally:
        driver.quit()


# ---------------------------------------------------------------- main

def machine(engine) -> dict:
    with engine.connect() as conn:
        settings = {name: conn.execute(text(f"SHOW {name}")).scalar()
                    for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_connections",
                                 "synchronous_commit")}
        version = conn.execute(text("SHOW server_version")).scalar()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cores": os.cpu_count(), "memory_gib": round(memory, 1), "python": platform.python_version(),
            "postgres": version, "postgres_settings": settings,
            "redis": redis.Redis.from_url(REDIS).info("server")["redis_version"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--load-seconds", type=float, default=60)
    parser.add_argument("--load-clients", type=int, default=50)
    parser.add_argument("--http-events", type=int, default=200_000)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(DATABASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(DATABASE).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    engine = make_engine(url)
    figures: dict = {}
    details: dict = {}
    try:
        upgrade_database(engine)
        end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        log(f"generating and loading {args.events:,} events")
        rows, seconds = load_bulk(engine, args.events, args.seed, end)
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(notification_events)).scalar()
        assert stored == rows, f"rows in {stored} != rows sent {rows}"
        figures["bulk_ingest_events_per_s"] = rows / seconds
        details["dataset_rows"] = rows
        log(f"  bulk ingest: {rows:,} rows in {seconds:.1f} s")

        log("full rollup")
        with engine.begin() as conn:  # statistics are transactional: commit them
            conn.execute(text("ANALYZE"))
        invalidate_all(engine)
        started = time.perf_counter()
        report = rollup_pending(engine, raw_retention_days=120)
        figures["full_rollup_events_per_s"] = report.events / (time.perf_counter() - started)
        details["full_rollup"] = report.summary()
        log(f"  {report.summary()}")

        hour_events = min(1_000_000, max(10_000, args.events // 10))
        log(f"incremental rollup of one hour holding {hour_events:,} events")
        hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        rng = np.random.default_rng(args.seed + 7)
        offsets = rng.uniform(0, 3600, hour_events)
        now = datetime.now(timezone.utc)
        batch = [(hour + timedelta(seconds=float(o)), f"inc-{i}", None, now, ("email", "sms", "push")[i % 3],
                  int(i % 50), None, ("sent", "delivered")[i % 2], 300 if i % 2 else None, 287 if i % 2 else None,
                  None) for i, o in enumerate(offsets)]
        for i in range(0, len(batch), 100_000):
            with engine.begin() as conn:
                store_rows(conn, batch[i:i + 100_000])
        started = time.perf_counter()
        rollup_pending(engine, raw_retention_days=120)
        figures["incremental_rollup_1m_s"] = time.perf_counter() - started
        started = time.perf_counter()
        rerun = rollup_pending(engine, raw_retention_days=120)
        details["rollup_rerun_ms"] = (time.perf_counter() - started) * 1000
        details["incremental_rollup_events"] = hour_events
        assert rerun.hours == 0
        log(f"  incremental {figures['incremental_rollup_1m_s']:.2f} s, rerun {details['rollup_rerun_ms']:.0f} ms")

        server = Server(url, workers=2, port=18081)
        try:
            log(f"HTTP ingest of {args.http_events:,} events (2 workers, 4 clients)")
            figures["http_ingest_events_per_s"] = http_ingest(server, args.http_events, args.seed)
            rollup_pending(engine, raw_retention_days=120)
            log("queries through the API")
            details["queries"] = time_queries(server, args.repeats)
            figures["chart_miss_p50_ms"] = details["queries"]["7d_hourly_by_channel"]["miss_p50_ms"]
            figures["chart_hit_p50_ms"] = details["queries"]["7d_hourly_by_channel"]["hit_p50_ms"]
            raw_ms = raw_baseline_90d(engine, max(3, args.repeats // 3))
            details["raw_90d_p50_ms"] = raw_ms
            figures["raw_over_rollup_90d"] = raw_ms / details["queries"]["90d_daily_by_channel_status"]["miss_p50_ms"]
            log("freshness")
            figures["freshness_s"] = statistics.median(freshness(server, engine) for _ in range(5))
            log("dashboard in headless Chromium")
            details["dashboard"] = dashboard_time(server)
            figures["dashboard_first_charts_s"] = details["dashboard"]["first_s"]
        finally:
            server.stop()

        log(f"load: {args.load_clients} clients for {args.load_seconds:.0f} s against 4 workers")
        server = Server(url, workers=4, port=18082)
        try:
            details["load"] = load_test(server, args.load_clients, args.load_seconds)
        finally:
            server.stop()
        figures["load_rps"] = details["load"]["rps"]
        figures["load_p99_ms"] = details["load"]["p99_ms"]
        figures["load_errors"] = details["load"]["errors"]

        result = {
            "started": end.isoformat(), "command": " ".join(sys.argv),
            "dataset": {"events": rows, "days": 90, "recent_days": 14, "templates": 12 * TEMPLATE_VARIANTS},
            "machine": machine(engine),
            "figures": {k: round(figures[k], 3) if isinstance(figures[k], float) else figures[k] for k in FIGURE_KEYS},
            "details": details,
        }
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print()
        print(f"{'figure':32s} value")
        for key in FIGURE_KEYS:
            print(f"{key:32s} {result['figures'][key]}")
        print(f"\nwrote {path}")
        return 0
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
