"""One user, one notification, one failure reason: the questions rollups cannot answer.

Users and notifications are high-cardinality, so they are never rolled up: everything
here reads raw events, through the lookup indexes (by user and time, by notification:
dialect.LOOKUP_INDEXES) and the index over failures only (migration 0006), within the raw
retention window.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import Connection, case, func, literal, select, text
from sqlalchemy.exc import OperationalError

from services.analysis.drilldown import EVENT_FIELDS, event_record, split_filters, where_clauses
from services.query.catalogue import CATALOGUE, Metric
from services.query.context import QueryContext, context_at
from services.query.engine import query_metrics, template_names
from services.query.timerange import QueryError, iso_z, resolve_range
from services.store import dialect
from services.store.ingest import ID_PATTERN
from services.store.schema import FAILURE_STATUSES, STATUSES, channel_label, notification_events

# ---------------------------------------------------------------- one notification

STEP_ORDER = {s: i for i, s in enumerate(STATUSES)}


@dataclass(frozen=True)
class Lifecycle:
    notification_id: str
    events: list[dict]     # in lifecycle order
    steps: list[dict]      # [{"from", "to", "seconds"}] between consecutive events
    summary: dict | None   # channel, template, user, outcome, error code, provider; None when unknown


def lifecycle(conn: Connection, notification_id: str) -> Lifecycle:
    """Every stored event of one notification, in order (sent → outcome → opened → clicked),
    with the time between steps. An id nothing carries answers an empty lifecycle."""
    if not isinstance(notification_id, str) or not ID_PATTERN.match(notification_id):
        raise QueryError("notification_id must be 1–100 characters of letters, digits and . _ : -",
                         "notification_id")
    e = notification_events.c
    rows = [dict(r._mapping) for r in conn.execute(
        select(*[e[c] for c in EVENT_FIELDS]).where(e.notification_id == notification_id))]
    rows.sort(key=lambda r: (r["created_at"], STEP_ORDER.get(r["status"], 99), r["event_id"]))
    if not rows:
        return Lifecycle(notification_id, [], [], None)
    steps = [{"from": a["status"], "to": b["status"],
              "seconds": round((b["created_at"] - a["created_at"]).total_seconds(), 3)}
             for a, b in zip(rows, rows[1:])]
    names = template_names(conn)
    outcome = next((r for r in rows if r["status"] in ("delivered",) + FAILURE_STATUSES), None)
    statuses = [r["status"] for r in rows]
    template = rows[0]["template_id"]
    summary = {
        "channel": rows[0]["channel"], "template_id": template,
        "template_name": names.get(template) if template is not None else None,
        "user_id": next((r["user_id"] for r in rows if r["user_id"]), None),
        "outcome": outcome["status"] if outcome else None,
        "error_code": outcome["error_code"] if outcome else None,
        "provider": next((r["provider"] for r in rows if r["provider"]), None),
        "sent_at": iso_z(next((r["created_at"] for r in rows if r["status"] == "sent"), None)),
        "reached": statuses[-1],
        "missing": [s for s in ("sent",) if s not in statuses] + ([] if outcome else ["outcome"]),
    }
    return Lifecycle(notification_id, [event_record(r) for r in rows], steps, summary)


# ---------------------------------------------------------------- ranking users

MAX_USER_RANGE = timedelta(days=7)     # users are ranked from raw events: a bounded range
USER_RANKING_TIMEOUT_S = 10            # and a bounded time (Postgres statement timeout)
MAX_USERS = 500
DEFAULT_MIN_VOLUME = 5
RANKABLE = tuple(name for name, m in CATALOGUE.items() if m.kind in ("count", "rate"))


def rankable_metric(name: str | None) -> Metric:
    metric = CATALOGUE.get(name or "")
    if metric is None or metric.name not in RANKABLE:
        raise QueryError(f"metric {str(name)[:40]!r} cannot rank users; rankable metrics: {', '.join(RANKABLE)}",
                         "metric")
    return metric


def _status_count(status: str):
    e = notification_events.c
    return func.count() if status == "events" else func.count().filter(e.status == status)


def rank_users(conn: Connection, metric: str | None, start=None, end=None, filters: Mapping | None = None,
               order: str | None = None, limit: int = 20, min_volume: float | None = None, *,
               context: QueryContext | None = None) -> dict:
    """Users ranked by a count or rate metric over [start, end) (at most MAX_USER_RANGE),
    computed from raw events. Rates rank only users with at least `min_volume` events in
    their denominator. `order` is `worst` (the default: most failures, lowest delivery
    rate), `best`, `asc` or `desc`."""
    context = context or context_at()
    now, channels = context.now, context.channels
    m = rankable_metric(metric)
    start_t, end_t = resolve_range(start, end, now)
    if end_t - start_t > MAX_USER_RANGE:
        raise QueryError(f"users are ranked from raw events over at most {MAX_USER_RANGE.days} days; this range "
                         f"holds {(end_t - start_t) / timedelta(days=1):.1f} days. Narrow start/end.", "start")
    dims, lookups = split_filters(filters or {}, channels)
    if any(name == "user_id" for name, _ in lookups):
        raise QueryError("user_id cannot filter a ranking of users; ask /api/analytics/users/<user_id>", "user_id")
    if m.kind == "rate" and any(name == "status" for name, _ in dims):
        raise QueryError(f"{m.name} divides {m.numerator} by {m.denominator} events; filtered by status it means "
                         "nothing. Drop status, or rank by a count metric.", "status")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_USERS:
        raise QueryError(f"limit must be a whole number from 1 to {MAX_USERS}", "limit")
    order = order or "worst"
    if order not in ("worst", "best", "asc", "desc"):
        raise QueryError("order must be worst, best, asc or desc", "order")
    ascending = order == "asc" or (order in ("worst", "best") and (m.better == "higher") == (order == "worst"))
    if m.kind == "rate":
        min_volume = DEFAULT_MIN_VOLUME if min_volume is None else min_volume
    elif min_volume is not None:
        raise QueryError("min_volume applies to rates only (the events behind each user's rate)", "min_volume")
    e = notification_events.c
    rate = m.kind == "rate"
    # one pass over the range: each user's numerator and volume, then — over every user, before
    # the minimum volume and the limit apply — how many qualify and the totals
    per_user = select(e.user_id, _status_count(m.numerator).label("num"),
                      _status_count(m.denominator if rate else m.numerator).label("volume")).where(
        e.created_at >= start_t, e.created_at < end_t, e.user_id.is_not(None),
        *where_clauses(dims), *where_clauses(lookups)).group_by(e.user_id).subquery()
    value = case((per_user.c.volume > 0, per_user.c.num * literal(100.0) / per_user.c.volume), else_=None) \
        if rate else per_user.c.num
    least = min_volume if rate else 0
    windowed = select(per_user.c.user_id, per_user.c.num, per_user.c.volume, value.label("value"),
                      func.count().filter(per_user.c.volume >= least).over().label("ranked"),
                      func.sum(per_user.c.num).over().label("total_num"),
                      func.sum(per_user.c.volume).over().label("total_volume"),
                      func.count().over().label("users")).subquery()
    ordering = windowed.c.value.asc() if ascending else windowed.c.value.desc()
    ranking = select(windowed).where(windowed.c.volume >= least).order_by(
        ordering, windowed.c.volume.desc(), windowed.c.user_id).limit(limit)
    started = datetime.now(timezone.utc)
    try:
        if dialect.is_postgres(conn):
            conn.execute(text(f"SET LOCAL statement_timeout = {USER_RANKING_TIMEOUT_S * 1000}"))
        rows = conn.execute(ranking).all()
        if rows:
            first = rows[0]
            ranked_users, users, num, volume = first.ranked, first.users, first.total_num, first.total_volume
        else:  # nobody qualifies: the totals still describe the range
            ranked_users, (users, num, volume) = 0, conn.execute(select(
                func.count(), func.sum(per_user.c.num), func.sum(per_user.c.volume))).one()
    except OperationalError as exc:
        if "statement timeout" not in str(exc):
            raise
        raise QueryError(f"ranking users took longer than {USER_RANKING_TIMEOUT_S} s; narrow the range or filter a "
                         "channel or template", "start") from None
    elapsed_ms = (datetime.now(timezone.utc) - started).total_seconds() * 1000
    return {
        "metric": m.name, "label": m.label, "unit": m.unit, "order": "asc" if ascending else "desc",
        "users": [{"rank": i + 1, "user_id": r.user_id, "value": _plain(r.value), "volume": int(r.volume)}
                  for i, r in enumerate(rows)],
        "overall": {"value": (_plain(num) * 100.0 / float(volume) if volume else None) if rate else _plain(num or 0),
                    "volume": int(volume or 0), "users": int(users or 0)},
        "metadata": {
            "start": iso_z(start_t), "end": iso_z(end_t), "source": "raw", "rolled_up": False,
            "why": "users are a high-cardinality dimension: they are not rolled up, so rankings read raw events",
            "users_ranked": int(ranked_users or 0),
            "min_volume": min_volume, "volume_of": m.denominator if m.kind == "rate" else m.numerator,
            "max_range_days": MAX_USER_RANGE.days, "timeout_seconds": USER_RANKING_TIMEOUT_S,
            "elapsed_ms": round(elapsed_ms, 1),
            "filters": {name: list(values) for name, values in dims + lookups},
        },
    }


def _plain(value) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------- one user

MAX_USER_NOTIFICATIONS = 200
SUCCESS = ("delivery_rate", "open_rate", "click_rate")


def user_activity(conn: Connection, user_id: str, start=None, end=None, *, context: QueryContext | None = None,
                  limit: int = MAX_USER_NOTIFICATIONS) -> dict:
    """One user's notifications over [start, end) (newest first, at most `limit`), each with
    its lifecycle, and their success rates per channel beside the channel's own."""
    context = context or context_at()
    now, channels = context.now, context.channels
    if not isinstance(user_id, str) or not ID_PATTERN.match(user_id):
        raise QueryError("user_id must be 1–100 characters of letters, digits and . _ : -", "user_id")
    start_t, end_t = resolve_range(start, end, now)
    e = notification_events.c
    rows = conn.execute(select(e.notification_id, e.created_at, e.status, e.channel, e.template_id, e.error_code,
                               e.provider, e.processing_time_ms, e.event_id)
                        .where(e.user_id == user_id, e.created_at >= start_t, e.created_at < end_t)
                        .order_by(e.created_at.desc())).all()
    names = template_names(conn)
    by_note: dict[str, list] = {}
    for r in rows:
        by_note.setdefault(r.notification_id or f"event:{r.event_id}", []).append(r)
    notes = []
    for nid, events in by_note.items():
        events.sort(key=lambda r: (r.created_at, STEP_ORDER.get(r.status, 99)))
        outcome = next((r for r in events if r.status in ("delivered",) + FAILURE_STATUSES), None)
        first = events[0]
        notes.append({
            "notification_id": None if nid.startswith("event:") else nid, "channel": first.channel,
            "template_id": first.template_id,
            "template_name": names.get(first.template_id) if first.template_id is not None else None,
            "first_at": iso_z(first.created_at), "outcome": outcome.status if outcome else None,
            "error_code": outcome.error_code if outcome else None,
            "provider": next((r.provider for r in events if r.provider), None),
            "steps": [{"status": r.status, "time": iso_z(r.created_at),
                       "after_seconds": round((r.created_at - first.created_at).total_seconds(), 3)} for r in events],
        })
    notes.sort(key=lambda n: n["first_at"], reverse=True)
    counts: dict[str, dict[str, int]] = {}
    for r in rows:
        per = counts.setdefault(r.channel, dict.fromkeys(STATUSES, 0))
        per[r.status] = per.get(r.status, 0) + 1
    comparison = []
    seen = [c for c in channels if c in counts]
    everyone: dict[tuple[str, str], float] = {}
    if seen:  # every channel's counts by status, from the rollups, in one read
        for p in query_metrics(conn, "events", ("channel", "status"), start_t, end_t, {"channel": seen},
                               context=context).points:
            dims = dict(p.dims)
            everyone[(dims["channel"], dims["status"])] = p.value or 0.0
    for channel in seen:
        for name in SUCCESS:
            m = CATALOGUE[name]
            num, den = counts[channel][m.numerator], counts[channel][m.denominator]
            all_num, all_den = everyone.get((channel, m.numerator), 0.0), everyone.get((channel, m.denominator), 0.0)
            comparison.append({
                "channel": channel, "channel_label": channel_label(channel), "metric": name, "label": m.label,
                "numerator": m.numerator, "denominator": m.denominator,
                "user_value": num * 100.0 / den if den else None, "user_numerator": num, "user_denominator": den,
                "channel_value": all_num * 100.0 / all_den if all_den else None,
                "channel_denominator": all_den or None})
    return {"user_id": user_id, "start": iso_z(start_t), "end": iso_z(end_t), "events": len(rows),
            "notifications": notes[:limit], "notification_count": len(notes), "truncated": len(notes) > limit,
            "by_channel": [{"channel": c, "channel_label": channel_label(c), **counts[c]}
                           for c in channels if c in counts],
            "comparison": comparison,
            "metadata": {"source": "raw", "rolled_up": False,
                         "why": "users are a high-cardinality dimension: they are not rolled up"}}


# ---------------------------------------------------------------- failure reasons

def failures_by_bucket(conn: Connection, granularity: str, start: datetime, end: datetime, statuses: Sequence[str],
                       dims: Sequence[tuple[str, tuple]]) -> dict[tuple, int]:
    """{(bucket, channel, error_code): events} of the given failure statuses."""
    e = notification_events.c
    bucket = dialect.time_bucket(conn, granularity, e.created_at).label("bucket")
    rows = conn.execute(select(bucket, e.channel, e.error_code, func.count())
                        .where(e.created_at >= start, e.created_at < end, e.status.in_(list(statuses)),
                               *where_clauses([(d, v) for d, v in dims if d != "status"]))
                        .group_by(bucket, e.channel, e.error_code)).all()
    return {(b, c, code): int(n) for b, c, code, n in rows}


def reason_shares(now: Mapping[tuple, int], usual: Mapping[tuple, float]) -> list[dict]:
    """Which reasons carry the extra failures of one bucket: each (channel, code)'s count
    against its usual count (the mean over the detector's reference buckets), and its share
    of the extra events (the positive differences), largest first. Pure."""
    keys = set(now) | set(usual)
    rows = [{"channel": k[0], "error_code": k[1], "actual": float(now.get(k, 0)), "usual": float(usual.get(k, 0.0)),
             "extra": float(now.get(k, 0) - usual.get(k, 0.0))} for k in keys]
    total = sum(r["extra"] for r in rows if r["extra"] > 0)
    for r in rows:
        r["share_percent"] = r["extra"] * 100.0 / total if total > 0 and r["extra"] > 0 else 0.0
    rows.sort(key=lambda r: (-r["extra"], r["channel"], r["error_code"] or ""))
    return [r for r in rows if r["extra"] > 0]


def usual_counts(counts: Mapping[tuple, int], times: Sequence[datetime], refs: np.ndarray) -> dict[tuple, float]:
    """The mean count per (channel, code) over the reference buckets `refs` (indexes into times)."""
    chosen = [times[int(j)] for j in refs if j >= 0]
    if not chosen:
        return {}
    picked = set(chosen)
    sums: dict[tuple, float] = {}
    for (bucket, channel, code), n in counts.items():
        if bucket in picked:
            sums[(channel, code)] = sums.get((channel, code), 0.0) + n
    return {k: v / len(chosen) for k, v in sums.items()}


def at_bucket(counts: Mapping[tuple, int], bucket: datetime) -> dict[tuple, int]:
    return {(c, code): n for (b, c, code), n in counts.items() if b == bucket}


FAILURE_METRICS = {"delivery_rate": FAILURE_STATUSES, "delivered": FAILURE_STATUSES,
                   "failure_rate": ("failed",), "failed": ("failed",),
                   "bounce_rate": ("bounced",), "bounced": ("bounced",)}


def failure_statuses_behind(metric: Metric, difference: float) -> tuple[str, ...]:
    """The failure statuses whose rise explains a move of `metric` in this direction (none
    for a move in the good direction, or for metrics failures do not drive)."""
    statuses = FAILURE_METRICS.get(metric.name, ())
    if not statuses:
        return ()
    bad = difference < 0 if metric.name.startswith("deliver") else difference > 0
    return statuses if bad else ()
