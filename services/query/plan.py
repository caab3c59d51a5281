"""A chart question as a frozen `Query` (metric, grouping, window, filters, granularity),
validated and normalized from whatever a caller sends, and the plan that answers it: which
rollup table or raw events cover each stretch of its window, and where the sealed part ends."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from services.query.catalogue import Metric, get_metric
from services.query.timerange import STEP, QueryError, TimeWindow, ceil_to, resolve_window
from services.query.timerange import floor_to as truncate
from services.store.ingest import SEAL_MARGIN
from services.store.schema import CHANNELS, STATUSES

DIMENSIONS = ("channel", "status", "template_id")


GROUPABLE = ("time",) + DIMENSIONS


MAX_FILTER_VALUES = 100


@dataclass(frozen=True)
class Query:
    metric: str
    group_by: tuple[str, ...]                           # canonical order of GROUPABLE
    window: TimeWindow
    filters: tuple[tuple[str, tuple], ...]             # sorted (dimension, sorted values)
    formula: str | None = None                          # a custom metric's expanded formula
    unit: str | None = None

    @property
    def needs_template(self) -> bool:
        return "template_id" in self.group_by or any(d == "template_id" for d, _ in self.filters)

    def cache_key(self) -> str:
        filters = ";".join(f"{d}={','.join(map(str, v))}" for d, v in self.filters)
        # a custom metric is keyed by its formula and unit too, so an edit is a new answer
        return (f"chart|{self.metric}|{self.formula or ''}|{self.unit or ''}|{','.join(self.group_by)}|"
                f"{self.window.granularity}|"
                f"{self.window.start.isoformat()}|{self.window.end.isoformat()}|{filters}")


def _template_id(value) -> int | None:
    """A template id from a number or from ASCII digits only (not '1.7', '1_000' or '١٢')."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number = int(value)
    else:
        return None
    return number if 0 <= number <= 2_147_483_647 else None


def parse_filters(raw: Mapping[str, object], channels: Sequence[str] = CHANNELS) -> tuple[tuple[str, tuple], ...]:
    """{dimension: "a,b" | [a, b]} → sorted, validated filter tuples."""
    out = []
    for dim, value in raw.items():
        if value in (None, "", [], ()):
            continue
        if dim not in DIMENSIONS:
            raise QueryError(f"unknown filter {str(dim)[:40]!r}; filters are {', '.join(DIMENSIONS)}", str(dim)[:40])
        values = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
        values = [v for v in values if v != ""]
        if len(values) > MAX_FILTER_VALUES:
            raise QueryError(f"{dim} has {len(values)} values; at most {MAX_FILTER_VALUES} are allowed", dim)
        if dim == "channel":
            bad = [v for v in values if v not in channels]
            if bad:
                raise QueryError(f"channel {str(bad[0])[:40]!r} is not one of {', '.join(channels)}", dim)
        elif dim == "status":
            bad = [v for v in values if v not in STATUSES]
            if bad:
                raise QueryError(f"status {str(bad[0])[:40]!r} is not one of {', '.join(STATUSES)}", dim)
        else:
            values = [_template_id(v) for v in values]
            if any(v is None for v in values):
                raise QueryError("template_id takes whole numbers written with the digits 0-9, from 0 to "
                                 "2147483647 (comma-separated for several)", dim)
        if values:
            out.append((dim, tuple(sorted(set(values)))))
    return tuple(sorted(out))


def parse_group_by(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """None means by time; an empty sequence means one total."""
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(
        ["time"] if value is None else value)
    parts = [p for p in parts if p]
    unknown = [p for p in parts if p not in GROUPABLE]
    if unknown:
        raise QueryError(f"cannot group by {str(unknown[0])[:40]!r}; group_by takes any of {', '.join(GROUPABLE)}",
                         "group_by")
    return tuple(d for d in GROUPABLE if d in parts)


def build_query(metric: str | Metric, group_by, start, end, filters: Mapping | tuple = (),
                granularity: str | None = None, now: datetime | None = None,
                channels: Sequence[str] = CHANNELS) -> Query:
    """Validate and normalize everything a caller may send. `metric` is a catalogue name or
    a resolved Metric (custom metrics are resolved by `resolve`, which reads them)."""
    now = now or datetime.now(timezone.utc)
    m = metric if isinstance(metric, Metric) else get_metric(metric)
    groups = parse_group_by(group_by)
    parsed_filters = filters if isinstance(filters, tuple) else parse_filters(filters, channels)
    if m.kind == "rate" and ("status" in groups or any(d == "status" for d, _ in parsed_filters)):
        raise QueryError(f"{m.name} divides {m.numerator} by {m.denominator} events; grouped or filtered by "
                         "status, each group holds a single status, so the rate would mean nothing. Drop "
                         "status, or use a count metric.", "group_by")
    window = resolve_window(start, end, granularity, now)
    return Query(m.name, groups, window, parsed_filters, m.formula, m.unit)


@dataclass(frozen=True)
class Segment:
    source: str  # "minute" | "hour" | "day" (rollup tables, with pending deltas) or "raw"
    start: datetime
    end: datetime


def plan_segments(window: TimeWindow, minute_floor: datetime, raw_days: Sequence[datetime] = (),
                  coarsen: bool = False) -> list[Segment]:
    """The rollup table of the window's granularity; raw events for minutes older than the
    minute retention (`minute_floor`) and for days queued for a rebuild (`raw_days`: a
    backfill lands there before the rollup rebuilds them). With `coarsen` (a question not
    grouped by time), the whole hours and days of its rollup stretches are read from the
    coarser tables: a day row sums its hours, so 24 times fewer rows and histograms to read
    and merge, for a statement more per table."""
    cuts = sorted({window.start, window.end, *(t for d in raw_days for t in (d, d + STEP["day"])
                                                 if window.start < t < window.end)})
    raw = {truncate(d, "day") for d in raw_days}
    pieces: list[Segment] = []
    for a, b in zip(cuts, cuts[1:]):
        if truncate(a, "day") in raw:
            pieces.append(Segment("raw", a, b))
        elif window.granularity != "minute" or a >= minute_floor:
            pieces.append(Segment(window.granularity, a, b))
        else:
            pieces.append(Segment("raw", a, min(b, minute_floor)))
            if b > minute_floor:
                pieces.append(Segment("minute", minute_floor, b))
    merged: list[Segment] = []
    for piece in pieces:
        if merged and merged[-1].source == piece.source and merged[-1].end == piece.start:
            merged[-1] = Segment(piece.source, merged[-1].start, piece.end)
        else:
            merged.append(piece)
    return [part for segment in merged for part in _coarsened(segment)] if coarsen else merged


COARSER = {"minute": "hour", "hour": "day"}


def _coarsened(segment: Segment) -> list[Segment]:
    """A rollup stretch with its whole buckets of the next coarser table read from it."""
    coarse = COARSER.get(segment.source)
    if coarse is None:
        return [segment]
    first, last = ceil_to(segment.start, coarse), truncate(segment.end, coarse)
    if first >= last:
        return [segment]
    parts = [Segment(segment.source, segment.start, first), *_coarsened(Segment(coarse, first, last)),
             Segment(segment.source, last, segment.end)]
    return [part for part in parts if part.start < part.end]


def minute_floor_at(now: datetime, minute_retention_hours: int) -> datetime:
    """Minute rows exist from here on (the retention job keeps whole hours; one hour of margin)."""
    return truncate(now - timedelta(hours=minute_retention_hours), "hour") + timedelta(hours=1)


def seal_edge(window: TimeWindow, now: datetime) -> datetime:
    """Buckets before this are sealed: an event for them arriving from now on is late, and
    marks them changed (services.store.ingest.SEAL_MARGIN)."""
    edge = truncate(now - SEAL_MARGIN, window.granularity)
    return min(max(edge, window.start), window.end)


def restricted(query: Query, start: datetime, end: datetime) -> Query:
    """The same question over [start, end), a part of its window on the same buckets."""
    return replace(query, window=TimeWindow(start, end, query.window.granularity))

