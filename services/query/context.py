"""What the deployment and the moment add to every question: built once per request (an API
view or a callback) and passed to every report, so no signature threads channels, retention
settings and "now" by hand."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from services.store.schema import CHANNELS


@dataclass(frozen=True)
class QueryContext:
    now: datetime                           # the moment the question is asked (UTC); "now-24h" is from here
    channels: tuple[str, ...] = CHANNELS    # the deployment's channels, in display order
    minute_retention_hours: int = 48        # minute rollups older than this are gone: hours answer
    raw_retention_days: int = 30            # raw events older than this are gone


def context_at(now: datetime | None = None, **deployment) -> QueryContext:
    """A context at `now` (the clock's, when None) with the deployment's settings."""
    return QueryContext(now or datetime.now(timezone.utc), **deployment)
