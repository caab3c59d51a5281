"""From totals to individual events: one level of the channel → status → template
hierarchy at a time, with its breadcrumb trail, and the events under any selection with
keyset pagination (stable and fast on millions of rows) and a streamed CSV export."""
from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson
from sqlalchemy import Connection, func, select, tuple_

from services.ingest import ID_PATTERN, MAX_INT
from services.query import DIMENSIONS, parse_filters, query_metrics, resolve_metric, template_names
from services.schema import CHANNELS, EVENT_COLUMNS, channel_label, notification_events
from services.timerange import QueryError, resolve_range

HIERARCHY = ("channel", "status", "template_id")
EVENT_FIELDS = tuple(c for c in EVENT_COLUMNS if c != "latency_bucket")
SORTABLE = ("created_at", "processing_time_ms")
MAX_PAGE = 1000
CSV_CAP = 1_000_000


def value_label(dimension: str, value, names: Mapping[int, str]) -> str:
    if dimension == "channel":
        return channel_label(value)
    if dimension == "status":
        return str(value).capitalize()
    if value is None:
        return "No template"
    return names.get(value, f"Template {value}")


@dataclass(frozen=True)
class DrillLevel:
    level: int
    dimension: str | None          # None at the last level: the events themselves
    parent_filters: dict
    data: list[dict]               # [{"key", "label", "value"}]
    next_dimensions: list[str]
    can_drill_down: bool
    breadcrumbs: list[dict]        # [{"label", "filters"}]
    metric: str


def breadcrumbs(filters: Mapping[str, object], names: Mapping[int, str]) -> list[dict]:
    """All › Email › Delivered › Password reset: each crumb carries the filters of its level."""
    crumbs = [{"label": "All", "filters": {}}]
    so_far: dict = {}
    for dimension in HIERARCHY:
        if dimension in filters:
            so_far = {**so_far, dimension: filters[dimension]}
            crumbs.append({"label": value_label(dimension, filters[dimension], names), "filters": dict(so_far)})
    return crumbs


def single_value_filters(raw: Mapping, channels: Sequence[str]) -> dict:
    """Drill filters hold one value per dimension; validated like chart filters."""
    if not isinstance(raw, Mapping):
        raise QueryError('filters must be a JSON object such as {"channel": "email", "status": "bounced"}',
                         "filters")
    parsed = dict(parse_filters({k: (v if isinstance(v, (str, list)) else [v]) for k, v in raw.items()}, channels))
    for dimension, values in parsed.items():
        if len(values) != 1:
            raise QueryError(f"filters.{dimension} takes a single value when drilling down", "filters")
    return {d: v[0] for d, v in parsed.items()}


def drill_level(conn: Connection, filters: Mapping, start=None, end=None, dimension: str | None = None,
                metric: str = "events", *, now: datetime | None = None, channels: Sequence[str] = CHANNELS,
                **query_settings) -> DrillLevel:
    """One level: `metric` by `dimension` (by default the next one of the hierarchy) under
    `filters`. Below the last dimension there is nothing to group: `dimension` is None and
    the caller lists events."""
    now = now or datetime.now(timezone.utc)
    filters = single_value_filters(filters, channels)
    remaining = [d for d in HIERARCHY if d not in filters]
    if dimension is None:
        dimension = remaining[0] if remaining else None
    elif dimension not in DIMENSIONS:
        raise QueryError(f"unknown dimension {str(dimension)[:40]!r}; drill down by {', '.join(HIERARCHY)}",
                         "dimension")
    elif dimension in filters:
        raise QueryError(f"{dimension} is already filtered to {filters[dimension]!r}; pick another dimension",
                         "dimension")
    resolve_metric(conn, metric)
    names = template_names(conn)
    data: list[dict] = []
    if dimension is not None:
        series = query_metrics(conn, metric, (dimension,), start, end, {d: [v] for d, v in filters.items()},
                               now=now, channels=channels, **query_settings)
        for point in series.points:
            key = dict(point.dims)[dimension]
            data.append({"key": key, "label": value_label(dimension, key, names), "value": point.value})
        data.sort(key=lambda item: (item["value"] is None, -(item["value"] or 0)))
    following = [d for d in remaining if d != dimension]
    return DrillLevel(level=len(filters), dimension=dimension, parent_filters=dict(filters), data=data,
                      next_dimensions=following, can_drill_down=dimension is not None,
                      breadcrumbs=breadcrumbs(filters, names), metric=metric)


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


def _events_query(filters: Mapping[str, tuple], start: datetime, end: datetime, sort: str, descending: bool):
    e = notification_events.c
    sort_column = e.created_at if sort == "created_at" else func.coalesce(e.processing_time_ms, -1)
    order_key = (sort_column, e.created_at, e.event_id) if sort != "created_at" else (e.created_at, e.event_id)
    stmt = select(*[e[c] for c in EVENT_FIELDS]).where(e.created_at >= start, e.created_at < end)
    for dimension, values in filters.items():
        stmt = stmt.where(e[dimension].in_(values))
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
                cursor: str | None = None, sort: str | None = None, *, now: datetime | None = None,
                channels: Sequence[str] = CHANNELS) -> EventsPage:
    """One page of events under `filters` (several values allowed per dimension)."""
    now = now or datetime.now(timezone.utc)
    start_t, end_t = resolve_range(_text(start), _text(end), now)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise QueryError(f"limit must be a whole number from 1 to {MAX_PAGE}", "limit")
    parsed = dict(parse_filters(filters, channels))
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


def _text(value) -> str | None:
    if value in (None, ""):
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def event_record(row: Mapping) -> dict:
    record = {k: row[k] for k in EVENT_FIELDS}
    for key in ("created_at", "ingested_at"):
        record[key] = row[key].isoformat().replace("+00:00", "Z")
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


def events_csv(conn_factory, filters: Mapping, start=None, end=None, sort: str | None = None, *,
               now: datetime | None = None, channels: Sequence[str] = CHANNELS, cap: int = CSV_CAP,
               page: int = 5000) -> Iterator[str]:
    """CSV text in chunks: a header line, then one line per event, at most `cap` events
    (then a last line saying the export was capped). Validates before the first chunk."""
    now = now or datetime.now(timezone.utc)
    with conn_factory() as conn:  # validate now, so a bad request fails before streaming starts
        list_events(conn, filters, start, end, 1, None, sort, now=now, channels=channels)

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(EVENT_FIELDS)
        yield buffer.getvalue()
        written, cursor = 0, None
        while written < cap:
            buffer.seek(0)
            buffer.truncate()
            with conn_factory() as conn:
                result = list_events(conn, filters, start, end, min(page, cap - written, MAX_PAGE), cursor, sort,
                                     now=now, channels=channels)
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
