"""The live workload: events keep arriving while a team's dashboards refresh.

gunicorn (2 workers) with Redis and the scheduler process folding rollups; an ingest
client posting 500-event batches at a set rate; viewers each refreshing five charts every
30 s, staggered (events by time and channel for the last 1 h, 24 h and 7 d, delivery rate
by time and channel for 24 h, events by channel for 24 h). Beside them, the floor
(bench.floor: one hand-written SQL query per chart behind a bare WSGI endpoint) answers
the same five questions under the same load, so chart figures are ratios measured in the
same run.

    .venv/bin/python -m bench.live [--events 1000000] [--rate 2000] [--seconds 300] [--viewers 50]

Figures: chart p50/p99 per chart and over all, the share of answers and of sealed buckets
served from cache, the ingest rate achieved and batches dropped (a batch more than 5 s
late is dropped, as a producer would), rollup lag, freshness (a posted event seen in the
chart API), CPU busy, errors; with --ramp, the highest rate at which the targets hold.
Last, a report step: at the base rate for 60 s, the same number of viewers (50) refresh the
Trends report (all channels, 7 days) every 30 s, staggered: its p50 and p99, share from cache
and CPU under ingest.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import orjson
import requests

from bench.harness import (
    REDIS,
    RESULTS,
    TOKEN,
    Process,
    Server,
    cpu_times,
    loaded_schema,
    log,
    machine,
    percentile,
    start_floor,
    write_result,
)

CHARTS = {
    "events_1h": "/api/analytics/chart?metric=events&group_by=time,channel&start=now-1h",
    "events_24h": "/api/analytics/chart?metric=events&group_by=time,channel&start=now-24h",
    "events_7d": "/api/analytics/chart?metric=events&group_by=time,channel&start=now-7d",
    "delivery_rate_24h": "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-24h",
    "events_by_channel_24h": "/api/analytics/chart?metric=events&group_by=channel&start=now-24h",
}
REPORTS = {"trends_7d": "/api/analytics/trends?metric=delivery_rate&days=7"}
REPORT_VIEWERS = 50  # as many as the chart runs' viewers, each on the Trends tab
REPORT_SECONDS = 60.0
REFRESH_S = 30.0
BATCH = 500
LATE_DROP_S = 5.0
TARGETS = {"p50_ms": 10.0, "p99_ms": 100.0, "sealed_from_cache": 0.9, "freshness_s": 5.0, "rollup_lag_s": 60.0}


def how_answered(body: dict) -> dict:
    """What an answer says of how it was made: a chart in its metadata (cached, sealed
    buckets and whether they came from the cache), a report beside its fields (cached)."""
    return body.get("metadata") or {"cached": body.get("cached")}


class Run:
    """One live run; `result()` after `join()`."""

    def __init__(self, base: str, floor: str, rate: float, viewers: int, seconds: float, paths: dict = CHARTS):
        """`paths`: what each viewer asks at each refresh (CHARTS, answered by the floor too;
        or REPORTS, which the floor does not answer)."""
        self.base, self.floor, self.rate, self.viewers, self.seconds = base, floor, rate, viewers, seconds
        self.paths = paths
        self.lock = threading.Lock()
        self.charts: list[tuple[float, str, float, bool, dict]] = []   # (t, name, ms, ok, metadata)
        self.floor_ms: list[tuple[str, float]] = []
        self.posts: list[float] = []
        self.accepted = 0
        self.dropped = 0
        self.sent = 0
        self.lags: list[float] = []
        self.freshness: list[float] = []
        self.ids = itertools.count()
        self.stop = threading.Event()

    # ---------------------------------------------------------------- the ingest client
    def _events(self, n: int) -> bytes:
        now = datetime.now(timezone.utc)
        rng = np.random.default_rng()
        ages = rng.uniform(0, 1.0, n)
        out = []
        for i, age in enumerate(ages):
            k = next(self.ids)
            status = ("sent", "delivered", "sent", "delivered", "opened", "failed")[k % 6]
            out.append({"event_id": f"live-{k}", "notification_id": f"ln-{k // 2}",
                        "created_at": (now - timedelta(seconds=float(age))).isoformat(),
                        "channel": ("email", "email", "sms", "push")[k % 4], "status": status,
                        "template_id": int(1 + k % 48),
                        "processing_time_ms": int(50 + (k * 7919) % 900) if status in ("delivered", "failed") else None})
        return orjson.dumps(out)

    def _ingest(self, schedule: list[float], start: float) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        while not self.stop.is_set():
            with self.lock:
                if not schedule:
                    return
                due = schedule.pop(0)
            wait = start + due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() - (start + due) > LATE_DROP_S:
                with self.lock:
                    self.dropped += 1
                continue
            body = self._events(BATCH)
            began = time.perf_counter()
            try:
                response = session.post(self.base + "/api/events", data=body, headers=headers, timeout=60)
                accepted = response.json().get("accepted", 0) if response.status_code == 200 else 0
            except requests.RequestException:
                accepted = 0
            with self.lock:
                self.posts.append((time.perf_counter() - began) * 1000)
                self.accepted += accepted
                self.sent += 1

    # ---------------------------------------------------------------- the viewers and the floor
    def _viewer(self, offset: float, start: float) -> None:
        session = requests.Session()
        tick = start + offset
        while not self.stop.is_set():
            wait = tick - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return
            for name, path in self.paths.items():
                began = time.perf_counter()
                try:
                    response = session.get(self.base + path, timeout=60)
                    ok = response.status_code == 200
                    metadata = how_answered(response.json()) if ok else {}
                except requests.RequestException:
                    ok, metadata = False, {}
                elapsed = (time.perf_counter() - began) * 1000
                with self.lock:
                    self.charts.append((time.monotonic() - start, name, elapsed, ok, metadata))
            tick += REFRESH_S

    def _floor(self) -> None:
        session = requests.Session()
        while not self.stop.wait(REFRESH_S / 10):
            for name in self.paths.keys() & CHARTS.keys():
                began = time.perf_counter()
                try:
                    session.get(f"{self.floor}/?q={name}", timeout=60).raise_for_status()
                except requests.RequestException:
                    continue
                with self.lock:
                    self.floor_ms.append((name, (time.perf_counter() - began) * 1000))

    # ---------------------------------------------------------------- lag and freshness
    def _monitor(self) -> None:
        session = requests.Session()
        while not self.stop.wait(5):
            try:
                lag = session.get(self.base + "/api/aggregation/status", timeout=30).json().get("lag_seconds")
            except (requests.RequestException, ValueError):
                continue
            with self.lock:
                self.lags.append(lag or 0.0)

    def _fresh(self) -> None:
        session = requests.Session()
        probe = itertools.count(1)
        while not self.stop.wait(15):
            template = 900_000 + next(probe)
            event = {"event_id": f"fresh-{uuid.uuid4().hex}", "created_at": datetime.now(timezone.utc).isoformat(),
                     "channel": "email", "status": "sent", "template_id": template}
            path = f"/api/analytics/chart?metric=sent&group_by=channel&start=now-1h&template_id={template}"
            began = time.perf_counter()
            session.post(self.base + "/api/events", json=[event], headers={"Authorization": f"Bearer {TOKEN}"},
                         timeout=30)
            while time.perf_counter() - began < 60 and not self.stop.is_set():
                data = session.get(self.base + path, timeout=30).json().get("data", [])
                if sum(r["value"] or 0 for r in data) >= 1:
                    with self.lock:
                        self.freshness.append(time.perf_counter() - began)
                    break
                time.sleep(0.05)

    def run(self) -> dict:
        start = time.monotonic() + 1.0
        schedule = [k * BATCH / self.rate for k in range(int(self.seconds * self.rate / BATCH))]
        workers = [threading.Thread(target=self._ingest, args=(schedule, start)) for _ in range(3)]
        workers += [threading.Thread(target=self._viewer, args=(REFRESH_S * v / self.viewers, start))
                    for v in range(self.viewers)]
        workers += [threading.Thread(target=t) for t in (self._floor, self._monitor, self._fresh)]
        busy0, total0 = cpu_times()
        for w in workers:
            w.start()
        time.sleep(max(0.0, start + self.seconds - time.monotonic()))
        self.stop.set()
        busy1, total1 = cpu_times()
        for w in workers:
            w.join(timeout=90)
        return self.result((busy1 - busy0) / max(total1 - total0, 1))

    def result(self, cpu_busy: float) -> dict:
        ok = [c for c in self.charts if c[3]]
        by_chart = {}
        for name in self.paths:
            mine = [c[2] for c in ok if c[1] == name]
            floor = [ms for n, ms in self.floor_ms if n == name]
            by_chart[name] = {"n": len(mine), "p50_ms": percentile(mine, 50), "p99_ms": percentile(mine, 99),
                              "floor_p50_ms": percentile(floor, 50), "floor_p99_ms": percentile(floor, 99),
                              "p50_over_floor": (percentile(mine, 50) / percentile(floor, 50)
                                                 if floor and mine else None)}
        all_ms = [c[2] for c in ok]
        floor_all = [ms for _, ms in self.floor_ms]
        slices = {}
        for t, _, ms, _, _ in ok:
            slices.setdefault(int(t // 30) * 30, []).append(ms)
        cached = [bool(c[4].get("cached")) for c in ok]
        sealed = [(c[4].get("sealed_buckets"), c[4].get("sealed_from_cache")) for c in ok
                  if c[4].get("sealed_buckets") is not None]
        sealed_total = sum(s for s, _ in sealed)
        sealed_hit = sum(s for s, hit in sealed if hit)
        return {
            "rate_target": self.rate, "viewers": self.viewers, "seconds": self.seconds,
            "charts": by_chart,
            "all": {"n": len(all_ms), "p50_ms": percentile(all_ms, 50), "p99_ms": percentile(all_ms, 99),
                    "floor_p50_ms": percentile(floor_all, 50),
                    "p50_over_floor": (percentile(all_ms, 50) / percentile(floor_all, 50)
                                       if floor_all and all_ms else None)},
            "p50_ms_by_30s": {k: statistics.median(v) for k, v in sorted(slices.items())},
            "answers_from_cache": sum(cached) / len(cached) if cached else None,
            "sealed_from_cache": sealed_hit / sealed_total if sealed_total else None,
            "errors": len(self.charts) - len(ok),
            "ingest": {"accepted_per_s": self.accepted / self.seconds, "batches_posted": self.sent,
                       "batches_dropped": self.dropped, "post_p50_ms": percentile(self.posts, 50),
                       "post_p99_ms": percentile(self.posts, 99)},
            "rollup_lag_s": {"p50": percentile(self.lags, 50), "max": max(self.lags, default=None)},
            "freshness_s": {"p50": percentile(self.freshness, 50), "max": max(self.freshness, default=None),
                            "n": len(self.freshness)},
            "cpu_busy": cpu_busy,
        }


def holds(result: dict) -> bool:
    """Whether a run meets the live targets."""
    return (result["all"]["p50_ms"] <= TARGETS["p50_ms"] and result["all"]["p99_ms"] <= TARGETS["p99_ms"]
            and (result["sealed_from_cache"] or 0) >= TARGETS["sealed_from_cache"]
            and (result["freshness_s"]["max"] or 1e9) <= TARGETS["freshness_s"]
            and (result["rollup_lag_s"]["max"] or 0) <= TARGETS["rollup_lag_s"]
            and result["ingest"]["batches_dropped"] == 0
            and result["ingest"]["accepted_per_s"] >= 0.95 * result["rate_target"])


def live_phase(url: str, schema: str, rate: float, viewers: int, seconds: float, runs: int = 1,
               ramp: list[float] | None = None) -> dict:
    """Start the app, the scheduler and the floor on an already loaded database; run."""
    env = {"DATABASE_URL": url, "REDIS_URL": REDIS, "SCHEDULER": "off", "INGEST_TOKEN": TOKEN,
           "RAW_RETENTION_DAYS": "120", "RATE_LIMIT": "off", "SCHEDULER_STANDBY_POLL": "1"}
    server = Server(url, workers=2, port=18083)
    scheduler = Process([sys.executable, "-m", "scheduler"], env)
    floor, floor_base = start_floor(schema)
    try:
        out = {"runs": []}
        for k in range(runs):
            log(f"  live run {k + 1}/{runs}: {rate:,.0f} events/s, {viewers} viewers, {seconds:.0f} s")
            result = Run(server.base, floor_base, rate, viewers, seconds).run()
            result["holds"] = holds(result)
            out["runs"].append(result)
            log(f"    p50 {result['all']['p50_ms']:.1f} ms, p99 {result['all']['p99_ms']:.1f} ms "
                f"({result['all']['p50_over_floor'] or 0:.2f}× floor), answers from cache "
                f"{result['answers_from_cache'] or 0:.0%}, sealed from cache {result['sealed_from_cache'] or 0:.0%}, "
                f"ingest {result['ingest']['accepted_per_s']:,.0f}/s ({result['ingest']['batches_dropped']} dropped), "
                f"lag max {result['rollup_lag_s']['max']} s, freshness max {result['freshness_s']['max']} s, "
                f"CPU {result['cpu_busy']:.0%}")
        if ramp:
            out["ramp"] = []
            for step in ramp:
                log(f"  ramp: {step:,.0f} events/s for 60 s")
                result = Run(server.base, floor_base, step, viewers, 60).run()
                result["holds"] = holds(result)
                out["ramp"].append(result)
                log(f"    p50 {result['all']['p50_ms']:.1f} ms, p99 {result['all']['p99_ms']:.1f} ms, ingest "
                    f"{result['ingest']['accepted_per_s']:,.0f}/s, lag max {result['rollup_lag_s']['max']} s, "
                    f"holds: {result['holds']}")
                if not result["holds"]:
                    break
        # last, so that reports still being computed when it ends cannot slow a ramp step
        log(f"  reports: {REPORT_VIEWERS} viewers refreshing the Trends report at {rate:,.0f} events/s, "
            f"{REPORT_SECONDS:.0f} s")
        reports = Run(server.base, floor_base, rate, REPORT_VIEWERS, REPORT_SECONDS, REPORTS).run()
        out["reports"] = reports
        log(f"    p50 {reports['all']['p50_ms']:.0f} ms, p99 {reports['all']['p99_ms']:.0f} ms, from cache "
            f"{reports['answers_from_cache'] or 0:.0%}, CPU {reports['cpu_busy']:.0%}")
        # the base rate counts when every run at it held; a ramp step when its run held
        held = [rate] if out["runs"] and all(r["holds"] for r in out["runs"]) else []
        held += [r["rate_target"] for r in out.get("ramp", []) if r["holds"]]
        out["highest_rate_holding"] = max(held, default=None)
        return out
    finally:
        floor.stop()
        scheduler.stop()
        server.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--ramp", default="", help="comma-separated rates for 60-second steps, e.g. 4000,8000,16000")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    with loaded_schema(args.events, args.seed) as (url, schema, engine, end, rows, _):
        ramp = [float(r) for r in args.ramp.split(",") if r]
        live = live_phase(url, schema, args.rate, args.viewers, args.seconds, args.runs, ramp)
        result = {"label": args.label, "command": " ".join(sys.argv), "dataset": {"events": rows},
                  "machine": machine(engine), "targets": TARGETS, "live": live}
    write_result(args.out, "live", result)
    return 0

if __name__ == "__main__":
    sys.exit(main())
