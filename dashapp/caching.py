"""Query results cached in Flask-Caching (Redis, or in-process without REDIS_URL).

Keys are built from the normalized query plus the version of its range (the rollup
generation of its days and the newest ingest batch in its hours), so a result lives until
a rollup or an ingest touches its range: an event ingested now is in the next answer. A
result holding buckets not rolled up yet is kept at most LIVE_CACHE_TIMEOUT seconds. A dead or slow Redis costs one socket timeout, then is
skipped for a few seconds: answers get slower, never wrong and never errors.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import current_app

from dashapp.extensions import cache, db
from services import query as query_service
from services.rollup import range_version

log = logging.getLogger(__name__)
BREAKER_SECONDS = 5.0
_STATS = ("hits", "misses")


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


def cached(key: str, compute: Callable[[], Any], is_live: Callable[[Any], bool]) -> tuple[Any, datetime, bool]:
    """(value, generated_at, served_from_cache) for `key`, computing and storing on a miss."""
    hit = _call(lambda: cache.get(key))
    if hit is not None:
        _call(lambda: cache.cache.inc("stats:hits"))
        value, generated_at = hit
        return value, generated_at, True
    _call(lambda: cache.cache.inc("stats:misses"))
    value = compute()
    generated_at = datetime.now(timezone.utc)
    config = current_app.config
    timeout = config["LIVE_CACHE_TIMEOUT"] if is_live(value) else config["CACHE_DEFAULT_TIMEOUT"]
    _call(lambda: cache.set(key, (value, generated_at), timeout=timeout))
    return value, generated_at, False


def cache_stats() -> dict:
    counts = {name: int(_call(lambda n=name: cache.get(f"stats:{n}"), 0) or 0) for name in _STATS}
    total = counts["hits"] + counts["misses"]
    backend = "redis" if current_app.config.get("REDIS_URL") else "simple"
    if time.monotonic() < _breaker()["open_until"]:
        backend += " (unreachable; answering without cache)"
    return {**counts, "hit_rate": round(counts["hits"] / total, 4) if total else None, "backend": backend}


def settings_for_queries() -> dict:
    config = current_app.config
    return {"minute_retention_hours": config["MINUTE_RETENTION_HOURS"],
            "raw_retention_days": config["RAW_RETENTION_DAYS"]}


def query_key(query: query_service.Query, kind: str) -> str:
    """The cache key of an answer to `query`: valid until its range is rolled up again or
    receives events."""
    with db.read_engine.connect() as conn:
        version = range_version(conn, query.window.start, query.window.end)
    return f"{kind}|{query.cache_key()}|{version}"


def cached_series(query: query_service.Query, now: datetime):
    """The Series answering `query`, through the cache (for the dashboard's figures)."""
    def compute():
        with db.read_engine.connect() as conn:
            return query_service.run_query(conn, query, now=now, **settings_for_queries())

    return cached(query_key(query, "series"), compute, lambda series: series.live)
