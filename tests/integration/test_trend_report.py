"""The trend report on demo data: the injected incidents are found and explained, the
daily peaks are not flagged, and the sentences read like a person wrote them."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from dashapp import create_app
from services.demo import seed_demo
from services.rollup import rollup_pending
from services.trend_report import trend_report


@pytest.fixture(scope="module")
def demo(pg_url):
    from tests.conftest import fresh_engine

    engine = fresh_engine(pg_url)
    result = seed_demo(engine.begin, days=12, per_hour=400, seed=42, end=datetime.now(timezone.utc))
    rollup_pending(engine)
    yield engine, {i.kind: i for i in result.incidents}
    engine.dispose()


def report(engine, metric, **kwargs):
    with engine.connect() as conn:
        return trend_report(conn, metric, "now-7d", **kwargs)


def test_the_sms_delivery_drop_is_a_high_anomaly_explained_by_sms(demo):
    engine, incidents = demo
    drop = incidents["sms_delivery_drop"]
    result = report(engine, "delivery_rate", filters={"channel": ["sms"]})
    found = {a["time"]: a for a in result["anomalies"]}
    hours = [f"{drop.start[:11]}{h:02d}:00:00Z" for h in range(14, 17)]
    assert all(h in found for h in hours), result["anomalies"]
    assert any(found[h]["severity"] == "high" for h in hours)
    assert "SMS delivered events fell by" in found[hours[1]]["explanation"]
    assert found[hours[1]]["drilldown"].endswith("drill=sms")
    overall = report(engine, "delivery_rate")
    assert any(a["time"] in hours and "of the drop is SMS" in a["explanation"] for a in overall["anomalies"])


def test_the_bounce_spike_is_explained_by_its_template(demo):
    engine, incidents = demo
    spike = incidents["email_bounce_spike"]
    result = report(engine, "bounce_rate", filters={"channel": ["email"]})
    first_hour = spike.start[:13] + ":00:00Z"
    anomaly = next(a for a in result["anomalies"] if a["time"] == first_hour)
    assert "Weekly digest" in anomaly["explanation"]


def test_the_push_latency_spike_is_found(demo):
    engine, incidents = demo
    spike = incidents["push_latency_spike"]
    result = report(engine, "p95_processing_time", filters={"channel": ["push"]})
    anomaly = next(a for a in result["anomalies"] if a["time"] == spike.start[:13] + ":00:00Z")
    assert anomaly["severity"] == "high" and anomaly["value"] > 4 * anomaly["expected"]


def test_daily_peaks_are_expected_not_anomalies(demo):
    engine, _ = demo
    result = report(engine, "events", detector="seasonal")
    peak_hours = {8, 18}
    flagged_peaks = [a for a in result["anomalies"] if int(a["time"][11:13]) in peak_hours]
    assert flagged_peaks == []
    assert result["seasonality"]["daily_cycle_significant"]
    assert set(result["seasonality"]["peak_hours"][:2]) == {8, 18}
    assert "Daily peaks at 08:00 and 18:00 UTC." in result["headline"]


def test_headlines_read_like_sentences(demo):
    engine, _ = demo
    result = report(engine, "open_rate", filters={"channel": ["email"]})
    first, week = result["headline"][:2]
    assert first.startswith("Email open rate ") and first.endswith(".")
    assert week.startswith("Email open rate ") and "week-over-week" in week
    assert result["direction"] in ("up", "down", "flat") and result["trend"] in ("increasing", "decreasing", "stable")
    assert len(result["moving_average"]) == len(result["series"])


def test_the_api_answers_and_refuses_bad_input(demo):
    engine, _ = demo
    client = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)}).test_client()
    ok = client.get("/api/analytics/trends?metric=delivery_rate&days=7&channel=sms")
    assert ok.status_code == 200 and ok.json["anomaly_count"] == len(ok.json["anomalies"]) >= 3
    json.dumps(ok.json)
    for query, field in [("metric=sent&detector=volume", "detector"), ("metric=sent&days=0", "days"),
                         ("", "metric"), ("metric=sent&days=2&start=now-1d", "days")]:
        response = client.get("/api/analytics/trends?" + query)
        assert response.status_code == 400 and response.json["field"] == field
