"""The correlation answer for a set of metrics: every pair measured (detrended by default),
q-values over the whole matrix, lags, and a sentence per pair."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Connection

from services.analysis import correlation
from services.query.catalogue import CATALOGUE, Metric, get_metric, references, resolve
from services.query.context import QueryContext, context_at
from services.query.engine import query_long
from services.query.plan import build_query
from services.query.timerange import STEP, QueryError, TimeRange
from services.store.schema import STATUSES, channel_label

MAX_METRICS = 10
MAX_LAG = 48
LAG_UNITS = {"minute": "minute", "hour": "hour", "day": "day"}


@dataclass(frozen=True)
class LagResult:
    lag: int                        # buckets b lags a (negative: a lags b)
    r: float
    p_value: float
    q_value: float | None           # Benjamini-Hochberg over the pairs not related by definition
    n: int
    lags_tried: int = 1


@dataclass(frozen=True)
class Elasticity:
    slope: float                    # % change of b per % change of a, at `lag`
    ci_low: float | None
    ci_high: float | None
    lag: int


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    related_by_definition: bool
    relation: str | None            # what they share when related by definition
    n: int | None
    rho: float | None               # Spearman, at lag 0
    lag0: LagResult | None
    best_lag: LagResult | None
    elasticity: Elasticity | None
    significant: bool
    sentence: str | None


@dataclass(frozen=True)
class Matrix:
    metrics: tuple[str, ...]
    labels: tuple[str, ...]
    r: tuple[tuple[float | None, ...], ...]     # at each pair's strongest lag
    q: tuple[tuple[float | None, ...], ...]
    lag: tuple[tuple[int, ...], ...]
    related_by_definition: tuple[tuple[bool, ...], ...]


@dataclass(frozen=True)
class MetricSeries:
    times: tuple[datetime, ...]
    values: tuple[float | None, ...]
    residuals: tuple[float | None, ...]


@dataclass(frozen=True)
class CorrelationReport:
    method: str
    detrended: bool
    granularity: str
    time_range: TimeRange
    pairs: tuple[Pair, ...]
    findings: tuple[tuple[str, str], ...]      # significant pairs, strongest first
    matrix: Matrix
    series: dict[str, MetricSeries]


def parse_metrics(text: str | Sequence[str] | None, channels: Sequence[str],
                  conn: Connection | None = None) -> list[tuple[str, str, str | None]]:
    """"email:bounce_rate,sms:delivery_rate" → [(as spelled, metric, channel)]."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text or [])
    parts = [p for p in parts if p]
    if len(set(parts)) < 2:
        raise QueryError("name at least two metrics, e.g. metrics=email:bounce_rate,sms:delivery_rate", "metrics")
    if len(parts) > MAX_METRICS:
        raise QueryError(f"at most {MAX_METRICS} metrics at once", "metrics")
    out = []
    for part in dict.fromkeys(parts):
        channel, _, name = part.rpartition(":")
        if channel and channel not in channels:
            raise QueryError(f"channel {channel[:40]!r} in {part[:60]!r} is not one of {', '.join(channels)}",
                             "metrics")
        try:
            resolve(conn, name) if conn is not None else get_metric(name)
        except QueryError as exc:
            raise QueryError(exc.message, "metrics") from None
        out.append((part, name, channel or None))
    return out


def label_of(conn: Connection, metric: str, channel: str | None) -> str:
    label = resolve(conn, metric).label.lower()
    return f"{channel_label(channel)} {label}" if channel else label


def base_measures(metric: Metric) -> frozenset[str]:
    """The stored measures a metric is made of: event counts by status, or processing times."""
    out: set[str] = set()
    for name in references(metric):
        m = CATALOGUE[name]
        if m.kind == "count":
            out |= set(STATUSES) if m.numerator == "events" else {m.numerator}
        elif m.kind == "rate":
            out |= {m.numerator, m.denominator}
        else:
            out.add("processing time")
    return frozenset(out)


def relation_by_definition(a: tuple[Metric, str | None], b: tuple[Metric, str | None]) -> str | None:
    """Why two metrics move together whatever happens (they are computed from the same
    events: a shared numerator or denominator over overlapping channels), or None."""
    (ma, ca), (mb, cb) = a, b
    if ca is not None and cb is not None and ca != cb:
        return None  # different channels: different events
    shared = base_measures(ma) & base_measures(mb)
    if not shared:
        return None
    scope = channel_label(ca or cb) + " " if (ca or cb) else ""
    if ma.kind == mb.kind == "rate" and ma.denominator == mb.denominator:
        return f"both divide by {scope}{ma.denominator} events"
    names = sorted(shared)
    measure = "processing times" if names == ["processing time"] else \
        f"{' and '.join(n for n in names if n != 'processing time')} events"
    return f"both are computed from {scope}{measure}"


def correlation_report(conn: Connection, metrics, start=None, end=None, granularity: str | None = None,
                       lag_max: int = 0, detrend: bool = True, *,
                       context: QueryContext | None = None) -> CorrelationReport:
    """Every pair at lag 0 and at its strongest lag, each with its own r, p and q (q over the
    pairs that are not related by definition); related pairs are marked, not ranked."""
    context = context or context_at()
    now, channels = context.now, context.channels
    specs = parse_metrics(metrics, channels, conn)
    if not isinstance(lag_max, int) or not 0 <= lag_max <= MAX_LAG:
        raise QueryError(f"lag_max must be a whole number of buckets from 0 to {MAX_LAG}", "lag_max")
    resolved = {spelled: (resolve(conn, name), channel) for spelled, name, channel in specs}
    window = build_query(resolved[specs[0][0]][0], ("time",), start, end, {}, granularity, now, channels).window
    gran = window.granularity
    series: dict[str, np.ndarray] = {}
    times: list[datetime] = []
    for spelled, _, channel in specs:
        points = query_long(conn, resolved[spelled][0], ("time",), window.start, window.end,
                            {"channel": [channel]} if channel else {}, gran, context=context)
        times = [p.time for p in points]
        # a bucket still filling would look like a shared drop in every count
        series[spelled] = np.array([np.nan if p.value is None or p.time + STEP[gran] > now else p.value
                                    for p in points], dtype=float)
    residuals = {k: correlation.detrend(times, v, gran) if detrend else v for k, v in series.items()}
    labels = {spelled: label_of(conn, name, channel) for spelled, name, channel in specs}
    keys = [s for s, _, _ in specs]
    pairs, measured = [], []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            relation = relation_by_definition(resolved[a], resolved[b])
            pair = {"a": a, "b": b, "related_by_definition": relation is not None, "relation": relation,
                    "n": None, "rho": None, "lag0": None, "best_lag": None, "elasticity": None, "significant": False}
            pairs.append(pair)
            try:
                result = correlation.correlate(residuals[a], residuals[b], (labels[a], labels[b]), lag_max,
                                               series[a], series[b])
            except correlation.SeriesProblem as exc:
                pair["sentence"] = str(exc)
                continue
            pair.update(n=result.lag0.n, rho=result.rho,
                        lag0={"lag": 0, "r": result.lag0.r, "p_value": result.lag0.p_value, "q_value": None,
                              "n": result.lag0.n},
                        best_lag={"lag": result.best.lag, "r": result.best.r, "p_value": result.best.p_value,
                                  "q_value": None, "n": result.best.n, "lags_tried": result.lags_tried},
                        elasticity=None if result.elasticity is None else {
                            "slope": result.elasticity, "ci_low": result.elasticity_low,
                            "ci_high": result.elasticity_high, "lag": result.best.lag})
            if relation is None:
                measured.append((pair, result))
            else:
                pair["sentence"] = (f"{labels[a][0].upper()}{labels[a][1:]} and {labels[b]} are related by "
                                    f"definition ({relation}), so the pair is not ranked as a finding "
                                    f"(r = {result.lag0.r:.2f} at lag 0).")
    # one family per lag choice: lag-0 p-values together, strongest-lag p-values together
    for field in ("lag0", "best_lag"):
        for (pair, _), q in zip(measured, correlation.benjamini_hochberg([p[field]["p_value"] for p, _ in measured])):
            pair[field]["q_value"] = q
    for pair, result in measured:
        q = pair["best_lag"]["q_value"]
        pair["significant"] = q < 0.05
        pair["sentence"] = correlation.sentence(labels[pair["a"]], labels[pair["b"]], result, q, detrend,
                                                LAG_UNITS[gran])
    # the matrix shows each pair at its strongest lag (0 unless lag_max > 0), with that lag's q
    n = len(keys)
    matrix_r = [[1.0 if a == b else None for b in keys] for a in keys]
    matrix_q = [[None] * n for _ in keys]
    matrix_lag = [[0] * n for _ in keys]
    related = [[False] * n for _ in keys]
    for pair in pairs:
        i, j = keys.index(pair["a"]), keys.index(pair["b"])
        best = pair["best_lag"] or {}
        matrix_r[i][j] = matrix_r[j][i] = best.get("r")
        matrix_q[i][j] = matrix_q[j][i] = best.get("q_value")
        lag = best.get("lag") or 0
        matrix_lag[i][j], matrix_lag[j][i] = lag, -lag
        related[i][j] = related[j][i] = pair["related_by_definition"]
    findings = sorted((p for p, _ in measured if p["significant"]),
                      key=lambda p: (p["best_lag"]["q_value"], -abs(p["best_lag"]["r"])))
    method = ("pearson on residuals after removing each series' seasonal profile (hour of day, or hour of week "
              "with three weeks of data) and linear trend" if detrend else "pearson on the raw series")
    finite = lambda values: tuple(None if not np.isfinite(v) else float(v) for v in values)  # noqa: E731
    as_tuples = lambda rows: tuple(tuple(row) for row in rows)  # noqa: E731
    return CorrelationReport(
        method, detrend, gran, TimeRange(window.start, window.end), tuple(_frozen(p) for p in pairs),
        tuple((p["a"], p["b"]) for p in findings),
        Matrix(tuple(keys), tuple(labels[k] for k in keys), as_tuples(matrix_r), as_tuples(matrix_q),
               as_tuples(matrix_lag), as_tuples(related)),
        {k: MetricSeries(tuple(times), finite(series[k]), finite(residuals[k])) for k in keys})


def _frozen(pair: dict) -> Pair:
    lag = lambda d: None if d is None else LagResult(**d)  # noqa: E731
    return Pair(pair["a"], pair["b"], pair["related_by_definition"], pair["relation"], pair["n"], pair["rho"],
                lag(pair["lag0"]), lag(pair["best_lag"]),
                None if pair["elasticity"] is None else Elasticity(**pair["elasticity"]), pair["significant"],
                pair.get("sentence"))
