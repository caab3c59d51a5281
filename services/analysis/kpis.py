"""The Overview's tiles: each metric's total over the range against the previous range of
the same length, its change and whether the change is good news."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from services.analysis.trends import percent_change
from services.query.catalogue import Metric, needs_histograms, resolve
from services.query.context import QueryContext, context_at
from services.query.engine import collect_measures, filter_clauses, metric_of, series_of
from services.query.plan import build_query
from services.store.schema import ROLLUP_TABLES


@dataclass(frozen=True)
class Kpi:
    metric: str
    label: str
    unit: str
    value: float | None
    previous: float | None     # the same metric over the previous period of equal length
    change_percent: float | None
    direction: str             # "up" | "down" | "flat"
    good: bool | None          # whether the change is welcome, given the metric's direction
    untracked: str | None = None  # a rate whose events never occur in this scope: its status, e.g. "opened"


def change_between(metric: Metric, value: float | None, previous: float | None) -> tuple[float | None, str, bool | None]:
    """Percent change, its direction (flat below trends.FLAT_PERCENT, the product's one
    threshold) and whether it is good news."""
    change = percent_change(value, previous)
    if change.direction == "flat" or metric.better == "neutral":
        return change.percent, change.direction, None
    return change.percent, change.direction, (change.direction == "up") == (metric.better == "higher")


def kpis(conn: Connection, metrics: Sequence[str], start=None, end=None, filters=(), *,
         context: QueryContext | None = None) -> list[Kpi]:
    """Each metric's total over the range, against the previous range of the same length.
    Every tile is a formula over the same base measures (counts by status, processing time,
    latency histogram), so each period is read once for all of them."""
    context = context or context_at()
    resolved = [resolve(conn, name) for name in metrics]  # a saved metric is read once
    if not resolved:
        return []
    current = [build_query(m, (), start, end, filters, None, context.now, context.channels) for m in resolved]
    window = current[0].window
    previous = [build_query(m, (), window.start - (window.end - window.start), window.start, filters,
                            window.granularity, context.now, context.channels) for m in resolved]
    with_histograms = any(needs_histograms(m) for m in resolved)
    now_measures = collect_measures(conn, current[0], with_histograms, context)
    before_measures = collect_measures(conn, previous[0], with_histograms, context)
    out = []
    for name, metric, query, earlier in zip(metrics, resolved, current, previous):
        now_point = series_of(query, metric_of(query), *now_measures).points[0]
        before_point = series_of(earlier, metric_of(earlier), *before_measures).points[0]
        value, before = now_point.value, before_point.value
        if metric.kind == "rate" and not now_point.numerator and not before_point.numerator \
                and not status_ever_seen(conn, metric.numerator, window.start, query.filters):
            # e.g. SMS open rate: SMS reports no opens, so 0 % would be a guess, not a measurement
            out.append(Kpi(name, metric.label, metric.unit, None, None, None, "flat", None, metric.numerator))
            continue
        change, direction, good = change_between(metric, value, before)
        out.append(Kpi(name, metric.label, metric.unit, value, before, change, direction, good))
    return out


def status_ever_seen(conn: Connection, status: str, before: datetime, filters: tuple[tuple[str, tuple], ...]) -> bool:
    """Whether any `status` event of the filtered scope was rolled up before `before` (the
    daily rollup: a few rows per day, so the answer is cheap whatever the history)."""
    table = ROLLUP_TABLES[("day", any(d == "template_id" for d, _ in filters))]
    clauses = [table.c.status == status, table.c.bucket < before,
               *filter_clauses(table.c, [(d, v) for d, v in filters if d != "status"])]
    return conn.execute(select(table.c.bucket).where(*clauses).limit(1)).first() is not None
