"""What /health reports: database, cache and scheduler, each as one short word or sentence."""
from __future__ import annotations

from sqlalchemy import Engine, text


def short_error(exc: BaseException) -> str:
    """The first line of an exception, without the driver's noise, for a user to read."""
    inner = getattr(exc, "orig", None) or exc
    first_line = (str(inner).strip().splitlines() or [type(inner).__name__])[0]
    return f"{type(inner).__name__}: {first_line}"[:200]


def database_problem(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not answering" to the caller
        return short_error(exc)
    return None


def cache_state(cache, redis_configured: bool) -> str:
    if not redis_configured:
        return "simple"
    try:
        cache.set("health:probe", "1", timeout=10)
        if cache.get("health:probe") != "1":
            return "error: redis did not return what was stored"
    except Exception as exc:
        return f"error: {short_error(exc)}"
    return "redis"
