"""Factories for events: tests say only what matters to them."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

_ids = itertools.count(1)


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def recent(minutes: float = 30, now: datetime | None = None) -> datetime:
    return (now or datetime.now(timezone.utc)) - timedelta(minutes=minutes)


def make_event(**fields) -> dict:
    """A valid event; any field can be overridden (None removes it)."""
    number = next(_ids)
    event = {
        "event_id": f"ev-{number}",
        "notification_id": f"n-{number}",
        "created_at": iso(recent()),
        "channel": "email",
        "template_id": 1,
        "user_id": "u-1",
        "status": "delivered",
        "processing_time_ms": 250,
        "metadata": {"campaign": "test"},
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def make_events(count: int, **fields) -> list[dict]:
    return [make_event(**fields) for _ in range(count)]
