"""`python -m bench.scaleout`: one web node against two, with ingest running, then faults.

On a loopback cluster (`bench.cluster`: Postgres primary and streaming replica, Redis, two
gunicorn web nodes reading from the replica, two schedulers), with demo history loaded:

1. **one node**: read clients (closed loop, the dashboard session's mix of chart and drill
   questions; 32 threads over 4 processes, since one Python process's GIL caps a client
   before it caps two nodes) all on node 1, an ingest client posting 500-event batches at a
   set rate;
2. **two nodes**: the same clients alternating between the nodes request by request;
3. **faults**, the same load on two nodes, and in turn: SIGKILL of the leading scheduler
   (the standby must take over), SIGKILL of web node 2 (clients and the ingest client move
   to node 1; node 2 comes back later), a restart of the replica (reads fall back to the
   primary, then return);
4. **drain and audit**: ingest stops, the rollups catch up, and every event a 200 answered
   for is looked up; the rollup tables are compared with raw events.

Figures: rps_one_node, rps_two_nodes (and their ratio), replica_read_share,
replica_lag_p99_s, scheduler_failover_s, events_lost, events_double_counted, errors_5xx;
CPU seconds per component in each phase show what the nodes share.
Results: bench/results/scaleout-<timestamp>.json.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import requests
from sqlalchemy import create_engine, func, select, text

from bench.cluster import TOKEN, Cluster, running_cluster
from bench.harness import cpu_times, log, percentile, write_result

READS = [
    "/api/analytics/chart?metric=sent&group_by=channel&start=now-24h",
    "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-7d",
    "/api/analytics/chart?metric=events&group_by=time,channel&start=now-1h",
    "/api/analytics/chart?metric=events&group_by=status&start=now-7d",
    "/api/analytics/chart?metric=p95_processing_time&group_by=time,channel&start=now-24h",
    "/api/analytics/chart?metric=bounce_rate&group_by=template_id&start=now-7d&channel=email",
    "/api/analytics/drilldown?start=now-24h",
    "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-24h",
]
BATCH = 500
NODE_RETRY_S = 5.0  # a client that found a node dead tries it again after this long


class Nodes:
    """The web nodes a client sends to: alternating request by request over the first
    `active` ones; a node that does not answer is skipped for NODE_RETRY_S (the request goes
    to the other one)."""

    def __init__(self, urls: list[str], active):
        self.urls, self.active = urls, active
        self.down: dict[str, float] = {}
        self.lock = threading.Lock()

    def _order(self, n: int) -> list[str]:
        now = time.monotonic()
        nodes = self.urls[:self.active.value]
        with self.lock:
            alive = [u for u in nodes if self.down.get(u, 0) <= now]
        order = alive[n % len(alive):] + alive[:n % len(alive)] if alive else []
        return order + [u for u in nodes if u not in order]

    def send(self, session: requests.Session, n: int, method: str, path: str,
             **kw) -> tuple[requests.Response | None, bool]:
        """(the response, or None when no node answered; whether it came from another node)."""
        for attempt, base in enumerate(self._order(n)):
            try:
                return session.request(method, base + path, timeout=60, **kw), attempt > 0
            except requests.RequestException:  # refused, reset, cut off mid-answer, timed out
                with self.lock:
                    self.down[base] = time.monotonic() + NODE_RETRY_S
        return None, False


def reader_process(urls: list[str], active, stop, threads: int, first: int, out) -> None:
    """`threads` read clients in one process (a Python client is bound by its own GIL: the
    benchmark runs several of these). Each row: (monotonic time, ms, status, read from,
    ms the server spent choosing where to read)."""
    nodes = Nodes(urls, active)
    rows: list[tuple] = []
    moved = [0]
    lock = threading.Lock()

    def client(k: int) -> None:
        session = requests.Session()
        for n in itertools.count(k):
            if stop.is_set():
                return
            began = time.perf_counter()
            response, other = nodes.send(session, n, "GET", READS[n % len(READS)])
            ms = (time.perf_counter() - began) * 1000
            if response is None:
                row = (time.monotonic(), ms, 0, "-", None)
            else:
                timing = response.headers.get("Server-Timing", "")
                row = (time.monotonic(), ms, response.status_code, response.headers.get("X-Analytics-Read", "-"),
                       float(timing.split("dur=", 1)[1]) if "replica-wait;dur=" in timing else None)
            with lock:
                rows.append(row)
                moved[0] += other

    pool = [threading.Thread(target=client, args=(first + i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((rows, moved[0]))


class Load:
    """Read clients (in `processes` processes) and one ingest client against the web nodes."""

    def __init__(self, cluster: Cluster, clients: int, processes: int, rate: float):
        self.rate = rate
        self.urls = [node.url for node in cluster.web]
        context = multiprocessing.get_context("fork")
        self.active = context.Value("i", 1)
        self.stop, self.out = context.Event(), context.Queue()
        per = [clients // processes + (i < clients % processes) for i in range(processes)]
        self.readers = [context.Process(target=reader_process, daemon=True,
                                        args=(self.urls, self.active, self.stop, n, sum(per[:i]), self.out))
                        for i, n in enumerate(per)]
        self.lock = threading.Lock()
        self.stored_ids: list[str] = []     # event ids a 200 answered for
        self.unanswered_ids = 0  # events of batches no node answered with a 200
        self.ingest_5xx = 0
        self.batches = 0
        self.ingest_moved = 0
        self.ids = itertools.count()
        self.stop_ingest = threading.Event()

    def use(self, nodes: int) -> None:
        self.active.value = nodes

    def _events(self, n: int) -> tuple[list[str], bytes]:
        now = datetime.now(timezone.utc)
        out = []
        for _ in range(n):
            k = next(self.ids)
            status = ("sent", "delivered", "sent", "delivered", "opened", "failed")[k % 6]
            out.append({"event_id": f"so-{k}", "notification_id": f"son-{k // 2}",
                        "created_at": (now - timedelta(seconds=random.random())).isoformat(),
                        "channel": ("email", "email", "sms", "push")[k % 4], "status": status,
                        "template_id": int(1 + k % 12),
                        "processing_time_ms": 50 + (k * 7919) % 900 if status in ("delivered", "failed") else None})
        return [e["event_id"] for e in out], orjson.dumps(out)

    def _ingest(self) -> None:
        nodes = Nodes(self.urls, self.active)
        session = requests.Session()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        interval = BATCH / self.rate
        due = time.monotonic()
        for n in itertools.count():
            if self.stop_ingest.is_set():
                return
            due += interval
            ids, body = self._events(BATCH)
            stored = False
            for _ in range(3):  # the same batch again (same ids) if no node answered: de-duplicated
                response, other = nodes.send(session, n, "POST", "/api/events", data=body, headers=headers)
                self.ingest_moved += other
                if response is not None and response.status_code == 200:
                    stored = True
                    break
                if response is not None and response.status_code >= 500:
                    self.ingest_5xx += 1
            with self.lock:
                self.batches += 1
                if stored:
                    self.stored_ids.extend(ids)
                else:
                    self.unanswered_ids += len(ids)
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def start(self) -> None:
        for process in self.readers:
            process.start()
        self.ingest = threading.Thread(target=self._ingest, daemon=True)
        self.ingest.start()

    def finish(self) -> tuple[list[tuple], int]:
        """Stop every client; (every read row, requests another node answered)."""
        self.stop_ingest.set()
        self.stop.set()
        rows, moved = [], 0
        for _ in self.readers:
            part, n = self.out.get(timeout=120)
            rows += part
            moved += n
        for process in self.readers:
            process.join(timeout=30)
        self.ingest.join(timeout=90)
        return sorted(rows), moved


# ---------------------------------------------------------------- observing the cluster

def _tree_cpu(root_pids: list[int], by_group: bool, children: bool = True) -> float:
    """CPU seconds (user + system) of processes in these process groups, or of these pids
    (and their children, unless told not to)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid, pgrp = int(entry.name), int(fields[1]), int(fields[2])
        if (by_group and pgrp in root_pids) or (not by_group and (pid in root_pids or
                                                                  (children and ppid in root_pids))):
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def cpu_snapshot(cluster: Cluster, load: Load) -> dict:
    def postmaster(server) -> int:
        return int((server.data / "postmaster.pid").read_text().split()[0])
    busy, every = cpu_times()
    return {"machine_busy": busy, "machine_all": every,
            "web": _tree_cpu([n.pid for n in cluster.web], True),
            "schedulers": _tree_cpu([s.pid for s in cluster.schedulers], True),
            "redis": _tree_cpu([cluster.redis.pid], True),
            "postgres_primary": _tree_cpu([postmaster(cluster.primary)], False),
            "postgres_replica": _tree_cpu([postmaster(cluster.replica)], False),
            # this process (the ingest client) and the reader processes, not the services it started
            "load_clients": _tree_cpu([os.getpid(), *(p.pid for p in load.readers)], False, children=False)}


def cpu_use(before: dict, after: dict) -> dict:
    """CPU seconds per component between two snapshots, and the share of the machine busy.
    A component's figure misses processes that exited meanwhile (a killed node, a closed
    Postgres backend): the machine's share does not."""
    used = {k: round(after[k] - before[k], 1) for k in after if not k.startswith("machine_")}
    every = after["machine_all"] - before["machine_all"]
    used["machine_busy_share"] = round((after["machine_busy"] - before["machine_busy"]) / every, 3) if every else None
    return used


class LagMonitor(threading.Thread):
    """The replica's replay lag as the primary sees it (pg_stat_replication), twice a second."""

    def __init__(self, primary_url: str):
        super().__init__(daemon=True)
        self.engine = create_engine(primary_url, isolation_level="AUTOCOMMIT")
        self.samples: list[tuple[float, float | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                with self.engine.connect() as conn:
                    row = conn.execute(text("SELECT EXTRACT(EPOCH FROM replay_lag), "
                                            "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) "
                                            "FROM pg_stat_replication")).first()
            except Exception:
                continue
            # replay_lag is NULL once the replica has replayed everything (nothing to wait for)
            self.samples.append((time.monotonic(), None if row is None else
                                 (float(row[0]) if row[0] is not None else 0.0)))


def leader(cluster: Cluster):
    """The scheduler process that leads: the last word on leadership in its log is "leader"."""
    words = ("scheduler: leader; starting jobs", "scheduler: standby", "lost the leader lock")
    for service in cluster.schedulers:
        said = [line for line in service.log.read_text().splitlines() if any(w in line for w in words)]
        if service.alive() and said and words[0] in said[-1]:
            return service
    return None


def last_rollup(engine) -> datetime | None:
    from services.store.schema import rollup_state

    with engine.connect() as conn:
        return conn.execute(select(rollup_state.c.updated_at).where(rollup_state.c.name == "run")).scalar()


def wait_for_failover(cluster: Cluster, engine, killed, killed_at_db: datetime, limit: float = 60) -> float | None:
    """Seconds from the kill to the end of the first rollup run after it (by the standby)."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        done = last_rollup(engine)
        if done is not None and done > killed_at_db:
            new = leader(cluster)
            assert new is not None and new is not killed, "a rollup ran but no other scheduler leads"
            return (done - killed_at_db).total_seconds()
        time.sleep(0.1)
    return None


def db_now(engine) -> datetime:
    with engine.connect() as conn:
        return conn.execute(text("SELECT now()")).scalar()


def drain(engine, limit: float = 120) -> float:
    """Wait until nothing is pending for the rollups; seconds waited."""
    from services.store.schema import rollup_deltas, rollup_invalidations

    began = time.monotonic()
    while time.monotonic() - began < limit:
        with engine.connect() as conn:
            pending = conn.execute(select(func.count()).select_from(rollup_deltas)).scalar() + \
                conn.execute(select(func.count()).select_from(rollup_invalidations)).scalar()
        if pending == 0:
            return time.monotonic() - began
        time.sleep(0.5)
    raise RuntimeError(f"the rollups did not catch up within {limit:.0f} s")


def audit(engine, stored_ids: list[str]) -> dict:
    """Acknowledged events missing from raw, raw duplicates, and every rollup table against
    raw events bucket by bucket (per bucket, channel and status: a surplus in one bucket never
    hides a shortfall in another). Minute tables keep 48 h: their last 24 h are compared."""
    from services.store.schema import ROLLUP_TABLES
    from services.store.schema import notification_events as events

    with engine.begin() as conn:
        conn.execute(text("CREATE TEMP TABLE accepted (event_id text PRIMARY KEY) ON COMMIT DROP"))
        for start in range(0, len(stored_ids), 50_000):
            chunk = list(dict.fromkeys(stored_ids[start:start + 50_000]))
            conn.execute(text("INSERT INTO accepted SELECT unnest(CAST(:ids AS text[])) ON CONFLICT DO NOTHING"),
                         {"ids": chunk})
        lost = conn.execute(text("SELECT count(*) FROM accepted a WHERE NOT EXISTS "
                                 "(SELECT 1 FROM notification_events e WHERE e.event_id = a.event_id)")).scalar()
        raw, distinct = conn.execute(select(func.count(), func.count(func.distinct(events.c.event_id)))).one()
        cutoff = conn.execute(text("SELECT date_trunc('minute', now() - interval '24 hours')")).scalar()
        tables = {}
        for (granularity, _), table in ROLLUP_TABLES.items():
            since = cutoff if granularity == "minute" else datetime(1970, 1, 1, tzinfo=timezone.utc)
            over, under, rows = conn.execute(text(f"""
                WITH r AS (SELECT date_trunc('{granularity}', created_at, 'UTC') AS bucket, channel, status,
                                  count(*) AS n FROM notification_events WHERE created_at >= :since GROUP BY 1, 2, 3),
                     t AS (SELECT bucket, channel, status, sum(event_count) AS n FROM {table.name}
                           WHERE bucket >= :since GROUP BY 1, 2, 3)
                SELECT coalesce(sum(greatest(coalesce(t.n, 0) - coalesce(r.n, 0), 0)), 0),
                       coalesce(sum(greatest(coalesce(r.n, 0) - coalesce(t.n, 0), 0)), 0),
                       count(*) FILTER (WHERE coalesce(t.n, 0) <> coalesce(r.n, 0))
                FROM r FULL JOIN t USING (bucket, channel, status)"""), {"since": since}).one()
            tables[table.name] = {"events_over_raw": int(over), "events_under_raw": int(under),
                                  "buckets_differing": int(rows)}
    return {"events_lost": int(lost), "raw_events": int(raw), "raw_duplicates": int(raw - distinct),
            "rollup_against_raw": tables,
            # an event counted twice shows in every table it reached: the worst table, not the sum
            "events_double_counted": int(raw - distinct) + max(t["events_over_raw"] for t in tables.values()),
            "events_missing_from_rollups": max(t["events_under_raw"] for t in tables.values())}


# ---------------------------------------------------------------- the run

def summarize(reads: list, window: tuple[float, float]) -> dict:
    """Figures of the reads that ended within `window` (monotonic seconds)."""
    rows = [r for r in reads if window[0] <= r[0] < window[1]]
    if not rows:
        return {}
    seconds = window[1] - window[0]
    ms = [r[1] for r in rows]
    where = Counter(r[3] for r in rows if r[2] == 200)
    answered = sum(where.values())
    choosing = [r[4] for r in rows if r[4] is not None]
    return {"requests": len(rows), "seconds": round(seconds, 1), "rps": round(len(rows) / seconds, 1),
            "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1),
            "errors_5xx": sum(1 for r in rows if r[2] >= 500), "unanswered": sum(1 for r in rows if r[2] == 0),
            "read_from": dict(where),
            "choosing_server_p50_ms": round(percentile(choosing, 50), 2) if choosing else None,
            "choosing_server_p99_ms": round(percentile(choosing, 99), 2) if choosing else None,
            "replica_share": round(where.get("replica", 0) / answered, 4) if answered else None}


def reads_from(url: str) -> str | None:
    try:
        return requests.get(url + "/api/analytics/metrics", timeout=10).headers.get("X-Analytics-Read")
    except requests.RequestException:
        return None


def run(args) -> dict:
    with running_cluster(web_nodes=2, workers=args.workers, schedulers=2,
                         settings={"RAW_RETENTION_DAYS": "30"}) as cluster:
        engine = create_engine(cluster.primary.url())
        log(f"cluster up: {cluster.root}; seeding {args.demo_days} days of demo data")
        cluster.seed_demo(args.demo_days)
        subprocess.run(["redis-cli", "-u", cluster.redis.url, "flushdb"], check=True, capture_output=True)
        monitor = LagMonitor(cluster.primary.url())
        monitor.start()
        load = Load(cluster, args.clients, args.processes, args.rate)
        load.start()
        begun = time.monotonic()
        cpu: dict[str, dict] = {}
        windows: dict[str, tuple[float, float]] = {}
        events: dict[str, float] = {}

        def at() -> float:
            return round(time.monotonic() - begun, 2)

        def phase(name: str, seconds: float, nodes: int) -> None:
            load.use(nodes)
            before, started = cpu_snapshot(cluster, load), time.monotonic()
            time.sleep(seconds)
            after = cpu_snapshot(cluster, load)
            windows[name] = (started, time.monotonic())
            cpu[name] = cpu_use(before, after)

        log(f"warm-up {args.warmup:.0f} s")
        phase("warm-up", args.warmup, 1)
        log(f"one node, {args.seconds:.0f} s")
        phase("one_node", args.seconds, 1)
        log(f"two nodes, {args.seconds:.0f} s")
        phase("two_nodes", args.seconds, 2)

        log("faults: kill the leading scheduler")
        before_faults, fault_started = cpu_snapshot(cluster, load), time.monotonic()
        old = leader(cluster)
        old.kill()  # returns once the process is gone: any rollup that ends later is another's
        killed_at = db_now(engine)
        events["scheduler_killed_at"] = at()
        failover = wait_for_failover(cluster, engine, old, killed_at)
        log(f"  a rollup ran {failover} s after the kill, led by the standby")
        time.sleep(max(0.0, 10 - (time.monotonic() - fault_started)))

        log("faults: kill web node 2")
        web2 = cluster.web[1]
        web2.kill()
        events["web2_killed_at"] = at()
        time.sleep(15)
        log("faults: web node 2 back")
        cluster.restart_web(web2)
        events["web2_back_at"] = at()
        time.sleep(5)

        log("faults: restart the replica")
        events["replica_stopped_at"] = at()
        stopped = time.monotonic()
        cluster.replica.stop("fast")
        time.sleep(3)
        cluster.replica.start()
        started = time.monotonic()
        events["replica_started_at"] = at()
        back = None
        while back is None and time.monotonic() - started < 60:
            if reads_from(cluster.web[0].url) == "replica":
                back = time.monotonic()
            else:
                time.sleep(0.2)
        events["replica_reads_back_at"] = round(back - begun, 2) if back else None
        time.sleep(5)
        after_faults = cpu_snapshot(cluster, load)
        windows["faults"] = (fault_started, time.monotonic())
        # components that were killed or restarted lost their counts: the machine's share only
        cpu["faults"] = {"machine_busy_share": cpu_use(before_faults, after_faults)["machine_busy_share"]}

        log("drain: ingest stops, the rollups catch up")
        reads, moved = load.finish()
        monitor.stop.set()
        drained = drain(engine)
        checked = audit(engine, load.stored_ids)
        engine.dispose()
        monitor.engine.dispose()

        one, two, faults = (summarize(reads, windows[p]) for p in ("one_node", "two_nodes", "faults"))
        steady = [r for r in reads if r[2] == 200 and any(windows[p][0] <= r[0] < windows[p][1]
                                                         for p in ("one_node", "two_nodes"))]
        lags = [lag for _, lag in monitor.samples if lag is not None]
        during = Counter(r[3] for r in reads if stopped <= r[0] <= started and r[2] == 200)
        errors_5xx = sum(1 for r in reads if r[2] >= 500) + load.ingest_5xx
        figures = {
            "rps_one_node": one["rps"], "rps_two_nodes": two["rps"],
            "two_over_one": round(two["rps"] / one["rps"], 2),
            "replica_read_share": round(sum(r[3] == "replica" for r in steady) / len(steady), 4),
            "replica_lag_p99_s": round(percentile(lags, 99), 3) if lags else None,
            "scheduler_failover_s": round(failover, 2) if failover is not None else None,
            "events_lost": checked["events_lost"], "events_double_counted": checked["events_double_counted"],
            "errors_5xx": errors_5xx,
            "replica_back_after_restart_s": round(back - started, 2) if back is not None else None,
        }
        return {
            "dataset": {"demo_days": args.demo_days, "raw_events_at_end": checked["raw_events"],
                        "ingest_rate_target": args.rate, "ingest_batches": load.batches,
                        "events_stored": len(load.stored_ids)},
            "setup": {"web_nodes": 2, "gunicorn_workers_per_node": args.workers, "threads_per_worker": 8,
                      "read_clients": args.clients, "client_processes": args.processes,
                      "phase_seconds": args.seconds, "schedulers": 2, "replica_wait_s": 1.0,
                      "replica_retry_s": 5.0},
            "machine": {"cores": os.cpu_count()},
            "figures": figures,
            "details": {"one_node": one, "two_nodes": two, "faults": faults, "cpu_seconds": cpu,
                        "events_at_s": events, "reads_while_the_replica_was_down": dict(during),
                        "reads_moved_to_other_node": moved, "ingest_batches_moved": load.ingest_moved,
                        "ingest_5xx": load.ingest_5xx, "events_never_acknowledged": load.unanswered_ids,
                        "drain_s": round(drained, 1), "audit": checked, "lag_samples": len(lags),
                        "lag_max_s": round(max(lags), 3) if lags else None},
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.splitlines()[0])
    parser.add_argument("--demo-days", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second the ingest client posts")
    parser.add_argument("--clients", type=int, default=32, help="read clients (closed loop)")
    parser.add_argument("--processes", type=int, default=4, help="processes the read clients run in")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per web node")
    parser.add_argument("--seconds", type=float, default=45.0, help="length of the one- and two-node phases")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)
    result = run(args)
    write_result(args.out, "scaleout", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
