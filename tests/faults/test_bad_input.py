"""Forged input to the dashboard's callbacks and a batch the database refuses: a readable
answer every time, nothing reaching SQL as text, nothing partly written."""
from __future__ import annotations

import time

import orjson
import plotly.graph_objects as go
import pytest
from sqlalchemy import func, select, text

from callbacks import compare, drilldown, overview, trends
from callbacks.view import parse_search
from dashapp import create_app
from services.store.schema import notification_events
from tests.conftest import CACHE_PREFIX
from tests.factories import make_event, make_events

CHANNELS = ("email", "sms", "push")
FORGED = [
    "?tab=overview&metric=' OR 1=1; DROP TABLE notification_events; --",
    "?tab=drilldown&channel=email';DELETE FROM custom_metrics;--&drill=email'--,x",
    "?tab=drilldown&drill=" + ",".join(["email"] * 100),
    "?tab=overview&range=custom&start=2006-01-01&end=2026-01-01",
    "?tab=trends&detector=__import__('os')&metric=%00%01",
    "?" + "x" * 10_000_000,
    "?tab=compare&vs=previous_century&start=now-9999d",
]


@pytest.fixture
def app(engine):
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False),
                      "INGEST_TOKEN": "test-token"})
    with app.test_request_context():
        yield app


@pytest.mark.parametrize("search", FORGED, ids=range(len(FORGED)))
def test_forged_views_get_defaults_or_a_sentence_quickly(app, engine, search):
    started = time.monotonic()
    state = parse_search(search, CHANNELS)
    assert len(state.drill) <= 3 and state.metric.replace("_", "").isalnum()
    assert set(state.channels) <= set(CHANNELS)
    tiles, problem = overview.kpi_row(state)
    figure = go.Figure(overview.timeseries_figure(state)[0])
    trend = trends.trend_view(state, "/analytics/")
    comparison = compare.compare_view(state)
    level = drilldown.level_view(state, "/analytics/", None)
    assert time.monotonic() - started < 10
    for text_out in (str(problem), str(figure.layout.annotations), str(trend[-1]), str(comparison[-1]), str(level[-1])):
        assert "Traceback" not in text_out
    if "2006-01-01" in search:
        assert "at most 400 days" in str(figure.layout.annotations[0].text)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1  # the tables are all still there
        assert conn.execute(select(func.count()).select_from(notification_events)).scalar() == 0


def test_a_batch_the_database_refuses_is_a_clear_503_and_nothing_is_stored(pg_engine):
    with pg_engine.begin() as conn:
        conn.execute(text("""
            CREATE OR REPLACE FUNCTION refuse_boom() RETURNS trigger AS $$
            BEGIN
              IF NEW.event_id = 'boom' THEN
                RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
              END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql"""))
        conn.execute(text("CREATE TRIGGER refuse_boom BEFORE INSERT ON notification_events "
                          "FOR EACH ROW EXECUTE FUNCTION refuse_boom()"))
    try:
        app = create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
                          "INGEST_TOKEN": "test-token"})
        batch = make_events(500) + [make_event(event_id="boom")]
        response = app.test_client().post("/api/events", data=orjson.dumps(batch),
                                          headers={"Authorization": "Bearer test-token"})
        assert response.status_code == 503
        assert "nothing of it was stored" in response.json["error"]
        assert "No space left" not in response.json["error"]  # the driver's words go to the log only
        with pg_engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(notification_events)).scalar() == 0
    finally:
        with pg_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_boom ON notification_events"))


def test_rate_limit_per_client_with_a_sentence_and_retry_after(engine, redis_url):
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False), "REDIS_URL": redis_url,
                      "RATE_LIMIT": "3 per minute"})
    client = app.test_client()
    codes = [client.get("/api/analytics/chart?metric=sent&group_by=channel").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/analytics/chart?metric=sent&group_by=channel")
    assert "Too many requests from this client: at most 3 per 1 minute" in refused.json["error"]
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert client.get("/health").status_code == 200  # probes are never limited
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert other.get("/api/analytics/chart?metric=sent&group_by=channel").status_code == 200


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(engine, redis_url):
    """Behind a load balancer every request comes from its address: with TRUSTED_PROXIES=1 the
    limit counts the client the proxy names in X-Forwarded-For; without it, the proxy's header
    is not believed (a client could name any address) and everyone shares the proxy's budget."""
    chart = "/api/analytics/chart?metric=sent&group_by=channel"

    def codes(app, forwarded_for: str, n: int) -> list[int]:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = "10.0.0.1"  # the load balancer
        return [client.get(chart, headers={"X-Forwarded-For": forwarded_for}).status_code for _ in range(n)]

    url = engine.url.render_as_string(hide_password=False)
    # a day's window: the session's clock never crosses its end, so the counts cannot reset mid-test
    behind = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "RATE_LIMIT": "2 per day",
                         "TRUSTED_PROXIES": 1, "CACHE_PREFIX": f"{CACHE_PREFIX}:proxied"})
    assert codes(behind, "203.0.113.7", 3) == [200, 200, 429]
    assert codes(behind, "198.51.100.9", 2) == [200, 200]  # another client, its own budget
    direct = create_app({"DATABASE_URL": url, "REDIS_URL": redis_url, "RATE_LIMIT": "2 per day",
                         "CACHE_PREFIX": f"{CACHE_PREFIX}:direct"})
    assert codes(direct, "203.0.113.7", 2) == [200, 200]
    assert codes(direct, "198.51.100.9", 1) == [429]  # the header is not believed: one budget
