"""Exact, idempotent rollups of raw events into minute, hour and day tables.

Each ingest batch writes what it really added to `rollup_deltas`, pre-aggregated by minute,
in its own transaction. `rollup_pending` folds pending deltas into the minute, hour and day
tables (with and without template) and deletes exactly the deltas it folded, in one
transaction per chunk: rollup rows plus pending deltas always equal the raw events, a crash
leaves the deltas for the next run, and a run costs what arrived, not the size of the hours
it touched. Hours queued in `rollup_invalidations` (a full rebuild, a repair) are first
recomputed whole from raw events, their pending deltas dropped in the same snapshot. A
leader lock keeps two runs from overlapping.

Every stored number is a sum (counts, processing sums, histogram counts) or a min/max, so
folding deltas into rows, minutes into hours and hours into days is exact.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import BigInteger, Connection, Engine, bindparam, cast, delete, func, insert, select
from sqlalchemy.exc import OperationalError

from services.query.timerange import MAX_RANGE, iso_z
from services.query.timerange import floor_to as truncate
from services.store import dialect, latency
from services.store.ingest import raw_retention_cutoff
from services.store.schema import (
    ROLLUP_TABLES,
    late_marks,
    notification_events,
    rollup_deltas,
    rollup_invalidations,
    rollup_runs,
    rollup_state,
)

log = logging.getLogger(__name__)

LOCK_NAME = "rollup"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FOLD_CHUNK = 100_000  # delta rows folded per transaction
# dead row versions after which the job vacuums a table it writes (the deltas' autovacuum
# threshold, migration 0004); the rollup tables also wait for a fifth of their live rows, as
# autovacuum's default rule does. The job keeps this itself for servers where autovacuum is
# off or behind: the edge read walks past dead deltas, and a full rebuild leaves every rollup
# table half dead rows.
VACUUM_AFTER = 10_000
VACUUM_SCALE = 0.2
REBUILD_WORKERS = 2  # days rebuilt at once on Postgres, each on its own connection (SQLite: one writer)


@dataclass(frozen=True)
class RollupReport:
    folded_events: int = 0  # events whose deltas were folded
    folded_rows: int = 0    # delta rows folded
    hours: int = 0          # hours rebuilt from raw
    events: int = 0         # raw events read for them
    rows: int = 0           # rollup rows written
    batches: int = 0        # transactions committed
    expired_hours: int = 0  # queued hours whose raw data was past retention (skipped)
    duration_ms: int = 0
    locked_out: bool = False  # another rollup held the lock; nothing done

    @property
    def did_work(self) -> bool:
        return bool(self.folded_rows or self.hours or self.expired_hours)

    def summary(self) -> str:
        if self.locked_out:
            return "another rollup is running; nothing done"
        if not self.did_work:
            return f"nothing pending ({self.duration_ms} ms)"
        parts = []
        if self.folded_rows:
            parts.append(f"folded {self.folded_events:,} events ({self.folded_rows:,} deltas)")
        if self.hours:
            parts.append(f"rebuilt {self.hours} hours from raw ({self.events:,} events)")
        text = f"{', '.join(parts) or 'nothing folded'}: {self.rows:,} rollup rows written in {self.batches} " \
               f"batches, {self.duration_ms} ms"
        if self.expired_hours:
            text += f"; skipped {self.expired_hours} hours past raw retention"
        return text


# ---------------------------------------------------------------- merging (pure)

@dataclass
class Measures:
    """The mergeable measures of one rollup row."""
    event_count: int = 0
    processing_sum: int = 0
    processing_count: int = 0
    processing_min: int | None = None
    processing_max: int | None = None
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, count, psum, pcount, pmin, pmax, histogram: dict[int, int]) -> None:
        self.event_count += count
        self.processing_sum += psum or 0
        self.processing_count += pcount or 0
        if pmin is not None:
            self.processing_min = pmin if self.processing_min is None else min(self.processing_min, pmin)
        if pmax is not None:
            self.processing_max = pmax if self.processing_max is None else max(self.processing_max, pmax)
        for index, n in histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + n

    def values(self) -> tuple:
        return (self.event_count, self.processing_sum, self.processing_count, self.processing_min,
                self.processing_max, latency.encode(self.histogram) if self.histogram else None)


FULL_KEY = ("bucket", "channel", "template_id", "status")
NARROW_KEY = ("bucket", "channel", "status")
TARGETS = tuple((g, with_template) for g in ("minute", "hour", "day") for with_template in (True, False))


# ---------------------------------------------------------------- aggregating (in the database)

def _aggregate_statement(conn: Connection, source, granularity: str, with_template: bool, since: datetime | None,
                         histogram_in_sql: bool):
    """SELECT the rollup rows of `source` (fine rows) at `granularity`, in the table's
    column order; the histogram as bytes built in SQL, or as its (index, count) pairs."""
    bucket = dialect.time_bucket(conn, granularity, source.c.bucket).label("bucket")
    keys = [bucket, source.c.channel] + ([source.c.template_id] if with_template else []) + [source.c.status]
    per_bucket = select(*keys, source.c.latency_bucket.label("lb"), func.sum(source.c.event_count).label("n"),
                        func.sum(source.c.processing_sum).label("s"), func.min(source.c.processing_min).label("mi"),
                        func.max(source.c.processing_max).label("ma"))
    if since is not None:
        per_bucket = per_bucket.where(source.c.bucket >= since)
    per = per_bucket.group_by(*keys, source.c.latency_bucket).subquery()
    outer = [per.c[c.name] for c in keys]
    total = lambda column: cast(func.sum(column), BigInteger)  # noqa: E731  (Postgres sums bigint as numeric)
    histogram = [dialect.histogram_bytes(per.c.lb, per.c.n)] if histogram_in_sql else \
        dialect.histogram_aggregate(conn, per.c.lb, per.c.n)
    return select(*outer, total(per.c.n).label("event_count"), total(per.c.s).label("processing_sum"),
                  func.coalesce(cast(func.sum(per.c.n).filter(per.c.lb.is_not(None)), BigInteger), 0
                                ).label("processing_count"),
                  func.min(per.c.mi).label("processing_min"), func.max(per.c.ma).label("processing_max"),
                  *histogram).group_by(*outer)


def aggregate(conn: Connection, source, granularity: str, with_template: bool,
              since: datetime | None = None, buckets: list[datetime] | None = None) -> list[tuple]:
    """The rollup rows of `source` at `granularity` (only `buckets`, when given), summed in
    the database: (bucket, channel, [template_id,] status, count, processing sum,
    processing count, min, max, encoded histogram). Only each key's latency buckets cross
    into Python."""
    stmt = _aggregate_statement(conn, source, granularity, with_template, since, histogram_in_sql=False).subquery()
    query = select(stmt)
    if buckets is not None:
        query = query.where(stmt.c.bucket.in_(buckets))
    width = 4 if with_template else 3
    out = []
    for row in conn.execute(query):
        indexes, counts = dialect.histogram_lists(conn, row[width + 5:])
        out.append((*row[:width], int(row[width]), int(row[width + 1] or 0), int(row[width + 2] or 0),
                    row[width + 3], row[width + 4], latency.encode_lists(indexes, counts) if indexes else None))
    return out


def store_aggregate(conn: Connection, source, target: tuple[str, bool], since: datetime | None, merge: bool) -> int:
    """Write the rollup rows of `source` into the `target` table. With `merge`, rows of
    buckets that already hold rows are added to them (read, merged, rewritten in Python);
    the others — everything, in a rebuild or a first load — are written by the database
    itself on Postgres (INSERT … SELECT, the histogram built in SQL). Returns rows written."""
    granularity, with_template = target
    table = ROLLUP_TABLES[target]
    existing: list = []
    if merge:
        touched = select(dialect.time_bucket(conn, granularity, source.c.bucket).label("bucket")).distinct()
        if since is not None:
            touched = touched.where(source.c.bucket >= since)
        # the few buckets touched, as values: the lookup of which already hold rows is then an
        # index probe per bucket (as a subquery, its plan scanned the table, whose size grows)
        buckets = conn.execute(touched).scalars().all()
        existing = sorted(conn.execute(select(table.c.bucket).distinct().where(
            table.c.bucket.in_(buckets))).scalars()) if buckets else []
    written = 0
    if dialect.is_postgres(conn):
        stmt = _aggregate_statement(conn, source, granularity, with_template, since, histogram_in_sql=True).subquery()
        fresh = select(stmt)
        if existing:
            fresh = fresh.where(stmt.c.bucket.not_in(existing))
        written += conn.execute(insert(table).from_select([c.name for c in table.columns], fresh),
                                execution_options={"preserve_rowcount": True}).rowcount
    else:
        rows = aggregate(conn, source, granularity, with_template, since)
        skip = set(existing)
        fresh_rows = [r for r in rows if r[0] not in skip]
        dialect.bulk_insert_rows(conn, table, fresh_rows)
        written += len(fresh_rows)
    if existing:
        width = 4 if with_template else 3
        adding = {}
        for r in aggregate(conn, source, granularity, with_template, since, buckets=existing):
            m = adding[r[:width]] = Measures()
            m.add(r[width], r[width + 1], r[width + 2], r[width + 3], r[width + 4], latency.decode(r[width + 5]))
        written += merge_into(conn, target, adding)
    return written


def merge_into(conn: Connection, table_key: tuple[str, bool], accumulators: dict[tuple, Measures]) -> int:
    """Add `accumulators` to the rows of their buckets: read every row of the touched
    buckets, merge, rewrite them. Costs the touched buckets' rows, not the hours'."""
    if not accumulators:
        return 0
    table = ROLLUP_TABLES[table_key]
    buckets = sorted({key[0] for key in accumulators})
    merged: dict[tuple, Measures] = {}
    names = FULL_KEY if table_key[1] else NARROW_KEY
    for i in range(0, len(buckets), 500):
        for r in conn.execute(select(table).where(table.c.bucket.in_(buckets[i:i + 500]))):
            key = tuple(getattr(r, n) for n in names)
            acc = merged[key] = Measures()
            acc.add(r.event_count, r.processing_sum, r.processing_count, r.processing_min, r.processing_max,
                    latency.decode(r.latency_histogram))
    for key, m in accumulators.items():
        acc = merged.get(key)
        if acc is None:
            acc = merged[key] = Measures()
        acc.add(m.event_count, m.processing_sum, m.processing_count, m.processing_min, m.processing_max,
                m.histogram)
    for i in range(0, len(buckets), 500):
        conn.execute(delete(table).where(table.c.bucket.in_(buckets[i:i + 500])))
    dialect.bulk_insert_rows(conn, table, [(*key, *m.values()) for key, m in merged.items()])
    return len(merged)


def fold_deltas(conn: Connection, minute_floor: datetime, limit: int = FOLD_CHUNK) -> tuple[int, int, int]:
    """Fold up to `limit` pending deltas into every rollup table and delete them, in the
    caller's transaction. Returns (delta rows, events, rollup rows written)."""
    consumed, events, source = dialect.consume_deltas(conn, limit)
    if not consumed:
        return 0, 0, 0
    dialect.roomy_sorts(conn)
    written = sum(store_aggregate(conn, source, (g, t), minute_floor if g == "minute" else None, merge=True)
                  for g, t in TARGETS)
    return consumed, events, written


def rebuild_day(conn: Connection, day: datetime, minute_floor: datetime) -> tuple[int, int]:
    """Recompute every row of `day` (minute rows from `minute_floor` on) from raw events and
    drop the day's pending deltas, in the caller's snapshot. Returns (events, rows)."""
    end = day + DAY
    conn.execute(delete(rollup_deltas).where(rollup_deltas.c.bucket >= day, rollup_deltas.c.bucket < end))
    dialect.roomy_sorts(conn)
    source = dialect.stage_events(conn, day, end, "minute" if minute_floor < end else "hour")
    written = 0
    for granularity, with_template in TARGETS:
        table = ROLLUP_TABLES[(granularity, with_template)]
        since = max(day, minute_floor) if granularity == "minute" else None
        conn.execute(delete(table).where(table.c.bucket >= (since or day), table.c.bucket < end))
        if since is None or since < end:
            written += store_aggregate(conn, source, (granularity, with_template), since, merge=False)
    daily = ROLLUP_TABLES[("day", False)]
    events = conn.execute(select(func.coalesce(func.sum(daily.c.event_count), 0)).where(daily.c.bucket == day)).scalar()
    return int(events), written


def queued_days(conn: Connection, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """Days holding hours queued for a rebuild: read from raw events until it is done."""
    hours = conn.execute(select(rollup_invalidations.c.bucket_hour).distinct().where(
        rollup_invalidations.c.bucket_hour >= truncate(start, "day"),
        rollup_invalidations.c.bucket_hour < end)).scalars()
    return tuple(sorted({truncate(h, "day") for h in hours}))


def bump(conn: Connection, name: str, now: datetime) -> int:
    """Count one more committed fold ("fold") or rebuild ("rebuild"): one upsert, so two
    transactions counting the first one at once both count."""
    upsert = dialect.upsert(conn, rollup_state).values(name=name, generation=1, updated_at=now)
    return int(conn.execute(upsert.on_conflict_do_update(
        index_elements=[rollup_state.c.name], set_={"generation": rollup_state.c.generation + 1, "updated_at": now},
    ).returning(rollup_state.c.generation)).scalar_one())


def generation(conn: Connection, name: str) -> int:
    value = conn.execute(select(rollup_state.c.generation).where(rollup_state.c.name == name)).scalar()
    return int(value or 0)


@dataclass(frozen=True)
class DataVersion:
    """What a cached answer over [start, end) depends on. `sealed` changes only when data
    arrives late into the range or the rollups are rebuilt; `live` also changes with every
    committed batch (for answers that include the newest buckets). A fold moves events from
    deltas into rollup rows, which changes no answer, but it is counted too, to be safe."""
    sealed: str
    live: str
    last_batch: datetime | None = None
    raw_days: tuple[datetime, ...] = ()   # days of the range queued for a rebuild: read from raw

    def quiet_since(self, now: datetime) -> float:
        """Seconds since the last batch that added events (forever when there was none)."""
        return float("inf") if self.last_batch is None else (now - self.last_batch).total_seconds()


def _version_statement():
    """The version read, built once with bound parameters (it runs on every chart request)."""
    marks, state, queue = late_marks.c, rollup_state.c, rollup_invalidations.c
    start, sealed_end, day, end = (bindparam(name, type_=marks.bucket_end.type)
                                   for name in ("start", "sealed_end", "day", "end"))
    mark = select(func.max(marks.id)).where(marks.bucket_end > start, marks.bucket_start < sealed_end).scalar_subquery()
    counters = [select(state.generation).where(state.name == name).scalar_subquery()
                for name in ("rebuild", "fold", "ingest")]
    last_batch = select(state.updated_at).where(state.name == "ingest").scalar_subquery()
    queued = select(func.count()).where(queue.bucket_hour >= day, queue.bucket_hour < end).scalar_subquery()
    return select(mark, *counters, last_batch, queued)


_VERSION = _version_statement()


def data_version(conn: Connection, start: datetime, sealed_end: datetime, end: datetime | None = None) -> DataVersion:
    """One cheap read: the newest late mark overlapping the sealed part [start, sealed_end),
    the counters of batches, folds and rebuilds, and the days of [start, end) queued for a
    rebuild."""
    end = end or sealed_end
    m, r, f, i, last, q = conn.execute(_VERSION, {"start": start, "sealed_end": sealed_end,
                                                  "day": truncate(start, "day"), "end": end}).one()
    sealed = f"m{m or 0}.r{r or 0}"
    raw_days = ()
    if q:  # only after a backfill, until the rollup has rebuilt it
        raw_days = queued_days(conn, start, end)
    return DataVersion(sealed, f"{sealed}.f{f or 0}.i{i or 0}", last, raw_days)


# ---------------------------------------------------------------- the job

def churned(versions: dict[str, tuple[int, int]], folded_rows: int = 0) -> list[str]:
    """The tables to vacuum, from {table: (live, dead)}: the deltas once their dead versions
    (or the deltas this run folded, which the statistics may not count yet) reach
    VACUUM_AFTER; a rollup table, or the rebuild queue, once its dead rows reach VACUUM_AFTER
    and VACUUM_SCALE of its live rows."""
    out = []
    for name, (live, dead) in versions.items():
        if name == rollup_deltas.name:
            dead = max(dead, folded_rows)
            if dead >= VACUUM_AFTER:
                out.append(name)
        elif dead >= max(VACUUM_AFTER, VACUUM_SCALE * live):
            out.append(name)
    return sorted(out)


_WRITTEN = [rollup_deltas.name, rollup_invalidations.name, *sorted({t.name for t in ROLLUP_TABLES.values()})]


def vacuum_churned(engine: Engine, folded_rows: int = 0) -> list[str]:
    """Vacuum the tables this job writes whose dead rows add up (see `churned`); the names."""
    names = churned(dialect.row_versions(engine, _WRITTEN), folded_rows)
    for name in names:
        dialect.vacuum(engine, name)
    return names


def rollup_pending(engine: Engine, *, now: datetime | None = None, minute_retention_hours: int = 48,
                   raw_retention_days: int = 30, progress: Callable[[int, int], None] | None = None,
                   fold_chunk: int = FOLD_CHUNK) -> RollupReport:
    """Rebuild every queued hour from raw, a day per transaction, then fold every pending
    delta, a chunk per transaction. `progress(done, total)` is called after each rebuilt day
    (in hours), then after each folded chunk (in delta rows)."""
    lock = dialect.LeaderLock(engine, LOCK_NAME)
    if not lock.try_acquire():
        return RollupReport(locked_out=True)
    clock = time.monotonic()
    started = datetime.now(timezone.utc)
    now = now or started
    totals = dict(folded_events=0, folded_rows=0, hours=0, events=0, rows=0, batches=0, expired_hours=0)
    error = None
    try:
        # queued hours first: rebuilding them from raw also drops their pending deltas
        _rebuild_queued(engine, now, minute_retention_hours, raw_retention_days, progress, totals)
        minute_floor = truncate(now - timedelta(hours=minute_retention_hours), "hour")
        writer = engine.execution_options(write_intent=True)
        pending = None
        while True:
            with writer.begin() as conn:
                if pending is None and progress:
                    pending = conn.execute(select(func.count()).select_from(rollup_deltas)).scalar()
                rows, events, written = fold_deltas(conn, minute_floor, fold_chunk)
                if rows:
                    bump(conn, "fold", now)
            if not rows:
                break
            totals["folded_rows"] += rows
            totals["folded_events"] += events
            totals["rows"] += written
            totals["batches"] += 1
            if progress:
                progress(totals["folded_rows"], max(pending or 0, totals["folded_rows"]))
        if totals["folded_rows"] or totals["hours"]:
            vacuum_churned(engine, totals["folded_rows"])
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:1000]
        raise
    finally:
        duration_ms = int((time.monotonic() - clock) * 1000)
        try:
            with engine.begin() as conn:
                bump(conn, "run", datetime.now(timezone.utc))  # the heartbeat health reports
                if error or totals["folded_rows"] or totals["hours"] or totals["expired_hours"]:
                    conn.execute(insert(rollup_runs).values(
                        started_at=started, finished_at=datetime.now(timezone.utc),
                        hours=totals["hours"], events=totals["folded_events"] + totals["events"],
                        duration_ms=duration_ms, error=error))
                    conn.execute(delete(rollup_runs).where(rollup_runs.c.started_at < started - DAY))
        finally:
            lock.release()
    return RollupReport(duration_ms=duration_ms, **totals)


def _rebuild_queued(engine: Engine, now: datetime, minute_retention_hours: int, raw_retention_days: int,
                    progress, totals: dict) -> None:
    """Rebuild the days queued up to now, each in its own transaction; on Postgres,
    REBUILD_WORKERS days at a time (a day's rows, deltas and queue entries are its own, so
    days never wait on each other)."""
    log_table = rollup_invalidations
    with engine.connect() as conn:
        max_id = conn.execute(select(func.max(log_table.c.id))).scalar()
        if max_id is None:
            return
        queued = set(conn.execute(select(log_table.c.bucket_hour).distinct().where(log_table.c.id <= max_id)).scalars())
    days = sorted({truncate(h, "day") for h in queued})
    # Retention drops whole days before the cutoff day, so hours from that day on still have
    # all their raw events; older ones may not, and recomputing them would erase their rows.
    cutoff_day = raw_retention_cutoff(now, raw_retention_days)
    raw_floor = datetime(cutoff_day.year, cutoff_day.month, cutoff_day.day, tzinfo=timezone.utc)
    minute_floor = truncate(now - timedelta(hours=minute_retention_hours), "hour")
    # the raw events read and the deltas dropped must be the same snapshot: a batch that
    # commits in between is then either in both or in neither
    writer = engine.execution_options(write_intent=True, **dialect.snapshot_isolation(engine))

    def rebuild(day: datetime) -> tuple[int, int, int, int]:
        """(hours queued, hours rebuilt, events, rows) of one day."""
        events = rows = 0
        with writer.begin() as conn:
            entries = conn.execute(select(log_table.c.id, log_table.c.bucket_hour).where(
                log_table.c.id <= max_id, log_table.c.bucket_hour >= day, log_table.c.bucket_hour < day + DAY)).all()
            hours = sorted({truncate(h, "hour") for _, h in entries})
            live = [h for h in hours if h >= raw_floor]
            if len(live) < len(hours):
                log.warning("rollup: skipping %d hours of %s: their raw events are past the %d-day retention",
                            len(hours) - len(live), day.date(), raw_retention_days)
            if live:
                events, rows = rebuild_day(conn, day, minute_floor)
            ids = [i for i, _ in entries]
            for i in range(0, len(ids), 5000):  # exactly the entries read: later ones stay queued
                conn.execute(delete(log_table).where(log_table.c.id.in_(ids[i:i + 5000])))
        # counted once the day has committed, in a transaction of its own: days rebuilt at once
        # would otherwise update one counter row from two snapshots, which repeatable read refuses.
        # A reader between the two keys the new rows under the old count, and the count moves on.
        with engine.begin() as conn:
            bump(conn, "rebuild", now)
        return len(hours), len(live), events, rows

    workers = min(REBUILD_WORKERS, len(days)) if engine.dialect.name == "postgresql" else 1
    pool = ThreadPoolExecutor(workers, thread_name_prefix="rebuild") if workers > 1 else None
    done = 0
    try:
        for hours, live, events, rows in (pool.map(rebuild, days) if pool else map(rebuild, days)):
            totals["events"] += events
            totals["rows"] += rows
            totals["hours"] += live
            totals["expired_hours"] += hours - live
            totals["batches"] += 1
            done += hours
            if progress:
                progress(done, len(queued))
    finally:
        if pool:  # a day that failed stops the days not started yet; each committed day stays done
            pool.shutdown(wait=True, cancel_futures=True)


def invalidate_all(engine: Engine, now: datetime | None = None) -> int:
    """Mark every hour that has raw events dirty (a full rebuild). Returns hours marked."""
    now = now or datetime.now(timezone.utc)
    with engine.begin() as conn:
        hour = dialect.time_bucket(conn, "hour", notification_events.c.created_at)
        hours = conn.execute(select(hour).distinct()).scalars().all()
        for i in range(0, len(hours), 5000):
            conn.execute(insert(rollup_invalidations),
                         [{"bucket_hour": h, "logged_at": now} for h in hours[i:i + 5000]])
    return len(hours)


# ---------------------------------------------------------------- retention

def apply_retention(engine: Engine, now: datetime | None = None, raw_retention_days: int = 30,
                    minute_retention_hours: int = 48) -> dict:
    """Drop raw days past retention (whole partitions on Postgres) and old minute rows. When
    the drop cannot have its lock within dialect.DDL_LOCK_TIMEOUT (a long read holds the
    events table), it is postponed to the next run (`raw_postponed`): ingest never waits
    behind it for longer than that."""
    now = now or datetime.now(timezone.utc)
    floor = now - timedelta(hours=minute_retention_hours)
    postponed = False
    try:
        with engine.begin() as conn:
            raw = dialect.drop_raw_before(conn, raw_retention_cutoff(now, raw_retention_days))
    except OperationalError as exc:
        if not dialect.is_lock_timeout(exc):
            raise
        raw, postponed = 0, True
    with engine.begin() as conn:
        minute = 0
        for with_template in (True, False):
            table = ROLLUP_TABLES[("minute", with_template)]
            minute += conn.execute(delete(table).where(table.c.bucket < truncate(floor, "hour"))).rowcount
        # a mark older than any range a query may ask for can no longer change a cache key
        conn.execute(delete(late_marks).where(late_marks.c.bucket_end < now - MAX_RANGE - DAY))
    return {"raw_dropped": raw, "raw_postponed": postponed, "minute_rows_deleted": minute}


def index_rebuilt_days(engine: Engine) -> list:
    """Build the lookup indexes (dialect.LOOKUP_INDEXES) of the partitions a backfill made,
    once no hour of their day waits for a rebuild: the day is written and rolled up, and one
    sorted build per index costs far less than the per-row inserts it saved. A day per
    transaction, REBUILD_WORKERS at a time; one whose partition a write holds past
    dialect.DDL_LOCK_TIMEOUT waits for the next run. Returns the days indexed, oldest first."""
    with engine.connect() as conn:
        days = dialect.unindexed_partition_days(conn)
        if not days:
            return []
        queued = {hour.date() for hour in conn.execute(select(rollup_invalidations.c.bucket_hour).distinct())
                  .scalars()}

    def build(day) -> bool:
        try:
            with engine.begin() as conn:
                dialect.without_waiting_long(conn)
                dialect.index_partition(conn, day)
        except OperationalError as exc:
            if not dialect.is_lock_timeout(exc):
                raise
            return False
        return True

    settled = [day for day in days if day not in queued]
    if not settled:
        return []
    with ThreadPoolExecutor(REBUILD_WORKERS, thread_name_prefix="index") as pool:
        return [day for day, built in zip(settled, pool.map(build, settled)) if built]


def backfilled_days(days: list) -> str:
    """"1 backfilled day (2026-11-26)", "3 backfilled days (2026-11-24 to 2026-11-26)"."""
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]} to {days[-1]}"
    return f"{len(days)} backfilled day{'' if len(days) == 1 else 's'} ({span})"


# ---------------------------------------------------------------- status

def rollup_watermark(conn: Connection, now: datetime | None = None) -> dict:
    """Everything ingested before the watermark is in the rollup tables: the oldest pending
    delta's or queued hour's arrival, or the last fold when none is pending. Cheap: the
    dashboard asks often."""
    now = now or datetime.now(timezone.utc)
    oldest = [conn.execute(select(func.min(rollup_deltas.c.ingested_at))).scalar(),
              conn.execute(select(func.min(rollup_invalidations.c.logged_at))).scalar()]
    pending = min((t for t in oldest if t is not None), default=None)
    # the last fold; before any (data rolled up whole by a rebuild or the demo loader), the last run
    done = dict(conn.execute(select(rollup_state.c.name, rollup_state.c.updated_at).where(
        rollup_state.c.name.in_(("fold", "run")))).all())
    last_fold = done.get("fold") or done.get("run")
    watermark = pending if pending is not None else (last_fold or None)
    lag = (now - pending).total_seconds() if pending is not None else 0.0
    return {"watermark": iso_z(watermark),
            "lag_seconds": round(max(lag, 0.0), 1) if watermark else None}


def rollup_status(conn: Connection, now: datetime | None = None) -> dict:
    """The watermark and lag, pending work, the last run, and the size of every rollup table."""
    last = conn.execute(select(rollup_runs).order_by(rollup_runs.c.id.desc()).limit(1)).first()
    tables = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in ROLLUP_TABLES.values()}
    tables["pending_deltas"] = conn.execute(select(func.count()).select_from(rollup_deltas)).scalar()
    tables["pending_hours"] = conn.execute(
        select(func.count(func.distinct(rollup_invalidations.c.bucket_hour)))).scalar()
    return {
        **rollup_watermark(conn, now),
        "generation": {"fold": generation(conn, "fold"), "rebuild": generation(conn, "rebuild")},
        "last_run": None if last is None else {
            "started_at": iso_z(last.started_at),
            "finished_at": iso_z(last.finished_at),
            "hours_rebuilt": last.hours, "events": last.events, "duration_ms": last.duration_ms, "error": last.error,
        },
        "tables": tables,
    }
