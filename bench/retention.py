"""Raw-event retention at scale: `services.rollup.fold.apply_retention` drops whole daily partitions
of `notification_events` and reads none of the rows it removes. Run alone
(`python -m bench.retention --events 10000000`).

The dataset (bench.harness.dataset_rows: the last 14 days plus a 90-day tail at a tenth of the
rate) is loaded into a fresh schema, ending at midnight UTC today so every partition of the tail
holds a whole day, then analyzed (rolled up only with --rollup, which gives the minute tables
their rows so the minute-row part of retention is measured too). Then, with the default
`raw_retention_days=30` and `now` chosen so the cutoff falls where wanted:

(a) one expired day: `now` is the day after the oldest partition stops being within 30 days;
(b) many expired days: `now` is an hour after loading, everything older than 30 days goes (the
    tail's oldest 59 days, after (a) and the baselines).

Each is timed around the `apply_retention` call alone (the row counts of what is dropped are
taken before, untimed). Proof it did not scan: `pg_stat_user_tables` (seq_scan, seq_tup_read,
idx_scan, idx_tup_fetch, n_tup_del) of the parent and of every partition that remains, read
before and after. Table statistics reach the shared stats asynchronously in PG15, so
before each read the connections that did work are flushed (`pg_stat_force_next_flush()` on the
connection that ran the retention, the same backend by construction, then a 1 s wait) and the
read is repeated 0.5 s apart until two reads agree, each in a new transaction after
`pg_stat_clear_snapshot()`. Every statement the retention issued is recorded with its time.

Baselines in the same run, between (a) and (b), each a DELETE in a transaction that is rolled
back (the statement alone timed): `DELETE FROM notification_events WHERE created_at < cutoff`
for the next-oldest day (a tail day, like the one (a) drops), the same for one day at the full
rate (the oldest of the 14 recent days, `created_at >= day AND created_at < day + 1`), and for
exactly the days (b) then drops. And what DELETE-based retention really costs: the tail day after
the next-oldest deleted and committed, then its partition vacuumed (the space reused only then),
both timed; (b) drops that emptied partition with the others. A CHECKPOINT precedes each timed
part.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock

from sqlalchemy import create_engine, event, text

from bench.harness import RESULTS, analyze, fresh_schema, load_bulk, log, machine, write_result
from dashapp.extensions import make_engine
from services.rollup.fold import apply_retention, rollup_pending
from services.store import dialect
from services.store.ingest import raw_retention_cutoff

RETENTION_DAYS = 30  # the product's default (RAW_RETENTION_DAYS)
MINUTE_RETENTION_HOURS = 48  # the product's default (MINUTE_RETENTION_HOURS)
STATS_METHOD = ("pg_stat_user_tables of the parent and every remaining partition, read before and after "
                "in a new transaction after pg_stat_clear_snapshot(); the retention's own backend called "
                "pg_stat_force_next_flush() then disconnected, and each read waited 1 s then repeated every "
                "0.5 s until two reads agreed; autovacuum is off on this server; a CHECKPOINT before each "
                "timed part")
COUNTERS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_del")
FIGURE_KEYS = ("retention_drop_one_day_s", "retention_drop_one_day_partitions",
               "retention_drop_one_day_rows", "retention_drop_days_s", "retention_drop_days_partitions",
               "retention_drop_days_rows", "retention_rows_dropped", "retention_rows_scanned",
               "retention_scans", "retention_rows_deleted", "retention_rows_left", "delete_one_day_s",
               "delete_one_day_rows", "drop_over_delete_one_day", "delete_full_rate_day_s",
               "delete_full_rate_day_rows", "delete_vacuum_one_day_s",
               "delete_vacuum_one_day_rows", "drop_over_delete_vacuum_one_day", "delete_days_s",
               "delete_days_rows", "drop_over_delete_days")


def midnight(day: date) -> datetime:
    return datetime.combine(day, clock(0), tzinfo=timezone.utc)


@contextmanager
def loaded(events: int, seed: int, rollup: bool):
    """A fresh schema holding the dataset up to midnight UTC today, analyzed (rolled up first
    with `rollup`): (url, schema, engine, end, rows, seconds spent writing)."""
    with fresh_schema() as (url, schema, engine):
        end = midnight(datetime.now(timezone.utc).date())
        log(f"generating and loading {events:,} events (schema {schema})")
        rows, seconds = load_bulk(engine, events, seed, end)
        log(f"  {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} events/s)")
        if rollup:
            started = time.perf_counter()
            rollup_pending(engine, raw_retention_days=120, minute_retention_hours=MINUTE_RETENTION_HOURS)
            log(f"  rolled up in {time.perf_counter() - started:.1f} s")
        analyze(engine)
        engine.dispose()  # the loading backends exit: their statistics are flushed
        yield url, schema, engine, end, rows, seconds


# ---------------------------------------------------------------- statistics

def table_stats(observer, schema: str) -> dict[str, dict[str, int]]:
    """The scan and delete counters of the events parent and its partitions, read in a new
    transaction after clearing the backend's statistics snapshot."""
    with observer.begin() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        rows = conn.execute(text(
            "SELECT relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), coalesce(idx_tup_fetch, 0), "
            "n_tup_del "
            "FROM pg_stat_user_tables WHERE schemaname = :s AND (relname = 'notification_events' "
            "OR relname LIKE 'notification\\_events\\_p%')"), {"s": schema}).all()
    return {r[0]: dict(zip(COUNTERS, map(int, r[1:]))) for r in rows}


def stable_stats(observer, schema: str, tries: int = 40) -> dict[str, dict[str, int]]:
    """The counters once two reads 0.5 s apart agree (every pending flush has landed)."""
    time.sleep(1.0)
    last = table_stats(observer, schema)
    for _ in range(tries):
        time.sleep(0.5)
        now = table_stats(observer, schema)
        if now == last:
            return now
        last = now
    raise RuntimeError("table statistics did not settle")


def flush_stats(engine) -> int:
    """Ask the backend behind `engine`'s only pooled connection to flush its statistics as soon
    as it goes idle; returns its pid."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid() FROM (SELECT pg_stat_force_next_flush()) f")
                                ).scalar())


def deltas(before: dict, after: dict, tables: list[str]) -> dict[str, int]:
    return {k: sum(after.get(t, {}).get(k, 0) - before.get(t, {}).get(k, 0) for t in tables)
            for k in COUNTERS}


def checkpoint(observer) -> None:
    with observer.connect() as conn:
        conn.execute(text("CHECKPOINT"))


# ---------------------------------------------------------------- the measured parts

def partition_rows(engine) -> dict[date, int]:
    """Rows per daily partition (a full scan: untimed, before the statistics are read)."""
    with engine.connect() as conn:
        days = dialect.existing_partition_days(conn)
        counts = dict(conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM notification_events "
                                        "GROUP BY 1")).all())
        conn.execute(text("SELECT pg_stat_force_next_flush()"))  # that scan is not the retention's
    return {d: int(counts.get(dialect.partition_name(d), 0)) for d in days}


def partition_bytes(engine, days: list[date]) -> int:
    with engine.connect() as conn:
        return int(sum(conn.execute(text("SELECT pg_total_relation_size(:t)"),
                                    {"t": dialect.partition_name(d)}).scalar() for d in days))


def recorder(engine) -> list[dict]:
    """Every statement `engine` runs from now on, with its seconds and the backend's pid."""
    seen: list[dict] = []

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):
        seen.append({"sql": " ".join(statement.split())[:160],
                     "s": time.perf_counter() - conn.info.pop("started"),
                     "rows": cursor.rowcount, "pid": conn.connection.dbapi_connection.info.backend_pid})

    @event.listens_for(engine, "commit")
    def commit(conn):
        seen.append({"sql": "COMMIT", "at": time.perf_counter()})

    return seen


def measure_retention(url: str, schema: str, observer, now: datetime, label: str) -> dict:
    """apply_retention(now, 30 days) timed on a connection of its own, with the counters of the
    partitions that remain before and after, and the statements it issued."""
    counts = partition_rows(observer)
    cutoff = raw_retention_cutoff(now, RETENTION_DAYS)
    expired = sorted(d for d in counts if d < cutoff)
    kept = sorted(d for d in counts if d >= cutoff)
    rows_expired = sum(counts[d] for d in expired)
    size = partition_bytes(observer, expired)
    checkpoint(observer)
    remaining = ["notification_events"] + [dialect.partition_name(d) for d in kept]
    before = stable_stats(observer, schema)

    work = make_engine(url)
    try:
        with work.connect() as conn:  # a warm pool, as the scheduler's is: no connect in the timing
            conn.execute(text("SELECT 1"))
        recording = recorder(work)
        started = time.perf_counter()
        result = apply_retention(work, now=now, raw_retention_days=RETENTION_DAYS,
                                 minute_retention_hours=MINUTE_RETENTION_HOURS)
        seconds = time.perf_counter() - started
        finished = started + seconds
        statements = list(recording)
        pids = {s["pid"] for s in statements if "pid" in s}
        flushed = flush_stats(work)
        assert pids == {flushed}, f"retention ran on {pids}, flushed {flushed}"
    finally:
        work.dispose()  # the backend exits too, which flushes whatever is left
    after = stable_stats(observer, schema)

    with observer.connect() as conn:
        left_days = dialect.existing_partition_days(conn)
        left_rows = int(conn.execute(text("SELECT count(*) FROM notification_events")).scalar())
    assert not set(expired) & left_days, "an expired partition is still there"
    assert result["raw_dropped"] == len(expired), result
    delta = deltas(before, after, remaining)
    drops = [s for s in statements if s["sql"].startswith("DROP TABLE")]
    timed = [s for s in statements if "s" in s]
    commit_at = next((s["at"] for s in statements if s["sql"] == "COMMIT"), finished)

    def spent(prefix: str) -> float:
        return sum(s["s"] for s in timed if s["sql"].startswith(prefix))

    part = {
        "now": now.isoformat(), "raw_retention_days": RETENTION_DAYS, "cutoff": cutoff.isoformat(),
        "seconds": seconds, "partitions_dropped": len(expired),
        "days_dropped": [expired[0].isoformat(), expired[-1].isoformat()] if expired else [],
        "rows_dropped": rows_expired, "bytes_dropped": size,
        "rows_left": left_rows, "rows_left_expected": sum(counts[d] for d in kept),
        "partitions_left": len(kept),
        "counter_deltas_remaining": delta,
        "counter_deltas_by_table": {t: d for t in remaining
                                    if (d := {k: v for k, v in deltas(before, after, [t]).items() if v})},
        "minute_rows_deleted": result["minute_rows_deleted"],
        "breakdown_s": {  # other: the pool's checkout and pre-ping, BEGIN, Python
            "list_partitions": spent("SELECT c.relname FROM pg_inherits"),
            "drop_table_statements": spent("DROP TABLE"),
            "drop_table_max": max((s["s"] for s in drops), default=0.0),
            "minute_rows_delete": spent("DELETE FROM metrics_minute"),
            "late_marks_delete": spent("DELETE FROM late_marks"),
            "commit_and_return": finished - commit_at,
            "other": seconds - (finished - commit_at) - sum(s["s"] for s in timed),
        },
        "statements": [{"sql": s["sql"], "s": round(s["s"], 6), "rows": s["rows"]} for s in timed
                       if not s["sql"].startswith("DROP TABLE")]
        + [{"sql": f"DROP TABLE IF EXISTS … × {len(drops)}", "s": round(spent("DROP TABLE"), 6)}],
        "flushed_backend": flushed,
    }
    log(f"  {label}: {len(expired)} partitions, {rows_expired:,} rows ({size / 2**20:.0f} MiB) dropped in "
        f"{seconds * 1000:.1f} ms; {left_rows:,} rows left; counter deltas on what remains {delta}")
    return part


def timed_delete(url: str, observer, cutoff: date, label: str, since: date | None = None) -> dict:
    """DELETE FROM notification_events WHERE created_at < cutoff (and >= since, if given), in a
    transaction rolled back: the statement alone is timed."""
    where = "created_at < :c" + (" AND created_at >= :s" if since else "")
    params = {"c": midnight(cutoff), **({"s": midnight(since)} if since else {})}
    checkpoint(observer)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # connected before the clock starts
            conn.rollback()
            transaction = conn.begin()
            started = time.perf_counter()
            deleted = conn.execute(text(f"DELETE FROM notification_events WHERE {where}"), params).rowcount
            seconds = time.perf_counter() - started
            transaction.rollback()
            rolled_back = time.perf_counter() - started - seconds
            plan = conn.execute(text(f"EXPLAIN (COSTS OFF) DELETE FROM notification_events WHERE {where}"),
                                params).scalars().all()
        flush_stats(engine)
    finally:
        engine.dispose()
    scanned = sorted({line.split(" on ")[1].split()[0] for line in plan
                      if " on notification_events_p" in line})
    log(f"  {label}: DELETE of {deleted:,} rows {since or ''}…{cutoff} in {seconds:.3f} s (rolled back in "
        f"{rolled_back:.3f} s), {len(scanned)} partitions in its plan")
    return {"sql": f"DELETE FROM notification_events WHERE {where}",
            "since": since.isoformat() if since else None, "cutoff": cutoff.isoformat(), "rows": deleted,
            "seconds": seconds, "rollback_s": rolled_back, "partitions_in_plan": len(scanned),
            "plan": [line.strip() for line in plan][:12]}


def deleted_and_vacuumed(url: str, observer, day: date) -> dict:
    """What DELETE-based retention really costs for `day`: the DELETE committed, then the VACUUM
    of its partition that makes the space reusable (heap and every index)."""
    checkpoint(observer)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            conn.rollback()
            started = time.perf_counter()
            with conn.begin():
                deleted = conn.execute(text("DELETE FROM notification_events WHERE created_at < :c "
                                            "AND created_at >= :s"),
                                       {"s": midnight(day), "c": midnight(day + timedelta(days=1))}).rowcount
            committed = time.perf_counter() - started
            conn.execution_options(isolation_level="AUTOCOMMIT")
            vacuum_started = time.perf_counter()
            conn.execute(text(f"VACUUM {dialect.partition_name(day)}"))
            vacuumed = time.perf_counter() - vacuum_started
        flush_stats(engine)
    finally:
        engine.dispose()
    log(f"  one day, committed: DELETE of {deleted:,} rows of {day} in {committed:.3f} s with its commit, "
        f"then VACUUM of its partition in {vacuumed:.3f} s")
    return {"day": day.isoformat(), "rows": deleted, "delete_and_commit_s": committed, "vacuum_s": vacuumed,
            "seconds": committed + vacuumed}


def retention_phase(url: str, schema: str, end: datetime, loaded_at: datetime,
                    delete_days: bool = True) -> tuple[dict, dict]:
    observer = create_engine(url)  # reads statistics, counts, checkpoints; never times anything
    try:
        oldest = min(d for d, n in partition_rows(observer).items() if n)
        # (a) the first hourly run of the day the oldest partition expires: cutoff = oldest + 1
        now_a = midnight(oldest + timedelta(days=RETENTION_DAYS + 1)) + timedelta(minutes=5)
        log(f"(a) one expired day: now = {now_a:%Y-%m-%d %H:%M} UTC, {RETENTION_DAYS} days")
        one = measure_retention(url, schema, observer, now_a, "one day")
        # baselines: the next-oldest day, a full-rate day and exactly what (b) will drop, deleted and
        # rolled back; the day after the next-oldest deleted for good and vacuumed
        now_b = loaded_at + timedelta(hours=1)
        log("baselines: DELETE (rolled back)")
        delete_one = timed_delete(url, observer, oldest + timedelta(days=2), "one day")
        recent = end.date() - timedelta(days=14)  # the oldest day at the dataset's full rate
        delete_full = timed_delete(url, observer, recent + timedelta(days=1), "one full-rate day",
                                   since=recent)
        delete_vacuum = deleted_and_vacuumed(url, observer, oldest + timedelta(days=2))
        delete_many = timed_delete(url, observer, raw_retention_cutoff(now_b, RETENTION_DAYS), "days") \
            if delete_days else None
        # (b) an hourly run an hour after loading: every day older than 30 days
        log(f"(b) many expired days: now = {now_b:%Y-%m-%d %H:%M} UTC, {RETENTION_DAYS} days")
        many = measure_retention(url, schema, observer, now_b, "days")
    finally:
        observer.dispose()
    scans = [p["counter_deltas_remaining"] for p in (one, many)]
    figures = {
        "retention_drop_one_day_s": one["seconds"],
        "retention_drop_one_day_partitions": one["partitions_dropped"],
        "retention_drop_one_day_rows": one["rows_dropped"],
        "retention_drop_days_s": many["seconds"],
        "retention_drop_days_partitions": many["partitions_dropped"],
        "retention_drop_days_rows": many["rows_dropped"],
        "retention_rows_dropped": one["rows_dropped"] + many["rows_dropped"],
        "retention_rows_scanned": sum(d["seq_tup_read"] + d["idx_tup_fetch"] for d in scans),
        "retention_scans": sum(d["seq_scan"] + d["idx_scan"] for d in scans),
        "retention_rows_deleted": sum(d["n_tup_del"] for d in scans),
        "retention_rows_left": many["rows_left"],
        "delete_one_day_s": delete_one["seconds"], "delete_one_day_rows": delete_one["rows"],
        "drop_over_delete_one_day": one["seconds"] / delete_one["seconds"],
        "delete_full_rate_day_s": delete_full["seconds"], "delete_full_rate_day_rows": delete_full["rows"],
        "delete_vacuum_one_day_s": delete_vacuum["seconds"],
        "delete_vacuum_one_day_rows": delete_vacuum["rows"],
        "drop_over_delete_vacuum_one_day": one["seconds"] / delete_vacuum["seconds"],
    }
    if delete_many:
        figures.update({"delete_days_s": delete_many["seconds"], "delete_days_rows": delete_many["rows"],
                        "drop_over_delete_days": many["seconds"] / delete_many["seconds"]})
    details = {"one_day": one, "days": many, "delete_one_day": delete_one,
               "delete_full_rate_day": delete_full, "delete_vacuum_one_day": delete_vacuum,
               "delete_days": delete_many,
               "stats_method": STATS_METHOD}
    return figures, details


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rollup", action="store_true",
                        help="roll the dataset up first, so the minute rows retention deletes exist")
    parser.add_argument("--no-delete-days", action="store_true", help="skip the many-days DELETE baseline")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    # a `kill` unwinds like Ctrl-C does, so the benchmark schema is dropped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(timezone.utc)
    with loaded(args.events, args.seed, args.rollup) as (url, schema, engine, end, rows, seconds):
        loaded_at = datetime.now(timezone.utc)
        figures, details = retention_phase(url, schema, end, loaded_at, not args.no_delete_days)
        details["rolled_up"] = args.rollup
        details["loaded_at"] = loaded_at.isoformat()
        result = {"started": started.isoformat(), "command": " ".join(sys.argv),
                  "dataset": {"events": rows, "days": 90, "recent_days": 14, "end": end.isoformat(),
                              "bulk_ingest_events_per_s": rows / seconds},
                  "machine": machine(engine),
                  "figures": {k: round(figures[k], 6) if isinstance(figures[k], float) else figures[k]
                              for k in FIGURE_KEYS if k in figures},
                  "details": details}
    write_result(args.out, "retention", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
