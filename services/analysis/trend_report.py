"""The trend answer for one metric: the series judged against its own history, the change
against earlier periods (only where data covers them), the trend, seasonality, anomalies
explained by the segments that moved, and anomalies inside single segments (channel ×
template) that the total hides. Reads through the query engine; judges with the pure
functions of services.analysis.trends. Every number a sentence names is a field of the same answer.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Connection

from services.analysis import investigate, trends
from services.query.catalogue import Metric, resolve
from services.query.context import QueryContext, context_at
from services.query.engine import (
    Totals,
    evaluator,
    first_event_time,
    group_order,
    long_measures,
    query_long,
    query_metrics,
    template_names,
)
from services.query.format import in_words, signed, signed_change
from services.query.plan import build_query
from services.query.timerange import STEP, QueryError, TimedValue, TimeRange, floor_to, iso_z
from services.store.schema import NO_TEMPLATE, channel_label

HISTORY = {"minute": timedelta(hours=6), "hour": timedelta(days=21), "day": timedelta(days=56)}
MOVING_WINDOW = {"minute": 15, "hour": 24, "day": 7}
BUCKET_NAME = {"minute": "minute", "hour": "hour", "day": "day"}
MAX_EXPLAINED = 50
MAX_SEGMENT_FINDINGS = 10
KIND = {"count": "count", "rate": "rate", "average": "gauge", "quantile": "gauge", "formula": "gauge"}
ADDITIVE = ("count", "rate", "average")   # kinds whose total is a sum over segments
SEARCHED = ("count", "rate", "average")   # kinds searched segment by segment


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def describe(metric: Metric, channel_filter: Sequence[str]) -> str:
    scope = " and ".join(channel_label(c) for c in channel_filter) + " " if channel_filter else ""
    label = metric.label.lower() if scope else metric.label
    return f"{scope}{label}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def headline(subject: str, change: trends.Change, versus: str, unit: str = "count",
             current: float | None = None, previous: float | None = None) -> str:
    """How the range compares with an earlier stretch. A rate says both levels (a rate moves
    by percentage points, which "down 5 %" would leave unclear: 5 % of the rate, or 5
    points?); anything else says its change in percent."""
    if unit == "%" and current is not None and previous is not None:
        return (f"{_capital(subject)} {change.direction} {versus}, from {in_words(previous, unit)} "
                f"to {in_words(current, unit)}.")
    if change.direction == "flat":
        return f"{_capital(subject)} flat {versus} ({signed_change(change.percent)} %)."
    return f"{_capital(subject)} {change.direction} {abs(change.percent):,.1f} % {versus}."


# ---------------------------------------------------------------- explanations

@dataclass(frozen=True)
class Segments:
    """The metric by channel × template, aligned with the report's buckets."""
    keys: list[tuple[str, int | None]]
    values: np.ndarray        # (segments, buckets)
    numerators: np.ndarray
    denominators: np.ndarray


def read_segments(conn: Connection, metric: Metric, times: Sequence[datetime], filters, granularity: str, *,
                  context: QueryContext) -> Segments:
    """The metric by channel × template in each of `times` (consecutive buckets), straight
    from the measures into arrays: a bucket without events holds what the metric makes of
    nothing (a count 0, a rate NaN)."""
    accs = long_measures(conn, metric, ("time", "channel", "template_id"), times[0], times[-1] + STEP[granularity],
                         filters, granularity, context=context) if len(times) else {}
    groups = sorted({dims for _, dims in accs}, key=group_order)  # a few dozen
    row_of = {dims: i for i, dims in enumerate(groups)}
    keys = [tuple(v for _, v in dims) for dims in groups]
    value_of = evaluator(metric)
    nothing, nothing_num, nothing_den = value_of(Totals())
    shape = (len(keys), len(times))
    values = np.full(shape, np.nan if nothing is None else nothing)
    num, den = np.full(shape, nothing_num or 0.0), np.full(shape, nothing_den or 0.0)
    index_of = {t: j for j, t in enumerate(times)}
    cells = [(row_of[dims], index_of[bucket], *value_of(m)) for (bucket, dims), m in accs.items() if bucket in index_of]
    if cells:
        rows, columns, measured, numerators, denominators = zip(*cells)
        values[rows, columns] = [np.nan if v is None else v for v in measured]
        num[rows, columns] = [n or 0.0 for n in numerators]
        den[rows, columns] = [d or 0.0 for d in denominators]
    return Segments(keys, values, num, den)


def segment_name(key: tuple[str, int | None], names: Mapping[int, str], several_channels: bool) -> str:
    channel, template = key
    name = names.get(template, f"template {template}") if template not in (None, NO_TEMPLATE) \
        else "events without a template"
    return f"{name} ({channel_label(channel)})" if several_channels else name


def contributions(metric: Metric, segments: Segments, i: int, refs: np.ndarray, value: float,
                  expected: float) -> list[dict] | None:
    """Split the detector's own `expected` value at bucket `i` over the segments, in
    proportion to what each carried in the reference buckets the detector used, so that the
    segments' expected values sum to `expected` and their actual values to `value`. None
    for kinds that do not add up over segments (percentiles, formulas)."""
    refs = refs[refs >= 0]
    if metric.kind not in ADDITIVE or not len(segments.keys):
        return None
    num_now, den_now = segments.numerators[:, i], segments.denominators[:, i]
    num_ref, den_ref = segments.numerators[:, refs].sum(axis=1), segments.denominators[:, refs].sum(axis=1)
    if metric.kind == "count":
        actual = np.nan_to_num(segments.values[:, i])
        ref_total = np.nansum(segments.values[:, refs], axis=1)
        shares = ref_total / ref_total.sum() if ref_total.sum() > 0 else np.full(len(actual), 1 / len(actual))
        exp = expected * shares
        extra = [{} for _ in actual]
    else:
        total_den = den_now.sum()
        if total_den <= 0:
            return None
        usual = np.where(den_ref > 0, num_ref / np.where(den_ref > 0, den_ref, 1), np.nan)
        overall = expected / 100.0 if metric.kind == "rate" else expected
        usual = np.where(np.isfinite(usual), usual, overall)
        weighted = den_now * usual
        scale = (overall * total_den) / weighted.sum() if weighted.sum() > 0 else 0.0
        expected_num = weighted * scale
        unit = 100.0 if metric.kind == "rate" else 1.0
        actual = num_now / total_den * unit
        exp = expected_num / total_den * unit
        if metric.kind == "rate":
            extra = [{"actual_events": float(a), "expected_events": float(e)} for a, e in zip(num_now, expected_num)]
        else:
            extra = [{"value": float(n / d) if d else None, "usual": float(u)} for n, d, u in zip(num_now, den_now, usual)]
    out = []
    for k, key in enumerate(segments.keys):
        if actual[k] == 0 and exp[k] == 0:
            continue
        out.append({"channel": key[0], "template_id": key[1], "actual": float(actual[k]), "expected": float(exp[k]),
                    "difference": float(actual[k] - exp[k]), **extra[k]})
    return out


def explain(metric: Metric, segments: Segments, i: int, refs: np.ndarray, anomaly: trends.Anomaly, *,
            names: Mapping[int, str], several_channels: bool, subject: str, link: str) -> dict:
    """The segments that moved the total at bucket `i`, in the detector's own numbers."""
    parts = contributions(metric, segments, i, refs, anomaly.value, anomaly.expected)
    unit = metric.unit
    difference = anomaly.value - anomaly.expected
    opening = (f"{_capital(subject)} was {in_words(anomaly.value, unit)} against an expected "
               f"{in_words(anomaly.expected, unit)} ({signed(difference, unit)})")
    if parts is not None:
        moved = sorted((p for p in parts if p["difference"] * difference > 0), key=lambda p: -abs(p["difference"]))
        for p in parts:
            p["template_name"] = names.get(p["template_id"]) if p["template_id"] not in (None, NO_TEMPLATE) else None
        if not moved:
            return {"sentence": opening + ".", "decomposition": "additive", "contributors": [], "drilldown": link}
        clauses = []
        for p in moved[:2]:
            clause = f"{signed(p['difference'], unit)} from {segment_name((p['channel'], p['template_id']), names, several_channels)}"
            if "actual_events" in p:
                clause += (f" ({in_words(p['actual_events'], 'count')} {metric.numerator} against an expected "
                           f"{in_words(p['expected_events'], 'count')})")
            clauses.append(clause)
        listed = moved[:5]
        rest = [p for p in parts if not any(p is q for q in listed)]
        return {"sentence": f"{opening}: {', '.join(clauses)}.", "decomposition": "additive",
                "contributors": listed,
                "rest": {"segments": len(rest), "actual": float(sum(p["actual"] for p in rest)),
                         "expected": float(sum(p["expected"] for p in rest))},
                "drilldown": _segment_link(link, metric, listed[0])}
    # percentiles and formulas do not add up over segments: name the segment whose own
    # value moved furthest from its usual value, weighted by its events
    moves = []
    for k, key in enumerate(segments.keys):
        now = segments.values[k, i]
        history = segments.values[k, refs[refs >= 0]]
        history = history[np.isfinite(history)]
        if not np.isfinite(now) or not len(history):
            continue
        usual = float(np.median(history))
        moves.append((float(abs(now - usual) * (segments.denominators[k, i] or 0.0)), key, float(now), usual))
    if not moves:
        return {"sentence": opening + ".", "decomposition": "by_value", "contributors": [], "drilldown": link}
    moves.sort(key=lambda m: -m[0])
    total = sum(m[0] for m in moves) or 1.0
    contributors = [{"channel": key[0], "template_id": key[1],
                     "template_name": names.get(key[1]) if key[1] not in (None, NO_TEMPLATE) else None,
                     "actual": now, "expected": usual, "difference": now - usual, "share": weight / total}
                    for weight, key, now, usual in moves[:5]]
    top = contributors[0]
    sentence = (f"{opening}: {segment_name((top['channel'], top['template_id']), names, several_channels)} moved "
                f"most, its own {metric.label.lower()} {in_words(top['actual'], unit)} against a usual "
                f"{in_words(top['expected'], unit)}.")
    return {"sentence": sentence, "decomposition": "by_value", "contributors": contributors,
            "drilldown": _segment_link(link, metric, top)}


def _segment_link(link: str, metric: Metric, segment: dict) -> str:
    """The drill-down into the bucket, down to the segment where the path allows it."""
    status = metric.numerator if metric.kind in ("count", "rate") and metric.numerator != "events" else None
    path = [segment["channel"]]
    if status and segment["template_id"] not in (None, NO_TEMPLATE):
        path += [status, str(segment["template_id"])]
    return f"{link}&drill={','.join(path)}"


# ---------------------------------------------------------------- the answer

@dataclass(frozen=True)
class Contributor:
    """A channel × template segment behind an anomaly, in the detector's own numbers."""
    channel: str
    template_id: int | None
    template_name: str | None
    actual: float
    expected: float
    difference: float
    share: float | None = None              # percentiles and formulas: its weight among the moves
    actual_events: float | None = None      # rates: the numerator's events
    expected_events: float | None = None
    value: float | None = None              # averages: the segment's own value and its usual one
    usual: float | None = None


@dataclass(frozen=True)
class Rest:
    segments: int
    actual: float
    expected: float


@dataclass(frozen=True)
class ReasonShare:
    """A failure reason behind an anomaly: its events against its usual count, and its share of the extra."""
    channel: str
    error_code: str | None
    actual: float
    usual: float
    extra: float
    share_percent: float


@dataclass(frozen=True)
class TotalAnomaly:
    """A bucket of the total series the detector flags, in its own numbers."""
    time: datetime
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    severity: str


@dataclass(frozen=True)
class Anomaly(TotalAnomaly):
    """A flagged bucket of the total, explained by the segments that moved it."""
    difference: float
    explanation: str | None
    decomposition: str | None               # "additive" or "by_value"
    contributors: tuple[Contributor, ...]
    rest: Rest | None
    reasons: tuple[ReasonShare, ...]        # the failure reasons behind it
    drilldown: str                          # the dashboard's drill-down into the bucket (a query string)


@dataclass(frozen=True)
class SegmentAnomaly:
    channel: str
    template_id: int | None
    template_name: str | None
    start: datetime
    end: datetime
    buckets: int
    time: datetime                          # the peak
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    severity: str
    numerator: float | None
    volume: float | None
    sentence: str
    drilldown: str


@dataclass(frozen=True)
class PeriodChange:
    start: datetime
    end: datetime
    covered: bool                           # data covers the earlier stretch from its first bucket on
    previous_value: float | None
    percent_change: float | None
    direction: str


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime
    span_hours: float


@dataclass(frozen=True)
class Coverage:
    buckets: int                            # judged for anomalies
    complete_buckets: int
    baseline: str
    reason: str | None


@dataclass(frozen=True)
class BandPoint:
    time: datetime
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class SegmentSearchInfo:
    segments: int
    tests: int
    threshold: float


@dataclass(frozen=True)
class Seasonality:
    hour_profile: tuple[float | None, ...]
    weekday_profile: tuple[float | None, ...]
    peak_hours: tuple[int, ...]
    peak_weekdays: tuple[int, ...]
    daily_cycle_significant: bool
    daily_p_value: float | None
    daily_effect: float | None
    weekly_cycle_significant: bool
    weekly_p_value: float | None
    weekly_effect: float | None


@dataclass(frozen=True)
class TrendReport:
    metric: str
    label: str
    unit: str
    granularity: str
    detector: str
    baseline: str
    time_range: TimeRange
    first_event: datetime | None
    judged: Coverage
    compared: Span
    current_value: float | None
    previous_value: float | None
    percent_change: float | None
    direction: str
    previous_period: PeriodChange
    week_over_week: PeriodChange
    trend: str
    slope: float | None
    p_value: float | None
    series: tuple[BandPoint, ...]
    moving_average: tuple[TimedValue, ...]
    anomalies: tuple[Anomaly, ...]
    anomaly_count: int
    segment_anomalies: tuple[SegmentAnomaly, ...]
    segment_search: SegmentSearchInfo | None
    headline: tuple[str, ...]
    seasonality: Seasonality | None


def _typed(body: dict) -> TrendReport:
    """The report as built (plain values) as its frozen answer."""
    def anomaly(a: dict) -> Anomaly:
        return Anomaly(a["time"], a["value"], a["expected"], a["lower"], a["upper"], a["score"], a["severity"],
                       a["difference"], a["explanation"], a["decomposition"],
                       tuple(Contributor(**c) for c in a["contributors"]),
                       None if a["rest"] is None else Rest(**a["rest"]),
                       tuple(ReasonShare(**r) for r in a["reasons"]), a["drilldown"])

    def change(c: dict) -> PeriodChange:
        return PeriodChange(c["start"], c["end"], c["covered"], c["previous_value"], c["percent_change"],
                      c["direction"])

    season = body["seasonality"]
    return TrendReport(
        body["metric"], body["label"], body["unit"], body["granularity"], body["detector"], body["baseline"],
        TimeRange(body["time_range"]["start"], body["time_range"]["end"]), body["first_event"],
        Coverage(**body["judged"]),
        Span(body["compared"]["start"], body["compared"]["end"], body["compared"]["span_hours"]),
        body["current_value"], body["previous_value"], body["percent_change"], body["direction"],
        change(body["previous_period"]), change(body["week_over_week"]), body["trend"], body["slope"],
        body["p_value"], tuple(BandPoint(p.pop("time"), **p) for p in body["series"]),
        tuple(TimedValue(p["time"], p["value"]) for p in body["moving_average"]),
        tuple(anomaly(a) for a in body["anomalies"]), body["anomaly_count"],
        tuple(SegmentAnomaly(**{**f, "start": f["start"], "end": f["end"], "time": f["time"]})
              for f in body["segment_anomalies"]),
        None if body["segment_search"] is None else SegmentSearchInfo(**body["segment_search"]),
        tuple(body["headline"]),
        None if season is None else Seasonality(**{k: tuple(v) if isinstance(v, list) else v
                                                   for k, v in season.items()}))


# ---------------------------------------------------------------- the report

@dataclass(frozen=True)
class _Total:
    """A view's total series over the span its detector reads (the range and the history
    before it), and the detector's judgement of every bucket."""
    metric: Metric
    query: object                # services.query.plan.Query
    fetch_start: datetime
    first: datetime | None       # the first event of the view's scope
    times: list[datetime]
    values: np.ndarray           # NaN before the first event
    before_data: np.ndarray      # buckets before the first event
    inside: np.ndarray           # in the range (not history)
    complete: np.ndarray         # not still filling
    kind: str                    # the detector's kind of series
    band: trends.Band
    judged: np.ndarray
    found: list[trends.Anomaly]

    def flagged(self) -> list[tuple[int, "TotalAnomaly"]]:
        """(bucket index, anomaly in the detector's numbers) of every flagged bucket, in time
        order: what the report explains and the Overview marks, built once for both."""
        return [(a.index, TotalAnomaly(self.times[a.index], a.value, a.expected, a.lower, a.upper, round(a.score, 2),
                                       a.severity)) for a in sorted(self.found, key=lambda a: a.index)]


def _judge_total(conn: Connection, metric: str, start, end, days: int | None, filters, granularity: str | None,
                 detector: str | None, context: QueryContext) -> _Total:
    now, channels = context.now, context.channels
    m = resolve(conn, metric)
    if days is not None:
        if start:
            raise QueryError("give either days or start, not both", "days")
        start = f"now-{days}d"
    if detector is not None and detector not in trends.BASELINES:
        raise QueryError(f"detector must be one of {', '.join(trends.BASELINES)} (or left out to choose by the "
                         "data); rates are always judged with their binomial uncertainty", "detector")
    query = build_query(m, ("time",), start, end, filters, granularity, now, channels)
    window, gran = query.window, query.window.granularity
    step = STEP[gran]
    first = first_event_time(conn, query.filters)
    data_start = floor_to(first, gran) if first else window.end
    fetch_start = min(window.start, max(window.start - HISTORY[gran], data_start))
    points = query_long(conn, m, ("time",), fetch_start, window.end, filters, gran, context=context)
    times = [p.time for p in points]
    before_data = np.array([t < data_start for t in times], dtype=bool)
    values = np.array([np.nan if p.value is None else p.value for p in points], dtype=float)
    values[before_data] = np.nan  # before the first event there is no history, not a zero
    numerators = np.array([p.numerator or 0.0 for p in points])
    denominators = np.array([p.denominator or 0.0 for p in points])
    inside = np.array([t >= window.start for t in times], dtype=bool)
    complete = np.array([t + step <= now for t in times], dtype=bool)  # a bucket still filling is not judged
    kind = KIND[m.kind]
    try:
        band = trends.detect(times, values, kind, gran, numerators=numerators if kind == "rate" else None,
                             denominators=denominators if kind != "count" else None, baseline=detector)
    except ValueError as exc:
        raise QueryError(str(exc), "detector") from None
    judged = inside & complete & band.judged & np.isfinite(values)
    return _Total(m, query, fetch_start, first, times, values, before_data, inside, complete, kind, band, judged,
                  trends.anomalies_from(values, band, judged))


@dataclass(frozen=True)
class TotalAnomalies:
    metric: str
    granularity: str
    anomalies: tuple[TotalAnomaly, ...]


def total_anomalies(conn: Connection, metric: str, start=None, end=None, days: int | None = None, filters=None,
                    granularity: str | None = None, detector: str | None = None, *,
                    context: QueryContext | None = None) -> TotalAnomalies:
    """The anomalies trend_report finds in a view's total series — the same detector over
    the same buckets, so the same buckets and numbers — without explaining them or searching
    the segments: what the Overview's time chart marks, for a fraction of the report's work."""
    total = _judge_total(conn, metric, start, end, days, dict(filters or {}), granularity, detector,
                         context or context_at())
    return TotalAnomalies(total.metric.name, total.query.window.granularity,
                          tuple(anomaly for _, anomaly in total.flagged()))


def trend_report(conn: Connection, metric: str, start=None, end=None, days: int | None = None, filters=None,
                 granularity: str | None = None, detector: str | None = None, *,
                 context: QueryContext | None = None) -> TrendReport:
    context = context or context_at()
    filters = dict(filters or {})
    total = _judge_total(conn, metric, start, end, days, filters, granularity, detector, context)
    m, query, first = total.metric, total.query, total.first
    window, gran = query.window, query.window.granularity
    step = STEP[gran]
    times, values, band, found = total.times, total.values, total.band, total.found
    inside, complete, judged, kind = total.inside, total.complete, total.judged, total.kind
    before_data = total.before_data

    channel_scope = [c for d, vals in query.filters if d == "channel" for c in vals]
    several_channels = len(channel_scope) != 1
    subject = describe(m, channel_scope)
    names = template_names(conn)
    link_of = lambda t: f"?tab=drilldown&range=custom&start={iso_z(t)}&end={iso_z(t + step)}"  # noqa: E731

    segments = None
    single_template = any(d == "template_id" and len(v) == 1 for d, v in query.filters)
    if (found or m.kind in SEARCHED) and not single_template:
        segments = read_segments(conn, m, times, filters, gran, context=context)
        segments.values[:, before_data] = np.nan
    explained = sorted(found, key=lambda a: -abs(a.score))[:MAX_EXPLAINED]
    explanations = {a.index: explain(m, segments, a.index, band.references[a.index], a, names=names,
                                     several_channels=several_channels, subject=subject,
                                     link=link_of(times[a.index]))
                    for a in explained} if segments is not None else {}
    _add_failure_reasons(conn, m, explained, explanations, band.references, times, gran, query.filters,
                         several_channels)
    search = None
    if segments is not None and m.kind in SEARCHED and len(segments.keys) > 1:
        series = {key: trends.SegmentSeries(segments.values[k], segments.numerators[k] if kind == "rate" else None,
                                            segments.denominators[k] if kind != "count" else None)
                  for k, key in enumerate(segments.keys)}
        search = trends.search_segments(times, series, kind, gran, inside & complete, baseline=detector)

    comparison = _comparisons(conn, m, window, gran, first, filters, context)
    range_values = values[inside]
    range_times = [t for t, keep in zip(times, inside) if keep]
    trend = trends.linear_trend(range_values)
    season = trends.seasonality(times, values, gran) if gran != "minute" else None
    moving = trends.simple_moving_average(range_values, MOVING_WINDOW[gran])

    anomalies = []
    for index, flagged in total.flagged():
        explanation = explanations.get(index)
        anomalies.append({**asdict(flagged), "difference": flagged.value - flagged.expected,
                          "explanation": explanation["sentence"] if explanation else None,
                          "decomposition": explanation["decomposition"] if explanation else None,
                          "contributors": explanation["contributors"] if explanation else [],
                          "rest": explanation.get("rest") if explanation else None,
                          "reasons": explanation.get("reasons", []) if explanation else [],
                          "drilldown": explanation["drilldown"] if explanation else link_of(times[index])})
    segment_findings = _segment_findings(search, segments, times, step, m, names, several_channels, link_of) \
        if search else []
    coverage = {"buckets": int(judged.sum()), "complete_buckets": int((inside & complete).sum()),
                "baseline": band.baseline, "reason": band.reason}
    sentences = _headline(subject, m, comparison, trend, anomalies, coverage, segment_findings, season, gran,
                          timedelta(hours=comparison["compared"]["span_hours"]))
    return _typed({
        "metric": m.name, "label": m.label, "unit": m.unit, "granularity": gran,
        "detector": {"daily": "seasonal", "weekly": "seasonal", "rolling": "robust"}.get(band.baseline, "none"),
        "baseline": band.baseline,
        "time_range": {"start": window.start, "end": window.end},
        "first_event": first,
        "judged": coverage,
        **comparison,
        "trend": trend.direction, "slope": _num(trend.slope), "p_value": _num(trend.p_value),
        "series": [{"time": t, "value": _num(v), "expected": _num(band.expected[i]), "lower": _num(band.lower[i]),
                    "upper": _num(band.upper[i])}
                   for i, (t, v, keep) in enumerate(zip(times, values, inside)) if keep],
        "moving_average": [{"time": t, "value": _num(v)} for t, v in zip(range_times, moving)],
        "anomalies": anomalies, "anomaly_count": len(anomalies),
        "segment_anomalies": segment_findings,
        "segment_search": None if search is None else {
            "segments": len(search.bands), "tests": search.tests, "threshold": round(search.threshold, 2)},
        "headline": sentences,
        "seasonality": None if season is None else {
            "hour_profile": [_num(v) for v in season.hour_profile],
            "weekday_profile": [_num(v) for v in season.weekday_profile],
            "peak_hours": season.peak_hours, "peak_weekdays": season.peak_weekdays,
            "daily_cycle_significant": season.daily.significant, "daily_p_value": _num(season.daily.p_value),
            "daily_effect": _num(season.daily.effect),
            "weekly_cycle_significant": season.weekly.significant, "weekly_p_value": _num(season.weekly.p_value),
            "weekly_effect": _num(season.weekly.effect)},
    })


def _add_failure_reasons(conn, m: Metric, explained, explanations: dict, references, times, gran: str, filters,
                         several_channels: bool) -> None:
    """For anomalies that failures drive (a delivery drop, a failure or bounce rise): which
    error codes carry the extra failed and bounced events, against their usual counts in the
    detector's own reference buckets. One read of raw failures, through their own index."""
    behind = {a.index: investigate.failure_statuses_behind(m, a.value - a.expected) for a in explained
              if a.index in explanations}
    wanted = [a for a in explained if behind.get(a.index)]
    if not wanted:
        return
    statuses = behind[wanted[0].index]  # the same for every anomaly that failures drive: their direction
    needed = [a.index for a in wanted] + [int(j) for a in wanted for j in references[a.index] if j >= 0]
    counts = investigate.failures_by_bucket(conn, gran, times[min(needed)], times[max(needed)] + STEP[gran],
                                            statuses, filters)
    for a in wanted:
        shares = investigate.reason_shares(investigate.at_bucket(counts, times[a.index]),
                                           investigate.usual_counts(counts, times, references[a.index]))
        sentence = _reasons_sentence(shares, statuses, several_channels)
        explanation = explanations[a.index]
        explanation["reasons"] = shares[:5]
        if sentence:
            explanation["sentence"] = f"{explanation['sentence']} {sentence}"


def _reasons_sentence(shares: list[dict], statuses: Sequence[str], several_channels: bool) -> str | None:
    """"62.0 % of the extra failed and bounced events are carrier_outage on SMS (1,020 against a usual 12.5)."""
    if not shares:
        return None
    top = shares[0]
    where = f" on {channel_label(top['channel'])}" if several_channels else ""
    return (f"{in_words(top['share_percent'], '%')} of the extra {' and '.join(statuses)} events are "
            f"{top['error_code'] or 'without an error code'}{where} ({in_words(top['actual'], 'count')} against a usual "
            f"{in_words(top['usual'], 'none')}).")


def _num(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _comparisons(conn, metric: Metric, window, gran, first, filters, context: QueryContext) -> dict:
    """This range's complete buckets against the same stretch one period and one week
    earlier — only where data covers the earlier stretch from its first bucket on."""
    end = min(window.end, floor_to(context.now, gran))
    span = max(end - window.start, STEP[gran])  # the complete buckets, against as long a stretch before them

    def total(a: datetime, b: datetime) -> float | None:
        return query_metrics(conn, metric, (), a, b, filters, gran, context=context).points[0].value

    current = total(window.start, end) if end > window.start else None

    def against(offset: timedelta) -> dict:
        a, b = window.start - offset, end - offset
        covered = first is not None and floor_to(first, gran) <= a and end > window.start
        previous = total(a, b) if covered else None
        change = trends.percent_change(current, previous) if covered else trends.Change(None, "flat")
        return {"start": a, "end": b, "covered": covered, "previous_value": _num(previous),
                "percent_change": _num(change.percent), "direction": change.direction}

    previous, week = against(span), against(timedelta(days=7))
    return {"compared": {"start": window.start, "end": max(end, window.start), "span_hours": span / timedelta(hours=1)},
            "current_value": _num(current),
            "previous_value": previous["previous_value"], "percent_change": previous["percent_change"],
            "direction": previous["direction"], "previous_period": previous, "week_over_week": week}


def _segment_findings(search: trends.SegmentSearch, segments: Segments, times, step, metric: Metric, names,
                      several_channels: bool, link_of) -> list[dict]:
    """Consecutive flagged buckets of one segment make one finding, shown at its peak."""
    by_key: dict = {}
    for key, anomaly in search.findings:
        by_key.setdefault(key, []).append(anomaly)
    findings = []
    for key, found in by_key.items():
        found.sort(key=lambda a: a.index)
        run = [found[0]]
        for a in found[1:] + [None]:
            if a is not None and a.index == run[-1].index + 1 and np.sign(a.score) == np.sign(run[-1].score):
                run.append(a)
                continue
            peak = max(run, key=lambda r: abs(r.score))
            k = segments.keys.index(key)
            name = segment_name(key, names, several_channels)
            volume = float(segments.denominators[k, peak.index]) if metric.kind != "count" else None
            sentence = (f"{name} {metric.label.lower()} {in_words(peak.value, metric.unit)} against a usual "
                        f"{in_words(peak.expected, metric.unit)} at {_when(times[peak.index])} UTC")
            if metric.kind == "rate":
                sentence += (f" ({in_words(segments.numerators[k, peak.index], 'count')} {metric.numerator} of "
                             f"{in_words(volume, 'count')} {metric.denominator})")
            if len(run) > 1:
                sentence += (f", out of line from {_when(times[run[0].index])} to "
                             f"{_when(times[run[-1].index] + step)} UTC")
            findings.append({
                "channel": key[0], "template_id": key[1],
                "template_name": names.get(key[1]) if key[1] not in (None, NO_TEMPLATE) else None,
                "start": times[run[0].index], "end": times[run[-1].index] + step, "buckets": len(run),
                "time": times[peak.index], "value": peak.value, "expected": peak.expected, "lower": peak.lower,
                "upper": peak.upper, "score": round(peak.score, 2), "severity": peak.severity,
                "numerator": float(segments.numerators[k, peak.index]) if metric.kind == "rate" else None,
                "volume": volume, "sentence": sentence + ".",
                "drilldown": _segment_link(link_of(times[peak.index]), metric, {"channel": key[0], "template_id": key[1]}),
            })
            run = [a] if a is not None else []
    findings.sort(key=lambda f: -abs(f["score"]))
    return findings[:MAX_SEGMENT_FINDINGS]


def _headline(subject, metric: Metric, comparison: dict, trend, anomalies, coverage, segment_findings, season,
              gran: str, span: timedelta) -> list[str]:
    sentences = []
    for key, versus in (("previous_period", f"against the previous {_span_text(span)}"),
                        ("week_over_week", "week-over-week")):
        c = comparison[key]
        if not c["covered"]:
            sentences.append(f"{_capital(subject)}: not enough history to compare {versus}.")
        elif c["percent_change"] is None:
            sentences.append(f"{_capital(subject)}: no value {versus.replace('against', 'in')} to compare with.")
        else:
            sentences.append(headline(subject, trends.Change(c["percent_change"], c["direction"]), versus,
                                      metric.unit, comparison["current_value"], c["previous_value"]))
    if trend.direction != "stable":
        sentences.append(f"The trend over the range is {trend.direction} (p = {trend.p_value:.3g}).")
    unit_name = BUCKET_NAME[gran]
    if coverage["buckets"] == 0 and coverage["complete_buckets"]:
        sentences.append(f"No {unit_name} was judged for anomalies: "
                         f"{coverage['reason'] or 'too little history before the range'}.")
    elif coverage["buckets"] < coverage["complete_buckets"]:
        sentences.append(f"{coverage['buckets']:,} of {coverage['complete_buckets']:,} {unit_name}s were judged for "
                         "anomalies; the others have too little history at the same time of day.")
    if anomalies:
        worst = max(anomalies, key=lambda a: abs(a["score"]))
        sentences.append(f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}; the worst at "
                         f"{worst['time']:%Y-%m-%d %H:%M} UTC: {in_words(worst['value'], metric.unit)} against an "
                         f"expected {in_words(worst['expected'], metric.unit)}.")
    elif coverage["buckets"]:
        sentences.append("No anomaly.")
    if segment_findings:
        sentences.append(_capital(segment_findings[0]["sentence"]))
    if season is not None:
        if season.peak_hours:
            peaks = " and ".join(f"{h:02d}:00" for h in sorted(season.peak_hours[:2]))
            sentences.append(f"Daily peaks at {peaks} UTC (hour-of-day pattern p {_p_text(season.daily.p_value)}).")
        elif season.daily.p_value is not None:
            sentences.append("No daily pattern.")
    return sentences


def _p_text(p: float | None) -> str:
    return "< 0.001" if p is not None and p < 0.001 else f"= {p:.3f}"


def _span_text(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} hours"
    return f"{hours / 24:.0f} days"
