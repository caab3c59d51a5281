"""POST /api/events: tokens, limits, bodies, de-duplication."""
import orjson
import pytest
from sqlalchemy import func, select

from dashapp.extensions import db
from services.store.schema import notification_events
from tests.factories import make_events

AUTH = {"Authorization": "Bearer test-token"}


def stored(app):
    with app.app_context(), db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(notification_events)).scalar()


def test_posting_the_same_thousand_events_twice_stores_a_thousand(app):
    body = orjson.dumps(make_events(1000))
    client = app.test_client()
    first = client.post("/api/events", data=body, headers=AUTH, content_type="application/json")
    second = client.post("/api/events", data=body, headers=AUTH, content_type="application/json")
    assert first.json == {"accepted": 1000, "duplicates": 0, "rejected": []}
    assert second.json == {"accepted": 0, "duplicates": 1000, "rejected": []}
    assert stored(app) == 1000


def test_ndjson_body_with_one_bad_event(app):
    events = make_events(3)
    events[1]["created_at"] = "last tuesday"
    body = b"\n".join(orjson.dumps(e) for e in events)
    response = app.test_client().post("/api/events", data=body, headers=AUTH,
                                      content_type="application/x-ndjson")
    assert response.status_code == 200
    assert response.json["accepted"] == 2
    assert response.json["rejected"] == [{"index": 1, "error": "created_at 'last tuesday' is not an ISO 8601 "
                                                                 "timestamp such as 2026-11-28T09:30:00Z"}]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-token"}])
def test_missing_or_wrong_token_is_401(app, headers):
    response = app.test_client().post("/api/events", data=b"[]", headers=headers)
    assert response.status_code == 401 and response.json["field"] == "Authorization"


def test_ingest_disabled_without_a_configured_token(engine):
    from dashapp import create_app

    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    response = app.test_client().post("/api/events", data=b"[]", headers=AUTH)
    assert response.status_code == 403 and "INGEST_TOKEN" in response.json["error"]


@pytest.mark.parametrize("body, message", [
    (b"not json", "Body is not JSON"), (b"", "Body is empty"), (b'{"a": 1}\n[', "Body is not JSON"),
    (b'{"created_at": "2026-11-28T06:00:00Z"', "Body is not JSON"),
])
def test_bodies_that_are_not_json_are_400(app, body, message):
    response = app.test_client().post("/api/events", data=body, headers=AUTH)
    assert response.status_code == 400 and message in response.json["error"]


def test_too_many_events_is_413(app):
    body = orjson.dumps([{}] * 10_001)
    response = app.test_client().post("/api/events", data=body, headers=AUTH)
    assert response.status_code == 413 and "at most 10,000" in response.json["error"]
    assert stored(app) == 0


def test_too_large_body_is_413(app):
    body = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    response = app.test_client().post("/api/events", data=body, headers=AUTH)
    assert response.status_code == 413 and response.json["field"] == "body"
