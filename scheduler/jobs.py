"""Every scheduled job, declared once with a stable id. Each runs in an app context and
calls the same service function as its CLI command."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from dashapp.alerting import deliver_alerts, evaluate_alerts
from dashapp.extensions import db
from services.rollup import fold as rollup
from services.store import demo, dialect
from services.store.ingest import oldest_accepted
from services.store.schema import notification_events

log = logging.getLogger("scheduler")


def run_rollup(app: Flask) -> None:
    with app.app_context():
        config = app.config
        report = rollup.rollup_pending(db.engine, minute_retention_hours=config["MINUTE_RETENTION_HOURS"],
                                       raw_retention_days=config["RAW_RETENTION_DAYS"])
    # every two seconds: only a run that did something (or could not) is worth a line
    if report.did_work or report.locked_out:
        log.info("job rollup: %s", report.summary())
    if report.locked_out:
        return
    with app.app_context():  # right after the rollup: the rules whose next bucket is complete
        judged = evaluate_alerts(db.engine, app.config)
    if judged.transitions or judged.skipped:
        log.info("job rollup: alerts: %s", judged.summary())


def run_alert_delivery(app: Flask) -> None:
    """Webhooks on their own job, so a slow receiver never holds up a rollup."""
    with app.app_context():
        report = deliver_alerts(db.engine, app.config)
    if report.did_work():
        log.info("job alert-delivery: %d sent, %d to retry, %d failed for good", report.sent, report.retrying,
                 report.failed)


def run_demo_feed(app: Flask) -> None:
    """Keep the demo alive (`make run`): new events every few seconds through the ingest
    storage path, now and then an SMS carrier outage, and — on the first run of a process —
    the history since the newest stored event filled in, so a demo started days ago shows the
    last days too."""
    state = app.extensions.setdefault("demo_feed", {})
    now = datetime.now(timezone.utc)
    with app.app_context():
        config = app.config
        if "until" not in state:
            with db.engine.connect() as conn:
                newest = conn.execute(select(func.max(notification_events.c.created_at))).scalar()
            floor = oldest_accepted(now, config["RAW_RETENTION_DAYS"]) + timedelta(hours=1)
            start = min(max(newest, floor), now) if newest else now
            state.update(until=start, sent_from=start)
        report = demo.feed(db.engine.begin, state["until"], now, config["DEMO_FEED_PER_HOUR"], DEMO_FEED_SEED,
                           state["sent_from"])
    state["until"] = now
    if report.topped_up:
        log.info("job demo-feed: filled in %.1f hours of history since %s UTC: %d events",
                 (now - report.since).total_seconds() / 3600, f"{report.since:%Y-%m-%d %H:%M}", report.written)


def run_retention(app: Flask) -> None:
    with app.app_context():
        config = app.config
        result = rollup.apply_retention(db.engine, raw_retention_days=config["RAW_RETENTION_DAYS"],
                                        minute_retention_hours=config["MINUTE_RETENTION_HOURS"])
    if result["raw_postponed"]:
        log.warning("job retention: expired raw days postponed to the next run: a long read held the events table")
    log.info("job retention: dropped %d raw days, %d minute rows", result["raw_dropped"],
             result["minute_rows_deleted"])


def run_partition_maintenance(app: Flask) -> None:
    """Partitions a week ahead; when a long read holds the events table past
    dialect.DDL_LOCK_TIMEOUT, the next daily run (or the first batch for a day) makes them."""
    try:
        with app.app_context(), db.engine.begin() as conn:
            created = dialect.ensure_partitions_ahead(conn)
    except OperationalError as exc:
        if not dialect.is_lock_timeout(exc):
            raise
        log.warning("job partitions: postponed: a long read held the events table")
        return
    log.info("job partitions: created %d daily partitions ahead", len(created))


def run_lookup_indexes(app: Flask) -> None:
    """The lookup indexes of the days a backfill wrote, once they are rolled up."""
    with app.app_context():
        built = rollup.index_rebuilt_days(db.engine)
    if built:
        log.info("job lookup-indexes: built the lookup indexes of %s", rollup.backfilled_days(built))


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[[Flask], None]
    trigger_args: dict = field(default_factory=dict)  # for the "interval" trigger
    misfire_grace_time: int = 30
    interval_setting: str | None = None               # an app setting that overrides the interval (seconds)
    enabled_setting: str | None = None                # an app setting that must be set for the job to run


JOBS: tuple[JobSpec, ...] = (
    JobSpec("rollup", run_rollup, {"seconds": 2}, misfire_grace_time=30, interval_setting="ROLLUP_INTERVAL_SECONDS"),
    JobSpec("alert-delivery", run_alert_delivery, {"seconds": 5}, misfire_grace_time=30),
    JobSpec("retention", run_retention, {"hours": 1}, misfire_grace_time=600),
    JobSpec("partition-maintenance", run_partition_maintenance, {"hours": 24}, misfire_grace_time=3600),
    JobSpec("lookup-indexes", run_lookup_indexes, {"seconds": 30}, misfire_grace_time=60),
    JobSpec("demo-feed", run_demo_feed, {"seconds": 5}, misfire_grace_time=30, enabled_setting="DEMO_FEED_PER_HOUR"),
)
DEMO_FEED_SEED = 42


def add_jobs(scheduler, app: Flask, start_now: bool = True) -> None:
    """Register every job once (replace_existing keeps a restart from duplicating them)."""
    first_run = datetime.now(timezone.utc) if start_now else None
    for spec in JOBS:
        if spec.enabled_setting and not app.config.get(spec.enabled_setting):
            continue
        trigger = dict(spec.trigger_args)
        if spec.interval_setting and app.config.get(spec.interval_setting):
            trigger = {"seconds": float(app.config[spec.interval_setting])}
        scheduler.add_job(spec.func, "interval", args=[app], id=spec.id, name=spec.id, replace_existing=True,
                          coalesce=True, max_instances=1, misfire_grace_time=spec.misfire_grace_time,
                          next_run_time=first_run, **trigger)
