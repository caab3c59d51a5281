"""On demo data the injected relationship (SMS delivery dips followed two hours later by
email bounces) is found with its lag, and unrelated seasonal metrics are not."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dashapp import create_app
from services.analysis.correlation_report import correlation_report
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo


@pytest.fixture(scope="module")
def demo(pg_url):
    from tests.conftest import fresh_engine

    engine = fresh_engine(pg_url)
    seed_demo(engine.begin, days=15, per_hour=400, seed=7, end=datetime.now(timezone.utc))  # frozen: tests/conftest
    rollup_pending(engine)
    yield engine
    engine.dispose()


def test_the_injected_relationship_is_found_with_its_lag(demo):
    with demo.connect() as conn:
        report = correlation_report(conn, "sms:delivery_rate,email:bounce_rate,email:sent,sms:sent", "now-14d",
                                    lag_max=4)
    pairs = {(p.a, p.b): p for p in report.pairs}
    related = pairs[("sms:delivery_rate", "email:bounce_rate")]
    best, lag0 = related.best_lag, related.lag0
    assert related.significant and best.lag == 2 and best.r < -0.2 and best.q_value < 0.001
    assert abs(lag0.r) < 0.2 and lag0.q_value > best.q_value  # each lag with its own r, p and q
    assert f"r = {best.r:.2f}" in related.sentence
    assert "leads Email bounce rate by 2 hours" in related.sentence
    assert report.findings[0] == ("sms:delivery_rate", "email:bounce_rate")
    seasonal = pairs[("email:sent", "sms:sent")]
    assert not seasonal.significant, seasonal
    assert report.detrended and report.method.startswith("pearson on residuals")
    assert report.matrix.metrics == ("sms:delivery_rate", "email:bounce_rate", "email:sent", "sms:sent")


def test_pairs_related_by_definition_are_marked_and_not_findings(demo):
    with demo.connect() as conn:
        report = correlation_report(conn, "email:bounce_rate,email:delivery_rate,sms:delivery_rate", "now-14d")
    pairs = {(p.a, p.b): p for p in report.pairs}
    same = pairs[("email:bounce_rate", "email:delivery_rate")]
    assert same.related_by_definition and same.relation == "both divide by Email sent events"
    assert same.lag0.r < -0.8 and same.lag0.q_value is None and not same.significant
    assert "related by definition" in same.sentence
    assert ("email:bounce_rate", "email:delivery_rate") not in report.findings
    assert report.matrix.related_by_definition[0][1] is True
    assert not pairs[("email:bounce_rate", "sms:delivery_rate")].related_by_definition


def test_raw_correlation_of_two_seasonal_series_is_shown_as_raw(demo):
    with demo.connect() as conn:
        report = correlation_report(conn, "email:sent,sms:sent", "now-14d", "now-1h", detrend=False)
    assert report.pairs[0].lag0.r > 0.8 and "on the raw series" in report.pairs[0].sentence


def test_the_api_echoes_the_spelling_and_refuses_bad_input(demo):
    client = create_app({"DATABASE_URL": demo.url.render_as_string(hide_password=False)}).test_client()
    ok = client.get("/api/analytics/correlations?metrics=email:bounce_rate,sms:delivery_rate&start=now-7d&lag_max=3")
    assert ok.status_code == 200
    assert (ok.json["pairs"][0]["a"], ok.json["pairs"][0]["b"]) == ("email:bounce_rate", "sms:delivery_rate")
    for query, field in [("metrics=sent", "metrics"), ("metrics=sent,nope", "metrics"),
                         ("metrics=fax:sent,sent", "metrics"), ("metrics=sent,events&lag_max=99", "lag_max"),
                         ("metrics=sent,events&detrend=maybe", "detrend")]:
        response = client.get("/api/analytics/correlations?" + query)
        assert response.status_code == 400 and response.json["field"] == field, (query, response.json)
