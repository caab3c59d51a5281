"""Exact, idempotent rollups of raw events into minute, hour and day tables.

Ingest logs every hour a batch touched in `rollup_invalidations`, in the batch's own
transaction. `rollup_pending` takes the pending hours a day at a time, recomputes each
hour whole from raw events (minute and hour rows, full and without template), rebuilds
the touched days from their hour rows, and deletes exactly the log entries it read, all in
one transaction per day. A rerun finds nothing to do; a crash leaves the log in place for
the next run; a leader lock keeps two runs from overlapping.

Every stored number is a sum (counts, processing sums, histogram counts) or a min/max, so
folding minutes into hours and hours into days is exact.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update

from services import dialect, latency
from services.ingest import raw_retention_cutoff
from services.timerange import floor_to as truncate
from services.schema import (NO_TEMPLATE, ROLLUP_TABLES, notification_events, rollup_day_generations,
                             rollup_invalidations, rollup_runs, rollup_state)

log = logging.getLogger(__name__)

LOCK_NAME = "rollup"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class RollupReport:
    hours: int = 0          # hours recomputed
    events: int = 0         # raw events read for them
    rows: int = 0           # rollup rows written
    batches: int = 0        # transactions committed (one per day)
    expired_hours: int = 0  # pending hours whose raw data was past retention (skipped)
    duration_ms: int = 0
    locked_out: bool = False  # another rollup held the lock; nothing done

    def summary(self) -> str:
        if self.locked_out:
            return "another rollup is running; nothing done"
        if not self.hours and not self.expired_hours:
            return f"no dirty buckets ({self.duration_ms} ms)"
        text = (f"recomputed {self.hours} hours ({self.events:,} events → {self.rows:,} rollup rows) "
                f"in {self.batches} batches, {self.duration_ms} ms")
        if self.expired_hours:
            text += f"; skipped {self.expired_hours} hours past raw retention"
        return text


# ---------------------------------------------------------------- folding (pure)

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

    def as_row(self, key_names: tuple[str, ...], key: tuple) -> dict:
        row = dict(zip(key_names, key))
        row.update(event_count=self.event_count, processing_sum=self.processing_sum,
                   processing_count=self.processing_count, processing_min=self.processing_min,
                   processing_max=self.processing_max,
                   latency_histogram=latency.encode(self.histogram) if self.histogram else None)
        return row


FULL_KEY = ("bucket", "channel", "template_id", "status")
NARROW_KEY = ("bucket", "channel", "status")


def fold_grouped(rows: Iterable[tuple], targets: dict[str, str]) -> dict[tuple[str, bool], dict[tuple, Measures]]:
    """Fold grouped raw rows (bucket, channel, template, status, latency_bucket, count,
    sum, min, max) into full and narrow accumulators at each granularity in `targets`
    (name → granularity). Returns {(granularity, with_template): {key: Measures}}."""
    out: dict[tuple[str, bool], dict[tuple, Measures]] = {}
    for gran in targets.values():
        out[(gran, True)], out[(gran, False)] = {}, {}
    for bucket, channel, template, status, lb, count, psum, pmin, pmax in rows:
        pcount = count if lb is not None else 0
        histogram = {lb: count} if lb is not None else {}
        for gran in targets.values():
            b = truncate(bucket, gran)
            for with_template, key in ((True, (b, channel, template, status)), (False, (b, channel, status))):
                acc = out[(gran, with_template)].get(key)
                if acc is None:
                    acc = out[(gran, with_template)][key] = Measures()
                acc.add(count, psum if lb is not None else 0, pcount, pmin, pmax, histogram)
    return out


def fold_rollup_rows(rows: Iterable, granularity: str) -> dict[tuple, Measures]:
    """Fold stored full rollup rows into coarser `granularity` (hours into a day)."""
    out: dict[tuple, Measures] = {}
    for r in rows:
        key = (truncate(r.bucket, granularity), r.channel, r.template_id, r.status)
        acc = out.get(key)
        if acc is None:
            acc = out[key] = Measures()
        acc.add(r.event_count, r.processing_sum, r.processing_count, r.processing_min, r.processing_max,
                latency.decode(r.latency_histogram))
    return out


def narrow(full: dict[tuple, Measures]) -> dict[tuple, Measures]:
    """Drop the template from full keys, merging."""
    out: dict[tuple, Measures] = {}
    for (bucket, channel, _template, status), m in full.items():
        acc = out.get((bucket, channel, status))
        if acc is None:
            acc = out[(bucket, channel, status)] = Measures()
        acc.add(m.event_count, m.processing_sum, m.processing_count, m.processing_min, m.processing_max,
                m.histogram)
    return out


def contiguous_ranges(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hour starts → [start, end) ranges of consecutive hours."""
    ranges: list[list[datetime]] = []
    for hour in sorted(set(hours)):
        if ranges and ranges[-1][1] == hour:
            ranges[-1][1] = hour + HOUR
        else:
            ranges.append([hour, hour + HOUR])
    return [(a, b) for a, b in ranges]


# ---------------------------------------------------------------- reading raw

def grouped_raw(conn: Connection, granularity: str, start: datetime, end: datetime) -> list[tuple]:
    e = notification_events.c
    bucket = dialect.time_bucket(conn, granularity, e.created_at).label("bucket")
    template = func.coalesce(e.template_id, NO_TEMPLATE).label("template_id")
    query = (select(bucket, e.channel, template, e.status, e.latency_bucket, func.count(),
                    func.sum(e.processing_time_ms), func.min(e.processing_time_ms),
                    func.max(e.processing_time_ms))
             .where(e.created_at >= start, e.created_at < end)
             .group_by(bucket, e.channel, template, e.status, e.latency_bucket))
    return [tuple(r) for r in conn.execute(query)]


# ---------------------------------------------------------------- writing

def _replace_rows(conn: Connection, table_key: tuple[str, bool], ranges: list[tuple[datetime, datetime]],
                  accumulators: dict[tuple, Measures]) -> int:
    table = ROLLUP_TABLES[table_key]
    if ranges:
        conn.execute(delete(table).where(or_(*[and_(table.c.bucket >= a, table.c.bucket < b) for a, b in ranges])))
    names = FULL_KEY if table_key[1] else NARROW_KEY
    rows = [m.as_row(names, key) for key, m in accumulators.items()]
    dialect.bulk_insert(conn, table, rows)
    return len(rows)


def recompute_hours(conn: Connection, hours: list[datetime], minute_floor: datetime) -> tuple[int, int]:
    """Rebuild minute and hour rows of `hours` from raw. Returns (events read, rows written)."""
    events = written = 0
    minute_hours = [h for h in hours if h >= minute_floor]
    hour_hours = [h for h in hours if h < minute_floor]
    minute_acc: dict[tuple[str, bool], dict] = {("minute", True): {}, ("minute", False): {}}
    hour_acc: dict[tuple[str, bool], dict] = {("hour", True): {}, ("hour", False): {}}
    for start, end in contiguous_ranges(minute_hours):
        folded = fold_grouped(grouped_raw(conn, "minute", start, end), {"m": "minute", "h": "hour"})
        for key in minute_acc:
            minute_acc[key].update(folded[key])
        for key in hour_acc:
            hour_acc[key].update(folded[key])
    for start, end in contiguous_ranges(hour_hours):
        folded = fold_grouped(grouped_raw(conn, "hour", start, end), {"h": "hour"})
        for key in hour_acc:
            hour_acc[key].update(folded[key])
    all_ranges = contiguous_ranges(hours)
    for key, acc in minute_acc.items():
        written += _replace_rows(conn, key, all_ranges, acc)
    for key, acc in hour_acc.items():
        written += _replace_rows(conn, key, all_ranges, acc)
        if key[1]:
            events += sum(m.event_count for m in acc.values())
    return events, written


def recompute_day(conn: Connection, day: datetime) -> int:
    """Rebuild the day rows of `day` from its hour rows (exact: sums of sums)."""
    hourly = ROLLUP_TABLES[("hour", True)]
    rows = conn.execute(select(hourly).where(hourly.c.bucket >= day, hourly.c.bucket < day + DAY))
    full = fold_rollup_rows(rows, "day")
    written = _replace_rows(conn, ("day", True), [(day, day + DAY)], full)
    return written + _replace_rows(conn, ("day", False), [(day, day + DAY)], narrow(full))


def bump_generation(conn: Connection, now: datetime, day: datetime) -> int:
    """Count one more committed batch, and mark `day` as changed at that generation."""
    changed = conn.execute(update(rollup_state).where(rollup_state.c.name == "rollup")
                           .values(generation=rollup_state.c.generation + 1, updated_at=now)).rowcount
    if not changed:
        conn.execute(insert(rollup_state).values(name="rollup", generation=1, updated_at=now))
    generation = current_generation(conn)
    if not conn.execute(update(rollup_day_generations).where(rollup_day_generations.c.day == day)
                        .values(generation=generation)).rowcount:
        conn.execute(insert(rollup_day_generations).values(day=day, generation=generation))
    return generation


def current_generation(conn: Connection) -> int:
    value = conn.execute(select(rollup_state.c.generation).where(rollup_state.c.name == "rollup")).scalar()
    return int(value or 0)


def range_version(conn: Connection, start: datetime, end: datetime) -> str:
    """Changes whenever an answer over [start, end) may change: a rollup rewrote one of its
    days, or a batch was ingested into one of its hours. Cache keys carry it."""
    day = truncate(start, "day")
    gens, log = rollup_day_generations.c, rollup_invalidations.c
    generation = select(func.max(gens.generation)).where(gens.day >= day, gens.day < end).scalar_subquery()
    newest_entry = select(func.max(log.id)).where(log.bucket_hour >= truncate(start, "hour"),
                                                  log.bucket_hour < end).scalar_subquery()
    g, entry = conn.execute(select(generation, newest_entry)).one()
    return f"g{g or 0}.i{entry or 0}"


# ---------------------------------------------------------------- the job

def rollup_pending(engine: Engine, *, now: datetime | None = None, minute_retention_hours: int = 48,
                   raw_retention_days: int = 30, progress: Callable[[int, int], None] | None = None
                   ) -> RollupReport:
    """Recompute every pending hour, a day per transaction. `progress(done, total)` is
    called after each day with hour counts."""
    lock = dialect.LeaderLock(engine, LOCK_NAME)
    if not lock.try_acquire():
        return RollupReport(locked_out=True)
    clock = time.monotonic()
    started = datetime.now(timezone.utc)
    now = now or started
    with engine.begin() as conn:
        run_id = conn.execute(insert(rollup_runs).values(started_at=started, hours=0, events=0)
                              .returning(rollup_runs.c.id)).scalar()
    totals = dict(hours=0, events=0, rows=0, batches=0, expired_hours=0)
    error = None
    try:
        _process(engine, now, minute_retention_hours, raw_retention_days, progress, totals)
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:1000]
        raise
    finally:
        duration_ms = int((time.monotonic() - clock) * 1000)
        try:
            with engine.begin() as conn:
                conn.execute(update(rollup_runs).where(rollup_runs.c.id == run_id).values(
                    finished_at=datetime.now(timezone.utc), hours=totals["hours"], events=totals["events"],
                    duration_ms=duration_ms, error=error))
                conn.execute(delete(rollup_runs).where(rollup_runs.c.started_at < started - 7 * DAY))
        finally:
            lock.release()
    return RollupReport(duration_ms=duration_ms, **totals)


def _process(engine: Engine, now: datetime, minute_retention_hours: int, raw_retention_days: int,
             progress, totals: dict) -> None:
    log_table = rollup_invalidations
    with engine.connect() as conn:
        max_id = conn.execute(select(func.max(log_table.c.id))).scalar()
        if max_id is None:
            return
        total_hours = conn.execute(select(func.count(func.distinct(log_table.c.bucket_hour)))
                                   .where(log_table.c.id <= max_id)).scalar()
    # Retention drops whole days before the cutoff day, so hours from that day on still have
    # all their raw events; older ones may not, and recomputing them would erase their rows.
    cutoff_day = raw_retention_cutoff(now, raw_retention_days)
    raw_floor = datetime(cutoff_day.year, cutoff_day.month, cutoff_day.day, tzinfo=timezone.utc)
    minute_floor = truncate(now - timedelta(hours=minute_retention_hours), "hour")
    done = 0
    writer = engine.execution_options(write_intent=True)
    while True:
        with writer.begin() as conn:
            first = conn.execute(select(func.min(log_table.c.bucket_hour)).where(log_table.c.id <= max_id)).scalar()
            if first is None:
                break
            day = truncate(first, "day")
            entries = conn.execute(select(log_table.c.id, log_table.c.bucket_hour).where(
                log_table.c.id <= max_id, log_table.c.bucket_hour >= day, log_table.c.bucket_hour < day + DAY)).all()
            hours = sorted({truncate(h, "hour") for _, h in entries})
            live = [h for h in hours if h >= raw_floor]
            if len(live) < len(hours):
                log.warning("rollup: skipping %d hours of %s: their raw events are past the %d-day retention",
                            len(hours) - len(live), day.date(), raw_retention_days)
            if live:
                events, rows = recompute_hours(conn, live, minute_floor)
                rows += recompute_day(conn, day)
                totals["events"] += events
                totals["rows"] += rows
            ids = [i for i, _ in entries]
            for i in range(0, len(ids), 5000):  # exactly the entries read: later ones stay pending
                conn.execute(delete(log_table).where(log_table.c.id.in_(ids[i:i + 5000])))
            bump_generation(conn, now, day)
        totals["hours"] += len(live)
        totals["expired_hours"] += len(hours) - len(live)
        totals["batches"] += 1
        done += len(hours)
        if progress:
            progress(done, total_hours)


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
                    minute_retention_hours: int = 48) -> dict[str, int]:
    """Drop raw days past retention (whole partitions on Postgres) and old minute rows."""
    now = now or datetime.now(timezone.utc)
    floor = now - timedelta(hours=minute_retention_hours)
    with engine.begin() as conn:
        raw = dialect.drop_raw_before(conn, raw_retention_cutoff(now, raw_retention_days))
        minute = 0
        for with_template in (True, False):
            table = ROLLUP_TABLES[("minute", with_template)]
            minute += conn.execute(delete(table).where(table.c.bucket < truncate(floor, "hour"))).rowcount
    return {"raw_dropped": raw, "minute_rows_deleted": minute}


# ---------------------------------------------------------------- status

def rollup_watermark(conn: Connection, now: datetime | None = None) -> dict:
    """Everything ingested before the watermark is in the rollups: the oldest pending log
    entry's time, or the start of the last successful run. Cheap: the dashboard asks often."""
    now = now or datetime.now(timezone.utc)
    pending = conn.execute(select(func.min(rollup_invalidations.c.logged_at))).scalar()
    last_done = conn.execute(select(rollup_runs.c.started_at).where(
        rollup_runs.c.finished_at.is_not(None), rollup_runs.c.error.is_(None))
        .order_by(rollup_runs.c.id.desc()).limit(1)).scalar()
    watermark = pending if pending is not None else last_done
    return {"watermark": watermark.isoformat() if watermark else None,
            "lag_seconds": round((now - watermark).total_seconds(), 1) if watermark else None}


def rollup_status(conn: Connection, now: datetime | None = None) -> dict:
    """The watermark and lag, the last run, and the size of every rollup table."""
    last = conn.execute(select(rollup_runs).order_by(rollup_runs.c.id.desc()).limit(1)).first()
    tables = {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in ROLLUP_TABLES.values()}
    tables["pending_hours"] = conn.execute(
        select(func.count(func.distinct(rollup_invalidations.c.bucket_hour)))).scalar()
    return {
        **rollup_watermark(conn, now),
        "generation": current_generation(conn),
        "last_run": None if last is None else {
            "started_at": last.started_at.isoformat(),
            "finished_at": last.finished_at.isoformat() if last.finished_at else None,
            "buckets": last.hours, "events": last.events, "duration_ms": last.duration_ms, "error": last.error,
        },
        "tables": tables,
    }
