"""The trend answer for one metric: series, change, trend, moving average, seasonality and
anomalies with their explanation. Reads through the query engine, judges with the pure
functions of services.trends."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import Connection

from services import trends
from services.custom_metrics import resolve_metric
from services.query import Metric, build_query, query_long, query_metrics, template_names
from services.schema import CHANNELS, channel_label
from services.timerange import STEP, QueryError

HISTORY = {"minute": timedelta(hours=6), "hour": timedelta(days=21), "day": timedelta(days=56)}
BUCKETS_PER_DAY = {"minute": 1440, "hour": 24, "day": None}
BUCKETS_PER_WEEK = {"minute": None, "hour": 168, "day": 7}
MOVING_WINDOW = {"minute": 15, "hour": 24, "day": 7}
MAX_EXPLAINED = 5
BASELINE_DAYS = 14


def _z(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def describe(metric: Metric, channel_filter: Sequence[str]) -> str:
    scope = " and ".join(channel_label(c) for c in channel_filter) + " " if channel_filter else ""
    label = metric.label.lower() if scope else metric.label
    return f"{scope}{label}"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no data"
    return f"{value:,.0f}" if unit == "count" else f"{value:,.1f}{' %' if unit == '%' else ' ms'}"


def headline(subject: str, change: trends.Change, versus: str) -> str:
    if change.percent is None:
        return f"{subject[0].upper()}{subject[1:]}: not enough data {versus} to compare."
    if change.direction == "flat":
        return f"{subject[0].upper()}{subject[1:]} flat {versus} ({change.percent:+.1f}%)."
    return f"{subject[0].upper()}{subject[1:]} {change.direction} {abs(change.percent):.0f}% {versus}."


@dataclass(frozen=True)
class Contribution:
    channel: str
    template_id: int | None
    actual: float
    expected: float


def explain(breakdown, metric: Metric, when: datetime, granularity: str, *, names: Mapping[int, str],
            scope: str = "") -> dict:
    """Which channel and template moved the total at `when`, against the same bucket of
    the previous days. For a rate, the deviation is counted in its numerator events.
    `breakdown(metric_name)` gives that metric's points by time, channel and template."""
    step = STEP[granularity]
    if metric.kind in ("average", "quantile", "formula"):
        return explain_by_value(breakdown, metric, when, granularity, names=names)
    count_metric = metric.numerator if metric.kind in ("count", "rate") else "events"
    rows = breakdown(count_metric)
    dens = breakdown(metric.denominator) if metric.kind == "rate" else []
    same_position = {when - timedelta(days=d) for d in range(1, BASELINE_DAYS + 1)}
    by_key: dict[tuple, dict] = {}
    for p in rows:
        key = tuple(v for _, v in p.dims)
        entry = by_key.setdefault(key, {"now": 0.0, "base": [], "den_now": 0.0, "num_base": 0.0, "den_base": 0.0})
        if p.time == when:
            entry["now"] += p.value or 0
        elif p.time in same_position:
            entry["base"].append(p.value or 0)
            entry["num_base"] += p.value or 0
    for p in dens:
        entry = by_key.get(tuple(v for _, v in p.dims))
        if entry is None:
            continue
        if p.time == when:
            entry["den_now"] += p.value or 0
        elif p.time in same_position:
            entry["den_base"] += p.value or 0
    contributions = []
    for (channel, template), e in by_key.items():
        if metric.kind == "rate":
            rate = e["num_base"] / e["den_base"] if e["den_base"] else None
            expected = e["den_now"] * rate if rate is not None else e["now"]
        else:
            expected = float(np.median(e["base"])) if e["base"] else 0.0
        contributions.append(Contribution(channel, template, e["now"], expected))
    total_dev = sum(c.actual - c.expected for c in contributions)
    if not contributions or abs(total_dev) < 1e-9:
        return {"sentence": "No single channel or template stands out.", "contributors": []}
    same_sign = [c for c in contributions if (c.actual - c.expected) * total_dev > 0]
    same_sign.sort(key=lambda c: -abs(c.actual - c.expected))
    moved = sum(abs(c.actual - c.expected) for c in same_sign)
    by_channel: dict[str, float] = {}
    for c in same_sign:
        by_channel[c.channel] = by_channel.get(c.channel, 0) + abs(c.actual - c.expected)
    top_channel = max(by_channel, key=by_channel.get)
    top = same_sign[0]
    actual, expected = sum(c.actual for c in contributions), sum(c.expected for c in contributions)
    verb = "rose" if total_dev > 0 else "fell"
    noun = "increase" if total_dev > 0 else "drop"
    noun_of = "events" if count_metric == "events" else f"{count_metric} events"
    subject = f"{scope} {noun_of}" if scope else noun_of.capitalize()
    template_name = names.get(top.template_id, f"template {top.template_id}") if top.template_id not in (None, -1) \
        else "events without a template"
    sentence = (f"{subject} {verb} by {abs(actual - expected):,.0f} against an expected {expected:,.0f}: "
                f"{by_channel[top_channel] / moved:.0%} of the {noun} is {channel_label(top_channel)}, "
                f"{abs(top.actual - top.expected) / moved:.0%} is {template_name}.")
    contributors = [{"channel": c.channel, "template_id": c.template_id,
                     "template_name": names.get(c.template_id) if c.template_id is not None else None,
                     "actual": c.actual, "expected": round(c.expected, 3),
                     "share": round(abs(c.actual - c.expected) / moved, 4)} for c in same_sign[:5]]
    drill = f"?tab=drilldown&range=custom&start={_z(when)}&end={_z(when + step)}&drill={top_channel}"
    return {"sentence": sentence, "contributors": contributors, "drilldown": drill}


def explain_by_value(breakdown, metric: Metric, when: datetime, granularity: str, *,
                     names: Mapping[int, str]) -> dict:
    """For processing times and formulas: the channel and template whose own value moved
    furthest from their usual value at this hour, weighted by how many events they carry."""
    step = STEP[granularity]
    rows = breakdown(metric.name)
    same_position = {when - timedelta(days=d) for d in range(1, BASELINE_DAYS + 1)}
    now_value: dict[tuple, tuple[float, float]] = {}
    history: dict[tuple, list[float]] = {}
    for p in rows:
        key = tuple(v for _, v in p.dims)
        if p.value is None:
            continue
        if p.time == when:
            now_value[key] = (p.value, p.denominator or 0.0)
        elif p.time in same_position:
            history.setdefault(key, []).append(p.value)
    moves = []
    for key, (value, weight) in now_value.items():
        if history.get(key):
            expected = float(np.median(history[key]))
            moves.append((abs(value - expected) * weight, key, value, expected))
    if not moves:
        return {"sentence": "No single channel or template stands out.", "contributors": []}
    moves.sort(reverse=True)
    total = sum(m[0] for m in moves) or 1.0
    _, (channel, template), value, expected = moves[0]
    name = names.get(template, f"template {template}") if template not in (None, -1) else "events without a template"
    sentence = (f"{channel_label(channel)} · {name} moved it most: {metric.label} "
                f"{fmt(value, metric.unit)} against a usual {fmt(expected, metric.unit)} "
                f"({moves[0][0] / total:.0%} of the weighted change).")
    contributors = [{"channel": k[0], "template_id": k[1], "template_name": names.get(k[1]), "actual": v,
                     "expected": round(e, 3), "share": round(w / total, 4)} for w, k, v, e in moves[:5]]
    drill = f"?tab=drilldown&range=custom&start={_z(when)}&end={_z(when + step)}&drill={channel}"
    return {"sentence": sentence, "contributors": contributors, "drilldown": drill}


def trend_report(conn: Connection, metric: str, start=None, end=None, days: int | None = None, filters=None,
                 granularity: str | None = None, detector: str | None = None, *, now: datetime | None = None,
                 channels: Sequence[str] = CHANNELS, **settings) -> dict:
    now = now or datetime.now(timezone.utc)
    filters = dict(filters or {})
    m = resolve_metric(conn, metric)
    if days is not None:
        if start:
            raise QueryError("give either days or start, not both", "days")
        start = f"now-{days}d"
    query = build_query(m, ("time",), start, end, filters, granularity, now, channels)
    window, gran = query.window, query.window.granularity
    history_start = window.start - HISTORY[gran]
    points = query_long(conn, metric, ("time",), history_start, window.end, filters, gran, now=now,
                        channels=channels, **settings)
    # history before the first event is no history: detectors count cycles from there
    with_data = [i for i, p in enumerate(points) if p.value is not None and (m.kind != "count" or p.value > 0)]
    first = min([with_data[0]] if with_data else [len(points)], default=0)
    first = min(first, next((i for i, p in enumerate(points) if p.time >= window.start), len(points)))
    points = points[first:]
    times = [p.time for p in points]
    values = np.array([np.nan if p.value is None else p.value for p in points], dtype=float)
    numerators = np.array([p.numerator or 0.0 for p in points])
    denominators = np.array([p.denominator or 0.0 for p in points])
    inside = np.array([t >= window.start for t in times])
    # a bucket still filling is not judged: a count would always look like a drop
    complete = np.array([t + STEP[gran] <= now for t in times])
    history_days = (window.start - times[0]).total_seconds() / 86400 if times else 0.0
    try:
        chosen = trends.pick_detector(detector, history_days)
    except ValueError as exc:
        raise QueryError(str(exc), "detector") from None
    if detector is None and m.kind == "rate":
        chosen = "volume"  # the same baseline, judged with the binomial uncertainty of each bucket
    if chosen == "volume" and m.kind != "rate":
        raise QueryError(f"the volume detector judges rates; {m.name} is a {m.kind}", "detector")
    band = trends.detect(values, chosen, BUCKETS_PER_DAY[gran], BUCKETS_PER_WEEK[gran],
                         numerators if chosen == "volume" else None, denominators if chosen == "volume" else None)
    found = trends.anomalies_from(values, band, judged=inside & complete)
    low, high = (0.0, 100.0) if m.unit == "%" else (0.0, np.inf)  # a band never leaves what is possible
    band = trends.Band(band.expected, np.clip(band.lower, low, high), np.clip(band.upper, low, high), band.score)
    names = template_names(conn)
    channel_scope = list(filters.get("channel") or []) if not isinstance(filters.get("channel"), str) \
        else filters["channel"].split(",")
    explained = sorted(found, key=lambda a: -abs(a.score))[:MAX_EXPLAINED]
    scope = " and ".join(channel_label(c) for c in channel_scope)
    breakdowns: dict[str, list] = {}
    if explained:  # one breakdown per metric covers every explained anomaly and its baseline
        first = min(times[a.index] for a in explained) - timedelta(days=BASELINE_DAYS)
        last = max(times[a.index] for a in explained) + STEP[gran]

        def breakdown(name: str) -> list:
            if name not in breakdowns:
                breakdowns[name] = query_long(conn, name, ("time", "channel", "template_id"), first, last, filters,
                                              gran, now=now, channels=channels, **settings)
            return breakdowns[name]

    explanations = {a.index: explain(breakdown, m, times[a.index], gran, names=names, scope=scope)
                    for a in explained}
    range_values = values[inside]
    range_times = [t for t, keep in zip(times, inside) if keep]
    span = window.end - window.start
    total = query_metrics(conn, metric, (), window.start, window.end, filters, gran, now=now, channels=channels,
                          **settings).points[0].value
    previous = query_metrics(conn, metric, (), window.start - span, window.start, filters, gran, now=now,
                             channels=channels, **settings).points[0].value
    last_week = query_metrics(conn, metric, (), window.start - timedelta(days=7), window.end - timedelta(days=7),
                              filters, gran, now=now, channels=channels, **settings).points[0].value
    change = trends.percent_change(total, previous)
    week_change = trends.percent_change(total, last_week)
    trend = trends.linear_trend(range_values)
    season = trends.seasonality(times, values) if gran != "day" else None
    moving = trends.simple_moving_average(range_values, MOVING_WINDOW[gran])
    subject = describe(m, channel_scope)

    def num(v):
        return None if v is None or not np.isfinite(v) else float(v)

    anomalies = []
    for a in sorted(found, key=lambda a: times[a.index]):
        explanation = explanations.get(a.index)
        anomalies.append({"time": _z(times[a.index]), "value": a.value, "expected": a.expected, "lower": a.lower,
                          "upper": a.upper, "score": round(a.score, 2), "severity": a.severity,
                          "explanation": explanation["sentence"] if explanation else None,
                          "contributors": explanation["contributors"] if explanation else [],
                          "drilldown": explanation.get("drilldown") if explanation else None})
    sentences = [headline(subject, change, f"against the previous {_span_text(span)}"),
                 headline(subject, week_change, "week-over-week")]
    if trend.direction != "stable":
        sentences.append(f"The trend over the range is {trend.direction} (p = {trend.p_value:.3g}).")
    if anomalies:
        worst = max(anomalies, key=lambda a: abs(a["score"]))
        sentences.append(f"{len(anomalies)} anomal{'y' if len(anomalies) == 1 else 'ies'}; the worst at "
                         f"{worst['time'][:16].replace('T', ' ')} UTC: {fmt(worst['value'], m.unit)} against an "
                         f"expected {fmt(worst['expected'], m.unit)}.")
    if season and season.peak_hours:
        peaks = " and ".join(f"{h:02d}:00" for h in sorted(season.peak_hours[:2]))
        sentences.append(f"Daily peaks at {peaks} UTC.")
    return {
        "metric": m.name, "unit": m.unit, "granularity": gran, "detector": chosen,
        "time_range": {"start": _z(window.start), "end": _z(window.end)},
        "current_value": num(total), "previous_value": num(previous), "percent_change": num(change.percent),
        "direction": change.direction, "week_over_week": {"previous_value": num(last_week),
                                                          "percent_change": num(week_change.percent),
                                                          "direction": week_change.direction},
        "trend": trend.direction, "slope": num(trend.slope), "p_value": num(trend.p_value),
        "series": [{"time": _z(t), "value": num(v), "expected": num(band.expected[i]), "lower": num(band.lower[i]),
                    "upper": num(band.upper[i])}
                   for i, (t, v, keep) in enumerate(zip(times, values, inside)) if keep],
        "moving_average": [{"time": _z(t), "value": num(v)} for t, v in zip(range_times, moving)],
        "anomalies": anomalies, "anomaly_count": len(anomalies), "headline": sentences,
        "seasonality": None if season is None else {
            "hour_profile": [num(v) for v in season.hour_profile],
            "weekday_profile": [num(v) for v in season.weekday_profile],
            "peak_hours": season.peak_hours, "peak_weekdays": season.peak_weekdays,
            "daily_cycle_significant": season.daily_cycle_significant, "daily_p_value": num(season.daily_p_value)},
    }


def _span_text(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} hours"
    return f"{hours / 24:.0f} days"
