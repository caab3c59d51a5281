"""What /health reports: database, cache and scheduler, each as one short word or sentence."""
from __future__ import annotations

import logging

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)


def short_error(exc: BaseException) -> str:
    """The first line of an exception, without the driver's noise, for a user to read."""
    inner = getattr(exc, "orig", None) or exc
    first_line = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
    return f"{type(inner).__name__}: {first_line}"[:200]


SCHEMA_MISSING = "The analytics database has no tables yet: run `flask --app wsgi init-db`."


def is_missing_schema(exc: BaseException) -> bool:
    """A query failed because the migrations have not been applied."""
    text = str(getattr(exc, "orig", None) or exc)
    return ("does not exist" in text and "relation" in text) or "no such table" in text


QUERY_TOO_LONG = ("The query took longer than the query timeout and was stopped; narrow the time range or "
                  "add filters.")


def is_timeout(exc: BaseException) -> bool:
    """Stopped by the statement or the lock timeout (Postgres)."""
    text = str(getattr(exc, "orig", None) or exc)
    return "statement timeout" in text or "lock timeout" in text


WRITE_BUSY = "The database is busy with other writes; nothing was changed. Retry in a few seconds."


def database_problem(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not answering" to the caller
        return short_error(exc)
    return None


def cache_state(cache, redis_configured: bool) -> str:
    """"simple", "redis", or "unreachable" (the reason goes to the log, never to the caller)."""
    if not redis_configured:
        return "simple"
    try:
        cache.set("health:probe", "1", timeout=10)
        if cache.get("health:probe") != "1":
            log.error("health: redis did not return what was stored")
            return "unreachable"
    except Exception as exc:
        log.error("health: cache %s", short_error(exc))
        return "unreachable"
    return "redis"


def scheduler_state(engine: Engine, mode: str) -> str:
    """The scheduler's mode in this process and when the last rollup ran (any process)."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from services.store.schema import rollup_state

    try:
        with engine.connect() as conn:
            last = conn.execute(select(rollup_state.c.updated_at).where(rollup_state.c.name == "run")).scalar()
    except Exception:
        return mode
    if last is None:
        return f"{mode}; no rollup has run yet"
    age = (datetime.now(timezone.utc) - last).total_seconds()
    return f"{mode}; last rollup {age:.0f} s ago"
