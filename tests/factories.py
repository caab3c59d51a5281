"""Factories for events: tests say only what matters to them."""
from __future__ import annotations

import itertools
import random
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


def outage_scenario(seed: int, start: datetime, hours: int, outage: tuple[int, ...]) -> list[dict]:
    """Hourly email and SMS sends over `hours` hours from `start`; email delivers ~96 %, SMS
    ~94 % except in the `outage` hours (~45 %)."""
    rnd = random.Random(seed)
    events = []
    for hour in range(hours):
        for channel, sends, rate in (("email", 150, 0.96), ("sms", 60, 0.45 if hour in outage else 0.94)):
            for n in range(sends):
                at = start + timedelta(hours=hour, seconds=rnd.uniform(0, 3500))
                nid = f"{channel}-{hour}-{n}"
                events.append({"event_id": f"{nid}:sent", "notification_id": nid, "created_at": iso(at),
                               "channel": channel, "status": "sent", "template_id": 1})
                outcome = "delivered" if rnd.random() < rate else "failed"
                events.append({"event_id": f"{nid}:{outcome}", "notification_id": nid, "channel": channel,
                               "created_at": iso(at + timedelta(seconds=20)), "status": outcome, "template_id": 1})
    return events
