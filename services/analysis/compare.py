"""Comparisons: channels, templates and periods side by side, each number with its
uncertainty, and a test of whether the best and the worst really differ.

Tests, by kind of metric:
- rates: two-proportion test on the counts behind them (chi-square on the 2×2 table);
- counts: the conditional binomial test of two Poisson counts over the same time;
- averages and percentiles: Mann–Whitney U computed from the merged latency histograms
  (tie-corrected), which compares the whole distributions without assuming normality.
Intervals are 95 %: Wilson for rates, exact Poisson (Garwood) for counts, the normal
interval of the mean for averages, and order-statistic bounds for percentiles.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from scipy import stats
from sqlalchemy import Connection

from services.analysis.drilldown import value_label
from services.query.catalogue import Metric, resolve
from services.query.context import QueryContext, context_at
from services.query.engine import Totals, collect_measures, evaluate, query_metrics, template_names
from services.query.plan import DIMENSIONS, build_query, parse_filters
from services.query.timerange import QueryError, TimedValue, TimeRange, parse_time
from services.store import latency

Z95 = 1.959963984540054
MAX_VALUES = 20
DEFAULT_MIN_VOLUME = 100
COMPARE_TO = ("previous_period", "previous_week", "previous_year")


# ---------------------------------------------------------------- statistics (pure)

def wilson_interval(successes: float, trials: float, z: float = Z95) -> tuple[float | None, float | None]:
    """None when the counts are no proportion: no trials, or more successes than trials (a
    range can hold deliveries whose sends fell before it, and then a rate above 100 %)."""
    if trials <= 0 or not 0 <= successes <= trials:
        return None, None
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def poisson_interval(count: float, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson count."""
    low = 0.0 if count == 0 else stats.chi2.ppf(alpha / 2, 2 * count) / 2
    high = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return float(low), float(high)


def histogram_arrays(histogram: Mapping[int, int]) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(histogram)
    return (np.array([latency.bucket_value(k) for k in keys]), np.array([histogram[k] for k in keys], dtype=float))


def mean_interval(histogram: Mapping[int, int], mean: float | None) -> tuple[float | None, float | None]:
    values, counts = histogram_arrays(histogram)
    n = counts.sum()
    if mean is None or n < 2:
        return None, None
    variance = float(np.sum(counts * (values - values @ counts / n) ** 2) / (n - 1))
    half = Z95 * math.sqrt(variance / n)
    return mean - half, mean + half


def quantile_interval(histogram: Mapping[int, int], q: float) -> tuple[float | None, float | None]:
    """Bounds from the order statistics at ranks n·q ∓ 1.96·√(n·q·(1−q))."""
    values, counts = histogram_arrays(histogram)
    n = counts.sum()
    if n == 0:
        return None, None
    half = Z95 * math.sqrt(n * q * (1 - q))
    cumulative = np.cumsum(counts)

    def at(rank: float) -> float:
        rank = min(max(rank, 1), n)
        return float(values[np.searchsorted(cumulative, rank)])

    return at(math.floor(n * q - half)), at(math.ceil(n * q + half))


def mann_whitney_from_histograms(a: Mapping[int, int], b: Mapping[int, int]) -> float | None:
    """Two-sided p-value of the Mann–Whitney U test between two samples given as histograms
    over the same buckets (values in one bucket are ties), normal approximation with the
    tie correction."""
    n1, n2 = sum(a.values()), sum(b.values())
    if n1 == 0 or n2 == 0:
        return None
    keys = sorted(set(a) | set(b))
    u, below_b, tie_term = 0.0, 0.0, 0.0
    for k in keys:
        ca, cb = a.get(k, 0), b.get(k, 0)
        u += ca * (below_b + cb / 2)
        below_b += cb
        t = ca + cb
        tie_term += t ** 3 - t
    n = n1 + n2
    mean_u = n1 * n2 / 2
    var_u = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0
    if var_u <= 0:
        return 1.0
    z = (u - mean_u) / math.sqrt(var_u)
    return float(2 * stats.norm.sf(abs(z)))


def two_proportion_p(x1: float, n1: float, x2: float, n2: float) -> float | None:
    """None when either side is no proportion (no trials, or more successes than trials)."""
    if n1 <= 0 or n2 <= 0 or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        return None
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    if (table.sum(axis=0) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def poisson_counts_p(c1: float, c2: float) -> float | None:
    total = int(round(c1 + c2))
    if total == 0:
        return None
    return float(stats.binomtest(int(round(c1)), total, 0.5).pvalue)


# ---------------------------------------------------------------- inputs

def parse_dimensions(text: str | None, channels: Sequence[str]) -> tuple[str, list[tuple[str, object]] | None]:
    """`channel:email,channel:sms,template_id:3` → pairs; a bare dimension (`template_id`)
    means all its values; nothing means every channel."""
    if not text:
        return "channel", None
    text = text.strip()
    if text in DIMENSIONS:
        return text, None
    pairs: list[tuple[str, object]] = []
    for part in text.split(","):
        if ":" not in part:
            raise QueryError(f"{part[:40]!r} is not a dimension:value pair such as channel:email", "dimensions")
        dim, value = (p.strip() for p in part.split(":", 1))
        parsed = dict(parse_filters({dim: value}, channels)) if dim in DIMENSIONS else None
        if parsed is None:
            raise QueryError(f"unknown dimension {dim[:40]!r}; compare by {', '.join(DIMENSIONS)}", "dimensions")
        pairs.append((dim, parsed[dim][0]))
    if len(set(pairs)) < 2:
        raise QueryError("compare at least two values, e.g. channel:email,channel:sms", "dimensions")
    if len(pairs) > MAX_VALUES:
        raise QueryError(f"at most {MAX_VALUES} values can be compared at once", "dimensions")
    return pairs[0][0], list(dict.fromkeys(pairs))


def shifted_start(compare_to: str, start: datetime, end: datetime, now: datetime) -> datetime:
    if compare_to == "previous_period":
        return start - (end - start)
    if compare_to == "previous_week":
        return start - timedelta(days=7)
    if compare_to == "previous_year":
        try:
            return start.replace(year=start.year - 1)
        except ValueError:  # 29 February
            return start.replace(year=start.year - 1, day=28)
    shifted = parse_time(compare_to, now, "compare_to")
    if shifted >= start:
        raise QueryError("compare_to must start before the compared range", "compare_to")
    return shifted


# ---------------------------------------------------------------- the comparison

@dataclass(frozen=True)
class Compared:
    key: str
    dimension: str
    value: object
    label: str
    measures: Totals


@dataclass(frozen=True)
class ComparedValue:
    """One channel, template or value of a comparison: its total with a 95 % interval, and its series."""
    label: str
    dimension: str
    value: object                 # the channel, template id or value compared
    total: float | None
    average: float | None         # of the series' buckets
    latest: float | None
    data_points: int
    volume: float                 # the events behind the total (its denominator for a rate)
    numerator: float | None
    denominator: float | None
    ci_low: float | None
    ci_high: float | None
    series: tuple[TimedValue, ...]


@dataclass(frozen=True)
class Summary:
    best_performer: str | None    # keys of `Comparison.comparisons`
    worst_performer: str | None
    difference: float | None
    percent_difference: float | None
    significant: bool
    p_value: float | None
    ranking: tuple[str, ...] = ()
    note: str | None = None       # why there is no ranking


@dataclass(frozen=True)
class PeriodPoint:
    offset: int
    time: datetime
    value: float | None
    previous_time: datetime
    previous_value: float | None
    difference: float | None
    percent_difference: float | None


@dataclass(frozen=True)
class PeriodTotal:
    value: float | None
    previous_value: float | None
    difference: float | None
    percent_difference: float | None
    significant: bool
    p_value: float | None


@dataclass(frozen=True)
class PeriodComparison:
    compare_to: str
    start: datetime               # of the compared period
    end: datetime
    points: tuple[PeriodPoint, ...]
    total: PeriodTotal


@dataclass(frozen=True)
class Comparison:
    metric: str
    unit: str
    kind: str                     # the metric's: count, rate, average, quantile or formula
    better: str
    granularity: str
    time_range: TimeRange
    comparisons: dict[str, ComparedValue]
    summary: Summary
    below_volume_floor: tuple[str, ...]
    period: PeriodComparison | None = None


def _better(metric: Metric) -> int:
    return -1 if metric.better == "lower" else 1


def interval(metric: Metric, m: Totals, value: float | None) -> tuple[float | None, float | None]:
    if metric.kind == "formula":
        return None, None  # no sampling model for an arbitrary formula
    if metric.kind == "rate":
        low, high = wilson_interval(m.count(metric.numerator), m.count(metric.denominator))
        return (None, None) if low is None else (low * 100, high * 100)
    if metric.kind == "count":
        return poisson_interval(value or 0)
    if metric.kind == "average":
        return mean_interval(m.histogram, value)
    return quantile_interval(m.histogram, metric.q)


def volume(metric: Metric, m: Totals) -> float:
    if metric.kind == "rate":
        return m.count(metric.denominator)
    if metric.kind in ("average", "quantile"):
        return m.pcount
    return m.events


def significance(metric: Metric, a: Totals, b: Totals) -> float | None:
    if metric.kind == "rate":
        return two_proportion_p(a.count(metric.numerator), a.count(metric.denominator),
                                b.count(metric.numerator), b.count(metric.denominator))
    if metric.kind == "count":
        return poisson_counts_p(evaluate(metric, a)[0], evaluate(metric, b)[0])
    if metric.kind == "formula":
        return None
    return mann_whitney_from_histograms(a.histogram, b.histogram)


def summarize(metric: Metric, compared: list[Compared], min_volume: float) -> Summary:
    ranked = [c for c in compared if evaluate(metric, c.measures)[0] is not None
              and volume(metric, c.measures) >= min_volume]
    if len(ranked) < 2:
        return Summary(None, None, None, None, False, None,
                       note=f"fewer than two values have a value and at least {min_volume:,.0f} events behind it")
    ranked.sort(key=lambda c: -_better(metric) * evaluate(metric, c.measures)[0])
    best, worst = ranked[0], ranked[-1]
    vb, vw = evaluate(metric, best.measures)[0], evaluate(metric, worst.measures)[0]
    p = significance(metric, best.measures, worst.measures) if vb != vw else 1.0
    return Summary(best.key, worst.key, vb - vw, (vb - vw) / abs(vw) * 100 if vw else None,
                   p is not None and p < 0.05, p, tuple(c.key for c in ranked))


def compare(conn: Connection, metric: str, dimensions: str | None = None, start=None, end=None,
            compare_to: str | None = None, filters: Mapping | None = None, min_volume: float = DEFAULT_MIN_VOLUME,
            *, context: QueryContext | None = None) -> Comparison:
    context = context or context_at()
    now, channels = context.now, context.channels
    m = resolve(conn, metric)
    dimension, pairs = parse_dimensions(dimensions, channels)
    filters = dict(filters or {})
    base = build_query(m, ("time", dimension), start, end, filters, None, now, channels)
    window = base.window
    names = template_names(conn)
    groups: dict[tuple, Totals] = {}
    series_points: dict[tuple, list] = {}
    for dim in sorted({d for d, _ in pairs}) if pairs is not None else [dimension]:
        totals = build_query(m, (dim,), window.start, window.end, filters, window.granularity, now, channels)
        accs, _, _ = collect_measures(conn, totals, True, context)
        groups.update({key: measures for (_, key), measures in accs.items()})
        series = query_metrics(conn, m, ("time", dim), window.start, window.end, filters, window.granularity,
                               context=context)
        for p in series.points:
            series_points.setdefault(p.dims, []).append(p)
    if pairs is not None:
        targets = pairs
    elif dimension == "channel":
        targets = [("channel", c) for c in channels]  # every channel, even a silent one
    else:
        targets = sorted((dimension, dict(key)[dimension]) for key in groups if dict(key)[dimension] is not None)
    compared = [Compared(str(value) if dim == "channel" else f"{dim}:{value}", dim, value,
                         value_label(dim, value, names), groups.get(((dim, value),), Totals()))
                for dim, value in targets]
    comparisons = {}
    for c in compared:
        value, numerator, denominator = evaluate(m, c.measures)
        low, high = interval(m, c.measures, value)
        points = series_points.get(((c.dimension, c.value),), [])
        values = [p.value for p in points if p.value is not None]
        comparisons[c.key] = ComparedValue(
            c.label, c.dimension, c.value, value, float(np.mean(values)) if values else None,
            values[-1] if values else None, len(values), volume(m, c.measures), numerator, denominator, low, high,
            tuple(TimedValue(p.time, p.value) for p in points))
    floor = min_volume if pairs is None and dimension == "template_id" else 0
    return Comparison(m.name, m.unit, m.kind, m.better, window.granularity, TimeRange(window.start, window.end), comparisons,
                      summarize(m, compared, floor),
                      tuple(c.key for c in compared if volume(m, c.measures) < floor),
                      compare_periods(conn, m, window, compare_to, filters, context=context) if compare_to else None)


def compare_periods(conn: Connection, metric: Metric, window, compare_to: str, filters: Mapping, *,
                    context: QueryContext) -> PeriodComparison:
    """The selection now and over a shifted period, aligned bucket by bucket (by offset)."""
    now, channels = context.now, context.channels
    if compare_to not in COMPARE_TO and not compare_to[:1].isdigit() and not compare_to.startswith("now"):
        raise QueryError(f"compare_to must be one of {', '.join(COMPARE_TO)} or an ISO start", "compare_to")
    start = shifted_start(compare_to, window.start, window.end, now)
    span = window.end - window.start
    gran = window.granularity
    current_q = build_query(metric, ("time",), window.start, window.end, filters, gran, now, channels)
    previous_q = build_query(metric, ("time",), start, start + span, filters, gran, now, channels)
    current_acc, _, _ = collect_measures(conn, build_query(metric, (), window.start, window.end, filters, gran,
                                                           now, channels), True, context)
    previous_acc, _, _ = collect_measures(conn, build_query(metric, (), start, start + span, filters, gran,
                                                            now, channels), True, context)
    current = query_metrics(conn, metric, ("time",), current_q.window.start, current_q.window.end, filters,
                            gran, context=context).points
    previous = query_metrics(conn, metric, ("time",), previous_q.window.start, previous_q.window.end, filters,
                             gran, context=context).points
    points = []
    for offset, (c, p) in enumerate(zip(current, previous)):
        diff = None if c.value is None or p.value is None else c.value - p.value
        points.append(PeriodPoint(offset, c.time, c.value, p.time, p.value, diff,
                                  diff / abs(p.value) * 100 if diff is not None and p.value else None))
    a, b = current_acc.get((None, ()), Totals()), previous_acc.get((None, ()), Totals())
    va, vb = evaluate(metric, a)[0], evaluate(metric, b)[0]
    diff = None if va is None or vb is None else va - vb
    p_value = significance(metric, a, b) if diff not in (None, 0) else (1.0 if diff == 0 else None)
    total = PeriodTotal(va, vb, diff, diff / abs(vb) * 100 if diff is not None and vb else None,
                        p_value is not None and p_value < 0.05, p_value)
    return PeriodComparison(compare_to, previous_q.window.start, previous_q.window.end, tuple(points), total)
