"""The alert rules API on both databases: create, read, edit, delete, and every refusal
naming its field."""
from __future__ import annotations

import pytest

from dashapp import create_app
from services.alerts import evaluation as alerts
from services.store.ingest import ingest_events
from tests.factories import iso, make_events, recent

ALLOW = "127.0.0.1:9999,*.example.com"
GOOD = {"name": "SMS delivery", "metric": "delivery_rate", "channel": "sms", "condition": "anomaly",
        "min_severity": "medium"}


@pytest.fixture
def client(engine):
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False),
                      "ALERT_WEBHOOK_ALLOWLIST": ALLOW})
    return app.test_client()


def test_a_rule_is_created_read_edited_and_deleted(client):
    created = client.post("/api/analytics/alerts", json={**GOOD, "webhook_url": "https://hooks.example.com/a"})
    assert created.status_code == 201, created.json
    rule = created.json
    assert (rule["state"], rule["granularity"], rule["direction"], rule["channel"]) == ("ok", "hour", "both", "sms")
    assert rule["description"] == "anomaly of severity medium or more, either way"
    listed = client.get("/api/analytics/alerts").json
    assert [r["name"] for r in listed["rules"]] == ["SMS delivery"] and listed["firing"] == []
    one = client.get(f"/api/analytics/alerts/{rule['id']}").json
    assert one["history"] == [] and one["deliveries"] == []

    renamed = client.put(f"/api/analytics/alerts/{rule['id']}", json={"name": "SMS delivery (carrier)"}).json
    assert renamed["name"] == "SMS delivery (carrier)" and renamed["min_severity"] == "medium"
    switched = client.put(f"/api/analytics/alerts/{rule['id']}", json={
        "condition": "threshold", "direction": "below", "threshold": 80, "for_buckets": 3})
    assert switched.status_code == 200, switched.json
    assert switched.json["description"] == "below 80 % for 3 consecutive hours"
    assert switched.json["min_severity"] is None
    back = client.put(f"/api/analytics/alerts/{rule['id']}", json={"condition": "anomaly", "direction": "below"})
    assert back.status_code == 200, back.json
    assert (back.json["threshold"], back.json["for_buckets"], back.json["min_severity"]) == (None, 1, "medium")
    cleared = client.put(f"/api/analytics/alerts/{rule['id']}", json={"channel": ""}).json
    assert cleared["filters"] == {}

    assert client.delete(f"/api/analytics/alerts/{rule['id']}").status_code == 204
    gone = client.get(f"/api/analytics/alerts/{rule['id']}")
    assert gone.status_code == 404 and gone.json == {"error": f"no alert rule with id {rule['id']}", "field": "id"}


REFUSALS = [
    ({"metric": "nope"}, "metric", "unknown metric"),
    ({"metric": None}, "metric", "metric is required"),
    ({"name": ""}, "name", "name is required"),
    ({"name": "x" * 101}, "name", "1 to 100 characters"),
    ({"condition": "sometimes"}, "condition", "condition must be one of anomaly, threshold"),
    ({"min_severity": "huge"}, "min_severity", "low, medium, high"),
    ({"granularity": "week"}, "granularity", "minute, hour, day"),
    ({"channel": "fax"}, "channel", "not one of email, sms, push"),
    ({"status": "sent"}, "status", "rate mean nothing"),
    ({"threshold": 50}, "threshold", "threshold belongs to threshold rules"),
    ({"for_buckets": 3}, "for_buckets", "for_buckets belongs to threshold rules"),
    ({"condition": "threshold", "direction": "below"}, "threshold", "threshold is required"),
    ({"condition": "threshold", "direction": "both", "threshold": 50}, "direction", "above or below"),
    ({"condition": "threshold", "direction": "above", "threshold": 150}, "threshold", "a percentage from 0 to 100"),
    ({"condition": "threshold", "direction": "below", "threshold": 150}, "threshold",
     "delivery_rate is a percentage from 0 to 100; a threshold of 150 is outside it"),
    ({"condition": "threshold", "direction": "above", "threshold": 100}, "threshold", "never above 100"),
    ({"condition": "threshold", "direction": "below", "threshold": 0}, "threshold", "never below 0"),
    ({"condition": "threshold", "direction": "below", "threshold": "80"}, "threshold", "a percentage"),
    ({"condition": "threshold", "direction": "below", "threshold": 80, "for_buckets": 0}, "for_buckets", "1 to 60"),
    ({"min_volume": -1}, "min_volume", "from 0 up"),
    ({"webhook_url": "https://intranet.local/hook"}, "webhook_url", "not in the server's allow-list"),
    ({"webhook_url": "http://127.0.0.1:6379/"}, "webhook_url", "(port 6379) is not in the server's allow-list"),
    ({"webhook_url": "file:///etc/passwd"}, "webhook_url", "http:// or https://"),
    ({"notify": "hourly"}, "notify", "immediate, daily_digest"),
    ({"silenced_from": "2026-11-28T10:00:00Z"}, "silenced_until", "needs silenced_until"),
    ({"silenced_from": "2026-11-28T10:00:00Z", "silenced_until": "2026-11-28T09:00:00Z"}, "silenced_until", "after"),
    ({"silenced_until": "tomorrow"}, "silenced_until", "is not a date"),
    ({"enabled": "yes"}, "enabled", "true or false"),
    ({"colour": "red"}, "colour", "unknown field 'colour'"),
]


def test_bad_rules_are_refused_naming_the_field(client):
    """One app for every case (building the app is what a case would cost)."""
    for change, field, words in REFUSALS:
        response = client.post("/api/analytics/alerts", json={**GOOD, **change})
        assert response.status_code == 400, (change, response.json)
        assert response.json["field"] == field and words in response.json["error"], (change, response.json)
    assert client.get("/api/analytics/alerts").json["rules"] == []


def test_a_rule_shows_its_transitions_and_notifications(client, engine):
    created = client.post("/api/analytics/alerts", json={
        "name": "no traffic", "metric": "sent", "condition": "threshold", "direction": "below", "threshold": 1,
        "webhook_url": "http://127.0.0.1:9999/hook"}).json
    with engine.begin() as conn:  # one delivered event: the hours after it hold zero sends
        ingest_events(conn, make_events(1, created_at=iso(recent(minutes=150))))
    alerts.evaluate_due(engine)
    one = client.get(f"/api/analytics/alerts/{created['id']}")
    assert one.status_code == 200, one.json
    (moved,) = one.json["history"]
    assert moved["state"] == "firing" and moved["value"] == 0 and moved["expected"] == 1
    (queued,) = one.json["deliveries"]
    assert (queued["kind"], queued["status"], queued["attempts"]) == ("transition", "pending", 0)
    assert client.get("/api/analytics/alerts").json["firing"] == ["no traffic"]


def test_a_preview_answers_and_refuses_like_a_save(client):
    answer = client.post("/api/analytics/alerts/preview", json=GOOD)
    assert answer.status_code == 200, answer.json
    assert answer.json["sentence"].startswith("Not enough data") and answer.json["transitions"] == []
    refused = client.post("/api/analytics/alerts/preview", json={**GOOD, "condition": "threshold", "direction": "above",
                                                                 "threshold": 101})
    assert refused.status_code == 400 and refused.json["field"] == "threshold"
    assert client.get("/api/analytics/alerts").json["rules"] == []


def test_bad_bodies_and_ids(client):
    assert client.post("/api/analytics/alerts", data="{", content_type="application/json").json["field"] == "body"
    assert client.post("/api/analytics/alerts", json=[1]).json["field"] == "body"
    assert client.post("/api/analytics/alerts", json=GOOD).status_code == 201
    twice = client.post("/api/analytics/alerts", json=GOOD)
    assert twice.status_code == 400 and twice.json["field"] == "name" and "exists" in twice.json["error"]
    malformed = client.get("/api/analytics/alerts/abc")
    assert malformed.status_code == 400 and malformed.json["field"] == "id"
    assert client.put("/api/analytics/alerts/999", json={"name": "x"}).status_code == 404
    assert client.delete("/api/analytics/alerts/999").status_code == 404


def test_a_custom_metric_can_be_watched(client):
    assert client.post("/api/analytics/metrics", json={"name": "undelivered_pct", "unit": "%",
                                                       "formula": "(failed + bounced) / sent * 100"}).status_code == 201
    created = client.post("/api/analytics/alerts", json={"name": "undelivered", "metric": "undelivered_pct",
                                                         "condition": "threshold", "direction": "above",
                                                         "threshold": 15})
    assert created.status_code == 201, created.json
    refused = client.delete("/api/analytics/metrics/undelivered_pct")
    assert refused.status_code == 400 and "watched by the alert rule 'undelivered'" in refused.json["error"]


def test_only_admins_write_rules(pg_engine):
    app = create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
                      "READ_TOKEN": "read-token-0123456789", "ADMIN_TOKEN": "admin-token-0123456789"})
    client = app.test_client()
    reader = {"Authorization": "Bearer read-token-0123456789"}
    admin = {"Authorization": "Bearer admin-token-0123456789"}
    assert client.get("/api/analytics/alerts", headers=reader).status_code == 200
    refused = client.post("/api/analytics/alerts", json=GOOD, headers=reader)
    assert refused.status_code == 403 and "admin token" in refused.json["error"]
    assert client.post("/api/analytics/alerts/preview", json=GOOD, headers=reader).status_code == 200
    assert client.post("/api/analytics/alerts", json=GOOD, headers=admin).status_code == 201
