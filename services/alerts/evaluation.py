"""Alert evaluation: each rule judges every complete bucket once, in order, with the trend
detectors judging each bucket from its past only (what was known when the bucket closed);
state moves ok → firing → resolved (→ firing …), every move recorded with the numbers and
the sentence that explain it, and what must be sent queued in the same transaction.

"Once" holds with two schedulers and with repeated `evaluate-alerts` runs: a rule's result
is written only if the rule's `version` is still the one read before judging (another
evaluator, or an edit, makes the whole result void), and a rule holds at most one
transition per bucket.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.alerts.rules import AlertRule, list_rules, validated
from services.analysis import trends
from services.analysis.trend_report import HISTORY, KIND, describe, explain, read_segments
from services.query.catalogue import Metric, resolve
from services.query.context import QueryContext, context_at
from services.query.engine import first_event_time, query_long, template_names
from services.query.format import in_words
from services.query.plan import parse_filters
from services.query.timerange import STEP, floor_to, iso_z
from services.store.schema import NO_TEMPLATE, alert_deliveries, alert_rules, alert_transitions

log = logging.getLogger("analytics.alerts")

SEVERITY_SCORE = {name: threshold for threshold, name in trends.SEVERITIES}
MAX_BUCKETS_PER_RUN = 500   # a rule far behind catches up over several runs, oldest buckets first


@dataclass(frozen=True)
class Verdict:
    """One bucket judged: "breach", "clear" or "unknown" (too little history or volume)."""
    bucket: datetime
    status: str
    value: float | None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    score: float | None = None
    severity: str | None = None
    volume: float | None = None
    numerator: float | None = None   # a rate's events (delivered, …) out of `volume`
    reason: str = ""
    references: tuple[int, ...] = ()  # anomaly rules: the buckets the expectation came from


@dataclass(frozen=True)
class Transition:
    bucket: datetime
    state: str
    previous_state: str
    verdict: Verdict
    explanation: str
    drilldown: str


@dataclass
class EvaluationReport:
    rules: int = 0
    buckets: int = 0
    transitions: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # rules another evaluator or an edit got to first
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        moved = ", ".join(f"{t['rule']} {t['state']} at {t['bucket']}" for t in self.transitions) or "no transition"
        text = f"{self.rules} rules, {self.buckets} buckets judged, {moved}"
        if self.errors:
            text += "; errors: " + "; ".join(f"{k}: {v}" for k, v in self.errors.items())
        return text


def last_complete_bucket(now: datetime, granularity: str, settle: timedelta) -> datetime:
    """The newest bucket that ended at least `settle` before `now` (late events settle)."""
    return floor_to(now - settle, granularity) - STEP[granularity]


def due_buckets(rule: AlertRule, at: datetime, settle: timedelta, since: datetime | None = None,
                cap: int = MAX_BUCKETS_PER_RUN) -> list[datetime]:
    """The buckets this rule has not judged yet and may judge at `at`, oldest first. A new
    rule starts at the newest complete bucket (or at `since`, for a backfill)."""
    step = STEP[rule.granularity]
    last = last_complete_bucket(at, rule.granularity, settle)
    if rule.evaluated_through is not None:
        first = rule.evaluated_through + step
    elif since is not None:
        first = floor_to(since, rule.granularity)
    else:
        first = last
    out = []
    t = first
    while t <= last and len(out) < cap:
        out.append(t)
        t += step
    return out


# ---------------------------------------------------------------- judging (pure)

@dataclass(frozen=True)
class SeriesData:
    times: list[datetime]
    values: np.ndarray
    numerators: np.ndarray
    denominators: np.ndarray


def volume_of(metric: Metric, data: SeriesData, i: int) -> float:
    """How many events a bucket's value stands on: the count itself, or its denominator."""
    if metric.kind == "count":
        v = data.values[i]
        return float(v) if np.isfinite(v) else 0.0
    return float(data.denominators[i])


def judge_anomalies(rule: AlertRule, metric: Metric, data: SeriesData, indices: Sequence[int]) -> list[Verdict]:
    """Each bucket at `indices` judged by the trend detector from its past only."""
    kind = KIND[metric.kind]
    needed = SEVERITY_SCORE[rule.min_severity]
    out = []
    for i in indices:
        t, value = data.times[i], data.values[i]
        volume = volume_of(metric, data, i)
        if not np.isfinite(value):
            out.append(Verdict(t, "unknown", None, volume=volume, reason="no value in this bucket"))
            continue
        band = trends.detect(data.times[:i + 1], data.values[:i + 1], kind, rule.granularity,
                             numerators=data.numerators[:i + 1] if kind == "rate" else None,
                             denominators=data.denominators[:i + 1] if kind != "count" else None,
                             lookahead=False)
        numbers = dict(value=float(value), volume=volume, numerator=float(data.numerators[i]))
        if not band.judged[i] or not np.isfinite(band.score[i]):
            out.append(Verdict(t, "unknown", **numbers, reason=band.reason or "too little history to judge"))
            continue
        score = float(band.score[i])
        numbers.update(expected=float(band.expected[i]), lower=float(band.lower[i]), upper=float(band.upper[i]),
                       score=score, severity=trends.severity_of(score),
                       references=tuple(int(r) for r in band.references[i] if r >= 0))
        if volume < rule.min_volume:
            out.append(Verdict(t, "unknown", **numbers, reason=f"{volume:,.0f} events, under the minimum volume "
                                                              f"{rule.min_volume:,.0f}"))
            continue
        way = rule.direction == "both" or (rule.direction == "above") == (score > 0)
        out.append(Verdict(t, "breach" if abs(score) >= needed and way else "clear", **numbers))
    return out


def judge_threshold(rule: AlertRule, metric: Metric, data: SeriesData, indices: Sequence[int]) -> list[Verdict]:
    """A bucket breaches when it and the for_buckets − 1 before it are all past the threshold."""
    past = np.zeros(len(data.times), dtype=bool)
    known = np.zeros(len(data.times), dtype=bool)
    for i, value in enumerate(data.values):
        if np.isfinite(value) and volume_of(metric, data, i) >= rule.min_volume:
            known[i] = True
            past[i] = value > rule.threshold if rule.direction == "above" else value < rule.threshold
    out = []
    for i in indices:
        t, value = data.times[i], data.values[i]
        numbers = dict(value=float(value) if np.isfinite(value) else None, volume=volume_of(metric, data, i),
                       numerator=float(data.numerators[i]), expected=rule.threshold)
        if not known[i]:
            reason = "no value in this bucket" if not np.isfinite(value) else \
                f"under the minimum volume {rule.min_volume:,.0f}"
            out.append(Verdict(t, "unknown", **numbers, reason=reason))
            continue
        run = past[max(0, i - rule.for_buckets + 1):i + 1]
        breach = len(run) == rule.for_buckets and bool(run.all())
        out.append(Verdict(t, "breach" if breach else "clear" if not past[i] else "unknown", **numbers,
                           reason="" if breach or not past[i] else
                           f"past the threshold for fewer than {rule.for_buckets} buckets so far"))
    return out


def next_state(state: str, verdict: Verdict) -> str | None:
    """The state a verdict moves a rule to, or None when it stays."""
    if verdict.status == "breach" and state != "firing":
        return "firing"
    if verdict.status == "clear" and state == "firing":
        return "resolved"
    return None


# ---------------------------------------------------------------- reading and writing

def read_series(conn: Connection, rule: AlertRule, metric: Metric, buckets: Sequence[datetime],
                context: QueryContext) -> tuple[SeriesData, dict[datetime, int]]:
    gran, step = rule.granularity, STEP[rule.granularity]
    first = first_event_time(conn, parse_filters(rule.filters, context.channels))
    lookback = HISTORY[gran] if rule.condition == "anomaly" else step * (rule.for_buckets - 1)
    start = buckets[0] - lookback
    if first is not None:
        start = min(buckets[0], max(start, floor_to(first, gran)))
    end = buckets[-1] + step
    points = query_long(conn, rule.metric, ("time",), start, end, rule.filters, gran, context=context)
    times = [p.time for p in points]
    data_start = floor_to(first, gran) if first else end
    values = np.array([np.nan if p.value is None or p.time < data_start else p.value for p in points], dtype=float)
    data = SeriesData(times, values, np.array([p.numerator or 0.0 for p in points]),
                      np.array([p.denominator or 0.0 for p in points]))
    return data, {t: i for i, t in enumerate(times)}


def view_link(base: str, rule: AlertRule, bucket: datetime) -> str:
    """The Trends tab around the bucket: the day before it and the bucket itself."""
    step = STEP[rule.granularity]
    span = {"minute": timedelta(hours=6), "hour": timedelta(days=2), "day": timedelta(days=28)}[rule.granularity]
    params = {"tab": "trends", "range": "custom", "start": iso_z(bucket + step - span), "end": iso_z(bucket + step)}
    if rule.filters.get("channel"):
        params["channel"] = ",".join(rule.filters["channel"])
    params["metric"] = rule.metric
    return base + "?" + urlencode(params, safe=",:")


def drilldown_link(base: str, rule: AlertRule, bucket: datetime, into_channel: bool = True) -> str:
    """The Drill-down tab over the bucket, into the rule's channel when it watches one."""
    params = {"tab": "drilldown", "range": "custom", "start": iso_z(bucket), "end": iso_z(bucket + STEP[rule.granularity])}
    channels = rule.filters.get("channel") or []
    if into_channel and len(channels) == 1:
        params["drill"] = channels[0]
    return base + "?" + urlencode(params, safe=",:")


def _explain_firing(conn, rule: AlertRule, metric: Metric, data: SeriesData, index: dict, verdict: Verdict,
                    subject: str, base: str, context: QueryContext) -> tuple[str, str]:
    """The sentence and drill-down link of a rule entering "firing"."""
    unit, step = metric.unit, STEP[rule.granularity]
    link = drilldown_link(base, rule, verdict.bucket)
    if rule.condition == "threshold":
        side = "above" if rule.direction == "above" else "below"
        first = verdict.bucket - step * (rule.for_buckets - 1)
        if rule.for_buckets == 1:
            return (f"{subject[:1].upper() + subject[1:]} was {in_words(verdict.value, unit)}{_made_of(metric, verdict)} "
                    f"in the {rule.granularity} from {verdict.bucket:%Y-%m-%d %H:%M} UTC, {side} the threshold "
                    f"{in_words(rule.threshold, unit)}.", link)
        return (f"{subject[:1].upper() + subject[1:]} has been {side} the threshold {in_words(rule.threshold, unit)} for "
                f"{rule.for_buckets} {rule.granularity}s, from {first:%Y-%m-%d %H:%M} to "
                f"{verdict.bucket + step:%Y-%m-%d %H:%M} UTC; {in_words(verdict.value, unit)}{_made_of(metric, verdict)} "
                "in the last.", link)
    i = index[verdict.bucket]
    anomaly = trends.Anomaly(i, verdict.value, verdict.expected, verdict.lower, verdict.upper, verdict.score,
                             verdict.severity or rule.min_severity)
    single_template = len(rule.filters.get("template_id") or []) == 1
    if single_template:
        return (f"{subject[:1].upper() + subject[1:]} was {in_words(verdict.value, unit)} against an expected "
                f"{in_words(verdict.expected, unit)} (band {in_words(verdict.lower, unit)} to {in_words(verdict.upper, unit)}).", link)
    segments = read_segments(conn, metric, data.times, rule.filters, rule.granularity, context=context)
    segments.values[:, ~np.isfinite(data.values)] = np.nan
    several = len(rule.filters.get("channel") or context.channels) != 1
    plain = drilldown_link(base, rule, verdict.bucket, into_channel=False)
    answer = explain(metric, segments, i, np.array(verdict.references, dtype=int), anomaly, names=template_names(conn),
                     several_channels=several, subject=subject, link=plain)
    return answer["sentence"], link if answer["drilldown"] == plain else answer["drilldown"]


def _made_of(metric: Metric, verdict: Verdict) -> str:
    """" (2 delivered of 6 sent)" for a rate, so a small sample shows as one."""
    if metric.kind != "rate" or verdict.volume is None or verdict.numerator is None:
        return ""
    return f" ({in_words(verdict.numerator, 'count')} {metric.numerator} of {in_words(verdict.volume, 'count')} {metric.denominator})"


def _explain_resolved(rule: AlertRule, metric: Metric, verdict: Verdict, subject: str) -> str:
    unit = metric.unit
    value = f"{in_words(verdict.value, unit)}{_made_of(metric, verdict)} in the {rule.granularity} from " \
            f"{verdict.bucket:%Y-%m-%d %H:%M} UTC"
    subject = subject[:1].upper() + subject[1:]
    if rule.condition == "threshold":
        side = "at or below" if rule.direction == "above" else "at or above"
        return f"{subject} back to normal: {value}, {side} the threshold {in_words(rule.threshold, unit)}."
    band = f"{in_words(verdict.lower, unit)} to {in_words(verdict.upper, unit)}"
    if verdict.lower <= verdict.value <= verdict.upper:
        return f"{subject} back to normal: {value}, within the expected band ({band})."
    other_way = rule.direction != "both" and (rule.direction == "above") != (verdict.score > 0)
    how = "out of the band the other way" if other_way else \
        (f"a {verdict.severity} anomaly" if verdict.severity else "outside the band by less than an anomaly") + \
        f", under the rule's {rule.min_severity}"
    return (f"{subject} no longer a {rule.min_severity} anomaly: {value} against an expected "
            f"{in_words(verdict.expected, unit)} (band {band}), {how}.")


def judge_rule(conn: Connection, rule: AlertRule, metric: Metric, buckets: Sequence[datetime], *,
               context: QueryContext, base: str) -> tuple[list[Verdict], list[Transition]]:
    """Every due bucket's verdict, and the transitions they make, in order."""
    data, index = read_series(conn, rule, metric, buckets, context)
    indices = [index[b] for b in buckets if b in index]
    judge = judge_anomalies if rule.condition == "anomaly" else judge_threshold
    verdicts = judge(rule, metric, data, indices)
    subject = describe(metric, rule.filters.get("channel") or [])
    if rule.filters.get("template_id"):
        names = template_names(conn)
        subject += " of " + " and ".join(names.get(t, f"template {t}") if t != NO_TEMPLATE else "no template"
                                         for t in rule.filters["template_id"])
    state, transitions = rule.state, []
    for verdict in verdicts:
        moved = next_state(state, verdict)
        if moved is None:
            continue
        if moved == "firing":
            sentence, drill = _explain_firing(conn, rule, metric, data, index, verdict, subject, base, context)
        else:
            sentence, drill = _explain_resolved(rule, metric, verdict, subject), \
                drilldown_link(base, rule, verdict.bucket)
        transitions.append(Transition(verdict.bucket, moved, state, verdict, sentence, drill))
        state = moved
    return verdicts, transitions


def payload(rule: AlertRule, metric: Metric, t: Transition, base: str, recorded_at: datetime) -> dict:
    """What a webhook receives for one transition (its delivery id is added when sent)."""
    v, step = t.verdict, STEP[rule.granularity]
    return {"kind": "transition",
            "rule": {"id": rule.id, "name": rule.name, "metric": rule.metric, "metric_label": metric.label,
                     "unit": metric.unit, "filters": rule.filters, "granularity": rule.granularity,
                     "condition": rule.condition, "description": rule.describe(metric.unit)},
            "state": t.state, "previous_state": t.previous_state,
            "bucket": {"start": iso_z(t.bucket), "end": iso_z(t.bucket + step)},
            "value": v.value, "expected": v.expected, "lower": v.lower, "upper": v.upper,
            "score": None if v.score is None else round(v.score, 2), "severity": v.severity, "volume": v.volume,
            "numerator": v.numerator if metric.kind == "rate" else None,
            "explanation": t.explanation, "link": view_link(base, rule, t.bucket), "drilldown": t.drilldown,
            "recorded_at": iso_z(recorded_at)}


class _Superseded(Exception):
    """Another evaluator (or an edit) changed the rule while it was judged."""


def _commit(conn: Connection, rule: AlertRule, metric: Metric, buckets, verdicts, transitions, base: str,
            now: datetime) -> list[int]:
    last_judged = next((v for v in reversed(verdicts) if v.value is not None), None)
    state = transitions[-1].state if transitions else rule.state
    changes = {"evaluated_through": buckets[-1], "state": state, "last_error": None,
               "version": alert_rules.c.version + 1}
    if transitions:
        changes["state_since"] = transitions[-1].bucket + STEP[rule.granularity]
    if last_judged is not None:
        changes["last_value"] = last_judged.value
    done = conn.execute(update(alert_rules).where(alert_rules.c.id == rule.id, alert_rules.c.version == rule.version)
                        .values(**changes))
    if done.rowcount != 1:
        raise _Superseded()
    ids = []
    for t in transitions:
        v = t.verdict
        tid = conn.execute(insert(alert_transitions).values(
            rule_id=rule.id, bucket=t.bucket, state=t.state, previous_state=t.previous_state, recorded_at=now,
            value=v.value, expected=v.expected, lower=v.lower, upper=v.upper, score=v.score, severity=v.severity,
            explanation=t.explanation[:2000], drilldown=t.drilldown[:1000]).returning(alert_transitions.c.id)
        ).scalar_one()
        ids.append(tid)
        if rule.webhook_url and rule.notify == "immediate":
            conn.execute(insert(alert_deliveries).values(
                rule_id=rule.id, dedupe_key=f"transition:{tid}", url=rule.webhook_url,
                payload={**payload(rule, metric, t, base, now), "transition_id": tid},
                status="silenced" if rule.silenced_at(now) else "pending", attempts=0, next_attempt_at=now,
                created_at=now))
    return ids


def evaluate_due(engine: Engine, at: datetime | None = None, *, settle: timedelta = timedelta(seconds=60),
                 since: datetime | None = None, context: QueryContext | None = None, base: str = "/analytics/",
                 rule_ids: Sequence[int] | None = None) -> EvaluationReport:
    """Judge every enabled rule's due buckets as of `at` (default now). Each rule is judged
    and written on its own, so one rule's failure never stops the others."""
    context = context or context_at()
    now = context.now
    at = at or now
    report = EvaluationReport()
    with engine.connect() as conn:
        rules = list_rules(conn, enabled_only=True)
    for rule in rules:
        if rule_ids is not None and rule.id not in rule_ids:
            continue
        buckets = due_buckets(rule, at, settle, since)
        if not buckets:
            continue
        report.rules += 1
        try:
            with engine.connect() as conn:
                metric = resolve(conn, rule.metric)
                verdicts, transitions = judge_rule(conn, rule, metric, buckets, context=context, base=base)
            with engine.begin() as conn:
                _commit(conn, rule, metric, buckets, verdicts, transitions, base, now)
        except (_Superseded, IntegrityError):
            report.skipped.append(rule.name)
            continue
        except Exception as exc:  # one rule's failure is recorded on it; the others go on
            message = f"{type(exc).__name__}: {exc}"[:500]
            report.errors[rule.name] = message
            if message != rule.last_error:
                log.warning("alert rule %r could not be evaluated: %s", rule.name, message)
            with engine.begin() as conn:
                conn.execute(update(alert_rules).where(alert_rules.c.id == rule.id).values(last_error=message))
            continue
        report.buckets += len(verdicts)
        report.transitions += [{"rule": rule.name, "state": t.state, "bucket": iso_z(t.bucket),
                                "explanation": t.explanation} for t in transitions]
    return report


# ---------------------------------------------------------------- preview

PREVIEW_SPAN = {"minute": timedelta(hours=2), "hour": timedelta(days=7), "day": timedelta(days=90)}


def preview(conn: Connection, fields, *, context: QueryContext | None = None,
            settle: timedelta = timedelta(seconds=60), base: str = "/analytics/") -> dict:
    """What an unsaved (or changed) rule would have done over its recent buckets — judged
    exactly as the scheduler would, nothing recorded, nothing sent. The span is bounded by
    granularity (2 hours of minutes, 7 days of hours, 90 days of days) to stay quick."""
    context = context or context_at()
    now = context.now
    values = validated(conn, {k: v for k, v in fields.items() if k != "webhook_url"}, channels=context.channels)
    rule = AlertRule(id=0, **values, state="ok", state_since=None, evaluated_through=None, last_value=None,
                     last_error=None, version=0, created_at=now, updated_at=now)
    metric = resolve(conn, rule.metric)
    span = PREVIEW_SPAN[rule.granularity]
    buckets = due_buckets(rule, now, settle, since=last_complete_bucket(now, rule.granularity, settle) - span
                          + STEP[rule.granularity], cap=10_000)
    verdicts, moves = judge_rule(conn, rule, metric, buckets, context=context, base=base)
    fired = sum(t.state == "firing" for t in moves)
    judged = sum(v.status != "unknown" for v in verdicts)
    span_text = {"minute": "2 hours", "hour": "7 days", "day": "90 days"}[rule.granularity]
    if not judged:
        reasons = sorted({v.reason for v in verdicts if v.reason})
        sentence = (f"Not enough data: none of the last {len(verdicts):,} {rule.granularity}s could be judged"
                    + (f" ({reasons[0]})." if reasons else "."))
    else:
        sentence = (f"Over the last {span_text} ({judged:,} of {len(verdicts):,} {rule.granularity}s judged) this rule "
                    + (f"would have fired {fired} time{'s' if fired != 1 else ''}." if fired else "would not have fired."))
    return {"rule": {**{k: v for k, v in values.items() if k not in ("silenced_from", "silenced_until")},
                     "description": rule.describe(metric.unit)},
            "start": iso_z(buckets[0]) if buckets else None,
            "end": iso_z(buckets[-1] + STEP[rule.granularity]) if buckets else None,
            "buckets": len(verdicts), "judged": judged, "fired": fired, "sentence": sentence,
            "transitions": [{"bucket": iso_z(t.bucket), "state": t.state, "value": t.verdict.value,
                             "expected": t.verdict.expected, "lower": t.verdict.lower, "upper": t.verdict.upper,
                             "severity": t.verdict.severity, "explanation": t.explanation, "drilldown": t.drilldown}
                            for t in moves]}


# ---------------------------------------------------------------- digests

def digest_window(now: datetime, hour: int) -> tuple[datetime, datetime]:
    """The 24 hours the most recent digest covers: up to today's digest hour (UTC), or
    yesterday's before it."""
    today = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    end = today if now >= today else today - timedelta(days=1)
    return end - timedelta(days=1), end


def queue_digests(engine: Engine, now: datetime | None = None, *, hour: int = 8, base: str = "/analytics/") -> int:
    """One delivery per digest rule per day, listing the transitions of the 24 hours before
    the digest hour; a day without transitions sends nothing. Returns how many were queued."""
    now = now or datetime.now(timezone.utc)
    start, end = digest_window(now, hour)
    queued = 0
    with engine.connect() as conn:
        rules = [r for r in list_rules(conn, enabled_only=True) if r.notify == "daily_digest" and r.webhook_url]
    for rule in rules:
        key = f"digest:{rule.id}:{end:%Y-%m-%d}"
        with engine.begin() as conn:
            if conn.execute(select(alert_deliveries.c.id).where(alert_deliveries.c.dedupe_key == key)).first():
                continue
            rows = conn.execute(select(alert_transitions).where(
                alert_transitions.c.rule_id == rule.id, alert_transitions.c.recorded_at >= start,
                alert_transitions.c.recorded_at < end).order_by(alert_transitions.c.bucket)).all()
            if not rows:
                continue
            firing = sum(r.state == "firing" for r in rows)
            body = {"kind": "digest", "rule": {"id": rule.id, "name": rule.name, "metric": rule.metric,
                                               "filters": rule.filters, "description": rule.describe()},
                    "period": {"start": iso_z(start), "end": iso_z(end)}, "state": rule.state,
                    "summary": f"{rule.name}: {firing} time{'s' if firing != 1 else ''} firing, "
                               f"{len(rows) - firing} resolved in the 24 hours to {end:%Y-%m-%d %H:%M} UTC; "
                               f"now {rule.state}.",
                    "transitions": [{"bucket": iso_z(r.bucket), "state": r.state, "value": r.value,
                                     "expected": r.expected, "explanation": r.explanation,
                                     "drilldown": r.drilldown} for r in rows],
                    "link": view_link(base, rule, rows[-1].bucket)}
            try:
                with conn.begin_nested():
                    conn.execute(insert(alert_deliveries).values(
                        rule_id=rule.id, dedupe_key=key, url=rule.webhook_url, payload=body,
                        status="silenced" if rule.silenced_at(now) else "pending", attempts=0,
                        next_attempt_at=now, created_at=now))
            except IntegrityError:  # another scheduler queued it first
                continue
            queued += 1
    return queued


def firing_rules(conn: Connection) -> list[dict]:
    """The enabled rules firing now (the navbar's badge)."""
    rows = conn.execute(select(alert_rules.c.id, alert_rules.c.name, alert_rules.c.state_since)
                        .where(alert_rules.c.enabled.is_(True), alert_rules.c.state == "firing")
                        .order_by(alert_rules.c.state_since))
    return [{"id": r.id, "name": r.name, "since": iso_z(r.state_since) if r.state_since else None} for r in rows]
