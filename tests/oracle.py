"""The truth the rollups must equal: the same rows computed straight from raw events in
plain Python, independent of the rollup code."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from services import latency
from services.schema import NO_TEMPLATE, ROLLUP_TABLES, notification_events


def _truncate(value: datetime, granularity: str) -> datetime:
    if granularity == "minute":
        return value.replace(second=0, microsecond=0)
    if granularity == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def raw_events(engine) -> list:
    e = notification_events.c
    with engine.connect() as conn:
        return conn.execute(select(e.created_at, e.channel, e.template_id, e.status,
                                   e.processing_time_ms)).all()


def expected_rollups(engine, minute_floor: datetime) -> dict[str, dict[tuple, tuple]]:
    """{table name: {key: (count, sum, pcount, min, max, histogram)}} from raw events."""
    out: dict[str, dict[tuple, list]] = {t.name: {} for t in ROLLUP_TABLES.values()}
    for created, channel, template, status, ms in raw_events(engine):
        for (granularity, with_template), table in ROLLUP_TABLES.items():
            if granularity == "minute" and _truncate(created, "hour") < minute_floor:
                continue
            bucket = _truncate(created, granularity)
            key = (bucket, channel, NO_TEMPLATE if template is None else template, status) if with_template \
                else (bucket, channel, status)
            acc = out[table.name].setdefault(key, [0, 0, 0, None, None, {}])
            acc[0] += 1
            if ms is not None:
                acc[1] += ms
                acc[2] += 1
                acc[3] = ms if acc[3] is None else min(acc[3], ms)
                acc[4] = ms if acc[4] is None else max(acc[4], ms)
                index = latency.bucket_index(ms)
                acc[5][index] = acc[5].get(index, 0) + 1
    return {name: {k: tuple(v) for k, v in rows.items()} for name, rows in out.items()}


def actual_rollups(engine) -> dict[str, dict[tuple, tuple]]:
    out = {}
    with engine.connect() as conn:
        for (_g, with_template), table in ROLLUP_TABLES.items():
            key_cols = ("bucket", "channel", "template_id", "status") if with_template else ("bucket", "channel", "status")
            rows = {}
            for r in conn.execute(select(table)):
                key = tuple(getattr(r, c) for c in key_cols)
                rows[key] = (r.event_count, r.processing_sum, r.processing_count, r.processing_min,
                             r.processing_max, latency.decode(r.latency_histogram))
            out[table.name] = rows
    return out


def minute_floor_for(now: datetime, minute_retention_hours: int = 48) -> datetime:
    return _truncate(now - timedelta(hours=minute_retention_hours), "hour")


def table_snapshot(engine) -> dict[str, list[tuple]]:
    """Every row of every rollup table, sorted, byte for byte."""
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(select(t))) for t in ROLLUP_TABLES.values()}
