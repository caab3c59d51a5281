"""The truth the rollups must equal: the same rows computed straight from raw events in
plain Python, independent of the rollup code."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from services.store import latency
from services.store.schema import NO_TEMPLATE, ROLLUP_TABLES, notification_events


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


# ---------------------------------------------------------------- chart answers from raw

RATES = {"delivery_rate": ("delivered", "sent"), "failure_rate": ("failed", "sent"),
         "bounce_rate": ("bounced", "sent"), "open_rate": ("opened", "delivered"),
         "click_rate": ("clicked", "delivered"), "click_to_open_rate": ("clicked", "opened")}
QUANTILES = {"p50_processing_time": 0.5, "p95_processing_time": 0.95, "p99_processing_time": 0.99}


def metric_from_raw(metric: str, events: list) -> float | None:
    """A metric over a list of raw (created_at, channel, template_id, status, ms) rows."""
    statuses = [e[3] for e in events]
    if metric == "events":
        return float(len(events))
    if metric in ("sent", "delivered", "failed", "bounced", "opened", "clicked"):
        return float(statuses.count(metric))
    if metric in RATES:
        num, den = RATES[metric]
        return statuses.count(num) / statuses.count(den) * 100 if statuses.count(den) else None
    times = [e[4] for e in events if e[4] is not None]
    if metric == "avg_processing_time":
        return sum(times) / len(times) if times else None
    histogram: dict[int, int] = {}
    for t in times:
        histogram[latency.bucket_index(t)] = histogram.get(latency.bucket_index(t), 0) + 1
    return latency.quantile(histogram, QUANTILES[metric])


def expected_chart(rows: list, metric: str, group_by: tuple, start: datetime, end: datetime,
                   granularity: str, filters: dict) -> dict[tuple, float | None]:
    """{(bucket or None, ((dim, value), ...)): value} for every group that has events."""
    groups: dict[tuple, list] = {}
    index = {"channel": 1, "template_id": 2, "status": 3}
    for row in rows:
        if not start <= row[0] < end:
            continue
        if any(row[index[d]] not in values for d, values in filters.items()):
            continue
        bucket = _truncate(row[0], granularity) if "time" in group_by else None
        dims = tuple((d, row[index[d]]) for d in group_by if d != "time")
        groups.setdefault((bucket, dims), []).append(row)
    return {key: metric_from_raw(metric, events) for key, events in groups.items()}
