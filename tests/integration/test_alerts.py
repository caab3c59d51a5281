"""Alert rules on real Postgres, judged the way the scheduler judges them (hour after hour),
with notifications posted to a real local HTTP receiver. Values in alerts are checked
against the same numbers computed straight from raw events."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashapp import create_app
from services.alerts import evaluation as alerts
from services.alerts import rules as alert_rules
from services.alerts import webhooks
from services.store.schema import alert_deliveries, alert_transitions, notification_events
from tests.alert_data import seeded_demo, without_alerts
from tests.conftest import clock_at
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 13, 5, tzinfo=timezone.utc)
SETTLE = timedelta(seconds=60)
ALLOW = ("127.0.0.1",)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def demo(pg_url):
    yield from seeded_demo(pg_url, NOW)


@pytest.fixture
def engine(demo):
    with clock_at(NOW):
        yield without_alerts(demo[0])


@pytest.fixture
def drop(demo):
    inc = demo[1]["sms_delivery_drop"]
    start = datetime.fromisoformat(inc.start)
    return start, start + timedelta(hours=3)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def create(engine, **fields):
    with engine.begin() as conn:
        return alert_rules.create_rule(conn, fields, allowlist=ALLOW)


def replay(engine, start: datetime, end: datetime, step: timedelta = HOUR) -> list[alerts.EvaluationReport]:
    """The scheduler's view: evaluation a minute after each bucket closes, bucket by bucket."""
    reports, t = [], start
    while t <= end:
        reports.append(alerts.evaluate_due(engine, t + SETTLE, settle=SETTLE))
        t += step
    return reports


def transitions(engine, rule_id: int) -> list:
    with engine.connect() as conn:
        return conn.execute(select(alert_transitions).where(alert_transitions.c.rule_id == rule_id)
                            .order_by(alert_transitions.c.bucket)).all()


def raw_delivery_rate(engine, channel: str, start: datetime, end: datetime) -> float:
    e = notification_events.c
    with engine.connect() as conn:
        counts = dict(conn.execute(select(e.status, func.count()).where(
            e.channel == channel, e.created_at >= start, e.created_at < end).group_by(e.status)).all())
    return counts.get("delivered", 0) / counts["sent"] * 100


SMS_ANOMALY = dict(name="SMS delivery", metric="delivery_rate", channel="sms", condition="anomaly",
                   min_severity="medium", granularity="hour")


def test_an_sms_anomaly_rule_fires_once_for_the_planted_drop_and_resolves_after_it(engine, drop, receiver):
    rule = create(engine, **SMS_ANOMALY, webhook_url=receiver.url())
    first = drop[0] - timedelta(days=4)
    replay(engine, first, NOW - 2 * HOUR)  # four days of daily peaks before the drop, two after

    moves = transitions(engine, rule.id)
    assert [(m.state, m.bucket) for m in moves] == [("firing", drop[0]), ("resolved", drop[1])]
    firing = moves[0]
    assert firing.value == pytest.approx(raw_delivery_rate(engine, "sms", drop[0], drop[0] + HOUR))
    assert firing.value < firing.lower <= firing.expected
    assert firing.severity in ("medium", "high")

    sent = webhooks.deliver_due(engine, allowlist=ALLOW, timeout=5)
    assert (sent.sent, sent.retrying, sent.failed) == (2, 0, 0)
    fired, resolved = receiver.bodies()
    assert fired["state"] == "firing" and fired["previous_state"] == "ok"
    assert resolved["state"] == "resolved" and resolved["previous_state"] == "firing"
    assert fired["rule"]["name"] == "SMS delivery" and fired["rule"]["filters"] == {"channel": ["sms"]}
    assert fired["bucket"] == {"start": drop[0].isoformat().replace("+00:00", "Z"),
                               "end": (drop[0] + HOUR).isoformat().replace("+00:00", "Z")}
    assert fired["value"] == pytest.approx(firing.value) and fired["expected"] == pytest.approx(firing.expected)
    # the sentence names the numbers of the same payload
    assert f"{fired['value']:.1f} %" in fired["explanation"] and f"{fired['expected']:.1f} %" in fired["explanation"]
    assert fired["explanation"].startswith("SMS delivery rate was")
    assert "tab=trends" in fired["link"] and "metric=delivery_rate" in fired["link"] and "channel=sms" in fired["link"]
    assert "tab=drilldown" in fired["drilldown"] and "drill=sms" in fired["drilldown"]
    assert f"{resolved['value']:.1f} %" in resolved["explanation"]
    made_of = f"({resolved['numerator']:,.0f} delivered of {resolved['volume']:,.0f} sent)"
    assert made_of in resolved["explanation"], resolved["explanation"]
    assert resolved["value"] == pytest.approx(raw_delivery_rate(engine, "sms", drop[1], drop[1] + HOUR))
    assert fired["id"] != resolved["id"] and fired["attempt"] == resolved["attempt"] == 1

    with engine.connect() as conn:
        assert alert_rules.get_rule(conn, rule.id).state == "resolved"


def test_judging_a_backlog_at_once_equals_judging_it_bucket_by_bucket(engine, drop):
    stepwise = create(engine, **{**SMS_ANOMALY, "name": "step by step"})
    first = drop[0] - timedelta(days=1)
    replay(engine, first, drop[1] + 3 * HOUR)
    at_once = create(engine, **{**SMS_ANOMALY, "name": "at once"})
    report = alerts.evaluate_due(engine, drop[1] + 3 * HOUR + SETTLE, settle=SETTLE, since=first,
                                 rule_ids=[at_once.id])
    assert report.buckets == (drop[1] + 3 * HOUR - first) / HOUR  # the last complete one ends at `at` − settle
    strip = lambda rows: [(r.bucket, r.state, r.value, r.expected, r.explanation) for r in rows]  # noqa: E731
    assert strip(transitions(engine, at_once.id)) == strip(transitions(engine, stepwise.id))
    assert len(transitions(engine, at_once.id)) == 2


def test_two_evaluators_of_the_same_buckets_record_and_send_once(engine, drop, monkeypatch, receiver):
    """Both read the rule before either writes (a barrier holds them there): one result is
    kept, the other is void."""
    rule = create(engine, **SMS_ANOMALY, webhook_url=receiver.url())
    barrier = threading.Barrier(2, timeout=30)
    judge = alerts.judge_rule

    def judge_together(*args, **kwargs):
        out = judge(*args, **kwargs)
        barrier.wait()
        return out

    monkeypatch.setattr(alerts, "judge_rule", judge_together)
    reports = []
    at = drop[1] + 2 * HOUR + SETTLE
    threads = [threading.Thread(target=lambda: reports.append(
        alerts.evaluate_due(engine, at, settle=SETTLE, since=drop[0] - timedelta(days=1)))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(len(r.transitions) for r in reports) == [0, 2]
    assert sorted(len(r.skipped) for r in reports) == [0, 1]
    assert [m.state for m in transitions(engine, rule.id)] == ["firing", "resolved"]
    monkeypatch.undo()
    assert alerts.evaluate_due(engine, at, settle=SETTLE).buckets == 0  # the same buckets again: nothing
    webhooks.deliver_due(engine, allowlist=ALLOW)
    webhooks.deliver_due(engine, allowlist=ALLOW)
    assert [b["state"] for b in receiver.bodies()] == ["firing", "resolved"]


def test_the_command_judges_each_bucket_once(engine, drop, pg_url):
    """Once as a real process, then again (and with a bad time) through the same command in-process."""
    create(engine, **SMS_ANOMALY)
    at = (drop[1] + 2 * HOUR + SETTLE).isoformat()
    since = (drop[0] - timedelta(days=1)).isoformat()
    arguments = ["evaluate-alerts", "--at", at, "--since", since]
    first = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *arguments], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env={**os.environ, "DATABASE_URL": pg_url, "SCHEDULER": "off"})
    assert first.returncode == 0, first.stderr
    assert "SMS delivery firing at " + drop[0].isoformat().replace("+00:00", "Z") in first.stdout
    runner = create_app({"DATABASE_URL": pg_url, "SCHEDULER": "off"}).test_cli_runner()
    again = runner.invoke(args=arguments)
    assert again.exit_code == 0 and again.output.startswith("0 rules, 0 buckets judged"), again.output
    bad = runner.invoke(args=["evaluate-alerts", "--at", "yesterday"])
    assert bad.exit_code == 2 and "'yesterday' is not a date" in bad.output


def test_a_threshold_rule_fires_after_its_consecutive_buckets(engine, drop):
    rule = create(engine, name="SMS under 80", metric="delivery_rate", channel="sms", condition="threshold",
                  direction="below", threshold=80, for_buckets=2)
    replay(engine, drop[0] - timedelta(days=1), drop[1] + 2 * HOUR)
    moves = transitions(engine, rule.id)
    assert [(m.state, m.bucket) for m in moves] == [("firing", drop[0] + HOUR), ("resolved", drop[1])]
    value = raw_delivery_rate(engine, "sms", drop[0] + HOUR, drop[0] + 2 * HOUR)
    assert moves[0].value == pytest.approx(value) and moves[0].expected == 80
    assert "for 2 hours" in moves[0].explanation and f"{value:.1f} %" in moves[0].explanation


def test_quiet_segments_do_not_alert(engine, drop):
    """A minimum volume above what SMS sends in an hour: every bucket is 'unknown', nothing fires."""
    rule = create(engine, **{**SMS_ANOMALY, "name": "quiet", "min_volume": 1_000_000})
    replay(engine, drop[0] - 2 * HOUR, drop[1])
    assert transitions(engine, rule.id) == []
    with engine.connect() as conn:
        assert alert_rules.get_rule(conn, rule.id).state == "ok"


def test_a_receiver_that_fails_is_retried_with_backoff_and_never_holds_up_the_others(engine, receiver):
    receiver.answers["/flaky"] = [500, 503, 200]
    receiver.delays["/slow"] = 2.0
    for name, path in (("ok", "/ok"), ("flaky", "/flaky"), ("slow", "/slow")):
        create(engine, name=name, metric="sent", condition="threshold", direction="above", threshold=0,
               webhook_url=receiver.url(path))
    alerts.evaluate_due(engine, NOW, settle=SETTLE)  # every rule fires on its first bucket
    t = datetime.now(timezone.utc)
    first = webhooks.deliver_due(engine, t, allowlist=ALLOW, timeout=0.5)
    assert (first.sent, first.retrying) == (1, 2)
    with engine.connect() as conn:
        rows = {r.url.rsplit("/", 1)[1]: r for r in conn.execute(select(alert_deliveries))}
    assert rows["flaky"].last_status_code == 500 and rows["flaky"].next_attempt_at == t + webhooks.backoff(1)
    assert rows["slow"].last_error == "no answer within 0.5 s"
    assert webhooks.deliver_due(engine, t + timedelta(seconds=1), allowlist=ALLOW).sent == 0  # not due yet
    for attempt in range(2, webhooks.MAX_ATTEMPTS + 1):
        t += webhooks.backoff(attempt - 1)
        webhooks.deliver_due(engine, t, allowlist=ALLOW, timeout=0.5)
    with engine.connect() as conn:
        rows = {r.url.rsplit("/", 1)[1]: r for r in conn.execute(select(alert_deliveries))}
    assert (rows["flaky"].status, rows["flaky"].attempts) == ("sent", 3)
    assert (rows["slow"].status, rows["slow"].attempts) == ("failed", webhooks.MAX_ATTEMPTS)
    assert len({b["id"] for b in receiver.bodies("/flaky")}) == 1  # a retry carries the same delivery id
    assert [b["attempt"] for b in receiver.bodies("/flaky")] == [1, 2, 3]
    assert len(receiver.bodies("/ok")) == 1


def test_a_rules_notifications_arrive_in_order_even_when_the_first_is_retried(engine, drop, receiver):
    receiver.answers["/hook"] = [500, 200]
    rule = create(engine, **SMS_ANOMALY, webhook_url=receiver.url())
    replay(engine, drop[0] - 2 * HOUR, drop[1] + HOUR)
    assert [m.state for m in transitions(engine, rule.id)] == ["firing", "resolved"]
    t = datetime.now(timezone.utc)
    assert webhooks.deliver_due(engine, t, allowlist=ALLOW).retrying == 1
    assert [b["state"] for b in receiver.bodies()] == ["firing"]  # the resolution waits behind it
    assert webhooks.deliver_due(engine, t + webhooks.backoff(1), allowlist=ALLOW).sent == 2
    assert [(b["state"], b["attempt"]) for b in receiver.bodies()] == [("firing", 1), ("firing", 2), ("resolved", 1)]


def test_a_host_taken_off_the_allow_list_is_not_called(engine, receiver):
    create(engine, name="n", metric="sent", condition="threshold", direction="above", threshold=0,
           webhook_url=receiver.url())
    alerts.evaluate_due(engine, NOW, settle=SETTLE)
    report = webhooks.deliver_due(engine, allowlist=("hooks.example.com",))
    assert report.failed == 1 and receiver.bodies() == []
    with engine.connect() as conn:
        assert "not in the server's allow-list" in conn.execute(select(alert_deliveries.c.last_error)).scalar()


def test_a_silenced_rule_records_its_transitions_and_sends_nothing(engine, drop, receiver):
    rule = create(engine, **SMS_ANOMALY, webhook_url=receiver.url(), silenced_until="2030-01-01T00:00:00Z")
    replay(engine, drop[0] - 2 * HOUR, drop[1] + HOUR)
    assert [m.state for m in transitions(engine, rule.id)] == ["firing", "resolved"]
    webhooks.deliver_due(engine, allowlist=ALLOW)
    assert receiver.bodies() == []
    with engine.connect() as conn:
        assert {r.status for r in conn.execute(select(alert_deliveries))} == {"silenced"}


def test_a_daily_digest_lists_the_days_transitions_once(engine, drop, receiver):
    rule = create(engine, **SMS_ANOMALY, webhook_url=receiver.url(), notify="daily_digest")
    with clock_at(drop[0] - 2 * HOUR):
        replay(engine, drop[0] - 2 * HOUR, drop[1] + HOUR)
    assert len(transitions(engine, rule.id)) == 2
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alert_deliveries)).scalar() == 0  # nothing at once
    digest_time = (drop[0] + timedelta(days=1)).replace(hour=8, minute=5)
    assert alerts.queue_digests(engine, digest_time, hour=8) == 1
    assert alerts.queue_digests(engine, digest_time + timedelta(minutes=30), hour=8) == 0
    webhooks.deliver_due(engine, digest_time, allowlist=ALLOW)
    (body,) = receiver.bodies()
    assert body["kind"] == "digest" and [t["state"] for t in body["transitions"]] == ["firing", "resolved"]
    assert body["summary"].startswith("SMS delivery: 1 time firing, 1 resolved in the 24 hours to")


def test_a_custom_metric_watched_by_a_rule_cannot_be_deleted(engine):
    from services.query import custom_metrics
    from services.query.timerange import QueryError

    with engine.begin() as conn:
        custom_metrics.create_metric(conn, {"name": "undelivered_pct", "formula": "(failed + bounced) / sent * 100",
                                            "unit": "%"})
    rule = create(engine, name="undelivered", metric="undelivered_pct", condition="threshold", direction="above",
                  threshold=20)
    report = alerts.evaluate_due(engine, NOW, settle=SETTLE)
    assert report.errors == {} and report.buckets == 1
    with engine.begin() as conn, pytest.raises(QueryError, match="watched by the alert rule 'undelivered'"):
        custom_metrics.delete_metric(conn, "undelivered_pct")
    with engine.begin() as conn:
        alert_rules.delete_rule(conn, rule.id)
        custom_metrics.delete_metric(conn, "undelivered_pct")


def test_a_preview_shows_what_the_rule_would_have_done_and_records_nothing(engine, drop):
    """The preview judges the last 7 days of hours exactly as the scheduler does (the same
    transitions as a replay), and leaves no trace."""
    with clock_at(drop[1] + 2 * HOUR):
        with engine.connect() as conn:
            answer = alerts.preview(conn, {**SMS_ANOMALY, "webhook_url": "https://not-even-allowed.example/x"},
                                    settle=SETTLE)
        assert answer["buckets"] == 7 * 24 and answer["fired"] == 1
        assert answer["sentence"] == f"Over the last 7 days ({answer['judged']:,} of 168 hours judged) this rule would " \
                                     "have fired 1 time."
        assert [(t["state"], t["bucket"]) for t in answer["transitions"]] == [
            ("firing", drop[0].isoformat().replace("+00:00", "Z")), ("resolved", drop[1].isoformat().replace("+00:00", "Z"))]
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(alert_transitions)).scalar() == 0
    rule = create(engine, **SMS_ANOMALY)
    alerts.evaluate_due(engine, drop[1] + HOUR + SETTLE, settle=SETTLE, since=drop[1] + 2 * HOUR - timedelta(days=7))
    replayed = transitions(engine, rule.id)
    assert [(m.state, m.explanation) for m in replayed] == [(t["state"], t["explanation"]) for t in answer["transitions"]]


def test_a_preview_without_history_says_not_enough_data(engine):
    with engine.connect() as conn:
        answer = alerts.preview(conn, {**SMS_ANOMALY, "template_id": "999"}, settle=SETTLE)
    assert answer["judged"] == 0 and answer["fired"] == 0
    assert answer["sentence"].startswith("Not enough data: none of the last 168 hours could be judged")
