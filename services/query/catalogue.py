"""The metric catalogue and the one resolver. Each metric is a ratio of sums over base
measures (counts by status, processing-time sum and count, latency histograms), so it is exact
at any grouping and granularity; a saved custom metric is a formula over catalogue metrics,
expanded by `resolve` into one formula every reader evaluates the same way."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Connection, select

from services.formulas import parser as formulas
from services.query.timerange import QueryError
from services.store.schema import custom_metrics


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str                     # "count" | "%" | "ms"
    kind: str                     # "count" | "rate" | "average" | "quantile"
    numerator: str | None = None  # a status or "events" (counts and rates)
    denominator: str | None = None
    q: float | None = None
    better: str = "higher"        # which direction is good: "higher" | "lower" | "neutral"
    description: str = ""
    formula: str | None = None    # custom metrics: the formula, custom references expanded


def _count(status: str, better: str = "neutral") -> Metric:
    return Metric(status, status.capitalize(), "count", "count", numerator=status, better=better,
                  description=f"number of {status} events")


def _rate(name: str, label: str, num: str, den: str, better: str) -> Metric:
    return Metric(name, label, "%", "rate", numerator=num, denominator=den, better=better,
                  description=f"{num} ÷ {den} × 100")


def _quantile(q: float) -> Metric:
    pct = int(q * 100)
    return Metric(f"p{pct}_processing_time", f"p{pct} processing time", "ms", "quantile", q=q, better="lower",
                  description=f"{pct}th percentile of processing time, from merged histograms (within 2 %)")


CATALOGUE: dict[str, Metric] = {m.name: m for m in (
    Metric("events", "Events", "count", "count", numerator="events", better="neutral",
           description="all lifecycle events"),
    _count("sent"), _count("delivered", "higher"), _count("failed", "lower"), _count("bounced", "lower"),
    _count("opened", "higher"), _count("clicked", "higher"),
    _rate("delivery_rate", "Delivery rate", "delivered", "sent", "higher"),
    _rate("failure_rate", "Failure rate", "failed", "sent", "lower"),
    _rate("bounce_rate", "Bounce rate", "bounced", "sent", "lower"),
    _rate("open_rate", "Open rate", "opened", "delivered", "higher"),
    _rate("click_rate", "Click rate", "clicked", "delivered", "higher"),
    _rate("click_to_open_rate", "Click-to-open rate", "clicked", "opened", "higher"),
    Metric("avg_processing_time", "Average processing time", "ms", "average", better="lower",
           description="Σ processing ms ÷ events with a processing time"),
    _quantile(0.5), _quantile(0.95), _quantile(0.99),
)}


def get_metric(name: str) -> Metric:
    metric = CATALOGUE.get(name)
    if metric is None:
        raise QueryError(f"unknown metric {str(name)[:40]!r}; known metrics: {', '.join(CATALOGUE)}", "metric")
    return metric


def formula_metric(name: str, formula: str, unit: str | None = None, label: str | None = None) -> Metric:
    """A custom metric: a formula over catalogue metrics, evaluated per group."""
    parsed_formula(formula)  # validated on save; this keeps a hand-made Metric honest
    return Metric(name, label or name, unit or "none", "formula", better="neutral", description=formula,
                  formula=formula)


def resolve(conn: Connection, name: str) -> Metric:
    """The one resolver, for every service, callback and endpoint: a catalogue metric, or a
    saved one with every custom metric it uses expanded into one formula over catalogue
    metrics (services.query.custom_metrics only stores and validates them)."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    c = custom_metrics.c
    saved = {row.name: row for row in conn.execute(select(c.name, c.formula, c.unit, c.display_name))}
    if name not in saved:
        known = ", ".join(list(CATALOGUE) + sorted(saved))
        raise QueryError(f"unknown metric {str(name)[:40]!r}; known metrics: {known}", "metric")
    row, formulas_by_name = saved[name], {n: r.formula for n, r in saved.items()}
    try:
        tree = formulas.expand(formulas.parse(row.formula, list(CATALOGUE) + list(formulas_by_name)),
                               formulas_by_name, CATALOGUE)
        return formula_metric(name, formulas.to_text(tree), row.unit, row.display_name)
    except formulas.FormulaError as exc:  # another metric it uses was changed into something broken
        raise QueryError(f"custom metric {name!r} cannot be computed: {exc.message}", "metric") from None


def references(metric: Metric) -> set[str]:
    """The catalogue metrics a metric is computed from (itself, unless it is a formula)."""
    if metric.kind == "formula":
        return set(formulas.references(parsed_formula(metric.formula)))
    return {metric.name}


def needs_histograms(metric: Metric) -> bool:
    if metric.kind == "quantile":
        return True
    if metric.kind == "formula":
        return any(CATALOGUE[n].kind == "quantile" for n in formulas.references(parsed_formula(metric.formula)))
    return False


@functools.lru_cache(maxsize=256)
def parsed_formula(text: str):
    return formulas.parse(text, CATALOGUE)

