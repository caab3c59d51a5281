"""The Overview's tiles: each metric's total over the range against the previous range of
the same length, its change and whether the change is good news."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from services.analysis.trends import percent_change
from services.query.catalogue import Metric, resolve
from services.query.context import QueryContext, context_at
from services.query.engine import filter_clauses, query_metrics
from services.query.plan import parse_filters
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
    """Each metric's total over the range, against the previous range of the same length."""
    context = context or context_at()
    out = []
    for name in metrics:
        metric = resolve(conn, name)  # once: a saved metric is read, then both periods evaluate it
        current = query_metrics(conn, metric, (), start, end, filters, context=context)
        span = current.end - current.start
        previous = query_metrics(conn, metric, (), current.start - span, current.start, filters,
                                 current.granularity, context=context)
        value, before = current.points[0].value, previous.points[0].value
        if metric.kind == "rate" and not current.points[0].numerator and not previous.points[0].numerator \
                and not status_ever_seen(conn, metric.numerator, current.start, _parsed(filters, context.channels)):
            # e.g. SMS open rate: SMS reports no opens, so 0 % would be a guess, not a measurement
            out.append(Kpi(name, metric.label, metric.unit, None, None, None, "flat", None, metric.numerator))
            continue
        change, direction, good = change_between(metric, value, before)
        out.append(Kpi(name, metric.label, metric.unit, value, before, change, direction, good))
    return out


def _parsed(filters, channels: Sequence[str]) -> tuple[tuple[str, tuple], ...]:
    return filters if isinstance(filters, tuple) else parse_filters(filters, channels)


def status_ever_seen(conn: Connection, status: str, before: datetime, filters: tuple[tuple[str, tuple], ...]) -> bool:
    """Whether any `status` event of the filtered scope was rolled up before `before` (the
    daily rollup: a few rows per day, so the answer is cheap whatever the history)."""
    table = ROLLUP_TABLES[("day", any(d == "template_id" for d, _ in filters))]
    clauses = [table.c.status == status, table.c.bucket < before,
               *filter_clauses(table.c, [(d, v) for d, v in filters if d != "status"])]
    return conn.execute(select(table.c.bucket).where(*clauses).limit(1)).first() is not None
