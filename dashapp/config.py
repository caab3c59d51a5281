"""Settings: defaults, then the environment, then explicit overrides.

Every setting the deployment can change is read here and nowhere else, so the
table in README.md and this module describe the same thing.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.alerts.webhooks import allowlist_from
from services.query.context import QueryContext, context_at

DEFAULT_DATABASE_URL = "sqlite:///instance/analytics.db"
SCHEDULER_MODES = ("inprocess", "off")

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "DATABASE_URL": DEFAULT_DATABASE_URL,
    "DATABASE_READ_URL": None,  # a streaming replica: every dashboard and API read goes there
    "REPLICA_WAIT_SECONDS": 1.0,   # a read waits this long for the replica to catch up, then asks the primary
    "REPLICA_RETRY_SECONDS": 5.0,  # a lagging or lost replica is skipped this long
    "REDIS_URL": None,
    "REDIS_SOCKET_TIMEOUT": 0.25,
    "CACHE_PREFIX": "",  # added to every cache key, beside the database's identity
    "SCHEDULER": None,  # None: decided by how the process was started (see scheduler_mode)
    "URL_PREFIX": "/analytics/",
    "INGEST_TOKEN": None,
    "READ_TOKEN": None,    # standalone app: reads the dashboard and API (dashapp.access)
    "ADMIN_TOKEN": None,   # standalone app: also saves and deletes custom metrics
    "RAW_RETENTION_DAYS": 30,
    "MINUTE_RETENTION_HOURS": 48,
    "CHANNELS": ("email", "sms", "push"),
    "SECRET_KEY": None,
    "CACHE_DEFAULT_TIMEOUT": 300,
    "LIVE_CACHE_TIMEOUT": 30,
    "ROLLUP_INTERVAL_SECONDS": 2.0,  # how often the scheduler folds what ingest wrote
    "QUERY_TIMEOUT_SECONDS": 15.0,
    "REPORT_BUDGET_SECONDS": 10.0,  # database work one trend, comparison, correlation or drill level may do
    "REPORT_FRESH_SECONDS": 5.0,    # while batches arrive, a report this young is shared, not computed again
    "WRITE_TIMEOUT_SECONDS": 10.0,  # a request's write waiting on a lock or running longer gives up: 503
    "RATE_LIMIT": "1200 per minute",  # per client address, on /api/*; "off" disables it
    "TRUSTED_PROXIES": 0,  # proxies in front of the standalone app whose X-Forwarded-* headers are believed
    "PUBLIC_URL": None,  # e.g. https://portal.example.com: alert links become absolute
    "ALERT_WEBHOOK_ALLOWLIST": (),  # hosts alert webhooks may call: host, host:port or *.domain
    "ALERT_SETTLE_SECONDS": 60.0,   # a bucket is judged this long after it ends (late events settle)
    "ALERT_WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "ALERT_DIGEST_HOUR": 8,         # UTC hour the daily digests go out
    "DEMO_FEED_PER_HOUR": 0,        # > 0: the in-process scheduler feeds demo notifications (make run)
}

_INT_SETTINGS = ("TRUSTED_PROXIES", "RAW_RETENTION_DAYS", "MINUTE_RETENTION_HOURS", "CACHE_DEFAULT_TIMEOUT", "LIVE_CACHE_TIMEOUT",
                 "ALERT_DIGEST_HOUR", "DEMO_FEED_PER_HOUR")
_FLOAT_SETTINGS = ("REDIS_SOCKET_TIMEOUT", "REPLICA_WAIT_SECONDS", "REPLICA_RETRY_SECONDS", "QUERY_TIMEOUT_SECONDS", "REPORT_BUDGET_SECONDS", "REPORT_FRESH_SECONDS", "WRITE_TIMEOUT_SECONDS",
                   "ROLLUP_INTERVAL_SECONDS", "ALERT_SETTLE_SECONDS", "ALERT_WEBHOOK_TIMEOUT_SECONDS")
_STR_SETTINGS = ("ENV", "DATABASE_URL", "DATABASE_READ_URL", "REDIS_URL", "CACHE_PREFIX", "SCHEDULER", "URL_PREFIX",
                 "INGEST_TOKEN", "READ_TOKEN", "ADMIN_TOKEN", "SECRET_KEY", "RATE_LIMIT", "PUBLIC_URL")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it and what is allowed."""


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read every known setting present in `environ`, converted to its type."""
    found: dict[str, Any] = {}
    for name in _STR_SETTINGS:
        value = environ.get(name)
        if value not in (None, ""):
            found[name] = value
    for name in _INT_SETTINGS:
        if environ.get(name):
            try:
                found[name] = int(environ[name])
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, got {environ[name]!r}") from None
    for name in _FLOAT_SETTINGS:
        if environ.get(name):
            try:
                found[name] = float(environ[name])
            except ValueError:
                raise ConfigError(f"{name} must be a number of seconds, got {environ[name]!r}") from None
    if environ.get("ALERT_WEBHOOK_ALLOWLIST"):
        found["ALERT_WEBHOOK_ALLOWLIST"] = allowlist_from(environ["ALERT_WEBHOOK_ALLOWLIST"])
    if environ.get("CHANNELS"):
        found["CHANNELS"] = tuple(c.strip() for c in environ["CHANNELS"].split(",") if c.strip())
    return found


def build_settings(overrides: Mapping[str, Any] | None = None,
                   environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Defaults, then the environment, then `overrides`; validated."""
    from_env = settings_from_env(os.environ if environ is None else environ)
    overrides = dict(overrides or {})
    settings = {**DEFAULTS, **from_env, **overrides}
    explicit_database = "DATABASE_URL" in from_env or "DATABASE_URL" in overrides
    return validate_settings(settings, explicit_database)


def validate_settings(settings: dict[str, Any], explicit_database: bool) -> dict[str, Any]:
    production = settings["ENV"] == "production"
    if production and not settings.get("SECRET_KEY"):
        raise ConfigError("SECRET_KEY is required when ENV=production")
    if production and not explicit_database:
        raise ConfigError("DATABASE_URL must be set explicitly when ENV=production")
    if not settings.get("SECRET_KEY"):
        settings["SECRET_KEY"] = secrets.token_hex(32)  # dev only: sessions end with the process
    if settings["SCHEDULER"] is not None and settings["SCHEDULER"] not in SCHEDULER_MODES:
        raise ConfigError(f"SCHEDULER must be one of {', '.join(SCHEDULER_MODES)}, got {settings['SCHEDULER']!r}")
    prefix = settings["URL_PREFIX"]
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise ConfigError(f"URL_PREFIX must start and end with '/', got {prefix!r}")
    for name in ("RAW_RETENTION_DAYS", "MINUTE_RETENTION_HOURS"):
        if settings[name] < 1:
            raise ConfigError(f"{name} must be at least 1, got {settings[name]}")
    if not 0.1 <= settings["ROLLUP_INTERVAL_SECONDS"] <= 3600:
        raise ConfigError(f"ROLLUP_INTERVAL_SECONDS must be from 0.1 to 3600, got {settings['ROLLUP_INTERVAL_SECONDS']}")
    if not settings["REPORT_BUDGET_SECONDS"] > 0:
        raise ConfigError(f"REPORT_BUDGET_SECONDS must be more than 0, got {settings['REPORT_BUDGET_SECONDS']}")
    if not 0 <= settings["REPORT_FRESH_SECONDS"] <= settings["LIVE_CACHE_TIMEOUT"]:  # a report is kept that long
        raise ConfigError(f"REPORT_FRESH_SECONDS must be from 0 to LIVE_CACHE_TIMEOUT ({settings['LIVE_CACHE_TIMEOUT']}), "
                          f"got {settings['REPORT_FRESH_SECONDS']}")
    if not 0.5 <= settings["WRITE_TIMEOUT_SECONDS"] <= 25:  # below gunicorn's 30 s worker timeout
        raise ConfigError(f"WRITE_TIMEOUT_SECONDS must be from 0.5 to 25, got {settings['WRITE_TIMEOUT_SECONDS']}")
    if not 0 <= settings["REPLICA_WAIT_SECONDS"] <= 10:  # a read waits this long before asking the primary
        raise ConfigError(f"REPLICA_WAIT_SECONDS must be from 0 to 10, got {settings['REPLICA_WAIT_SECONDS']}")
    if not 0.1 <= settings["REPLICA_RETRY_SECONDS"] <= 600:
        raise ConfigError(f"REPLICA_RETRY_SECONDS must be from 0.1 to 600, got {settings['REPLICA_RETRY_SECONDS']}")
    read_url = settings.get("DATABASE_READ_URL")
    if read_url and not (read_url.startswith("postgresql") and settings["DATABASE_URL"].startswith("postgresql")):
        raise ConfigError("DATABASE_READ_URL must be a postgresql+psycopg:// URL of a streaming replica of the "
                          f"Postgres DATABASE_URL, got {read_url.split(':', 1)[0]}://… beside "
                          f"{settings['DATABASE_URL'].split(':', 1)[0]}://…")
    if not 0 <= settings["TRUSTED_PROXIES"] <= 5:
        raise ConfigError(f"TRUSTED_PROXIES must be from 0 to 5 (proxies in front of the app), got "
                          f"{settings['TRUSTED_PROXIES']}")
    if not 0 <= settings["ALERT_DIGEST_HOUR"] <= 23:
        raise ConfigError(f"ALERT_DIGEST_HOUR must be an hour from 0 to 23 (UTC), got {settings['ALERT_DIGEST_HOUR']}")
    if not 0 <= settings["DEMO_FEED_PER_HOUR"] <= 1_000_000:
        raise ConfigError(f"DEMO_FEED_PER_HOUR must be from 0 (off) to 1,000,000 notifications an hour, got "
                          f"{settings['DEMO_FEED_PER_HOUR']}")
    if not 0 <= settings["ALERT_SETTLE_SECONDS"] <= 86400:
        raise ConfigError(f"ALERT_SETTLE_SECONDS must be from 0 to 86400, got {settings['ALERT_SETTLE_SECONDS']}")
    if not 0.5 <= settings["ALERT_WEBHOOK_TIMEOUT_SECONDS"] <= 30:
        raise ConfigError("ALERT_WEBHOOK_TIMEOUT_SECONDS must be from 0.5 to 30, got "
                          f"{settings['ALERT_WEBHOOK_TIMEOUT_SECONDS']}")
    public = settings.get("PUBLIC_URL")
    if public and not (public.startswith(("http://", "https://")) and not public.endswith("/")):
        raise ConfigError(f"PUBLIC_URL must start with http:// or https:// and not end with '/', got {public!r}")
    if isinstance(settings["ALERT_WEBHOOK_ALLOWLIST"], str):
        settings["ALERT_WEBHOOK_ALLOWLIST"] = allowlist_from(settings["ALERT_WEBHOOK_ALLOWLIST"])
    if not settings["CHANNELS"]:
        raise ConfigError("CHANNELS must name at least one channel")
    return settings


def scheduler_mode(settings: Mapping[str, Any], command_name: str | None) -> str:
    """`inprocess` under `flask run` (the embedded default), `off` everywhere else
    (gunicorn workers, CLI commands), unless SCHEDULER says otherwise."""
    if settings.get("SCHEDULER"):
        return settings["SCHEDULER"]
    return "inprocess" if command_name == "run" else "off"


def query_context(config: Mapping[str, Any], now: datetime | None = None) -> QueryContext:
    """The QueryContext of a deployment's settings, at `now` (the clock's when None)."""
    return context_at(now, channels=tuple(config["CHANNELS"]), minute_retention_hours=config["MINUTE_RETENTION_HOURS"],
                      raw_retention_days=config["RAW_RETENTION_DAYS"])
