"""From totals to individual events: one level of the channel → status → template
hierarchy at a time (channel → template for a ratio, which has no value per status), with its
breadcrumb trail, and the events under any selection with keyset pagination (stable and fast
on millions of rows) and a streamed CSV export."""
from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, tuple_

from services.query.catalogue import resolve
from services.query.context import QueryContext, context_at
from services.query.engine import query_metrics, template_names
from services.query.plan import DIMENSIONS, MAX_FILTER_VALUES, parse_filters
from services.query.timerange import QueryError, iso_z, resolve_range
from services.store.ingest import CODE_PATTERN, ID_PATTERN, MAX_INT
from services.store.schema import (
    EVENT_COLUMNS,
    FAILURE_STATUSES,
    channel_label,
    notification_events,
)

HIERARCHY = ("channel", "status", "template_id")
RATIO_HIERARCHY = ("channel", "template_id")  # a ratio of statuses has no value within one status
RATIO_KINDS = ("rate", "formula")
EVENT_FIELDS = tuple(c for c in EVENT_COLUMNS if c != "latency_bucket")
SORTABLE = ("created_at", "processing_time_ms")
MAX_PAGE = 1000
CSV_CAP = 1_000_000


# Filters on raw columns that are not rolled up; the events list takes them beside DIMENSIONS.
LOOKUPS = ("user_id", "notification_id", "error_code", "provider")
REASONS = ("error_code", "provider")  # the drill levels below template, for failed and bounced events
NO_VALUE = "(none)"                    # how a filter asks for events without an error code or provider


def parse_lookups(raw: Mapping[str, object]) -> tuple[tuple[str, tuple], ...]:
    """{"user_id": "u1,u2", "error_code": ["throttled"]} → sorted, validated filter tuples.
    Ids are matched exactly; `(none)` asks for events without an error code or provider."""
    out = []
    for name, value in raw.items():
        if name not in LOOKUPS or value in (None, "", [], ()):
            continue
        values = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
        values = [v for v in values if v != ""]
        if len(values) > MAX_FILTER_VALUES:
            raise QueryError(f"{name} has {len(values)} values; at most {MAX_FILTER_VALUES} are allowed", name)
        pattern, limit = (ID_PATTERN, 100) if name in ("user_id", "notification_id") else (CODE_PATTERN, 64)
        for v in values:
            if v is None and name in REASONS:
                continue
            if not isinstance(v, str) or not (pattern.match(v) or (name in REASONS and v == NO_VALUE)):
                raise QueryError(f"{name} must be 1–{limit} characters of letters, digits and . _ : - "
                                 "(comma-separated for several)", name)
        values = [None if v == NO_VALUE else v for v in values]
        if values:
            out.append((name, tuple(sorted(set(values), key=lambda v: (v is None, v or "")))))
    return tuple(sorted(out))


def split_filters(raw: Mapping[str, object], channels: Sequence[str]) -> tuple[tuple, tuple]:
    """Dimension filters (rolled up) and lookup filters (raw only), each validated."""
    unknown = sorted(k for k in raw if k not in DIMENSIONS and k not in LOOKUPS)
    if unknown:
        raise QueryError(f"unknown filter {str(unknown[0])[:40]!r}; filters are "
                         f"{', '.join(DIMENSIONS + LOOKUPS)}", str(unknown[0])[:40])
    return (parse_filters({k: v for k, v in raw.items() if k in DIMENSIONS}, channels),
            parse_lookups({k: v for k, v in raw.items() if k in LOOKUPS}))


def where_clauses(filters: Sequence[tuple[str, tuple]]) -> list:
    """WHERE clauses on raw events for validated filters (a None value: the column is NULL)."""
    e = notification_events.c
    out = []
    for name, values in filters:
        present = [v for v in values if v is not None]
        clause = e[name].in_(present) if present else None
        if len(present) < len(values):
            clause = e[name].is_(None) if clause is None else (clause | e[name].is_(None))
        out.append(clause)
    return out


def reason_label(value: str | None, dimension: str) -> str:
    return value if value is not None else ("No error code" if dimension == "error_code" else "No provider")


def reason_counts(conn: Connection, dimension: str, start: datetime, end: datetime,
                  dims: Sequence[tuple[str, tuple]], lookups: Sequence[tuple[str, tuple]] = ()) -> dict:
    """{value of `dimension`: events} for failed and bounced events under the filters,
    read through the index over failures only."""
    e = notification_events.c
    statuses = dict(dims).get("status", FAILURE_STATUSES)
    conditions = [e.created_at >= start, e.created_at < end,
                  e.status.in_([s for s in statuses if s in FAILURE_STATUSES]),
                  *where_clauses([(d, v) for d, v in dims if d != "status"]), *where_clauses(lookups)]
    rows = conn.execute(select(e[dimension], func.count()).where(*conditions).group_by(e[dimension])).all()
    return {value: int(n) for value, n in rows}


def value_label(dimension: str, value, names: Mapping[int, str]) -> str:
    if dimension == "channel":
        return channel_label(value)
    if dimension == "status":
        return str(value).capitalize()
    if dimension in REASONS:
        return reason_label(value, dimension)
    if value is None:
        return "No template"
    return names.get(value, f"Template {value}")


def drill_path(kind: str = "count") -> tuple[str, ...]:
    """Every step a drill path can take, in order, for a metric of `kind`: channel → status →
    template → error code (for failed and bounced events). A rate or formula (a ratio of
    statuses: delivered ÷ sent) has no value within one status, so its path is channel →
    template. Provider is a level to ask for (`dimension=provider`), not a step of the path."""
    return RATIO_HIERARCHY if kind in RATIO_KINDS else HIERARCHY + ("error_code",)


def hierarchy(filters: Mapping, kind: str = "count") -> tuple[str, ...]:
    """The steps of the drill path under `filters`: the error code only below a failed or
    bounced status."""
    return tuple(d for d in drill_path(kind) if d != "error_code" or filters.get("status") in FAILURE_STATUSES)


def dimensions_allowed(filters: Mapping, kind: str = "count") -> tuple[str, ...]:
    if kind in RATIO_KINDS:
        return RATIO_HIERARCHY
    return HIERARCHY + REASONS if filters.get("status") in FAILURE_STATUSES else HIERARCHY


@dataclass(frozen=True)
class DrillValue:
    key: object                    # the channel, status, template id, error code or provider (None: without one)
    label: str
    value: float | None


@dataclass(frozen=True)
class Crumb:
    label: str
    filters: dict                  # the filters of its level, one value per dimension


@dataclass(frozen=True)
class DrillLevel:
    level: int
    dimension: str | None          # None at the last level: the events themselves
    parent_filters: dict
    data: tuple[DrillValue, ...]
    next_dimensions: tuple[str, ...]
    can_drill_down: bool
    breadcrumbs: tuple[Crumb, ...]
    metric: str
    label: str                     # the metric's, for the chart: "Delivery rate", a saved metric's display name
    unit: str


def breadcrumbs(filters: Mapping[str, object], names: Mapping[int, str]) -> tuple[Crumb, ...]:
    """All › Email › Delivered › Password reset: each crumb carries the filters of its level."""
    crumbs = [Crumb("All", {})]
    so_far: dict = {}
    for dimension in HIERARCHY + REASONS:
        if dimension in filters:
            so_far = {**so_far, dimension: filters[dimension]}
            crumbs.append(Crumb(value_label(dimension, filters[dimension], names), dict(so_far)))
    return tuple(crumbs)


def single_value_filters(raw: Mapping, channels: Sequence[str]) -> dict:
    """Drill filters hold one value per dimension; validated like chart filters. An error
    code or provider filter needs a failed or bounced status (`null` or "(none)": events
    without one)."""
    if not isinstance(raw, Mapping):
        raise QueryError('filters must be a JSON object such as {"channel": "email", "status": "bounced"}',
                         "filters")
    plain = {k: (v if isinstance(v, (str, list)) else [v]) for k, v in raw.items() if k not in REASONS}
    for k in REASONS:
        if k in raw:
            plain[k] = [NO_VALUE if raw[k] is None else raw[k]] if not isinstance(raw[k], list) else raw[k]
    dims, lookups = split_filters(plain, channels)
    parsed = dict(dims + lookups)
    for dimension, values in parsed.items():
        if len(values) != 1:
            raise QueryError(f"filters.{dimension} takes a single value when drilling down", "filters")
    out = {d: v[0] for d, v in parsed.items()}
    reasons = [k for k in out if k in REASONS]
    if reasons and out.get("status") not in FAILURE_STATUSES:
        raise QueryError(f"filters.{reasons[0]} needs status failed or bounced: only those events carry it", "filters")
    others = [k for k in out if k in LOOKUPS and k not in REASONS]
    if others:
        raise QueryError(f"filters.{others[0]} is not a drill-down level; list those events with "
                         f"/api/analytics/events?{others[0]}=…", "filters")
    return out


def drill_level(conn: Connection, filters: Mapping, start=None, end=None, dimension: str | None = None,
                metric: str = "events", *, context: QueryContext | None = None) -> DrillLevel:
    """One level: `metric` by `dimension` (by default the next one of the hierarchy) under
    `filters`. Below the last dimension there is nothing to group: `dimension` is None and
    the caller lists events. Failure reasons are not rolled up: levels by error code or
    provider, or under one, count raw failed and bounced events."""
    context = context or context_at()
    filters = single_value_filters(filters, context.channels)
    m = resolve(conn, metric)
    if m.kind in RATIO_KINDS and "status" in filters:
        raise QueryError(f"{m.name} is a ratio of statuses, so it has no value within status {filters['status']!r}; "
                         f"drill down by {' or '.join(RATIO_HIERARCHY)} without a status filter, or pick a count "
                         "such as events", "filters")
    path, allowed = hierarchy(filters, m.kind), dimensions_allowed(filters, m.kind)
    remaining = [d for d in path if d not in filters]
    if dimension is None:
        dimension = remaining[0] if remaining else None
    elif dimension == "status" and m.kind in RATIO_KINDS:
        raise QueryError(f"{m.name} is a ratio of statuses, so it has no value per status; drill down by "
                         f"{' or '.join(RATIO_HIERARCHY)}, or pick a count such as events", "dimension")
    elif dimension not in allowed:
        extra = f" ({', '.join(REASONS)} once status is failed or bounced)" if dimension in REASONS else ""
        raise QueryError(f"unknown dimension {str(dimension)[:40]!r}; drill down by {', '.join(allowed)}{extra}",
                         "dimension")
    elif dimension in filters:
        raise QueryError(f"{dimension} is already filtered to {filters[dimension]!r}; pick another dimension",
                         "dimension")
    names = template_names(conn)
    data: list[DrillValue] = []
    from_raw = dimension in REASONS or any(k in REASONS for k in filters)
    if dimension is not None and from_raw:
        if m.kind != "count" or m.numerator not in ("events", filters["status"]):
            raise QueryError(f"failure reasons are counted, not rated: drill down by {dimension} with metric events "
                             f"or {filters['status']}", "metric")
        start_t, end_t = resolve_range(start, end, context.now)
        dims = tuple((d, (v,)) for d, v in filters.items() if d in DIMENSIONS)
        reasons = tuple((d, (v,)) for d, v in filters.items() if d in REASONS)
        for key, value in reason_counts(conn, dimension, start_t, end_t, dims, reasons).items():
            data.append(DrillValue(key, value_label(dimension, key, names), value))
        data.sort(key=lambda item: (-item.value, str(item.key)))
    elif dimension is not None:
        series = query_metrics(conn, m, (dimension,), start, end, {d: [v] for d, v in filters.items()},
                               context=context)
        for point in series.points:
            key = dict(point.dims)[dimension]
            data.append(DrillValue(key, value_label(dimension, key, names), point.value))
        data.sort(key=lambda item: (item.value is None, -(item.value or 0)))
    following = tuple(d for d in remaining if d != dimension)
    return DrillLevel(level=len(filters), dimension=dimension, parent_filters=dict(filters), data=tuple(data),
                      next_dimensions=following, can_drill_down=dimension is not None,
                      breadcrumbs=breadcrumbs(filters, names), metric=metric, label=m.label, unit=m.unit)


# ---------------------------------------------------------------- events

@dataclass(frozen=True)
class EventsPage:
    events: list[dict]
    next_cursor: str | None


def encode_cursor(sort: str, descending: bool, row: Mapping) -> str:
    sort_value = row[sort] if sort == "created_at" else (row[sort] if row[sort] is not None else -1)
    payload = [sort, descending, sort_value.isoformat() if isinstance(sort_value, datetime) else sort_value,
               row["created_at"].isoformat(), row["event_id"]]
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str, descending: bool) -> tuple:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        c_sort, c_desc, sort_value, created, event_id = payload
        created_at = datetime.fromisoformat(created)
        if c_sort == "created_at":
            sort_value = datetime.fromisoformat(sort_value)
        elif not isinstance(sort_value, int) or isinstance(sort_value, bool):
            raise ValueError
        if not isinstance(event_id, str) or not ID_PATTERN.match(event_id) or created_at.tzinfo is None:
            raise ValueError
        if not isinstance(sort_value, datetime) and not -1 <= sort_value <= MAX_INT:
            raise ValueError
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise QueryError("cursor is not one this API issued; start again without it", "cursor") from None
    if (c_sort, c_desc) != (sort, descending):
        raise QueryError("cursor belongs to another sort order; start again without it", "cursor")
    return sort_value, created_at, event_id


def _events_query(filters: Sequence[tuple[str, tuple]], start: datetime, end: datetime, sort: str,
                  descending: bool):
    e = notification_events.c
    sort_column = e.created_at if sort == "created_at" else func.coalesce(e.processing_time_ms, -1)
    order_key = (sort_column, e.created_at, e.event_id) if sort != "created_at" else (e.created_at, e.event_id)
    stmt = select(*[e[c] for c in EVENT_FIELDS]).where(e.created_at >= start, e.created_at < end,
                                                       *where_clauses(filters))
    order = [c.desc() if descending else c.asc() for c in order_key]
    return stmt.order_by(*order), order_key


def resolve_sort(sort: str | None) -> tuple[str, bool]:
    """`created_at` (oldest first), `-created_at` (newest first, the default), likewise
    `processing_time_ms`."""
    sort = sort or "-created_at"
    descending = sort.startswith("-")
    name = sort.lstrip("-")
    if name not in SORTABLE:
        raise QueryError(f"sort {sort[:40]!r} is not one of {', '.join(SORTABLE)} (prefix - for descending)", "sort")
    return name, descending


def list_events(conn: Connection, filters: Mapping, start=None, end=None, limit: int = 100,
                cursor: str | None = None, sort: str | None = None, *,
                context: QueryContext | None = None) -> EventsPage:
    """One page of events under `filters`: dimensions and lookups (user, notification,
    error code, provider), several values allowed for each."""
    context = context or context_at()
    start_t, end_t = resolve_range(start, end, context.now)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise QueryError(f"limit must be a whole number from 1 to {MAX_PAGE}", "limit")
    dims, lookups = split_filters(filters, context.channels)
    parsed = dims + lookups
    name, descending = resolve_sort(sort)
    stmt, order_key = _events_query(parsed, start_t, end_t, name, descending)
    if cursor:
        after = decode_cursor(cursor, name, descending)
        after = after if name != "created_at" else after[1:]
        comparison = tuple_(*order_key) < tuple_(*after) if descending else tuple_(*order_key) > tuple_(*after)
        stmt = stmt.where(comparison)
    rows = [dict(r._mapping) for r in conn.execute(stmt.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(name, descending, rows[-1]) if more and rows else None
    return EventsPage(events=[event_record(r) for r in rows], next_cursor=next_cursor)


def count_events(conn: Connection, filters: Mapping, start=None, end=None, *,
                 context: QueryContext | None = None) -> int:
    """How many events `list_events` would page through, counted on raw events (for
    selections rollups cannot answer: a user, a failure reason)."""
    context = context or context_at()
    start_t, end_t = resolve_range(start, end, context.now)
    dims, lookups = split_filters(filters, context.channels)
    e = notification_events.c
    return int(conn.execute(select(func.count()).where(e.created_at >= start_t, e.created_at < end_t,
                                                       *where_clauses(dims + lookups))).scalar())


def event_record(row: Mapping) -> dict:
    record = {k: row[k] for k in EVENT_FIELDS}
    for key in ("created_at", "ingested_at"):
        record[key] = iso_z(row[key])
    if isinstance(record["metadata"], str):
        record["metadata"] = orjson.loads(record["metadata"])
    return record


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet will show as text, never run as a formula (OWASP CSV
    injection): text starting with = + - @ tab or carriage return gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def events_csv(read: Callable[[Callable[[Connection], Any]], Any], filters: Mapping, start=None, end=None,
               sort: str | None = None, *,
               context: QueryContext | None = None, cap: int = CSV_CAP, page: int = 5000) -> Iterator[str]:
    """CSV text in chunks: a header line, then one line per event, at most `cap` events
    (then a last line saying the export was capped). Validates before the first chunk. Each
    page is one `read(work)` (the app's db.read: on a replica, a page cut off there runs again
    on the primary; pages are keyset reads, each complete in itself)."""
    context = context or context_at()
    # validate now, so a bad request fails before streaming starts
    read(lambda conn: list_events(conn, filters, start, end, 1, None, sort, context=context))

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(EVENT_FIELDS)
        yield buffer.getvalue()
        written, cursor = 0, None
        while written < cap:
            buffer.seek(0)
            buffer.truncate()
            size = min(page, cap - written, MAX_PAGE)
            result = read(lambda conn, size=size, cursor=cursor: list_events(
                conn, filters, start, end, size, cursor, sort, context=context))
            for event in result.events:
                writer.writerow([spreadsheet_safe(orjson.dumps(event[f]).decode() if f == "metadata"
                                                  and event[f] is not None else event[f]) for f in EVENT_FIELDS])
            written += len(result.events)
            yield buffer.getvalue()
            cursor = result.next_cursor
            if cursor is None:
                return
        yield f"# export capped at {cap:,} events; narrow the filters or the time range for the rest\n"

    return chunks()
