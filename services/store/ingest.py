"""Validate raw lifecycle events and write them in bulk, de-duplicated on
(created_at, event_id).

One service, three doors: `POST /api/events`, `flask ingest FILE` and this module.
Each batch also writes what it added, pre-aggregated by minute, for the rollup to fold.
"""
from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import orjson
from sqlalchemy import Connection, insert, update

from services.store import dialect, latency
from services.store.schema import (
    CHANNELS,
    EVENT_COLUMNS,
    FAILURE_STATUSES,
    STATUSES,
    late_marks,
    rollup_invalidations,
    rollup_state,
)

MAX_FUTURE = timedelta(minutes=5)
MAX_METADATA_BYTES = 4096
MAX_INT = 2_147_483_647
ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
KNOWN_FIELDS = ("event_id", "notification_id", "created_at", "channel", "template_id", "user_id",
                "status", "processing_time_ms", "error_code", "provider", "metadata")
_DERIVED_ID_NAMESPACE = uuid.UUID("6f1d7c9e-33a5-4d0b-9a55-2b8f0f1e4c21")


class EventError(ValueError):
    """One event is invalid; the message says which field and what is allowed."""


class UnreadableEvent(str):
    """Stands in for input that could not even be parsed; it is rejected with this text."""


@dataclass(frozen=True)
class Rejection:
    index: int
    error: str


@dataclass(frozen=True)
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: tuple[Rejection, ...] = field(default_factory=tuple)

    def __add__(self, other: "IngestReport") -> "IngestReport":
        return IngestReport(self.accepted + other.accepted, self.duplicates + other.duplicates,
                            self.rejected + other.rejected)

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": [{"index": r.index, "error": r.error} for r in self.rejected]}


def oldest_accepted(now: datetime, raw_retention_days: int) -> datetime:
    """Events before this are refused: their raw day is (about to be) dropped, so their
    hour could no longer be recomputed exactly."""
    today = datetime(now.year, now.month, now.day, tzinfo=timezone.utc)
    return today - timedelta(days=raw_retention_days - 1)


def raw_retention_cutoff(now: datetime, raw_retention_days: int) -> date:
    """Raw days before this are dropped."""
    return (oldest_accepted(now, raw_retention_days) - timedelta(days=1)).date()


# ---------------------------------------------------------------- validation (pure)

def _parse_time(value) -> datetime:
    if not isinstance(value, str):
        raise EventError("created_at must be an ISO 8601 string such as 2026-11-28T09:30:00Z")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise EventError(f"created_at {value[:40]!r} is not an ISO 8601 timestamp "
                         "such as 2026-11-28T09:30:00Z") from None
    if parsed.tzinfo is None:
        raise EventError("created_at needs a time zone: end it with Z or an offset like +02:00")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00+01:00 or 9999-12-31T23:59-01:00: outside every supported year
        raise EventError(f"created_at {value[:40]!r} is outside the supported dates") from None


def _optional_id(event: Mapping, name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EventError(f"{name} must be a string of at most 100 characters")
    value = str(value)
    if not ID_PATTERN.match(value):
        raise EventError(f"{name} must be 1–100 characters of letters, digits and . _ : -")
    return value


def _optional_code(event: Mapping, name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not CODE_PATTERN.match(value):
        raise EventError(f"{name} must be 1–64 characters of letters, digits and . _ : - "
                         "(for example invalid_number)")
    return value


def _optional_int(event: Mapping, name: str, maximum: int) -> int | None:
    value = event.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{name} must be a whole number from 0 to {maximum:,}")
    if not 0 <= value <= maximum:
        raise EventError(f"{name} must be from 0 to {maximum:,}, got {value:,}")
    return value


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v) for v in value)
    return False


def validate_event(event, now: datetime, channels: Sequence[str] = CHANNELS,
                   raw_retention_days: int = 30) -> tuple:
    """A storable row (EVENT_COLUMNS order) or EventError naming what is wrong."""
    if isinstance(event, UnreadableEvent):
        raise EventError(str(event))
    if not isinstance(event, Mapping):
        raise EventError("each event must be a JSON object")
    unknown = sorted(set(event) - set(KNOWN_FIELDS))
    if unknown:
        raise EventError(f"unknown field {unknown[0]!r}; known fields: {', '.join(KNOWN_FIELDS)}")
    for required in ("created_at", "channel", "status"):
        if event.get(required) in (None, ""):
            raise EventError(f"{required} is required")
    created_at = _parse_time(event["created_at"])
    if created_at > now + MAX_FUTURE:
        raise EventError("created_at is more than 5 minutes in the future")
    floor = oldest_accepted(now, raw_retention_days)
    if created_at < floor:
        raise EventError(f"created_at is before {floor:%Y-%m-%dT%H:%M:%SZ}: events older than the "
                         f"{raw_retention_days}-day raw retention cannot be rolled up any more")
    channel, status = event["channel"], event["status"]
    if channel not in channels:
        raise EventError(f"channel {str(channel)[:40]!r} is not one of {', '.join(channels)}")
    if status not in STATUSES:
        raise EventError(f"status {str(status)[:40]!r} is not one of {', '.join(STATUSES)}")
    notification_id = _optional_id(event, "notification_id")
    user_id = _optional_id(event, "user_id")
    template_id = _optional_int(event, "template_id", MAX_INT)
    processing = _optional_int(event, "processing_time_ms", latency.MAX_MS)
    error_code = _optional_code(event, "error_code")
    if error_code is not None and status not in FAILURE_STATUSES:
        raise EventError(f"error_code is only for {' and '.join(FAILURE_STATUSES)} events; this one is {status}")
    provider = _optional_code(event, "provider")
    metadata = event.get("metadata")
    metadata_text = None
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise EventError("metadata must be a JSON object")
        try:
            metadata_text = orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:
            raise EventError("metadata must hold only JSON values") from None
        if "\\u0000" in metadata_text and _holds_nul(metadata):  # Postgres jsonb cannot hold one
            raise EventError("metadata must not contain the NUL character (\\u0000)")
        if len(metadata_text.encode()) > MAX_METADATA_BYTES:
            raise EventError(f"metadata is larger than {MAX_METADATA_BYTES:,} bytes")
    event_id = _optional_id(event, "event_id")
    if event_id is None:
        # a retried identical event gets the same id, so it still de-duplicates
        content = [created_at.isoformat(), channel, status, notification_id, template_id, user_id, processing,
                   metadata_text]
        if error_code is not None or provider is not None:  # ids derived before these fields existed stay
            content += [error_code, provider]
        content = orjson.dumps(content)
        event_id = "d-" + uuid.uuid5(_DERIVED_ID_NAMESPACE, content.decode()).hex
    bucket = latency.bucket_index(processing) if processing is not None else None
    return (created_at, event_id, notification_id, now, channel, template_id, user_id, status,
            processing, bucket, metadata_text, error_code, provider)


assert EVENT_COLUMNS == ("created_at", "event_id", "notification_id", "ingested_at", "channel",
                         "template_id", "user_id", "status", "processing_time_ms", "latency_bucket",
                         "metadata", "error_code", "provider"), "validate_event builds rows in this order"


# ---------------------------------------------------------------- storage

SEAL_MARGIN = timedelta(minutes=5)  # events older than this when they arrive are late
BACKFILL_ROWS = 5000                # a batch this large, all older than BACKFILL_AGE, is a backfill
BACKFILL_AGE = timedelta(hours=1)


def store_rows(conn: Connection, rows: Sequence[tuple], now: datetime | None = None,
               backfill: bool | None = None) -> int:
    """Write valid rows in the caller's transaction, so a batch commits whole or not at all,
    with what the rollup needs to stay exact: the deltas of the rows really inserted, or —
    for a backfill (a large batch of old events; `None` decides by size and age) — the
    hours it touched, queued for a rebuild from raw and read from raw until then. A batch
    holding events older than SEAL_MARGIN also marks the minutes it touched as changed
    late. Returns rows inserted."""
    now = now or datetime.now(timezone.utc)
    if backfill is None:
        backfill = len(rows) >= BACKFILL_ROWS and max(r[0] for r in rows) < now - BACKFILL_AGE
    if backfill:
        hours = dialect.touched_hours(rows)
        inserted = dialect.insert_events_only(conn, rows, hours)
        if inserted.rows:
            conn.execute(insert(rollup_invalidations), [{"bucket_hour": h, "logged_at": now} for h in hours])
    else:
        inserted = dialect.insert_events(conn, rows, now)
    if inserted.rows:
        if inserted.first_bucket < now - SEAL_MARGIN:
            conn.execute(insert(late_marks).values(bucket_start=inserted.first_bucket,
                                                   bucket_end=inserted.last_bucket + timedelta(minutes=1),
                                                   marked_at=now))
        # last, so the counter's row lock is held only until the caller commits
        count_batch(conn, now)
    return inserted.rows


def count_batch(conn: Connection, now: datetime) -> None:
    """One more batch that added events: cached answers holding the newest buckets key on it."""
    state = rollup_state.c
    if not conn.execute(update(rollup_state).where(state.name == "ingest")
                        .values(generation=state.generation + 1, updated_at=now)).rowcount:
        conn.execute(insert(rollup_state).values(name="ingest", generation=1, updated_at=now))


def ingest_events(conn: Connection, events: Iterable, *, channels: Sequence[str] = CHANNELS,
                  raw_retention_days: int = 30, now: datetime | None = None,
                  first_index: int = 0) -> IngestReport:
    """Validate, de-duplicate and store one batch, all-or-nothing in the caller's transaction.

    A bad event rejects that event, not the batch; duplicates (within the batch or already
    stored) are counted, not stored twice."""
    now = now or datetime.now(timezone.utc)
    rows: list[tuple] = []
    rejected: list[Rejection] = []
    seen: set[tuple] = set()
    in_batch_duplicates = 0
    for index, event in enumerate(events, start=first_index):
        try:
            row = validate_event(event, now, channels, raw_retention_days)
        except EventError as exc:
            rejected.append(Rejection(index, str(exc)))
            continue
        key = (row[0], row[1])
        if key in seen:
            in_batch_duplicates += 1
            continue
        seen.add(key)
        rows.append(row)
    inserted = store_rows(conn, rows, now=now)
    return IngestReport(accepted=inserted, duplicates=in_batch_duplicates + len(rows) - inserted,
                        rejected=tuple(rejected))
