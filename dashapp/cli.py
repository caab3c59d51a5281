"""Flask CLI commands: `flask --app wsgi init-db | ingest FILE | seed-demo | rollup | retention |
evaluate-alerts`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from dashapp.alerting import deliver_alerts, evaluate_alerts
from dashapp.extensions import db
from services.rollup import fold as rollup
from services.store import demo, dialect, eventfiles, ingest, schema

BATCH = 5000


def register(app: Flask) -> None:
    for command in (init_db, ingest_file, seed_demo, rollup_command, retention_command, evaluate_alerts_command):
        app.cli.add_command(command)


@click.command("init-db")
@with_appcontext
def init_db():
    """Create or upgrade the schema (idempotent)."""
    dialect.upgrade_database(db.engine)
    click.echo(f"database ready: {db.engine.url.render_as_string(hide_password=True)}")


@click.command("ingest")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["ndjson", "csv"]), help="default: from the file name")
@with_appcontext
def ingest_file(path: Path, fmt: str | None):
    """Ingest an NDJSON or CSV file of any size, in batches, with progress."""
    try:
        fmt = fmt or eventfiles.detect_format(path.name)
    except eventfiles.FileFormatError as exc:
        raise click.UsageError(str(exc)) from None
    reader = eventfiles.read_ndjson if fmt == "ndjson" else eventfiles.read_csv
    report = ingest.IngestReport()
    with path.open("rb") as stream, click.progressbar(length=path.stat().st_size, label="ingesting",
                                                     show_pos=False, file=sys.stderr) as bar:
        batch: list[tuple[int, object]] = []

        def flush():
            nonlocal report
            if not batch:
                return
            with db.engine.begin() as conn:
                part = ingest.ingest_events(conn, [event for _, event in batch],
                                            channels=current_app.config["CHANNELS"],
                                            raw_retention_days=current_app.config["RAW_RETENTION_DAYS"])
            lines = [number for number, _ in batch]
            report += ingest.IngestReport(part.accepted, part.duplicates, tuple(
                ingest.Rejection(lines[r.index], r.error) for r in part.rejected))
            batch.clear()
            bar.update(stream.tell() - bar.pos)

        for number, event in reader(stream):
            batch.append((number, event))
            if len(batch) >= BATCH:
                flush()
        flush()
    _echo_report(report)


def _echo_report(report: ingest.IngestReport, shown: int = 20) -> None:
    click.echo(f"accepted {report.accepted:,}, duplicates {report.duplicates:,}, "
               f"rejected {len(report.rejected):,}")
    for rejection in report.rejected[:shown]:
        click.echo(f"  line {rejection.index}: {rejection.error}")
    if len(report.rejected) > shown:
        click.echo(f"  … and {len(report.rejected) - shown:,} more")


@click.command("seed-demo")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 400))
@click.option("--per-hour", default=2000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="average notifications sent per hour (each makes 2–4 events)")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--if-empty", is_flag=True, help="do nothing when events already exist")
@with_appcontext
def seed_demo(days: int, per_hour: int, seed: int, if_empty: bool):
    """Generate and load demo data; incidents go to instance/demo_incidents.json."""
    from sqlalchemy import func, select

    dialect.upgrade_database(db.engine)
    if if_empty:
        with db.engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(
                    select(schema.notification_events.c.event_id).limit(1).subquery())).scalar():
                click.echo("demo data already loaded; nothing to do")
                return
    expected = int(days * 24 * per_hour * 2.35)
    with click.progressbar(length=expected, label="loading demo events",
                           file=sys.stderr) as bar:
        result = demo.seed_demo(db.engine.begin, days=days, per_hour=per_hour, seed=seed,
                                progress=bar.update)
    incidents_path = Path(current_app.instance_path) / "demo_incidents.json"
    incidents_path.parent.mkdir(parents=True, exist_ok=True)
    incidents_path.write_text(json.dumps(demo.incidents_as_dicts(result), indent=2) + "\n")
    click.echo(f"loaded {result.events:,} events ({result.notifications:,} notifications) from "
               f"{result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC; "
               f"{len(result.incidents)} incidents written to {incidents_path}")
    click.echo(_rollup_with_progress("rolling up").summary())


def _rollup_with_progress(label: str) -> rollup.RollupReport:
    config = current_app.config
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        return rollup.rollup_pending(db.engine, minute_retention_hours=config["MINUTE_RETENTION_HOURS"],
                                     raw_retention_days=config["RAW_RETENTION_DAYS"], progress=progress)


@click.command("rollup")
@click.option("--full", is_flag=True, help="recompute every hour that still has raw events")
@with_appcontext
def rollup_command(full: bool):
    """Fold what ingest wrote and rebuild the queued hours (every hour with --full); then build
    the lookup indexes of the days a backfill wrote."""
    if full:
        hours = rollup.invalidate_all(db.engine)
        click.echo(f"marked {hours:,} hours for a full rebuild")
    report = _rollup_with_progress("rolling up")
    click.echo(report.summary())
    if report.locked_out:
        sys.exit(1)
    built = rollup.index_rebuilt_days(db.engine)  # what the scheduler's lookup-indexes job does
    if built:
        click.echo(f"built the lookup indexes of {rollup.backfilled_days(built)}")


@click.command("retention")
@with_appcontext
def retention_command():
    """Drop raw days past RAW_RETENTION_DAYS and minute rows past MINUTE_RETENTION_HOURS."""
    config = current_app.config
    result = rollup.apply_retention(db.engine, raw_retention_days=config["RAW_RETENTION_DAYS"],
                                    minute_retention_hours=config["MINUTE_RETENTION_HOURS"])
    if result["raw_postponed"]:
        click.echo("expired raw days not dropped: a long read holds the events table; run it again later", err=True)
    click.echo(f"dropped {result['raw_dropped']} raw days, {result['minute_rows_deleted']:,} minute rows")


class IsoTime(click.ParamType):
    name = "ISO-TIME"

    def convert(self, value, param, ctx):
        from datetime import datetime, timezone

        from services.query.timerange import QueryError, parse_time
        try:
            return parse_time(value, datetime.now(timezone.utc), param.name if param else "time")
        except QueryError as exc:
            self.fail(exc.message, param, ctx)


@click.command("evaluate-alerts")
@click.option("--at", type=IsoTime(), help="judge as if it were this time (default now): for backfills and tests")
@click.option("--since", type=IsoTime(), help="rules never judged start here instead of at the last complete bucket")
@click.option("--send", is_flag=True, help="also send the queued notifications now (the scheduler does it otherwise)")
@with_appcontext
def evaluate_alerts_command(at, since, send: bool):
    """Judge every enabled alert rule's complete buckets not judged yet (each bucket once)."""
    config = current_app.config
    report = evaluate_alerts(db.engine, config, at=at, since=since)
    click.echo(report.summary())
    for t in report.transitions:
        click.echo(f"  {t['rule']}: {t['state']} at {t['bucket']}: {t['explanation']}")
    if send:
        sent = deliver_alerts(db.engine, config)
        click.echo(f"notifications: {sent.sent} sent, {sent.retrying} to retry, {sent.failed} failed for good")
    if report.errors:
        sys.exit(1)
