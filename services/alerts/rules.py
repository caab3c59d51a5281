"""Alert rules: what to watch and when to tell. Stored, validated on every save like metric
formulas, with every refusal naming its field. Evaluation lives in services.alerts.evaluation."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, delete, func, insert, select, update

from services.alerts import webhooks
from services.analysis.trends import SEVERITIES
from services.query.catalogue import CATALOGUE, Metric, resolve
from services.query.plan import parse_filters
from services.query.timerange import GRANULARITIES, NotFound, QueryError, iso_z, parse_time
from services.store.schema import CHANNELS, alert_deliveries, alert_rules, alert_transitions

CONDITIONS = ("anomaly", "threshold")
DIRECTIONS = ("above", "below", "both")
SEVERITY_NAMES = tuple(name for _, name in reversed(SEVERITIES))  # low, medium, high
NOTIFY = ("immediate", "daily_digest")
STATES = ("ok", "firing", "resolved")
MAX_RULES = 200
MAX_FOR_BUCKETS = 60
FIELDS = ("name", "metric", "channel", "status", "template_id", "granularity", "condition", "direction",
          "min_severity", "threshold", "for_buckets", "min_volume", "webhook_url", "notify", "silenced_from",
          "silenced_until", "enabled")
DEFAULTS = {"granularity": "hour", "direction": "both", "min_severity": "medium", "for_buckets": 1,
            "min_volume": 0.0, "notify": "immediate", "enabled": True}


@dataclass(frozen=True)
class AlertRule:
    id: int
    name: str
    metric: str
    filters: dict
    granularity: str
    condition: str
    direction: str
    min_severity: str | None
    threshold: float | None
    for_buckets: int
    min_volume: float
    webhook_url: str | None
    notify: str
    silenced_from: datetime | None
    silenced_until: datetime | None
    enabled: bool
    state: str
    state_since: datetime | None
    evaluated_through: datetime | None
    last_value: float | None
    last_error: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    def silenced_at(self, when: datetime) -> bool:
        return (self.silenced_until is not None and when < self.silenced_until
                and (self.silenced_from is None or when >= self.silenced_from))

    def describe(self, unit: str | None = None) -> str:
        """The condition in words: "anomaly of severity medium or more, either way", "below
        80 % for 3 consecutive hours" (`unit`: the metric's, when known)."""
        if self.condition == "anomaly":
            way = {"both": "either way", "above": "above the expected band", "below": "below the expected band"}
            return f"anomaly of severity {self.min_severity} or more, {way[self.direction]}"
        unit = unit or (CATALOGUE[self.metric].unit if self.metric in CATALOGUE else None)
        value = f"{self.threshold:,g}" + {"%": " %", "ms": " ms", "count": " events"}.get(unit or "", "")
        span = f"for {self.for_buckets} consecutive {self.granularity}s" if self.for_buckets > 1 \
            else f"in {'an' if self.granularity == 'hour' else 'a'} {self.granularity}"
        return f"{self.direction} {value} {span}"

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "metric": self.metric, **{d: ",".join(map(str, v))
                for d, v in self.filters.items()}, "filters": self.filters, "granularity": self.granularity,
                "condition": self.condition, "direction": self.direction, "min_severity": self.min_severity,
                "threshold": self.threshold, "for_buckets": self.for_buckets, "min_volume": self.min_volume,
                "webhook_url": self.webhook_url, "notify": self.notify, "silenced_from": iso_z(self.silenced_from),
                "silenced_until": iso_z(self.silenced_until), "enabled": self.enabled, "state": self.state,
                "state_since": iso_z(self.state_since), "evaluated_through": iso_z(self.evaluated_through),
                "last_value": self.last_value, "last_error": self.last_error, "description": self.describe(),
                "created_at": iso_z(self.created_at), "updated_at": iso_z(self.updated_at)}


def _rule(row) -> AlertRule:
    return AlertRule(**row._mapping)


def list_rules(conn: Connection, enabled_only: bool = False) -> list[AlertRule]:
    query = select(alert_rules).order_by(alert_rules.c.name)
    if enabled_only:
        query = query.where(alert_rules.c.enabled.is_(True))
    return [_rule(r) for r in conn.execute(query)]


def parse_rule_id(value) -> int:
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise QueryError(f"alert id {text[:20]!r} is not a rule id: ids are whole numbers", "id")
    return int(text)


def get_rule(conn: Connection, rule_id) -> AlertRule:
    rid = parse_rule_id(rule_id)
    row = conn.execute(select(alert_rules).where(alert_rules.c.id == rid)).first()
    if row is None:
        raise NotFound(f"no alert rule with id {rid}", "id")
    return _rule(row)


# ---------------------------------------------------------------- validation

def _number(value, field: str, low: float, high: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise QueryError(f"{field} must be {what}", field)
    return float(value)


def _choice(value, field: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise QueryError(f"{field} must be one of {', '.join(allowed)}, got {str(value)[:40]!r}", field)
    return value


def _time_or_none(value, field: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise QueryError(f"{field} must be an ISO datetime such as 2026-11-28T09:00:00Z, or null", field)
    return parse_time(value, datetime.now(timezone.utc), field)


def threshold_bounds(metric: Metric) -> tuple[float, float, str]:
    """The values a threshold on `metric` can take, and how to say so."""
    if metric.unit == "%" and metric.kind == "rate":
        return 0.0, 100.0, "a percentage from 0 to 100"
    if metric.unit in ("count", "ms") or metric.kind in ("count", "average", "quantile"):
        return 0.0, 1e15, f"a number of {'events' if metric.unit == 'count' else 'milliseconds'} from 0 up"
    return -1e15, 1e15, "a finite number"


def validated(conn: Connection, fields: Mapping, *, channels: Sequence[str] = CHANNELS,
              allowlist: Sequence[str] = ()) -> dict:
    """The stored columns of a rule from what a client sent (every field checked, the first
    problem raised as a QueryError naming its field)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise QueryError(f"unknown field {unknown[0][:40]!r}; fields are {', '.join(FIELDS)}", unknown[0][:40])
    values = {**DEFAULTS, **{k: v for k, v in fields.items() if v is not None or k in ("threshold", "webhook_url",
                                                                                       "silenced_from",
                                                                                       "silenced_until")}}
    name = values.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100 or "\x00" in name:
        raise QueryError("name is required: text of 1 to 100 characters", "name")
    metric_name = values.get("metric")
    if not isinstance(metric_name, str) or not metric_name:
        raise QueryError("metric is required: a catalogue metric (delivery_rate, sent, …) or a saved custom "
                         "metric", "metric")
    metric = resolve(conn, metric_name)
    raw_filters = {d: values[d] for d in ("channel", "status", "template_id") if values.get(d) not in (None, "")}
    filters = parse_filters(raw_filters, channels)
    if metric.kind == "rate" and any(d == "status" for d, _ in filters):
        raise QueryError(f"{metric.name} divides {metric.numerator} by {metric.denominator} events; a status "
                         "filter would leave one status and make the rate mean nothing", "status")
    granularity = _choice(values["granularity"], "granularity", GRANULARITIES)
    condition = _choice(values.get("condition"), "condition", CONDITIONS)
    direction = _choice(values["direction"], "direction", DIRECTIONS)
    for_buckets = values["for_buckets"]
    if isinstance(for_buckets, bool) or not isinstance(for_buckets, int) or not 1 <= for_buckets <= MAX_FOR_BUCKETS:
        raise QueryError(f"for_buckets must be a whole number of buckets from 1 to {MAX_FOR_BUCKETS}", "for_buckets")
    min_volume = _number(values["min_volume"], "min_volume", 0, 1e12, "a number of events from 0 up")
    threshold = values.get("threshold")
    severity = values.get("min_severity")
    if condition == "anomaly":
        severity = _choice(severity, "min_severity", SEVERITY_NAMES)
        if threshold is not None:
            raise QueryError("threshold belongs to threshold rules; an anomaly rule is judged against the "
                             "metric's expected band (leave threshold out, or set condition to threshold)",
                             "threshold")
        if for_buckets != 1:
            raise QueryError("for_buckets belongs to threshold rules; an anomaly rule fires on the first "
                             "anomalous bucket", "for_buckets")
    else:
        severity = None
        if direction == "both":
            raise QueryError("a threshold rule needs direction above or below", "direction")
        if threshold is None:
            raise QueryError("threshold is required for a threshold rule", "threshold")
        low, high, what = threshold_bounds(metric)
        threshold = _number(threshold, "threshold", -1e15, 1e15, what)
        if not low <= threshold <= high:
            raise QueryError(f"{metric.name} is {what}; a threshold of {threshold:g} is outside it", "threshold")
        if (direction == "above" and threshold >= high) or (direction == "below" and threshold <= low):
            raise QueryError(f"{metric.name} is never {direction} {threshold:g}: pick a threshold with room "
                             f"{direction} it", "threshold")
    url = values.get("webhook_url")
    if url in ("", None):
        url = None
    else:
        problem = webhooks.url_problem(url, allowlist)
        if problem:
            raise QueryError(problem, "webhook_url")
    notify = _choice(values["notify"], "notify", NOTIFY)
    if not isinstance(values["enabled"], bool):
        raise QueryError("enabled must be true or false", "enabled")
    silenced_from = _time_or_none(values.get("silenced_from"), "silenced_from")
    silenced_until = _time_or_none(values.get("silenced_until"), "silenced_until")
    if silenced_from is not None and silenced_until is None:
        raise QueryError("silenced_from needs silenced_until: a silence ends at a set time", "silenced_until")
    if silenced_from is not None and silenced_until <= silenced_from:
        raise QueryError("silenced_until must be after silenced_from", "silenced_until")
    return {"name": name.strip(), "metric": metric.name,
            "filters": {d: list(v) for d, v in filters}, "granularity": granularity, "condition": condition,
            "direction": direction, "min_severity": severity, "threshold": threshold, "for_buckets": for_buckets,
            "min_volume": min_volume, "webhook_url": url, "notify": notify, "silenced_from": silenced_from,
            "silenced_until": silenced_until, "enabled": values["enabled"]}


# ---------------------------------------------------------------- writes

def _name_taken(conn: Connection, name: str, other_than: int | None = None) -> bool:
    query = select(alert_rules.c.id).where(alert_rules.c.name == name)
    if other_than is not None:
        query = query.where(alert_rules.c.id != other_than)
    return conn.execute(query).first() is not None


def create_rule(conn: Connection, fields: Mapping, *, channels: Sequence[str] = CHANNELS,
                allowlist: Sequence[str] = (), now: datetime | None = None) -> AlertRule:
    if not isinstance(fields, Mapping):
        raise QueryError("send a JSON object with name, metric, condition and the condition's fields", "body")
    values = validated(conn, fields, channels=channels, allowlist=allowlist)
    if _name_taken(conn, values["name"]):
        raise QueryError(f"an alert rule named {values['name']!r} exists; edit it or pick another name", "name")
    count = conn.execute(select(func.count()).select_from(alert_rules)).scalar()
    if count >= MAX_RULES:
        raise QueryError(f"there are already {count} alert rules, the most allowed; delete unused ones first", "name")
    now = now or datetime.now(timezone.utc)
    rid = conn.execute(insert(alert_rules).values(**values, state="ok", state_since=now, evaluated_through=None,
                                                  version=1, created_at=now, updated_at=now)
                       .returning(alert_rules.c.id)).scalar_one()
    return get_rule(conn, rid)


# what an edit keeps from the rule's history: a change to what is judged starts it afresh
JUDGEMENT = ("metric", "filters", "granularity", "condition", "direction", "min_severity", "threshold",
             "for_buckets", "min_volume")


def update_rule(conn: Connection, rule_id, fields: Mapping, *, channels: Sequence[str] = CHANNELS,
                allowlist: Sequence[str] = (), now: datetime | None = None) -> AlertRule:
    """Change some fields (the others are kept). A change to what is judged resets the state
    to ok, judged afresh from the next complete bucket on; a change of name, webhook,
    silence or delivery keeps it."""
    current = get_rule(conn, rule_id)
    if not isinstance(fields, Mapping):
        raise QueryError("send a JSON object with the fields to change", "body")
    merged = {k: getattr(current, k) for k in FIELDS if hasattr(current, k)}
    merged.update(silenced_from=iso_z(current.silenced_from), silenced_until=iso_z(current.silenced_until),
                  **current.filters)
    merged.update(fields)
    if merged.get("condition") == "anomaly":  # switching to anomaly drops what only thresholds use
        merged.setdefault("min_severity", None)
        merged["min_severity"] = merged["min_severity"] or DEFAULTS["min_severity"]
        if "threshold" not in fields:
            merged["threshold"] = None
        if "for_buckets" not in fields:
            merged["for_buckets"] = 1
    values = validated(conn, merged, channels=channels, allowlist=allowlist)
    if _name_taken(conn, values["name"], other_than=current.id):
        raise QueryError(f"an alert rule named {values['name']!r} exists; pick another name", "name")
    now = now or datetime.now(timezone.utc)
    reset = any(values[k] != getattr(current, k) for k in JUDGEMENT)
    # judged afresh from the next bucket on (a bucket is never judged twice)
    extra = {"state": "ok", "state_since": now, "last_value": None, "last_error": None} if reset else {}
    conn.execute(update(alert_rules).where(alert_rules.c.id == current.id)
                 .values(**values, **extra, version=alert_rules.c.version + 1, updated_at=now))
    return get_rule(conn, current.id)


def delete_rule(conn: Connection, rule_id) -> None:
    rule = get_rule(conn, rule_id)
    for table in (alert_deliveries, alert_transitions):
        conn.execute(delete(table).where(table.c.rule_id == rule.id))
    conn.execute(delete(alert_rules).where(alert_rules.c.id == rule.id))


def history(conn: Connection, rule_id: int, limit: int = 100) -> list[dict]:
    rows = conn.execute(select(alert_transitions).where(alert_transitions.c.rule_id == rule_id)
                        .order_by(alert_transitions.c.bucket.desc()).limit(limit))
    return [{**{str(k): v for k, v in r._mapping.items() if k not in ("bucket", "recorded_at", "rule_id")},
             "bucket": iso_z(r.bucket), "recorded_at": iso_z(r.recorded_at)} for r in rows]


def deliveries(conn: Connection, rule_id: int, limit: int = 20) -> list[dict]:
    rows = conn.execute(select(alert_deliveries.c.id, alert_deliveries.c.dedupe_key, alert_deliveries.c.status,
                               alert_deliveries.c.attempts, alert_deliveries.c.next_attempt_at,
                               alert_deliveries.c.last_error, alert_deliveries.c.last_status_code,
                               alert_deliveries.c.created_at, alert_deliveries.c.sent_at)
                        .where(alert_deliveries.c.rule_id == rule_id)
                        .order_by(alert_deliveries.c.id.desc()).limit(limit))
    out = []
    for r in rows:
        item = {str(k): v for k, v in r._mapping.items()}
        item["kind"] = item.pop("dedupe_key").split(":")[0]
        for key in ("next_attempt_at", "created_at", "sent_at"):
            item[key] = iso_z(item[key])
        if item["status"] != "pending":
            item["next_attempt_at"] = None
        out.append(item)
    return out


@dataclass(frozen=True)
class FiringSpan:
    """One stretch during which a rule fired: from the first bucket judged firing to the
    first judged back to normal (None while it still fires)."""
    rule_id: int
    name: str
    start: datetime
    end: datetime | None


def firing_spans(conn: Connection, metric: str, start: datetime, end: datetime) -> list[FiringSpan]:
    """When the rules watching `metric` fired, for the stretches that overlap [start, end),
    oldest first (the incidents the Overview's time chart marks)."""
    names = dict(conn.execute(select(alert_rules.c.id, alert_rules.c.name).where(alert_rules.c.metric == metric)).all())
    if not names:
        return []
    rows = conn.execute(select(alert_transitions.c.rule_id, alert_transitions.c.bucket, alert_transitions.c.state)
                        .where(alert_transitions.c.rule_id.in_(names))
                        .order_by(alert_transitions.c.rule_id, alert_transitions.c.bucket))
    spans, since = [], {}
    for rule_id, bucket, state in rows:
        if state == "firing":
            since.setdefault(rule_id, bucket)
        elif rule_id in since:
            spans.append(FiringSpan(rule_id, names[rule_id], since.pop(rule_id), bucket))
    spans += [FiringSpan(rule_id, names[rule_id], began, None) for rule_id, began in since.items()]
    return sorted((s for s in spans if s.start < end and (s.end is None or s.end > start)),
                  key=lambda s: (s.start, s.name))
