"""Sending alert notifications: webhook URLs checked against the deployment's allow-list
(nothing is ever sent to a host an administrator did not list), and the outbox of
alert_deliveries drained with retries and backoff. Delivery is at least once: each body
carries its delivery `id`, the same on every retry, so a receiver can drop a repeat."""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import takewhile
from urllib.parse import urlsplit

import orjson
import requests
from sqlalchemy import Engine, select, update

from services.store.schema import alert_deliveries

log = logging.getLogger("analytics.alerts")

MAX_ATTEMPTS = 8                    # then the delivery is marked failed (about 30 minutes of trying)
FIRST_RETRY = timedelta(seconds=15)
LONGEST_WAIT = timedelta(minutes=15)
LEASE = timedelta(seconds=60)       # a claimed delivery whose sender died is retried after this
BATCH = 20                          # per rule and run
SENDERS = 4                         # rules served at once, so one slow receiver holds up no other


def allowlist_from(text: str | None) -> tuple[str, ...]:
    """ALERT_WEBHOOK_ALLOWLIST: comma-separated `host`, `host:port` or `*.domain` entries."""
    return tuple(e.strip().lower() for e in (text or "").split(",") if e.strip())


def _allowed(host: str, port: int, allowlist: Sequence[str]) -> bool:
    for entry in allowlist:
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (not entry_port.isdigit() or int(entry_port) != port):
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]) and host != name[2:]:
                return True
        elif host == name:
            return True
    return False


def url_problem(url, allowlist: Sequence[str]) -> str | None:
    """Why `url` may not receive alerts, or None."""
    if not isinstance(url, str) or len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        return "webhook_url must be an http(s) URL of at most 2,000 characters without spaces"
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "webhook_url is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "webhook_url must start with http:// or https:// and name a host"
    if parts.username or parts.password:
        return "webhook_url must not carry a user name or password"
    if not allowlist:
        return ("webhooks are off on this server: ALERT_WEBHOOK_ALLOWLIST is empty (an administrator lists "
                "the hosts alerts may call)")
    if not _allowed(parts.hostname.lower(), port, allowlist):
        return (f"webhook host {parts.hostname[:100]!r} (port {port}) is not in the server's allow-list: "
                f"{', '.join(allowlist)}")
    return None


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 15 s, 30 s, 1 min, … up to 15 min."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_WAIT)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None
    final: bool = False   # not worth retrying


def post_json(url: str, body: dict, timeout: float) -> Outcome:
    """One try. Redirects are not followed (they could lead off the allow-list)."""
    try:
        response = requests.post(url, data=orjson.dumps(body), timeout=(min(timeout, 3.0), timeout),
                                 allow_redirects=False,
                                 headers={"Content-Type": "application/json",
                                          "User-Agent": "notification-analytics-alerts/1"})
    except requests.Timeout:
        return Outcome(False, None, f"no answer within {timeout:g} s")
    except requests.RequestException as exc:
        return Outcome(False, None, f"could not connect: {type(exc).__name__}")
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    return Outcome(False, response.status_code, f"answered HTTP {response.status_code}")


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def did_work(self) -> bool:
        return bool(self.sent or self.retrying or self.failed)


def deliver_due(engine: Engine, now: datetime | None = None, *, allowlist: Sequence[str] = (), timeout: float = 5.0,
                send: Callable[[str, dict, float], Outcome] = post_json) -> DeliveryReport:
    """Send the pending deliveries that are due, each rule's in the order they were queued
    (a rule's later notification waits while an earlier one is being retried), several
    rules at once. Each try is claimed first (attempts + 1 and a lease), so two schedulers
    never send the same try twice; its outcome is written right after."""
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        pending = conn.execute(select(alert_deliveries.c.id, alert_deliveries.c.rule_id, alert_deliveries.c.attempts,
                                      alert_deliveries.c.next_attempt_at, alert_deliveries.c.url,
                                      alert_deliveries.c.payload)
                               .where(alert_deliveries.c.status == "pending")
                               .order_by(alert_deliveries.c.rule_id, alert_deliveries.c.id).limit(BATCH * 10)).all()
    queues: dict[int, list] = {}
    for row in pending:
        queues.setdefault(row.rule_id, []).append(row)
    due = [list(takewhile(lambda r: r.next_attempt_at <= now, rows)) for rows in queues.values()]

    def claim(row) -> bool:
        with engine.begin() as conn:
            return conn.execute(update(alert_deliveries).where(
                alert_deliveries.c.id == row.id, alert_deliveries.c.status == "pending",
                alert_deliveries.c.attempts == row.attempts).values(attempts=row.attempts + 1,
                                                                    next_attempt_at=now + LEASE)).rowcount == 1

    def attempt(row) -> Outcome:
        problem = url_problem(row.url, allowlist)
        if problem:  # the allow-list changed since the rule was saved
            return Outcome(False, None, problem, final=True)
        return send(row.url, {**row.payload, "id": row.id, "attempt": row.attempts + 1}, timeout)

    def record(row, outcome: Outcome) -> str:
        tries = row.attempts + 1
        if outcome.ok:
            values, result = {"status": "sent", "sent_at": datetime.now(timezone.utc), "last_error": None,
                              "last_status_code": outcome.status_code}, "sent"
        elif tries >= MAX_ATTEMPTS or outcome.final:
            values, result = {"status": "failed", "last_error": outcome.error[:500],
                              "last_status_code": outcome.status_code}, "failed"
            log.warning("alert delivery %s failed for good after %d tries: %s", row.id, tries, outcome.error)
        else:
            values, result = {"next_attempt_at": now + backoff(tries), "last_error": outcome.error[:500],
                              "last_status_code": outcome.status_code}, "retrying"
        with engine.begin() as conn:
            conn.execute(update(alert_deliveries).where(alert_deliveries.c.id == row.id).values(**values))
        return result

    def drain(queue: list) -> list[str]:
        results = []
        for row in queue[:BATCH]:
            if not claim(row):
                break
            results.append(record(row, attempt(row)))
            if results[-1] == "retrying":
                break
        return results

    report = DeliveryReport()
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        for results in pool.map(drain, [q for q in due if q]):
            report.sent += results.count("sent")
            report.retrying += results.count("retrying")
            report.failed += results.count("failed")
    return report
