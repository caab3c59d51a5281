"""Answering a planned question: the measures of every group read from the plan's sources,
and the metric evaluated from them.

A question is answered from the rollup table of its granularity plus the deltas ingest has written
and the rollup has not folded yet, in one statement (one snapshot): an event ingested now
is in the next answer and nothing is counted twice. Minute questions older than the minute
retention, and days a backfill queued for a rebuild, read raw events.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy import BigInteger, Connection, Select, bindparam, case, cast, func, select, union_all

from services.formulas import parser as formulas
from services.query.catalogue import (
    CATALOGUE,
    Metric,
    formula_metric,
    get_metric,
    needs_histograms,
    parsed_formula,
    resolve,
)
from services.query.context import QueryContext, context_at
from services.query.plan import (
    Query,
    Segment,
    build_query,
    minute_floor_at,
    plan_segments,
    seal_edge,
)
from services.query.timerange import STEP, bucket_stamp
from services.query.timerange import floor_to as truncate
from services.rollup.fold import queued_days
from services.store import dialect, latency
from services.store.schema import (
    NO_TEMPLATE,
    ROLLUP_TABLES,
    STATUSES,
    notification_events,
    rollup_deltas,
    templates,
)

# ---------------------------------------------------------------- results

class Point(NamedTuple):
    time: datetime | None
    dims: tuple[tuple[str, object], ...]
    value: float | None
    numerator: float | None    # what the value is made of, for tests of significance
    denominator: float | None


@dataclass(frozen=True)
class Series:
    metric: str
    unit: str
    granularity: str
    group_by: tuple[str, ...]
    start: datetime
    end: datetime
    source: str                # "rollup" | "raw" | "mixed"
    live: bool                 # holds buckets not yet rolled up
    points: tuple[Point, ...] = field(default_factory=tuple)


def first_event_time(conn: Connection, filters: tuple[tuple[str, tuple], ...] = ()) -> datetime | None:
    """When the first event matching `filters` happened: exact while its day is in raw
    retention, to the hour (from the hour rollup) before that. None when there is none."""
    e = notification_events.c
    raw_first = conn.execute(select(func.min(e.created_at)).where(*filter_clauses(
        {"channel": e.channel, "template_id": e.template_id, "status": e.status}, filters))).scalar()
    needs_template = any(d == "template_id" for d, _ in filters)
    hourly = ROLLUP_TABLES[("hour", needs_template)]
    rolled_first = conn.execute(select(func.min(hourly.c.bucket)).where(*filter_clauses(hourly.c, filters))).scalar()
    if rolled_first is not None and (raw_first is None or rolled_first < truncate(raw_first, "hour")):
        return rolled_first  # its raw events are past retention: the hour is all we know
    return raw_first


# ---------------------------------------------------------------- fetching

STATUS_INDEX = {status: i for i, status in enumerate(STATUSES)}


def _no_counts() -> list[int]:
    return [0] * len(STATUSES)


@dataclass(slots=True)
class Totals:
    """One group's base measures: its event counts by status (a list in STATUSES order: a
    row of the totals read, as it comes), processing-time sum and count, latency histogram."""
    counts: list[int] = field(default_factory=_no_counts)
    psum: int = 0
    pcount: int = 0
    histogram: dict = field(default_factory=dict)

    def count(self, status: str) -> int:
        return self.counts[STATUS_INDEX[status]]

    @property
    def events(self) -> int:
        return sum(self.counts)


def filter_clauses(columns, filters) -> list:
    return [columns[dim].in_(values) for dim, values in filters]


class _RollupReads(NamedTuple):
    totals: Select            # one row per group: counts by status side by side, processing sum and count
    histograms: Select        # the groups' latency histograms in rollup rows (only for quantiles)
    pending_histograms: Select  # … and in the pending deltas, per latency bucket


_ROLLUP_READS: dict[tuple, _RollupReads] = {}


def _rollup_reads(conn, query: Query, source: str) -> _RollupReads:
    """The statements reading one rollup segment, built once per shape of question (with
    bound parameters for the range and the filters' values: a chart request neither builds
    nor compiles SQL)."""
    gran = query.window.granularity
    shape = (conn.dialect.name, source, query.needs_template, gran, query.group_by, tuple(d for d, _ in query.filters))
    reads = _ROLLUP_READS.get(shape)
    if reads is not None:
        return reads
    table = ROLLUP_TABLES[(source, query.needs_template)]
    d = rollup_deltas.c
    dims = [x for x in query.group_by if x != "time"]
    start, end = bindparam("start", type_=table.c.bucket.type), bindparam("end", type_=table.c.bucket.type)

    def where(columns) -> list:
        return [columns.bucket >= start, columns.bucket < end,
                *[columns[dim].in_(bindparam(f"f_{dim}", expanding=True)) for dim, _ in query.filters]]

    delta_bucket = d.bucket if gran == "minute" else dialect.time_bucket(conn, gran, d.bucket)
    rows = select(table.c.bucket.label("bucket"), *[table.c[x] for x in dims], table.c.status, table.c.event_count,
                  table.c.processing_sum, table.c.processing_count).where(*where(table.c))
    pending = select(delta_bucket.label("bucket"), *[d[x] for x in dims], d.status, d.event_count, d.processing_sum,
                     case((d.latency_bucket.is_(None), 0), else_=d.event_count).label("processing_count")).where(
        *where(d))
    u = union_all(rows, pending).subquery()
    keys = ([u.c.bucket] if "time" in query.group_by else []) + [u.c[x] for x in dims]
    # every sum is a bigint, never null (Postgres sums bigint as numeric; a status absent from
    # a group sums to null): each row's measures are used as they come
    total = lambda column: func.coalesce(cast(func.sum(column), BigInteger), 0)  # noqa: E731
    totals = select(*keys, *[func.coalesce(cast(func.sum(u.c.event_count).filter(u.c.status == s), BigInteger), 0)
                             for s in STATUSES],
                    total(u.c.processing_sum), total(u.c.processing_count)).group_by(*keys)
    histograms = select(table.c.bucket.label("bucket"), *[table.c[x] for x in dims], table.c.latency_histogram).where(
        *where(table.c), table.c.latency_histogram.is_not(None))
    pending_keys = [delta_bucket.label("bucket")] + [d[x] for x in dims] + [d.latency_bucket]
    pending_histograms = select(*pending_keys, func.sum(d.event_count)).where(
        *where(d), d.latency_bucket.is_not(None)).group_by(*pending_keys)
    reads = _ROLLUP_READS[shape] = _RollupReads(totals, histograms, pending_histograms)
    return reads


def _fetch_rollup(conn, query: Query, with_histograms: bool, seg: Segment, accs: dict) -> None:
    """Rollup rows and pending deltas of the segment, summed per group in one statement,
    with the counts of each status side by side (one row per group)."""
    reads = _rollup_reads(conn, query, seg.source)
    params = {"start": seg.start, "end": seg.end, **{f"f_{dim}": list(values) for dim, values in query.filters}}
    timed = "time" in query.group_by
    nd = len(query.group_by) - timed
    first = nd + timed
    aligned = seg.source == query.window.granularity
    key_of, last = _keyer(query, aligned), first + len(STATUSES)
    for row in conn.execute(reads.totals, params).all():  # one fetch: one row per group, already summed
        key = key_of(row[0] if timed else None, row[1:first] if timed else row[:nd])
        acc = accs.get(key)
        if acc is None:  # the usual case: a group is one row
            accs[key] = Totals(list(row[first:last]), row[-2], row[-1])
            continue
        add_counts(acc, row[first:last])
        acc.psum += row[-2]
        acc.pcount += row[-1]
    if with_histograms:
        rows = conn.execute(reads.histograms, params).all()
        owners: dict[tuple, int] = {}  # group key → its number, for merging every row's histogram at once
        numbered = [owners.setdefault(key_of(row[0] if timed else None, row[1:1 + nd]), len(owners)) for row in rows]
        merged = latency.merge_encoded([row[-1] for row in rows], numbered)
        for key, number in owners.items():
            histogram = merged.get(number)
            if histogram:
                acc = _accumulator(accs, key)
                acc.histogram = latency.merge((acc.histogram, histogram)) if acc.histogram else histogram
        for row in conn.execute(reads.pending_histograms, params):
            acc = _accumulator(accs, key_of(row[0] if timed else None, row[1:1 + nd]))
            acc.histogram[row[-2]] = acc.histogram.get(row[-2], 0) + int(row[-1])


def _fetch_raw(conn, query: Query, with_histograms: bool, seg: Segment, accs: dict) -> None:
    e = notification_events.c
    dims = [x for x in query.group_by if x != "time"]
    cols = {"channel": e.channel, "template_id": func.coalesce(e.template_id, NO_TEMPLATE), "status": e.status}
    timed = "time" in query.group_by
    keys = ([dialect.time_bucket(conn, query.window.granularity, e.created_at)] if timed else []) + \
        [cols[x] for x in dims] + [e.status]
    extra = [e.latency_bucket] if with_histograms else []
    filter_cols = {"channel": e.channel, "template_id": e.template_id, "status": e.status}
    stmt = (select(*keys, *extra, func.count(), func.sum(e.processing_time_ms), func.count(e.processing_time_ms))
            .where(e.created_at >= seg.start, e.created_at < seg.end,
                   *filter_clauses(filter_cols, query.filters))
            .group_by(*keys, *extra))
    width, nd = len(dims) + (1 if timed else 0), len(dims)
    key_of = _keyer(query, aligned=True)
    for row in conn.execute(stmt):
        acc = _accumulator(accs, key_of(row[0], row[1:1 + nd]) if timed else key_of(None, row[:nd]))
        status = row[width]
        lb = row[width + 1] if extra else None
        count, psum, pcount = row[-3:]
        acc.counts[STATUS_INDEX[status]] += int(count)
        acc.psum += int(psum or 0)
        acc.pcount += int(pcount or 0)
        if lb is not None:
            acc.histogram[lb] = acc.histogram.get(lb, 0) + int(pcount)


def _keyer(query: Query, aligned: bool) -> Callable[[datetime | None, Sequence], tuple]:
    """A function giving the key (bucket, ((dimension, value), …)) of a row's group — template
    −1 stands for none; buckets not `aligned` to the window's granularity are truncated to it.
    Equal parts of keys are one object (a bucket shared by every group of its time, a group
    of dimension values by its buckets): the measures pickle a fifth smaller, in under half the time."""
    dims = tuple(x for x in query.group_by if x != "time")
    granularity = None if aligned else query.window.granularity
    made: dict = {}  # dimension values → their part of the key, made once per group of dimensions
    buckets: dict = {}

    def key_of(bucket: datetime | None, values: Sequence) -> tuple:
        values = tuple(values)
        part = made.get(values)
        if part is None:
            part = made[values] = tuple((x, None if (x == "template_id" and v == NO_TEMPLATE) else v)
                                        for x, v in zip(dims, values))
        if bucket is not None:
            if granularity:
                bucket = truncate(bucket, granularity)
            bucket = buckets.setdefault(bucket, bucket)
        return bucket, part
    return key_of


def _accumulator(accs: dict, key: tuple) -> Totals:
    """The accumulator of the group `key` (see _keyer), made when first seen."""
    acc = accs.get(key)
    if acc is None:
        acc = accs[key] = Totals()
    return acc


def add_counts(acc: Totals, by_status: Sequence[int]) -> None:
    """Add counts given in STATUSES order to `acc`."""
    acc.counts = [a + b for a, b in zip(acc.counts, by_status)]


def measures_to_plain(accs: dict) -> list[tuple]:
    """Measures as plain tuples (fast to pickle for the cache): (bucket, dims, counts in
    STATUSES order, processing sum, processing count, histogram or None)."""
    return [(bucket, dims, m.counts, m.psum, m.pcount, m.histogram or None) for (bucket, dims), m in accs.items()]


def measures_from_plain(rows: list[tuple]) -> dict:
    return {(bucket, dims): Totals(counts, psum, pcount, histogram or {})
            for bucket, dims, counts, psum, pcount, histogram in rows}


def merge_measures(into: dict, other: dict) -> dict:
    """Add the groups of `other` to `into` (in place) and return it."""
    for key, m in other.items():
        acc = into.get(key)
        if acc is None:
            into[key] = Totals(list(m.counts), m.psum, m.pcount, dict(m.histogram))
            continue
        add_counts(acc, m.counts)
        acc.psum += m.psum
        acc.pcount += m.pcount
        for index, n in m.histogram.items():
            acc.histogram[index] = acc.histogram.get(index, 0) + n
    return into


# ---------------------------------------------------------------- evaluating

Evaluation = tuple[float | None, float | None, float | None]


def evaluate(metric: Metric, acc: Totals) -> Evaluation:
    """(value, numerator, denominator) of `metric` over one group's measures. A formula is
    evaluated over the catalogue metrics of the same group: a ratio of sums at any grouping."""
    return evaluator(metric)(acc)


@lru_cache(maxsize=512)
def evaluator(metric: Metric) -> Callable[[Totals], Evaluation]:
    """evaluate(metric, ·), with what the metric is decided once (a chart evaluates it for
    every point)."""
    if metric.kind == "formula":
        tree = parsed_formula(metric.formula)

        def formula(acc: Totals) -> Evaluation:
            value = formulas.evaluate(tree, lambda name: evaluator(CATALOGUE[name])(acc)[0])
            return value, None, float(acc.events)
        return formula
    if metric.kind == "count" and metric.numerator == "events":
        def events(acc: Totals) -> Evaluation:
            n = float(acc.events)
            return n, n, None
        return events
    if metric.kind == "count":
        status = STATUS_INDEX[metric.numerator]

        def count(acc: Totals) -> Evaluation:
            n = float(acc.counts[status])
            return n, n, None
        return count
    if metric.kind == "rate":
        numerator, denominator = STATUS_INDEX[metric.numerator], STATUS_INDEX[metric.denominator]

        def rate(acc: Totals) -> Evaluation:
            num, den = acc.counts[numerator], acc.counts[denominator]
            return (num / den * 100 if den else None), float(num), float(den)
        return rate
    if metric.kind == "average":
        return lambda acc: ((acc.psum / acc.pcount if acc.pcount else None), float(acc.psum), float(acc.pcount))
    return lambda acc: (latency.quantile(acc.histogram, metric.q), None, float(sum(acc.histogram.values())))


def query_metrics(conn: Connection, metric: str | Metric, group_by=("time",), start=None, end=None, filters=(),
                  granularity: str | None = None, *, context: QueryContext | None = None) -> Series:
    """Answer one chart question; see the module docstring for where the numbers come from."""
    context = context or context_at()
    if isinstance(metric, str) and metric not in CATALOGUE:
        metric = resolve(conn, metric)
    query = build_query(metric, group_by, start, end, filters, granularity, context.now, context.channels)
    return run_query(conn, query, context)


def run_query(conn: Connection, query: Query, context: QueryContext) -> Series:
    metric = metric_of(query)
    accs, source, live = collect_measures(conn, query, needs_histograms(metric), context)
    return series_of(query, metric, accs, source, live)


def metric_of(query: Query) -> Metric:
    return formula_metric(query.metric, query.formula, query.unit) if query.formula else get_metric(query.metric)


def series_of(query: Query, metric: Metric, accs: dict, source: str, live: bool) -> Series:
    window = query.window
    return Series(metric=metric.name, unit=metric.unit, granularity=window.granularity, group_by=query.group_by,
                  start=window.start, end=window.end, source=source, live=live, points=_points(query, metric, accs))


def collect_measures(conn: Connection, query: Query, with_histograms: bool, context: QueryContext,
                     raw_days: Sequence[datetime] | None = None) -> tuple[dict, str, bool]:
    """The base measures of every group — counts by status, processing sum and count, and
    (when asked) the merged latency histogram — from the planned sources. `raw_days`: the
    days queued for a rebuild, when the caller knows them. Returns ({(bucket, dims):
    measures}, source, live)."""
    window = query.window
    accs: dict = {}
    sources = set()
    if raw_days is None:
        raw_days = queued_days(conn, window.start, window.end)
    for seg in _segments(query, with_histograms, context, raw_days):
        if seg.source == "raw":
            _fetch_raw(conn, query, with_histograms, seg, accs)
        else:
            _fetch_rollup(conn, query, with_histograms, seg, accs)
        sources.add("raw" if seg.source == "raw" else "rollup")
    live = seal_edge(window, context.now) < window.end
    return accs, sources.pop() if len(sources) == 1 else "mixed", live


def _segments(query: Query, with_histograms: bool, context: QueryContext,
              raw_days: Sequence[datetime]) -> list[Segment]:
    # a total pays a statement per table to read the coarser tables: worth it where each hour
    # holds many rows (by template) or histograms to merge; not for a few counts per hour
    coarsen = "time" not in query.group_by and (with_histograms or query.needs_template)
    return plan_segments(query.window, minute_floor_at(context.now, context.minute_retention_hours), raw_days,
                         coarsen)


def statements_of(query: Query, with_histograms: bool, context: QueryContext, raw_days: Sequence[datetime]) -> int:
    """How many statements collect_measures runs for `query` (one per raw segment; a rollup
    segment runs its totals, and with histograms every one of its _RollupReads): a read of
    one statement needs no snapshot."""
    per_rollup = len(_RollupReads._fields) if with_histograms else 1
    return sum(1 if seg.source == "raw" else per_rollup for seg in _segments(query, with_histograms, context, raw_days))


def group_order(dims: tuple) -> tuple:
    """The order of groups in every answer: by their dimension values, no template first."""
    return tuple((d, -1 if v is None else v) for d, v in dims)


def _grid(query: Query, accs: dict) -> tuple[list[tuple[tuple, dict]], Sequence[datetime | None]]:
    """The answer's layout: its groups in order — sorted by their dimension values, each with
    its {bucket: measures} — and the buckets each group is answered over (every bucket of the
    window by time; one None bucket otherwise). A bucket a group lacks has no events. One
    total even over nothing."""
    if not query.group_by:
        total = accs.get((None, ()))
        return [((), {} if total is None else {None: total})], (None,)
    by_dims: dict[tuple, dict] = {}  # each group of dimension values: its buckets' measures
    for (bucket, dims), m in accs.items():
        by_dims.setdefault(dims, {})[bucket] = m
    dim_keys = sorted(by_dims, key=group_order)
    if "time" not in query.group_by:
        return [(k, by_dims[k]) for k in dim_keys], (None,)
    if not dim_keys and len(query.group_by) == 1:
        dim_keys = [()]
    return [(k, by_dims.get(k, {})) for k in dim_keys], query.window.buckets


def _points(query: Query, metric: Metric, accs: dict) -> tuple[Point, ...]:
    value_of = evaluator(metric)
    nothing = value_of(Totals())  # a bucket without events
    groups, buckets = _grid(query, accs)
    return tuple(Point(b, k, *(nothing if m is None else value_of(m))) for k, measured in groups
                 for b in buckets for m in (measured.get(b),))


def template_names(conn: Connection) -> dict[int, str]:
    return dict(conn.execute(select(templates.c.template_id, templates.c.name)).all())


def _dimension_fields(names: Mapping[int, str] | None) -> Callable[[tuple], dict]:
    """A group's dimension values as a record's fields (a template's name beside its id,
    when `names` are given), each group's made once."""
    made: dict = {}

    def fields(dims: tuple) -> dict:
        record = made.get(dims)
        if record is None:
            record = made[dims] = {}
            for d, v in dims:
                record[d] = v
                if d == "template_id" and names is not None:
                    record["template_name"] = names.get(v) if v is not None else None
        return record
    return fields


def series_records(series: Series, names: Mapping[int, str] | None = None) -> list[dict]:
    """Points as flat JSON-ready records: time (ISO, UTC), one key per dimension, value."""
    fields = _dimension_fields(names)
    return [{**fields(p.dims), "value": p.value} if p.time is None else
            {"time": bucket_stamp(p.time), **fields(p.dims), "value": p.value} for p in series.points]


def answer_records(query: Query, metric: Metric, accs: dict, names: Mapping[int, str] | None = None) -> list[dict]:
    """series_records(series_of(query, metric, accs, …), names), straight from the measures
    (an API answer needs no points: a value each), each bucket's time written once."""
    value_of, fields = evaluator(metric), _dimension_fields(names)
    nothing = value_of(Totals())[0]
    groups, buckets = _grid(query, accs)
    records: list[dict] = []
    if buckets == (None,):
        for k, measured in groups:
            m = measured.get(None)
            records.append({**fields(k), "value": nothing if m is None else value_of(m)[0]})
        return records
    stamps = [bucket_stamp(b) for b in buckets]
    for k, measured in groups:
        group, get = fields(k), measured.get
        records += [{"time": stamp, **group, "value": nothing if m is None else value_of(m)[0]}
                    for b, stamp in zip(buckets, stamps) for m in (get(b),)]
    return records


# ---------------------------------------------------------------- composed answers

def _pieces(conn: Connection, metric: str | Metric, group_by, start: datetime, end: datetime, filters,
            granularity: str, context: QueryContext) -> Iterator[Query]:
    """The queries covering [start, end) at `granularity` under the 2,000-point cap."""
    if isinstance(metric, str) and metric not in CATALOGUE:
        metric = resolve(conn, metric)
    step = STEP[granularity] * (MAX_POINTS_PER_PIECE)
    t = truncate(start, granularity)
    while t < end:
        yield build_query(metric, group_by, t, min(t + step, end), filters, granularity, context.now, context.channels)
        t += step


def query_long(conn: Connection, metric: str | Metric, group_by, start: datetime, end: datetime, filters,
               granularity: str, *, context: QueryContext) -> list[Point]:
    """Points at `granularity` over a range longer than one chart may hold (analyses need
    hourly history over weeks): queried in pieces under the 2,000-point cap."""
    points: list[Point] = []
    for query in _pieces(conn, metric, group_by, start, end, filters, granularity, context):
        points += [p for p in run_query(conn, query, context).points if p.time is None or p.time < end]
    return points


def long_measures(conn: Connection, metric: Metric, group_by, start: datetime, end: datetime, filters,
                  granularity: str, *, context: QueryContext) -> dict:
    """The measures query_long's points are made of, {(bucket, dims): Totals}, read in the
    same pieces: for an analysis that wants arrays, not a Point per bucket."""
    accs: dict = {}
    for query in _pieces(conn, metric, group_by, start, end, filters, granularity, context):
        part, _, _ = collect_measures(conn, query, needs_histograms(metric), context)
        accs.update((key, m) for key, m in part.items() if key[0] is None or key[0] < end)
    return accs


MAX_POINTS_PER_PIECE = 1999


def volume_heatmap(conn: Connection, start=None, end=None, filters=(), *,
                   context: QueryContext | None = None) -> list[list[float]]:
    """Events by weekday (Monday first) × hour of day, UTC, over the range."""
    context = context or context_at()
    window = build_query("events", ("time",), start, end, filters, None, context.now, context.channels).window
    matrix = [[0.0] * 24 for _ in range(7)]
    for p in query_long(conn, "events", ("time",), window.start, window.end, filters, "hour", context=context):
        matrix[p.time.weekday()][p.time.hour] += p.value or 0
    return matrix
