"""The CLI doors: init-db, ingest FILE (NDJSON and CSV), seed-demo."""
import csv
import json

import orjson
from sqlalchemy import func, select, text

from dashapp.extensions import db
from services.store.schema import notification_events
from tests.factories import make_events


def stored(app):
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(notification_events)).scalar()


def test_init_db_is_idempotent(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0 and "database ready" in result.output


def test_ingest_ndjson_file_reports_lines(app, tmp_path):
    events = make_events(12_000)
    events[7]["status"] = "exploded"
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n{broken\n")
    result = app.test_cli_runner().invoke(args=["ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "accepted 11,999, duplicates 0, rejected 2" in result.output
    assert "line 8: status 'exploded' is not one of" in result.output
    assert "line 12001: line is not JSON" in result.output
    assert stored(app) == 11_999
    again = app.test_cli_runner().invoke(args=["ingest", str(path)])
    assert "accepted 0, duplicates 11,999" in again.output


def test_ingest_csv_file(app, tmp_path):
    events = make_events(5)
    path = tmp_path / "events.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(events[0]))
        writer.writeheader()
        for event in events:
            writer.writerow({**event, "metadata": json.dumps(event["metadata"])})
        writer.writerow({**events[0], "event_id": "x", "template_id": "seven", "metadata": "{}"})
    result = app.test_cli_runner().invoke(args=["ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "accepted 5, duplicates 0, rejected 1" in result.output
    assert "line 7: cannot read the row" in result.output


def test_ingest_refuses_unknown_file_types(app, tmp_path):
    path = tmp_path / "events.xlsx"
    path.write_text("x")
    result = app.test_cli_runner().invoke(args=["ingest", str(path)])
    assert result.exit_code == 2 and "--format" in result.output


def test_seed_demo_loads_and_writes_incidents(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["seed-demo", "--days", "3", "--per-hour", "50"])
    assert result.exit_code == 0, result.output
    loaded = stored(app)
    assert 3 * 24 * 50 * 2 < loaded < 3 * 24 * 50 * 4
    incidents = json.loads((app.instance_path + "/demo_incidents.json") and
                           open(app.instance_path + "/demo_incidents.json").read())
    kinds = {i["kind"] for i in incidents}  # the bounce spike is 5 days back, outside 3 days
    assert {"sms_delivery_drop", "push_latency_spike"} <= kinds <= {
        "sms_delivery_drop", "push_latency_spike", "sms_dips_lead_email_bounces"}
    again = runner.invoke(args=["seed-demo", "--days", "3", "--per-hour", "50", "--if-empty"])
    assert "already loaded" in again.output and stored(app) == loaded


def test_a_backfilled_file_is_rolled_up_and_indexed_by_the_rollup_command(app, tmp_path):
    """`ingest` of old events writes their days without lookup indexes (Postgres); `rollup`
    rebuilds those days and then builds the indexes, as the scheduler's jobs would."""
    from datetime import datetime, timedelta, timezone

    from services.store import dialect
    from tests.factories import iso

    old = datetime.now(timezone.utc) - timedelta(days=12)
    with app.app_context(), db.engine.begin() as conn:
        if dialect.is_postgres(conn):  # partitions other tests made for these days
            for day in (old.date(), (old + timedelta(hours=3)).date()):
                conn.execute(text(f"DROP TABLE IF EXISTS {dialect.partition_name(day)}"))
    events = make_events(6_000)
    for i, event in enumerate(events):
        event["created_at"] = iso(old + timedelta(seconds=2 * i))
    path = tmp_path / "old.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    runner = app.test_cli_runner()
    assert "accepted 6,000" in runner.invoke(args=["ingest", str(path)]).output
    with app.app_context(), db.engine.connect() as conn:
        postgres = dialect.is_postgres(conn)
        before = dialect.unindexed_partition_days(conn)
    result = runner.invoke(args=["rollup"])
    assert result.exit_code == 0, result.output
    with app.app_context(), db.engine.connect() as conn:
        after = dialect.unindexed_partition_days(conn)
    if postgres:
        assert old.date() in before and "built the lookup indexes of" in result.output
    else:
        assert before == [] and "lookup indexes" not in result.output
    assert after == []
