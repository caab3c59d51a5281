"""Investigation lookups at scale: one user's events, one notification's lifecycle, one
user's activity and a 7-day user ranking through the HTTP API, and what the indexes behind
them cost bulk ingest. Run alone (`python -m bench.lookups --events 10000000`) or as a phase
of `python -m bench`.

The ingest cost is measured in the same run, onto the same table: new events written with the
three lookup indexes (dialect.LOOKUP_INDEXES) in place, then as many with them dropped — as live ingest writes them
(recent, in time order) and as a backfill scattered over 90 days (the worst case).
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import redis
import requests
from sqlalchemy import text

from bench.harness import (
    REDIS,
    RESULTS,
    Server,
    analyze,
    dataset_rows,
    loaded_schema,
    log,
    machine,
    percentile,
    write_result,
)
from services.store import demo, dialect
from services.store.ingest import store_rows

FIGURE_KEYS = ("lookup_user_p50_ms", "lookup_user_p95_ms", "lookup_notification_p50_ms",
               "lookup_notification_p95_ms", "user_activity_p50_ms", "users_ranking_7d_ms", "failure_reasons_7d_ms",
               "ingest_with_lookup_indexes_events_per_s", "ingest_without_lookup_indexes_events_per_s",
               "backfill_with_lookup_indexes_events_per_s", "backfill_without_lookup_indexes_events_per_s")


def sample_ids(engine, samples: int, seed: int) -> tuple[list[str], list[str]]:
    """Users and notifications that exist, drawn at random over the whole table."""
    with engine.connect() as conn:
        users = conn.execute(text("SELECT user_id FROM notification_events TABLESAMPLE SYSTEM (1) "
                                  "REPEATABLE (:s) WHERE user_id IS NOT NULL LIMIT :n"), {"s": seed, "n": samples}
                             ).scalars().all()
        notes = conn.execute(text("SELECT notification_id FROM notification_events TABLESAMPLE SYSTEM (1) "
                                  "REPEATABLE (:s) WHERE notification_id IS NOT NULL LIMIT :n"),
                             {"s": seed + 1, "n": samples}).scalars().all()
    rng = np.random.default_rng(seed)
    return list(rng.permutation(users)), list(rng.permutation(notes))


def timed(session, url: str) -> tuple[float, dict]:
    started = time.perf_counter()
    response = session.get(url, timeout=120)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def lookups(server: Server, users: list[str], notes: list[str], ranking_repeats: int = 3) -> tuple[dict, dict]:
    """(figures, details): every lookup through the API, uncached by construction (each id once)."""
    session = requests.Session()
    by_user, by_note, activity, found = [], [], [], []
    for user in users:
        ms, body = timed(session, f"{server.base}/api/analytics/events?user_id={user}&start=now-30d&limit=100")
        by_user.append(ms)
        found.append(len(body["events"]))
    for note in notes:
        ms, body = timed(session, f"{server.base}/api/analytics/notifications/{note}")
        by_note.append(ms)
        assert body["events"], f"notification {note} has no events"
    for user in users[:max(5, len(users) // 4)]:
        activity.append(timed(session, f"{server.base}/api/analytics/users/{user}?start=now-7d")[0])
    ranking = [timed(session, f"{server.base}/api/analytics/users?metric=failed&start=now-7d&limit=20")
               for _ in range(ranking_repeats)]
    cache = redis.Redis.from_url(REDIS)
    reasons = []
    for channel, status in (("sms", "failed"), ("email", "bounced"), ("push", "failed")) * ranking_repeats:
        cache.flushdb()  # drill levels are cached: each of these is a miss
        filters = f'{{"channel":"{channel}","status":"{status}"}}'
        reasons.append(timed(session, f"{server.base}/api/analytics/drilldown?start=now-7d&dimension=error_code"
                                      f"&filters={filters}")[0])
    figures = {"lookup_user_p50_ms": statistics.median(by_user), "lookup_user_p95_ms": percentile(by_user, 95),
               "lookup_notification_p50_ms": statistics.median(by_note),
               "lookup_notification_p95_ms": percentile(by_note, 95),
               "user_activity_p50_ms": statistics.median(activity),
               "users_ranking_7d_ms": statistics.median(ms for ms, _ in ranking),
               "failure_reasons_7d_ms": statistics.median(reasons)}
    details = {"users_looked_up": len(users), "events_per_user_lookup_p50": statistics.median(found),
               "notifications_looked_up": len(notes), "user_activities": len(activity),
               "users_ranked": ranking[0][1]["metadata"]["users_ranked"],
               "ranking_server_ms": [body["metadata"]["elapsed_ms"] for _, body in ranking]}
    return figures, details


def recent_rows(events: int, seed: int, end: datetime) -> list[list[tuple]]:
    """Batches of 5,000 events of the demo's mix over the last six hours, in time order: what
    live ingest writes (one day's partition, its indexes warm)."""
    columns, _ = demo.generate(1, max(1, int(events / 2.35 / 6)), seed, end)
    keep = columns["time_us"] >= int((end - timedelta(hours=6) - demo.EPOCH).total_seconds()) * 1_000_000
    columns = {k: v[keep] for k, v in columns.items()}
    now = datetime.now(timezone.utc)
    rows = demo.to_rows(columns, seed, now, 0, len(columns["time_us"]))
    return [rows[i:i + 5000] for i in range(0, len(rows), 5000)]


def ingest_cost(engine, events: int, seed: int, end: datetime) -> dict:
    """Events/s of the same kind of write with the lookup indexes (dialect.LOOKUP_INDEXES) on
    every partition, then without them: live ingest (recent events in 5,000-event batches, with
    their rollup deltas) and a backfill scattered over 90 days into existing partitions (the
    worst case: every day's indexes touched)."""
    def write(batches, backfill: bool) -> float:
        spent, written = 0.0, 0
        for rows in batches:
            started = time.perf_counter()
            with engine.begin() as conn:
                store_rows(conn, rows, backfill=backfill)
            spent += time.perf_counter() - started
            written += len(rows)
        return written / spent

    out = {"ingest_with_lookup_indexes_events_per_s": write(recent_rows(events, seed + 101, end), False),
           "backfill_with_lookup_indexes_events_per_s": write(dataset_rows(events, seed + 102, end), True)}
    with engine.begin() as conn:
        days = sorted(dialect.existing_partition_days(conn))
        for day in days:
            dialect.drop_lookup_indexes(conn, day)
    out["ingest_without_lookup_indexes_events_per_s"] = write(recent_rows(events, seed + 201, end), False)
    out["backfill_without_lookup_indexes_events_per_s"] = write(dataset_rows(events, seed + 202, end), True)
    with engine.begin() as conn:
        for day in days:
            dialect.index_partition(conn, day)
    return out


def explain(engine, user: str, note: str) -> dict:
    """The plans the lookups run with, as evidence of which index answers them."""
    plans = {}
    with engine.connect() as conn:
        for name, sql, params in (
                ("user", "SELECT * FROM notification_events WHERE user_id = :v AND created_at >= now() - "
                         "interval '30 days' ORDER BY created_at DESC, event_id DESC LIMIT 101", {"v": user}),
                ("notification", "SELECT * FROM notification_events WHERE notification_id = :v", {"v": note})):
            lines = conn.execute(text("EXPLAIN (COSTS OFF) " + sql), params).scalars().all()
            nodes: dict[str, int] = {}
            for line in lines:
                match = re.search(r"(Index Only Scan|Index Scan|Bitmap Index Scan|Seq Scan)(?: Backward)?"
                                  r"(?: (?:using|on) (\S+))?", line)
                if match:  # one entry per kind of scan and index, with the partitions it ran on
                    index = "" if match.group(1) == "Seq Scan" else \
                        re.sub(r"^notification_events_p\d{8}_", "", match.group(2) or "")
                    key = f"{match.group(1)} {index}".strip()
                    nodes[key] = nodes.get(key, 0) + 1
            plans[name] = nodes
    return plans


def lookup_phase(url: str, engine, samples: int, seed: int, ingest_events: int, end: datetime,
                 port: int = 18083) -> tuple[dict, dict]:
    users, notes = sample_ids(engine, samples, seed)
    server = Server(url, workers=2, port=port)
    try:
        figures, details = lookups(server, users, notes)
    finally:
        server.stop()
    details["plans"] = explain(engine, users[0], notes[0])
    log(f"  user p50 {figures['lookup_user_p50_ms']:.1f} ms, notification p50 "
        f"{figures['lookup_notification_p50_ms']:.1f} ms, activity p50 {figures['user_activity_p50_ms']:.1f} ms, "
        f"ranking 7 d {figures['users_ranking_7d_ms']:.0f} ms, failure reasons 7 d "
        f"{figures['failure_reasons_7d_ms']:.1f} ms; plans {details['plans']}")
    if ingest_events:
        log(f"ingest cost of the lookup indexes ({ingest_events:,} events with, then without)")
        figures.update(ingest_cost(engine, ingest_events, seed, end))
        log(f"  live ingest with {figures['ingest_with_lookup_indexes_events_per_s']:,.0f} /s, without "
            f"{figures['ingest_without_lookup_indexes_events_per_s']:,.0f} /s; scattered backfill with "
            f"{figures['backfill_with_lookup_indexes_events_per_s']:,.0f} /s, without "
            f"{figures['backfill_without_lookup_indexes_events_per_s']:,.0f} /s")
        analyze(engine)
    return figures, details


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--ingest-events", type=int, default=500_000, help="per side of the ingest comparison")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    with loaded_schema(args.events, args.seed) as (url, _schema, engine, end, rows, seconds):
        figures, details = lookup_phase(url, engine, args.samples, args.seed, args.ingest_events, end)
        result = {"started": end.isoformat(), "command": " ".join(sys.argv),
                  "dataset": {"events": rows, "days": 90, "recent_days": 14,
                              "bulk_ingest_events_per_s": rows / seconds},
                  "machine": machine(engine),
                  "figures": {k: round(figures[k], 3) for k in FIGURE_KEYS if k in figures}, "details": details}
    write_result(args.out, "lookups", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
