"""Hand-computed comparisons on small fixtures, significance that says no when there is
nothing and yes when there is something, and period alignment."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from dashapp import create_app
from services.analysis.compare import compare
from services.rollup.fold import rollup_pending
from tests.factories import iso, make_event
from tests.integration.test_rollup import ingest

NOW = datetime.now(timezone.utc)


def outcomes(channel, sent, delivered, failed=0, hours_ago=5, template_id=1, **extra):
    at = iso(NOW - timedelta(hours=hours_ago))
    return (
            [make_event(channel=channel, status="sent", created_at=at, template_id=template_id) for _ in range(sent)] +
            [make_event(channel=channel, status="delivered", created_at=at, template_id=template_id, **extra)
             for _ in range(delivered)] +
            [make_event(channel=channel, status="failed", created_at=at, template_id=template_id) for _ in range(failed)])


def run(engine, metric, dimensions=None, **kwargs):
    with engine.connect() as conn:
        return compare(conn, metric, dimensions, "now-1d", **kwargs)


def test_rates_by_hand_with_best_and_worst(engine):
    ingest(engine, outcomes("email", 100, 90, 5) + outcomes("sms", 100, 45, 20))
    rollup_pending(engine)
    result = run(engine, "delivery_rate", "channel:email,channel:sms")
    assert result.comparisons["email"].total == 90.0 and result.comparisons["sms"].total == 45.0
    summary = result.summary
    assert (summary.best_performer, summary.worst_performer) == ("email", "sms")
    assert summary.difference == 45.0 and summary.percent_difference == 100.0
    assert summary.significant and summary.p_value < 1e-9
    low, high = result.comparisons["email"].ci_low, result.comparisons["email"].ci_high
    assert low < 90 < high
    failures = run(engine, "failure_rate", "channel:email,channel:sms").summary
    assert failures.best_performer == "email"  # lower is better


def test_zero_denominator_is_excluded_and_all_channels_is_the_default(engine):
    ingest(engine, outcomes("email", 10, 9) + outcomes("sms", 10, 5))
    result = run(engine, "delivery_rate")
    assert set(result.comparisons) == {"email", "sms", "push"}
    assert result.comparisons["push"].total is None
    assert result.summary.ranking == ("email", "sms")


def test_a_tie_is_not_significant(engine):
    ingest(engine, outcomes("email", 50, 40) + outcomes("push", 50, 40))
    summary = run(engine, "delivery_rate", "channel:email,channel:push").summary
    assert summary.difference == 0 and summary.significant is False and summary.p_value == 1.0


def test_same_distribution_not_significant_real_difference_significant(engine):
    rng = np.random.default_rng(4)
    events = []
    for channel, median in (("email", 300), ("sms", 300), ("push", 420)):
        events += [make_event(channel=channel, status="delivered", processing_time_ms=int(v),
                              created_at=iso(NOW - timedelta(hours=3)))
                   for v in rng.lognormal(np.log(median), 0.5, 400)]
    ingest(engine, events)
    same = run(engine, "p50_processing_time", "channel:email,channel:sms").summary
    assert same.significant is False and same.p_value > 0.05
    different = run(engine, "avg_processing_time", "channel:email,channel:push").summary
    assert different.significant and different.best_performer == "email"


def test_templates_ranked_with_a_volume_floor(engine):
    ingest(engine, outcomes("email", 300, 290, template_id=1) + outcomes("email", 300, 240, template_id=2) +
           outcomes("email", 3, 3, template_id=3))
    result = run(engine, "delivery_rate", "template_id", min_volume=100)
    assert result.summary.ranking == ("template_id:1", "template_id:2")
    assert result.below_volume_floor == ("template_id:3",)


def test_period_comparison_aligns_buckets_by_offset(engine):
    ingest(engine, outcomes("email", 20, 18, hours_ago=3) + outcomes("email", 20, 10, hours_ago=3 + 24 * 7))
    rollup_pending(engine)
    period = run(engine, "delivery_rate", compare_to="previous_week").period
    total = period.total
    assert (total.value, total.previous_value, total.difference) == (90.0, 50.0, 40.0)
    assert total.percent_difference == 80.0 and total.significant
    busy = [p for p in period.points if p.value is not None]
    assert len(busy) == 1 and busy[0].previous_value == 50.0
    assert busy[0].time - busy[0].previous_time == timedelta(days=7)


def test_the_api_and_its_errors(engine):
    ingest(engine, outcomes("email", 20, 18) + outcomes("sms", 20, 10))
    client = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)}).test_client()
    ok = client.get("/api/analytics/compare?metric=delivery_rate&start=now-1d&compare_to=previous_period")
    assert ok.status_code == 200 and ok.json["summary"]["best_performer"] == "email" and "period" in ok.json
    for query, field in [("metric=sent&dimensions=channel:email", "dimensions"),
                         ("metric=sent&dimensions=x:1,x:2", "dimensions"), ("metric=sent&compare_to=soon", "compare_to"),
                         ("metric=sent&min_volume=lots", "min_volume"), ("dimensions=channel:email", "metric")]:
        response = client.get("/api/analytics/compare?" + query)
        assert response.status_code == 400 and response.json["field"] == field, (query, response.json)


def test_a_template_with_more_deliveries_than_sends_in_the_range_is_shown_without_an_interval(engine):
    """Sends made before the range start, delivered inside it: the rate is above 100 %, which
    is what the events say, but no proportion, so it gets no interval and no test (it raised)."""
    ingest(engine, outcomes("email", 100, 104, template_id=1) + outcomes("email", 300, 240, template_id=2) +
           outcomes("email", 300, 270, template_id=3))
    result = run(engine, "delivery_rate", "template_id", min_volume=0)
    over = result.comparisons["template_id:1"]
    assert over.total == 104.0 and (over.ci_low, over.ci_high) == (None, None)
    assert result.comparisons["template_id:3"].ci_low is not None
    assert result.summary.ranking == ("template_id:1", "template_id:3", "template_id:2")
    assert result.summary.p_value is None and result.summary.significant is False
