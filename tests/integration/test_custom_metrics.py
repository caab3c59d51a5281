"""Custom metrics end to end: saved through the API, charted like built-ins, equal to the
same formula computed from raw events, and refused with a sentence when wrong."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from dashapp import create_app
from services.query import custom_metrics
from services.query.engine import query_metrics
from services.rollup.fold import rollup_pending
from services.store.schema import notification_events
from tests.factories import iso, make_event
from tests.integration.test_rollup import ingest
from tests.oracle import metric_from_raw, raw_events

NOW = datetime.now(timezone.utc)


@pytest.fixture
def loaded(engine):
    events = []
    for i in range(300):
        events.append(make_event(created_at=iso(NOW - timedelta(minutes=11 * i)), channel=("email", "push")[i % 2],
                                 status=("sent", "delivered", "delivered", "opened", "clicked", "bounced")[i % 6],
                                 processing_time_ms=(i * 53) % 900))
    ingest(engine, events[:200])
    rollup_pending(engine)
    ingest(engine, events[200:])  # part rolled up, part still raw
    return engine


@pytest.fixture
def client(loaded):
    return create_app({"DATABASE_URL": loaded.url.render_as_string(hide_password=False)}).test_client()


def test_ctr_saved_from_the_api_equals_click_rate(client):
    created = client.post("/api/analytics/metrics", json={"name": "ctr", "display_name": "Click-through rate",
                                                          "formula": "(clicked / delivered) * 100", "unit": "%"})
    assert created.status_code == 201 and created.json["unit"] == "%"
    ctr = client.get("/api/analytics/chart?metric=ctr&group_by=time,channel&start=now-3d").json
    rate = client.get("/api/analytics/chart?metric=click_rate&group_by=time,channel&start=now-3d").json
    assert [r["value"] for r in ctr["data"]] == pytest.approx([r["value"] for r in rate["data"]], nan_ok=True)
    assert ctr["metadata"]["unit"] == "%"


def test_a_formula_equals_the_same_formula_from_raw_events(loaded):
    with loaded.begin() as conn:
        custom_metrics.create_metric(conn, {"name": "engagement", "formula": "opened × 1 + clicked × 3 − bounced / 2",
                                            "unit": "count"})
        custom_metrics.create_metric(conn, {"name": "double_engagement", "formula": "engagement * 2"})
    with loaded.connect() as conn:
        series = query_metrics(conn, "double_engagement", ("channel",), "now-3d")
    rows = raw_events(loaded)
    start = series.start
    for point in series.points:
        channel = dict(point.dims)["channel"]
        mine = [r for r in rows if r[1] == channel and r[0] >= start]
        expected = 2 * (metric_from_raw("opened", mine) + 3 * metric_from_raw("clicked", mine)
                        - metric_from_raw("bounced", mine) / 2)
        assert point.value == pytest.approx(expected)


def test_division_by_zero_at_a_point_is_null_not_an_error(loaded):
    with loaded.begin() as conn:
        custom_metrics.create_metric(conn, {"name": "fails_per_click", "formula": "failed / clicked"})
    with loaded.connect() as conn:
        series = query_metrics(conn, "fails_per_click", ("time",), "now-2h")
    assert any(p.value is None for p in series.points)


@pytest.mark.parametrize("body, field, text", [
    ({"name": "ctr", "formula": "(clikced / delivered) * 100"}, "formula", "did you mean 'clicked'"),
    ({"name": "ctr", "formula": "(clicked / delivered"}, "formula", "missing ')' at 20"),
    ({"name": "ctr", "formula": "clicked / 0"}, "formula", "division by a constant zero"),
    ({"name": "ctr", "formula": "'; DROP TABLE notification_events; --"}, "formula", "unexpected"),
    ({"name": "delivery_rate", "formula": "sent"}, "name", "built-in metric"),
    ({"name": "Has Space", "formula": "sent"}, "name", "lowercase"),
    ({"name": "ok", "formula": "sent", "unit": "kg"}, "unit", "unit must be one of"),
    ({"name": "ok", "formula": "sent", "colour": "red"}, "colour", "unknown field"),
])
def test_bad_metrics_are_refused_with_a_sentence(client, loaded, body, field, text):
    response = client.post("/api/analytics/metrics", json=body)
    assert response.status_code == 400 and response.json["field"] == field and text in response.json["error"]
    with loaded.connect() as conn:  # and nothing reached the database
        assert conn.execute(select(func.count()).select_from(notification_events)).scalar() == 300


def test_validate_returns_positions_and_references(client):
    bad = client.post("/api/analytics/metrics/validate", json={"formula": "clikced + 1"}).json
    assert bad["valid"] is False and bad["errors"][0]["position"] == 0
    good = client.post("/api/analytics/metrics/validate", json={"formula": "(opened + clicked) / sent"}).json
    assert good == {"valid": True, "errors": [], "references": ["opened", "clicked", "sent"]}


def test_cycles_edits_and_deletes(client):
    assert client.post("/api/analytics/metrics", json={"name": "a", "formula": "sent + 1"}).status_code == 201
    assert client.post("/api/analytics/metrics", json={"name": "b", "formula": "a * 2"}).status_code == 201
    cycle = client.put("/api/analytics/metrics/a", json={"formula": "b + 1"})
    assert cycle.status_code == 400 and "circular reference" in cycle.json["error"]
    in_use = client.delete("/api/analytics/metrics/a")
    assert in_use.status_code == 400 and "used by b" in in_use.json["error"]
    edited = client.put("/api/analytics/metrics/b", json={"formula": "a * 3", "description": "triple"})
    assert edited.status_code == 200 and edited.json["formula"] == "a * 3"
    assert client.delete("/api/analytics/metrics/b").status_code == 204
    gone = client.get("/api/analytics/metrics/b")
    assert gone.status_code == 404 and gone.json == {"error": "no custom metric named 'b'", "field": "name"}
    assert client.put("/api/analytics/metrics/b", json={"formula": "sent"}).status_code == 404
    assert client.delete("/api/analytics/metrics/b").status_code == 404
    malformed = client.get("/api/analytics/metrics/Bad-Name")
    assert malformed.status_code == 400 and "lowercase letters" in malformed.json["error"]
    listed = client.get("/api/analytics/metrics").json
    assert [m["name"] for m in listed["custom"]] == ["a"] and len(listed["catalogue"]) == 17


def test_an_edit_is_a_new_answer_not_a_cached_one(client):
    client.post("/api/analytics/metrics", json={"name": "x", "formula": "sent"})
    first = client.get("/api/analytics/chart?metric=x&group_by=channel&start=now-3d").json["data"]
    client.put("/api/analytics/metrics/x", json={"formula": "sent * 2"})
    second = client.get("/api/analytics/chart?metric=x&group_by=channel&start=now-3d").json["data"]
    assert [r["value"] * 2 for r in first] == [r["value"] for r in second]


def test_custom_metrics_work_in_trends_compare_drilldown_and_correlations(client):
    client.post("/api/analytics/metrics", json={"name": "ctr", "formula": "(clicked / delivered) * 100", "unit": "%"})
    for path in ("/api/analytics/trends?metric=ctr&days=2", "/api/analytics/compare?metric=ctr&start=now-2d",
                 "/api/analytics/drilldown?metric=ctr&start=now-2d",
                 "/api/analytics/correlations?metrics=ctr,email:sent&start=now-2d"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.json)


def test_preview_of_an_unsaved_formula(client):
    response = client.post("/api/analytics/metrics/preview", json={"formula": "delivered / sent × 100",
                                                                   "start": "now-2d", "group_by": "channel"})
    assert response.status_code == 200 and {r["channel"] for r in response.json["data"]} == {"email", "push"}
    bad = client.post("/api/analytics/metrics/preview", json={"formula": "delivered /"})
    assert bad.status_code == 400 and bad.json["field"] == "formula"


def test_an_oversized_body_is_refused_before_parsing(client):
    response = client.post("/api/analytics/metrics", data=b"{" + b" " * 70_000 + b"}",
                           content_type="application/json")
    assert response.status_code == 413 and response.json["field"] == "body"
