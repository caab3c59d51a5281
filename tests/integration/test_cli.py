"""The CLI doors: init-db, ingest FILE (NDJSON and CSV), seed-demo."""
import csv
import json

import orjson
from sqlalchemy import func, select

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
