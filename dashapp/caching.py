"""Answers cached in Flask-Caching (Redis, or in-process without REDIS_URL).

A window is split at its seal edge (services.query.plan.seal_edge, a few minutes before now):
the measures of the sealed buckets are cached under a key that changes only when a late
event arrives into them or the rollups are rebuilt (services.rollup.fold.data_version), and are
shared by every metric over the same grouping; the live edge is read fresh, so a refresh
under ingest costs a lookup plus a few minutes of rows. A whole chart answer is also kept,
as the gzip-compressed response a hit sends, under a key that changes with every committed
batch and fold: repeated questions on data at rest cost one lookup and no database work
beyond the version read.
A dead or slow Redis costs one socket timeout, then is skipped for a few seconds: answers
get slower, never wrong and never errors.
"""
from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from flask import current_app, g, has_request_context
from sqlalchemy import Connection, event, func, select

from dashapp.config import query_context
from dashapp.extensions import cache, db
from services.query import catalogue, plan
from services.query import engine as query_service
from services.query.context import QueryContext
from services.query.format import to_json
from services.rollup.fold import DataVersion, data_version
from services.store import dialect

log = logging.getLogger(__name__)
BREAKER_SECONDS = 5.0
COUNT_FLUSH_SECONDS = 1.0
QUIET_SECONDS = 5.0  # no batch for this long: data at rest, whole answers worth keeping
_STATS = ("hits", "misses", "sealed_hits", "sealed_misses")


def _breaker() -> dict:
    return current_app.extensions.setdefault("analytics_cache_breaker", {"open_until": 0.0})


def _call(operation: Callable[[], Any], default=None):
    """Run one cache operation unless Redis failed moments ago; never raise."""
    breaker = _breaker()
    if time.monotonic() < breaker["open_until"]:
        return default
    try:
        return operation()
    except Exception as exc:
        breaker["open_until"] = time.monotonic() + BREAKER_SECONDS
        log.warning("cache unavailable, answering without it for %.0f s: %s", BREAKER_SECONDS, exc)
        return default


def _counts() -> dict:
    counts = current_app.extensions.get("analytics_cache_counts")
    if counts is None:  # built once per app, not per answer
        counts = current_app.extensions.setdefault("analytics_cache_counts", {
            "lock": threading.Lock(), "pending": dict.fromkeys(_STATS, 0), "flushed": time.monotonic()})
    return counts


def _count(name: str) -> None:
    """Count a hit or miss: kept in the process and added to Redis at most once a second,
    so an answer costs no round trip for its statistics (a process's last second is added
    by its next answer, or by its next status read)."""
    counts = _counts()
    with counts["lock"]:
        counts["pending"][name] += 1
        due = time.monotonic() - counts["flushed"] >= COUNT_FLUSH_SECONDS
    if due:
        _flush_counts()


def _flush_counts() -> None:
    counts = _counts()
    with counts["lock"]:
        pending, counts["pending"] = counts["pending"], dict.fromkeys(_STATS, 0)
        counts["flushed"] = time.monotonic()
    for name, n in pending.items():
        if n:
            _call(lambda name=name, n=n: cache.cache.inc(f"stats:{name}", n))


def cache_stats() -> dict:
    _flush_counts()
    counts = {name: int(_call(lambda n=name: cache.get(f"stats:{n}"), 0) or 0) for name in _STATS}
    total = counts["hits"] + counts["misses"]
    sealed = counts["sealed_hits"] + counts["sealed_misses"]
    backend = "redis" if current_app.config.get("REDIS_URL") else "simple"
    if time.monotonic() < _breaker()["open_until"]:
        backend += " (unreachable; answering without cache)"
    return {**counts, "hit_rate": round(counts["hits"] / total, 4) if total else None,
            "sealed_hit_rate": round(counts["sealed_hits"] / sealed, 4) if sealed else None, "backend": backend}


def request_context() -> QueryContext:
    """The request's QueryContext (the deployment's channels and retention, the clock's now),
    made once per request and shared by every read the request makes."""
    if not has_request_context():
        return query_context(current_app.config)
    if "analytics_context" not in g:
        g.analytics_context = query_context(current_app.config)
    return g.analytics_context


def metric_definition(name: str) -> catalogue.Metric:
    """A catalogue metric as it is, without taking a connection (every chart of the default
    view asks for one); a saved one resolved from the database."""
    if name in catalogue.CATALOGUE:
        return catalogue.CATALOGUE[name]
    return db.read(lambda conn: catalogue.resolve(conn, name))


@dataclass(frozen=True)
class Measured:
    accs: dict                # {(bucket, dims): Totals}
    source: str
    live: bool
    sealed_buckets: int       # buckets of the window answered from the sealed part
    sealed_from_cache: bool
    keep: dict                # {key: (value, timeout)}: the sealed measures read, for _store


def _measure_key(query: plan.Query, with_histograms: bool, start: datetime, end: datetime,
                 version: DataVersion) -> str:
    filters = ";".join(f"{d}={','.join(map(str, v))}" for d, v in query.filters)
    return (f"measures|{','.join(query.group_by)}|{query.window.granularity}|{filters}|h{int(with_histograms)}|"
            f"{start.isoformat()}|{end.isoformat()}|{version.sealed}")


def _store(keep: dict) -> None:
    """Cache {key: (value, timeout)} in one round trip: a Redis pipeline (Flask-Caching's
    set_many takes one timeout for all; a miss stores the sealed measures for 5 minutes and
    a live answer for 30 s), written as the backend's own set writes (its client, key prefix
    and serializer), or one set each in the in-process cache."""
    if not keep:
        return
    backend = cache.cache
    client = getattr(backend, "_write_client", None)  # cachelib's RedisCache only
    if client is None:
        for key, (value, timeout) in keep.items():
            _call(lambda key=key, value=value, timeout=timeout: cache.set(key, value, timeout=timeout))
        return

    def write() -> None:
        pipe, prefix = client.pipeline(transaction=False), backend._get_prefix()
        for key, (value, timeout) in keep.items():
            pipe.set(prefix + key, backend.serializer.dumps(value), ex=timeout if timeout > 0 else None)
        pipe.execute()
    _call(write)


def measures(conn, query: plan.Query, with_histograms: bool, context: QueryContext,
             version: DataVersion | None = None, snapshot: Callable[[], None] = lambda: None) -> Measured:
    """The measures answering `query`: the sealed buckets through the cache, the live edge
    fresh. Sealed measures read are returned in `keep`, for the caller to store (_store) once
    the connection is given back, with any other write of the answer. `snapshot()` is called
    before reading when the reads take more than one statement, which must then see one
    snapshot (a single statement always does: a live refresh, sealed part from the cache,
    reads the edge in one statement and no transaction)."""
    window = query.window
    edge = plan.seal_edge(window, context.now)
    version = version or data_version(conn, window.start, edge, window.end)
    timed = "time" in query.group_by
    accs: dict = {}
    sources, from_cache, sealed_key, keep = set(), False, None, {}
    reads: list[plan.Query] = []
    if edge > window.start:
        sealed_key = _measure_key(query, with_histograms, window.start, edge, version)
        sealed = _call(lambda: cache.get(sealed_key))
        if sealed is not None:
            _count("sealed_hits")
            from_cache = True
            sources.add(sealed[1])
            accs = query_service.measures_from_plain(sealed[0])
        else:
            _count("sealed_misses")
            # by time, one read covers both parts and splits at the edge
            reads.append(query if timed else plan.restricted(query, window.start, edge))
    if edge < window.end and not (reads and timed):
        reads.append(plan.restricted(query, edge, window.end))
    if sum(query_service.statements_of(q, with_histograms, context, version.raw_days) for q in reads) > 1:
        snapshot()
    for n, part_query in enumerate(reads):
        part, source, _ = query_service.collect_measures(conn, part_query, with_histograms, context,
                                                         raw_days=version.raw_days)
        sources.add(source)
        if n == 0 and sealed_key and not from_cache:  # the sealed part was read: keep it
            sealed_part = {k: m for k, m in part.items() if k[0] < edge} if timed else part
            keep[sealed_key] = ((query_service.measures_to_plain(sealed_part), source),
                                current_app.config["CACHE_DEFAULT_TIMEOUT"])
        accs = query_service.merge_measures(accs, part) if accs else part
    step = query_service.STEP[window.granularity]
    sealed_buckets = int((edge - window.start) / step) if timed else int(edge > window.start)
    return Measured(accs, sources.pop() if len(sources) == 1 else "mixed", edge < window.end, sealed_buckets,
                    from_cache, keep)


def cached_series(query: plan.Query, context: QueryContext) -> query_service.Series:
    """The Series answering `query` (for the dashboard's figures), sealed part cached."""
    metric = query_service.metric_of(query)
    m = db.read(lambda conn: measures(conn, query, catalogue.needs_histograms(metric), context))
    _store(m.keep)
    return query_service.series_of(query, metric, m.accs, m.source, m.live)


@dataclass(frozen=True)
class ApiAnswer:
    """An API answer as sent: a chart's {"data": [...], "metadata": {...}}, a report's fields."""
    body: bytes
    gzipped: bool             # body is gzip-compressed (an answer kept whole: as stored, or as it was stored)
    from_cache: bool


CHART_FORMAT = 2  # raised when what a whole answer is stored as changes: one of the old format is never read


def _metadata_json(metadata: dict) -> bytes:
    """A chart answer's metadata, and the brace that closes the answer."""
    return orjson.dumps(metadata, option=orjson.OPT_UTC_Z) + b"}"


def _gzipped_pair(head: bytes, tail: bytes, other_tail: bytes, level: int) -> tuple[bytes, bytes]:
    """gzip(head + tail) and gzip(head + other_tail), the head passed through the compressor
    once (zlib copies its state: window, pending block, gzip header and running checksum)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    start = compressor.compress(head)
    other = compressor.copy()
    return (start + compressor.compress(tail) + compressor.flush(),
            start + other.compress(other_tail) + other.flush())


def chart_answer(query: plan.Query, context: QueryContext) -> ApiAnswer:
    """A chart API answer: whole from the cache while no batch, fold or late event changed
    what it covers; otherwise the sealed measures from the cache and the live edge fresh.
    A whole answer is stored as the response a hit sends, gzip-compressed: a hit reads a
    fifth of the bytes and neither builds nor compresses anything. An answer that is not
    kept whole goes out plain, compressed on its way out like any other."""
    metric = query_service.metric_of(query)
    now = context.now
    edge = plan.seal_edge(query.window, now)
    live = edge < query.window.end

    def read(conn):
        # the version alone needs no snapshot: read it outside a transaction (two round trips
        # fewer on a hit, and on a live refresh that reads one statement); read before the
        # answer, it can only be older than what it keys
        snapshot = dialect.outside_transaction(conn)
        version = data_version(conn, query.window.start, edge, query.window.end)
        # while batches keep arriving, an answer holding the newest buckets is stale within
        # a second: neither look for it nor store it
        whole = not live or version.quiet_since(now) >= QUIET_SECONDS
        key = f"chart{CHART_FORMAT}|{query.cache_key()}|{version.live if live else version.sealed}"
        hit = _call(lambda: cache.get(key)) if whole else None
        if hit is not None:
            return hit, None, None, whole, key
        m = measures(conn, query, catalogue.needs_histograms(metric), context, version, snapshot)
        names = query_service.template_names(conn) if "template_id" in query.group_by else None
        return None, m, names, whole, key

    hit, m, names, whole, key = db.read(read)
    if hit is not None:
        _count("hits")
        return ApiAnswer(hit, True, True)
    _count("misses")
    records = query_service.answer_records(query, metric, m.accs, names)
    data = orjson.dumps(records)
    window = query.window
    metadata = {"metric": metric.name, "unit": metric.unit, "granularity": window.granularity,
                "group_by": list(query.group_by), "start": window.start, "end": window.end, "source": m.source,
                "live": m.live, "total_points": len(records), "sealed_buckets": m.sealed_buckets,
                "generated_at": datetime.now(timezone.utc)}
    head = b'{"data":' + data + b',"metadata":'
    this = _metadata_json({**metadata, "sealed_from_cache": m.sealed_from_cache, "cached": False})
    if not whole:
        _store(m.keep)
        return ApiAnswer(head + this, False, False)
    config = current_app.config
    # the answer a hit will send, and this one: both compressed, the records once
    stored, sent = _gzipped_pair(head, _metadata_json({**metadata, "sealed_from_cache": True, "cached": True}), this,
                                 config["COMPRESS_LEVEL"])
    timeout = config["LIVE_CACHE_TIMEOUT"] if m.live else config["CACHE_DEFAULT_TIMEOUT"]
    _store({**m.keep, key: (stored, timeout)})
    return ApiAnswer(sent, True, False)


# ---------------------------------------------------------------- reports (trends, compare, correlations, drill-down)

class ReportTooLong(Exception):
    """A report used up REPORT_BUDGET_SECONDS of database work; it is stopped between statements."""

    def __init__(self, budget: float):
        super().__init__(budget)
        self.budget = budget
        self.message = (f"This report needs more than {budget:.0f} s of database work and was stopped; "
                        "narrow the time range, pick a coarser granularity or add filters.")


def within_budget(work: Callable[[Connection], Any]) -> Callable[[Connection], Any]:
    """`work` on a read connection whose statements may start only within
    REPORT_BUDGET_SECONDS of the first (each is also bounded by the statement timeout):
    one heavy report cannot hold a worker for minutes."""
    budget = current_app.config["REPORT_BUDGET_SECONDS"]

    def run(conn: Connection):
        deadline = time.monotonic() + budget

        def check(*_args):
            if time.monotonic() > deadline:
                raise ReportTooLong(budget)

        event.listen(conn, "before_cursor_execute", check)
        try:
            return work(conn)
        finally:
            event.remove(conn, "before_cursor_execute", check)
    return run


def report_version(conn: Connection) -> tuple[str, str]:
    """What any report's answer depends on beyond its parameters, as (data, metrics): the
    data version over all time (every batch, fold, rebuild and late event) and every
    custom-metric edit."""
    from services.store.schema import custom_metrics

    now = datetime.now(timezone.utc)
    version = data_version(conn, datetime(1970, 1, 1, tzinfo=timezone.utc), now, now)
    edited = conn.execute(select(func.max(custom_metrics.c.updated_at), func.count())).one()
    return version.live, f"{edited[0].isoformat() if edited[0] else '-'}.{edited[1]}"


REPORT_FORMAT = 4  # raised when what a report is stored as changes: one of the old format is never read
WAIT_POLL_SECONDS = 0.05  # how often a viewer waiting for another's computation looks for its answer


def cached_report(kind: str, parameters: dict, compute: Callable[[Connection], Any],
                  keep: Callable[[Any, datetime], tuple[Any, Any]] = lambda answer, _as_of: (answer, answer),
                  ) -> tuple[Any, bool]:
    """(answer, from_cache): a report keyed by its parameters, the custom metrics and the
    current minute (relative windows move with the clock), kept for LIVE_CACHE_TIMEOUT with
    the data version it read and when. It is shared while the data has not changed since;
    while batches keep arriving, for REPORT_FRESH_SECONDS after it read them: viewers of a
    report under ingest share one computation every few seconds instead of making one each.
    Past that, one viewer at a time computes it again (a claim in the cache), in the
    background: that viewer and the others are sent the one before meanwhile — in a new
    minute, the previous minute's — as HTTP's stale-while-revalidate (no answer is older than
    REPORT_FRESH_SECONDS plus one computation, which the budget bounds). A question with no
    answer kept yet is computed by its first viewer while the others wait for it, holding no
    connection; so is every one with REPORT_FRESH_SECONDS at 0. A metric edit changes the
    key: computed again at once. `keep(answer, as_of)` gives (what is stored, what is
    returned now): the answer itself unless told otherwise."""
    now = datetime.now(timezone.utc)
    config = current_app.config
    fresh, budget = config["REPORT_FRESH_SECONDS"], config["REPORT_BUDGET_SECONDS"]
    question = f"report{REPORT_FORMAT}|{kind}|" + orjson.dumps(parameters, option=orjson.OPT_SORT_KEYS).decode()
    key, previous_minute = (f"{question}|{t:%Y%m%dT%H%M}" for t in (now, now - timedelta(minutes=1)))

    def store(answer, data: str, as_of: datetime, versioned: str, claim: str | None):
        stored, returned = keep(answer, as_of)
        _call(lambda: cache.set(versioned, (stored, data, as_of), timeout=config["LIVE_CACHE_TIMEOUT"]))
        if claim:
            _call(lambda: cache.delete(claim))
        return returned

    def versions(conn):
        """(snapshot, as_of, data version, key with the metric edits): the version read
        outside a transaction, `snapshot()` starting the one the computation reads in."""
        snapshot = dialect.outside_transaction(conn)
        as_of = datetime.now(timezone.utc)  # before the version: the answer holds at least this
        data, edits = report_version(conn)
        return snapshot, as_of, data, edits

    def read(conn, may_wait: bool):
        snapshot, as_of, data, edits = versions(conn)
        versioned = f"{key}|{edits}"
        kept = _call(lambda: cache.get(versioned))
        age = None
        if kept is not None:
            stored, read_data, read_at = kept
            age = (as_of - read_at).total_seconds()
            if read_data == data or 0 <= age <= fresh:
                return "kept", stored, versioned
        else:  # a new minute: the previous minute's answer is the one before
            before = _call(lambda: cache.get(f"{previous_minute}|{edits}"))
            if before is not None:
                stored, age = before[0], (as_of - before[2]).total_seconds()
        claim = f"computing|{versioned}"
        # the claim lasts as long as a computation may (the budget bounds its statements)
        claimed = _call(lambda: cache.add(claim, 1, timeout=int(budget) + 1), True)
        if age is not None and age <= fresh + budget and (fresh > 0 or not claimed):
            # the one before, while another viewer computes it, or this one in the background
            return ("refresh", (stored, claim), versioned) if claimed else ("kept", stored, versioned)
        if not claimed and may_wait:
            return "wait", (claim, kept[2] if kept is not None else None), versioned
        try:
            snapshot()
            return "computed", (compute(conn), data, as_of, claim if claimed else None), versioned
        except BaseException:
            if claimed:
                _call(lambda: cache.delete(claim))
            raise

    def recompute(conn):
        snapshot, as_of, data, edits = versions(conn)
        snapshot()
        return compute(conn), data, as_of, f"{key}|{edits}"

    outcome, value, versioned = db.read(within_budget(lambda conn: read(conn, True)))
    if outcome == "wait":
        kept = _wait_for(versioned, *value, budget + 1)
        if kept is not None:
            outcome, value = "kept", kept[0]
        else:  # the other computation failed or outlived its budget: this viewer computes it
            outcome, value, versioned = db.read(within_budget(lambda conn: read(conn, False)))
    if outcome == "refresh":
        stored, claim = value
        _in_background(claim, lambda: store(*db.read(within_budget(recompute)), None))
        outcome, value = "kept", stored
    _count("hits" if outcome == "kept" else "misses")
    if outcome == "kept":
        return value, True
    answer, data, as_of, claim = value
    return store(answer, data, as_of, versioned, claim), False


def _in_background(claim: str, work: Callable[[], Any]) -> None:
    """`work()` in a thread of its own, in this app, then `claim` given up: a failure is
    logged, and the next viewer past the kept answer's freshness computes it again."""
    app = current_app._get_current_object()

    def run() -> None:
        with app.app_context():
            try:
                work()
            except Exception as exc:
                log.warning("a report computed again in the background failed: %s", getattr(exc, "message", exc))
            finally:
                _call(lambda: cache.delete(claim))
    threading.Thread(target=run, name="report-refresh", daemon=True).start()


def _wait_for(key: str, claim: str, older: datetime | None, seconds: float):
    """What another viewer's computation stores under `key` (not the one kept before, read
    at `older`), looked for every WAIT_POLL_SECONDS for at most `seconds`; None when its
    claim is gone with nothing new stored."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(WAIT_POLL_SECONDS)
        kept = _call(lambda: cache.get(key))
        if kept is not None and kept[2] != older:
            return kept
        if not _call(lambda: cache.has(claim)):
            return None
    return None


def report_answer(kind: str, parameters: dict, compute: Callable[[Connection], Any]) -> ApiAnswer:
    """A report as the API sends it: its fields, "as_of" (when its data was read) and
    "cached". Kept as the gzip-compressed response a hit sends, as a chart answer is."""
    def bodies(answer, as_of: datetime) -> tuple[bytes, bytes]:
        fields = to_json(answer)[:-1]  # the object without its closing brace
        head = (fields + b"," if len(fields) > 1 else fields) + b'"as_of":' + \
            orjson.dumps(as_of, option=orjson.OPT_UTC_Z) + b","
        return _gzipped_pair(head, b'"cached":true}', b'"cached":false}', current_app.config["COMPRESS_LEVEL"])

    body, from_cache = cached_report(kind, parameters, compute, bodies)
    return ApiAnswer(body, True, from_cache)
