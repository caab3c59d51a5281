"""The trend report on the demo data and on data shaped unlike it, at several hours of the
day: the injected incidents are found and explained with the detector's own numbers, the
diluted template spike is found in its segment, the daily peaks are not flagged, no change
or peak is printed that the data cannot support, and every number in a sentence is a
number of the same answer."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import text

from dashapp import create_app
from services.analysis.trend_report import TrendReport, total_anomalies, trend_report
from services.query.context import context_at
from services.query.format import in_words, plain, signed, signed_change
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo
from services.store.ingest import store_rows
from tests.conftest import clock_at, fresh_engine

# the demo is generated relative to "now"; these instants put it at night, mid-day and just
# before midnight, so no test depends on the hour the suite runs at
INSTANTS = [datetime(2026, 11, 25, 0, 30, tzinfo=timezone.utc), datetime(2026, 11, 25, 13, 5, tzinfo=timezone.utc),
            datetime(2026, 11, 25, 23, 55, tzinfo=timezone.utc)]


@pytest.fixture(scope="module", params=INSTANTS, ids=lambda t: t.strftime("%H%M"))
def demo(request, pg_url):
    with clock_at(request.param):
        engine = fresh_engine(pg_url)
        result = seed_demo(engine.begin, days=12, per_hour=400, seed=42, end=datetime.now(timezone.utc))
        rollup_pending(engine)
        yield engine, {i.kind: i for i in result.incidents}
        engine.dispose()


def report(engine, metric, start="now-7d", **kwargs):
    with engine.connect() as conn:
        answer = trend_report(conn, metric, start, **kwargs)
    assert isinstance(answer, TrendReport)
    return plain(answer)  # its JSON form, as the API sends it


NUMBER = re.compile(r"(?<![\w.])[−+-]?\d[\d,]*(?:\.\d+)?(?: %| ms| points)?")


def numbers_in(answer) -> set[str]:
    """Every number of an answer, written the ways sentences write numbers."""
    out: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            for unit in ("count", "%", "ms", "none"):
                out.add(in_words(value, unit))
                out.add(signed(value, unit))
            out.add(f"{signed_change(value)} %")  # a percent change, as headlines write it
            out.add(f"{value:.3g}")  # a p-value
    walk(answer)
    return out


TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?|\d{2}:\d{2}")


# words around numbers that are not the answer's: the span compared ("the previous 7 days",
# the answer's span_hours) and the significance a pattern is named at ("p < 0.001")
NOT_MEASURED = re.compile(r"previous \d+ (?:days?|hours?)|p < 0\.\d+")


def assert_numbers_come_from(sentence: str, answer) -> None:
    known = numbers_in(answer)
    for match in NUMBER.findall(NOT_MEASURED.sub("", TIMESTAMP.sub("", sentence))):
        assert match.strip() in known, (match, sentence)


def test_the_sms_delivery_drop_is_found_and_explained_in_the_detectors_numbers(demo):
    engine, incidents = demo
    drop = incidents["sms_delivery_drop"]
    result = report(engine, "delivery_rate", filters={"channel": ["sms"]})
    found = {a["time"]: a for a in result["anomalies"]}
    hours = [f"{drop.start[:11]}{h:02d}:00:00Z" for h in range(14, 17)]
    assert all(h in found for h in hours), result["anomalies"]
    assert any(found[h]["severity"] == "high" for h in hours)
    middle = found[hours[1]]
    assert middle["explanation"].startswith("SMS delivery rate was ")
    assert middle["decomposition"] == "additive"
    assert re.search(r"drill=sms,delivered,\d+$", middle["drilldown"]), middle["drilldown"]
    explained = [a for a in result["anomalies"] if a["explanation"]]
    assert explained
    for anomaly in explained:
        assert_adds_up(anomaly)
        assert_numbers_come_from(anomaly["explanation"], anomaly)
    assert_numbers_come_from(" ".join(result["headline"]), result)


@pytest.mark.parametrize("metric, filters, detector", [("delivery_rate", {"channel": ["sms"]}, None),
                                                       ("events", {}, None), ("bounce_rate", {}, "robust"),
                                                       ("avg_processing_time", {"channel": ["push"]}, None)])
def test_the_overviews_marks_are_the_reports_anomalies_without_the_report(demo, metric, filters, detector):
    """total_anomalies (what the Overview's time chart marks) finds the report's anomalies,
    bucket for bucket and number for number, without explaining them."""
    engine, _ = demo
    full = report(engine, metric, filters=filters, detector=detector)
    with engine.connect() as conn:
        alone = plain(total_anomalies(conn, metric, "now-7d", filters=filters, detector=detector))
    fields = ("time", "value", "expected", "lower", "upper", "score", "severity")
    assert alone["granularity"] == full["granularity"] and alone["metric"] == full["metric"]
    assert alone["anomalies"] == [{k: a[k] for k in fields} for a in full["anomalies"]]
    if metric == "delivery_rate":
        assert alone["anomalies"]  # the SMS drop
    assert_numbers_come_from(" ".join(full["headline"]), full)


def test_the_failure_reason_behind_the_drop_is_named_in_the_detectors_buckets(demo):
    engine, incidents = demo
    drop = incidents["sms_delivery_drop"]
    result = report(engine, "delivery_rate", filters={"channel": ["sms"]})
    middle = next(a for a in result["anomalies"] if a["time"] == f"{drop.start[:11]}15:00:00Z")
    top = middle["reasons"][0]
    assert (top["channel"], top["error_code"]) == ("sms", "carrier_outage")
    assert "of the extra failed and bounced events are carrier_outage (" in middle["explanation"]
    assert_numbers_come_from(middle["explanation"], middle)
    # over every channel, failures: the reason is placed on its channel
    failures = report(engine, "failure_rate")
    peak = next(a for a in failures["anomalies"] if a["time"] == middle["time"])
    assert "of the extra failed events are carrier_outage on SMS (" in peak["explanation"]
    assert_numbers_come_from(peak["explanation"], peak)
    # the count is the raw count of that hour; the shares split the positive differences
    hour = datetime.fromisoformat(middle["time"].replace("Z", "+00:00"))
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT count(*) FROM notification_events WHERE channel = 'sms' AND "
                                "error_code = 'carrier_outage' AND created_at >= :a AND created_at < :b"),
                           {"a": hour, "b": hour + timedelta(hours=1)}).scalar()
    assert top["actual"] == raw and top["actual"] > 10 * max(top["usual"], 1)
    assert sum(r["share_percent"] for r in middle["reasons"]) <= 100.0 + 1e-9
    assert top["share_percent"] == pytest.approx(top["extra"] * 100 / sum(
        r["extra"] for r in middle["reasons"]) if len(middle["reasons"]) < 5 else top["share_percent"])
    # a rise in delivery (the good direction) names no failure reason
    assert all(not a["reasons"] for a in result["anomalies"] if a["value"] > a["expected"])


def assert_adds_up(anomaly: dict) -> None:
    """The listed segments and the rest add up to the value and to the detector's expected value."""
    parts, rest = anomaly["contributors"], anomaly["rest"]
    assert sum(c["actual"] for c in parts) + rest["actual"] == pytest.approx(anomaly["value"], rel=1e-9, abs=1e-9)
    assert sum(c["expected"] for c in parts) + rest["expected"] == pytest.approx(anomaly["expected"], rel=1e-9,
                                                                                abs=1e-9)
    for c in parts:
        assert c["difference"] == pytest.approx(c["actual"] - c["expected"])


def test_contributions_add_up_for_counts_and_averages(demo):
    engine, _ = demo
    for metric, channel in (("sent", "email"), ("avg_processing_time", "push"), ("bounce_rate", "email")):
        result = report(engine, metric, filters={"channel": [channel]}, detector="robust")
        for anomaly in result["anomalies"]:
            if anomaly["explanation"] and anomaly["contributors"]:
                assert anomaly["decomposition"] == "additive"
                assert_adds_up(anomaly)
                assert_numbers_come_from(anomaly["explanation"], anomaly)


def test_the_diluted_bounce_spike_is_found_in_its_template(demo):
    engine, incidents = demo
    spike = incidents["email_bounce_spike"]
    result = report(engine, "bounce_rate", filters={"channel": ["email"]})
    mine = [s for s in result["segment_anomalies"] if s["template_id"] == 3 and s["start"] <= spike.start[:13] + ":00:00Z"
            < s["end"]]
    assert mine, result["segment_anomalies"]
    finding = mine[0]
    assert finding["template_name"] == "Weekly digest" and finding["value"] > 20 and finding["expected"] < 6
    assert finding["sentence"].startswith("Weekly digest bounce rate ")
    assert finding["drilldown"].endswith("drill=email,bounced,3")
    assert_numbers_come_from(finding["sentence"], finding)
    search = result["segment_search"]
    assert search["segments"] == 5 and search["tests"] > 300 and search["threshold"] >= 4


def test_the_push_latency_spike_is_found(demo):
    engine, incidents = demo
    spike = incidents["push_latency_spike"]
    result = report(engine, "p95_processing_time", filters={"channel": ["push"]})
    anomaly = next(a for a in result["anomalies"] if a["time"] == spike.start[:13] + ":00:00Z")
    assert anomaly["severity"] == "high" and anomaly["value"] > 4 * anomaly["expected"]
    assert anomaly["decomposition"] == "by_value"
    assert_numbers_come_from(anomaly["explanation"], anomaly)


def test_daily_peaks_are_expected_not_anomalies(demo):
    engine, _ = demo
    result = report(engine, "events", detector="seasonal")
    assert [a for a in result["anomalies"] if int(a["time"][11:13]) in (8, 18)] == []
    assert result["seasonality"]["daily_cycle_significant"]
    assert set(result["seasonality"]["peak_hours"][:2]) == {8, 18}
    assert "Daily peaks at 08:00 and 18:00 UTC (hour-of-day pattern p < 0.001)." in result["headline"]


def test_a_flat_rate_has_no_daily_pattern(demo):
    engine, _ = demo
    result = report(engine, "delivery_rate", filters={"channel": ["sms"]})
    assert result["seasonality"]["peak_hours"] == [] and not result["seasonality"]["daily_cycle_significant"]
    assert "No daily pattern." in result["headline"]
    assert not any("Daily peaks" in s for s in result["headline"])


def test_comparisons_only_where_data_covers_the_earlier_stretch(demo):
    engine, _ = demo
    week = report(engine, "sent", filters={"channel": ["email"]})  # 7 days back, data began 12 days ago
    assert not week["previous_period"]["covered"] and week["percent_change"] is None
    assert not week["week_over_week"]["covered"]
    assert "Email sent: not enough history to compare against the previous 7 days." in week["headline"]
    short = report(engine, "sent", "now-2d", filters={"channel": ["email"]})
    assert short["previous_period"]["covered"] and short["week_over_week"]["covered"]
    assert short["percent_change"] is not None
    assert any(s.startswith("Email sent ") and "against the previous 2 days" in s for s in short["headline"])


def test_headlines_read_like_sentences(demo):
    engine, _ = demo
    result = report(engine, "open_rate", "now-3d", filters={"channel": ["email"]})
    first, week = result["headline"][:2]
    assert first.startswith("Email open rate ") and first.endswith(".")
    assert week.startswith("Email open rate ") and "week-over-week" in week
    assert result["direction"] in ("up", "down", "flat") and result["trend"] in ("increasing", "decreasing", "stable")
    assert len(result["moving_average"]) == len(result["series"])
    assert result["judged"]["buckets"] == result["judged"]["complete_buckets"] > 0


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


# ---------------------------------------------------------------- data unlike the demo

def hourly_sends(engine, start: datetime, end: datetime, seed: int, spike: datetime | None = None) -> None:
    """Email sends with 08:00 and 18:00 peaks from `start` (nothing before it)."""
    rng = np.random.default_rng(seed)
    rows, hour, k, now = [], start, 0, datetime.now(timezone.utc)
    while hour < end:
        h = hour.hour
        mean = 40 + 120 * np.exp(-((h - 8) ** 2) / 4) + 100 * np.exp(-((h - 18) ** 2) / 6)
        count = int(rng.poisson(mean)) * (3 if hour == spike else 1)
        for _ in range(count):
            k += 1
            t = hour + timedelta(seconds=float(rng.uniform(0, 3600)))
            if t < end:
                rows.append((t, f"s{seed}-{k}", f"n{k}", now, "email", 1, "u1", "sent", None, None, None, None, None))
        hour += timedelta(hours=1)
    with engine.begin() as conn:
        store_rows(conn, rows, now=now)


def test_history_starting_at_the_range_start_flags_no_daily_peak(engine):
    now = datetime.now(timezone.utc)
    start = (now - timedelta(days=14)).replace(minute=0, second=0, microsecond=0)
    spike = start + timedelta(days=9, hours=3)
    hourly_sends(engine, start, now, seed=1, spike=spike)
    rollup_pending(engine, raw_retention_days=60)
    with engine.connect() as conn:
        result = plain(trend_report(conn, "sent", filters={"channel": ["email"]}, days=14,
                                    context=context_at(raw_retention_days=60)))
    assert result["baseline"] == "daily" and result["detector"] == "seasonal"
    assert [a["time"] for a in result["anomalies"]] == [spike.isoformat().replace("+00:00", "Z")]
    assert result["judged"]["buckets"] == result["judged"]["complete_buckets"]
    assert "Email sent: not enough history to compare week-over-week." in result["headline"]
    anomaly = result["anomalies"][0]
    assert anomaly["explanation"].startswith(f"Email sent was {in_words(anomaly['value'], 'count')} against an expected "
                                             f"{in_words(anomaly['expected'], 'count')}")
    assert_numbers_come_from(anomaly["explanation"], anomaly)


def test_two_days_of_data_are_not_judged_and_the_report_says_so(engine):
    now = datetime.now(timezone.utc)
    hourly_sends(engine, (now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0), now, seed=2)
    rollup_pending(engine)
    with engine.connect() as conn:
        result = plain(trend_report(conn, "sent", days=2))
    assert result["anomalies"] == [] and result["judged"]["buckets"] == 0 and result["baseline"] == "none"
    assert any(s.startswith("No hour was judged for anomalies: hourly data needs three days of history")
               for s in result["headline"]), result["headline"]
