"""Time ranges as users write them (`now-24h`, `2026-11-01`, ISO datetimes), validated and
aligned to the chart's buckets. Pure functions."""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

GRANULARITIES = ("minute", "hour", "day")
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_RANGE = timedelta(days=400)
MAX_POINTS = 2000
DEFAULT_SPAN = timedelta(hours=24)
_RELATIVE = re.compile(r"^now(?:\s*-\s*(\d{1,6})\s*([mhdw]))?$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)   # times outside these are refused, so bucket
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)     # and history arithmetic never overflows


class QueryError(ValueError):
    """Bad input to a query: `field` names the parameter, the message says what is allowed."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field


class NotFound(QueryError):
    """A well-formed id that names nothing stored (HTTP 404)."""


def iso_z(t: datetime | None) -> str | None:
    """How every answer writes a time: ISO 8601 in UTC with a Z (None stays None)."""
    if t is None:
        return None
    return (t if t.tzinfo is timezone.utc else t.astimezone(timezone.utc)).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=8192)
def bucket_stamp(t: datetime) -> str:
    """iso_z of a bucket's start, remembered: charts write the same few thousand buckets again
    and again (formatting one costs a microsecond, 170 µs for a week of hours)."""
    return iso_z(t)


def parse_time(text: str, now: datetime, field: str) -> datetime:
    """`now`, `now-15m|h|d|w`, an ISO date (midnight UTC) or an ISO datetime (UTC if no zone)."""
    value = text.strip()
    match = _RELATIVE.match(value)
    try:
        if match:
            amount, unit = match.groups()
            parsed = now - timedelta(**{_UNITS[unit]: int(amount)}) if amount else now
        elif len(value) == 10:
            day = date.fromisoformat(value)
            parsed = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        else:
            parsed = datetime.fromisoformat(value.replace(" ", "T", 1) if "T" not in value else value)
            parsed = parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    except OverflowError:
        raise _unsupported(text, field) from None
    except ValueError:
        raise QueryError(f"{field} {text[:40]!r} is not a date: use an ISO date (2026-11-01), an ISO "
                         "datetime (2026-11-01T08:00:00Z) or a relative time (now, now-24h, now-7d)",
                         field) from None
    if not EARLIEST <= parsed < LATEST:
        raise _unsupported(text, field)
    return parsed


def _unsupported(text: str, field: str) -> QueryError:
    return QueryError(f"{field} {text[:40]!r} is outside the supported dates "
                      f"(from {EARLIEST:%Y-%m-%d}, before {LATEST:%Y-%m-%d})", field)


def floor_to(value: datetime, granularity: str) -> datetime:
    if granularity == "minute":
        return value.replace(second=0, microsecond=0)
    if granularity == "hour":
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_to(value: datetime, granularity: str) -> datetime:
    floored = floor_to(value, granularity)
    return floored if floored == value else floored + STEP[granularity]


@dataclass(frozen=True)
class TimeRange:
    """The range an answer covers: [start, end), UTC."""
    start: datetime
    end: datetime


@dataclass(frozen=True)
class TimedValue:
    """A value of an answer's series at the start of its bucket."""
    time: datetime
    value: float | None


@dataclass(frozen=True)
class TimeWindow:
    start: datetime   # aligned to granularity
    end: datetime     # exclusive, aligned
    granularity: str

    @property
    def buckets(self) -> list[datetime]:
        step, out, t = STEP[self.granularity], [], self.start
        while t < self.end:
            out.append(t)
            t += step
        return out


def _as_text(value) -> str | None:
    """Times come as text (API, URL) or as datetimes (services); both are read as text."""
    if value in (None, ""):
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def resolve_range(start: str | datetime | None, end: str | datetime | None,
                  now: datetime) -> tuple[datetime, datetime]:
    """Parse and validate [start, end): default the last 24 h, at most 400 days."""
    start, end = _as_text(start), _as_text(end)
    end_t = parse_time(end, now, "end") if end else now
    start_t = parse_time(start, now, "start") if start else end_t - DEFAULT_SPAN
    if end_t <= start_t:
        raise QueryError(f"end ({end_t:%Y-%m-%dT%H:%M:%SZ}) must be after start ({start_t:%Y-%m-%dT%H:%M:%SZ})",
                         "end")
    if end_t - start_t > MAX_RANGE:
        raise QueryError(f"the range is {(end_t - start_t).days} days; at most {MAX_RANGE.days} days are allowed",
                         "start")
    return start_t, end_t


MINUTES_UP_TO = timedelta(hours=6)
HOURS_UP_TO = timedelta(days=32)  # 30 days by hour: 721 points, so a 3-hour dip keeps its depth


def auto_granularity(span: timedelta) -> str:
    """The granularity a chart of `span` is drawn at when none is asked for: up to 6 hours by
    minute, up to 32 days by hour, longer by day."""
    return "minute" if span <= MINUTES_UP_TO else "hour" if span <= HOURS_UP_TO else "day"


def resolve_window(start: str | datetime | None, end: str | datetime | None, granularity: str | None,
                   now: datetime) -> TimeWindow:
    """Parse, validate and align a range; pick the granularity when not given
    (`auto_granularity`) and coarsen it past 2,000 points."""
    start_t, end_t = resolve_range(start, end, now)
    if granularity is not None and granularity not in GRANULARITIES:
        raise QueryError(f"granularity {granularity[:20]!r} is not one of {', '.join(GRANULARITIES)}",
                         "granularity")
    span = end_t - start_t
    chosen = granularity or auto_granularity(span)
    for candidate in GRANULARITIES[GRANULARITIES.index(chosen):]:
        chosen = candidate
        if math.ceil(span / STEP[candidate]) + 1 <= MAX_POINTS:
            break
    return TimeWindow(floor_to(start_t, chosen), ceil_to(end_t, chosen), chosen)


def contiguous_hours(hours) -> list[tuple[datetime, datetime]]:
    """Hour starts → sorted [start, end) ranges of consecutive hours."""
    ranges: list[list[datetime]] = []
    for hour in sorted(set(hours)):
        if ranges and ranges[-1][1] == hour:
            ranges[-1][1] = hour + STEP["hour"]
        else:
            ranges.append([hour, hour + STEP["hour"]])
    return [(a, b) for a, b in ranges]
