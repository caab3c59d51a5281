"""The deployment's settings applied to alert evaluation and delivery: one place the
scheduler's jobs, the CLI and the API take them from."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine

from dashapp.config import query_context
from services.alerts import evaluation as alerts
from services.alerts import webhooks


def dashboard_base(config: Mapping) -> str:
    """Where links in alerts point: the dashboard, absolute when PUBLIC_URL is set."""
    return (config.get("PUBLIC_URL") or "") + config["URL_PREFIX"]


def _judging(config: Mapping) -> dict:
    """How the deployment judges rules: settle time, link base, and the QueryContext
    (channels and retention) of its settings at this moment."""
    return {"settle": timedelta(seconds=config["ALERT_SETTLE_SECONDS"]), "base": dashboard_base(config),
            "context": query_context(config)}


def evaluate_alerts(engine: Engine, config: Mapping, at: datetime | None = None,
                    since: datetime | None = None) -> alerts.EvaluationReport:
    return alerts.evaluate_due(engine, at, since=since, **_judging(config))


def preview_alert(conn: Connection, config: Mapping, fields: Mapping) -> dict:
    """What an unsaved rule would have done lately (the API's and the Alerts tab's preview)."""
    return alerts.preview(conn, fields, **_judging(config))


def deliver_alerts(engine: Engine, config: Mapping, now: datetime | None = None) -> webhooks.DeliveryReport:
    alerts.queue_digests(engine, now, hour=config["ALERT_DIGEST_HOUR"], base=dashboard_base(config))
    return webhooks.deliver_due(engine, now, allowlist=config["ALERT_WEBHOOK_ALLOWLIST"],
                                timeout=config["ALERT_WEBHOOK_TIMEOUT_SECONDS"])


def rule_options(config: Mapping) -> dict:
    """What validating a rule needs to know about the deployment."""
    return {"channels": config["CHANNELS"], "allowlist": config["ALERT_WEBHOOK_ALLOWLIST"]}
