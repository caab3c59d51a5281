"""The pure parts of alerting: which buckets are due, how a verdict moves the state, the
detector judging generated series unlike the demo, the allow-list and the backoff."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts import evaluation as alerts
from services.alerts import webhooks
from services.alerts.rules import AlertRule
from services.query.catalogue import CATALOGUE

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
SETTLE = timedelta(seconds=60)


def rule(**fields) -> AlertRule:
    base = dict(id=1, name="r", metric="delivery_rate", filters={}, granularity="hour", condition="anomaly",
                direction="both", min_severity="medium", threshold=None, for_buckets=1, min_volume=0.0,
                webhook_url=None, notify="immediate", silenced_from=None, silenced_until=None, enabled=True,
                state="ok", state_since=None, evaluated_through=None, last_value=None, last_error=None, version=1,
                created_at=T0, updated_at=T0)
    return AlertRule(**{**base, **fields})


# ---------------------------------------------------------------- due buckets

def test_a_new_rule_starts_at_the_newest_bucket_that_has_settled():
    at = datetime(2026, 11, 28, 10, 0, 30, tzinfo=timezone.utc)  # 10:00 closed 30 s ago: not settled
    assert alerts.due_buckets(rule(), at, SETTLE) == [datetime(2026, 11, 28, 8, tzinfo=timezone.utc)]
    assert alerts.due_buckets(rule(), at + timedelta(seconds=30), SETTLE) == [datetime(2026, 11, 28, 9,
                                                                                       tzinfo=timezone.utc)]


def test_a_rule_takes_up_after_the_last_bucket_it_judged_oldest_first_and_capped():
    done = datetime(2026, 11, 28, 5, tzinfo=timezone.utc)
    at = datetime(2026, 11, 28, 9, 30, tzinfo=timezone.utc)
    assert [b.hour for b in alerts.due_buckets(rule(evaluated_through=done), at, SETTLE)] == [6, 7, 8]
    assert alerts.due_buckets(rule(evaluated_through=datetime(2026, 11, 28, 8, tzinfo=timezone.utc)), at,
                              SETTLE) == []
    capped = alerts.due_buckets(rule(granularity="minute", evaluated_through=done), at, SETTLE, cap=10)
    assert capped[0] == done + timedelta(minutes=1) and len(capped) == 10


@given(st.integers(0, 10_000), st.sampled_from(["minute", "hour", "day"]))
def test_buckets_are_judged_once_and_none_is_skipped_whenever_the_evaluator_runs(minutes, granularity):
    """Evaluations at arbitrary times: the judged buckets are consecutive and never repeat."""
    r = rule(granularity=granularity, evaluated_through=T0)
    judged = []
    t = T0
    for gap in [minutes % 97 + 1, minutes % 13 + 1, minutes + 1, 3, minutes % 1500 + 1]:
        t += timedelta(minutes=gap)
        due = alerts.due_buckets(r, t, SETTLE)
        judged += due
        if due:
            r = replace(r, evaluated_through=due[-1])
    step = alerts.STEP[granularity]
    assert judged == [T0 + step * (i + 1) for i in range(len(judged))]


# ---------------------------------------------------------------- state

@pytest.mark.parametrize("state, status, moved", [
    ("ok", "breach", "firing"), ("resolved", "breach", "firing"), ("firing", "breach", None),
    ("firing", "clear", "resolved"), ("ok", "clear", None), ("resolved", "clear", None),
    ("firing", "unknown", None), ("ok", "unknown", None)])
def test_state_moves(state, status, moved):
    assert alerts.next_state(state, alerts.Verdict(T0, status, 1.0)) == moved


# ---------------------------------------------------------------- judging generated series

def series(values, denominators=None, numerators=None) -> alerts.SeriesData:
    values = np.asarray(values, dtype=float)
    n = len(values)
    times = [T0 + timedelta(hours=i) for i in range(n)]
    den = np.zeros(n) if denominators is None else np.asarray(denominators, float)
    num = values if numerators is None else np.asarray(numerators, float)
    return alerts.SeriesData(times, values, num, den)


def test_a_flat_low_volume_count_never_alerts():
    rng = np.random.default_rng(5)
    data = series(rng.poisson(4, 24 * 14))
    verdicts = alerts.judge_anomalies(rule(metric="sent"), CATALOGUE["sent"], data, range(24 * 7, 24 * 14))
    assert [v for v in verdicts if v.status == "breach"] == []


def test_a_rate_that_halves_alerts_and_a_tiny_sample_of_it_is_held_back_by_min_volume():
    rng = np.random.default_rng(6)
    n = 24 * 10
    sends = rng.poisson(300, n)
    delivered = rng.binomial(sends, 0.92).astype(float)
    delivered[-3:] = rng.binomial(sends[-3:], 0.45)
    data = series(delivered / sends * 100, denominators=sends, numerators=delivered)
    verdicts = alerts.judge_anomalies(rule(), CATALOGUE["delivery_rate"], data, range(n - 6, n))
    assert [v.status for v in verdicts] == ["clear"] * 3 + ["breach"] * 3
    assert all(v.value < v.lower for v in verdicts[3:])
    held = alerts.judge_anomalies(rule(min_volume=1000), CATALOGUE["delivery_rate"], data, range(n - 3, n))
    assert {v.status for v in held} == {"unknown"} and "minimum volume" in held[0].reason


def test_direction_limits_which_side_alerts():
    rng = np.random.default_rng(7)
    counts = rng.poisson(200, 24 * 10).astype(float)
    counts[-1] = 500
    data = series(counts)
    judge = lambda d: alerts.judge_anomalies(rule(metric="sent", direction=d), CATALOGUE["sent"], data,  # noqa: E731
                                             [len(counts) - 1])[0].status
    assert (judge("above"), judge("below"), judge("both")) == ("breach", "clear", "breach")


def test_history_that_starts_at_the_range_is_unknown_not_an_alert():
    data = series([100.0] * 5 + [10.0])
    (v,) = alerts.judge_anomalies(rule(metric="sent"), CATALOGUE["sent"], data, [5])
    assert v.status == "unknown"


def test_a_threshold_needs_its_consecutive_buckets():
    data = series([90, 70, 90, 70, 70, 70, 90], denominators=[100] * 7)
    r = rule(condition="threshold", direction="below", threshold=80.0, for_buckets=2, min_severity=None)
    statuses = [v.status for v in alerts.judge_threshold(r, CATALOGUE["delivery_rate"], data, range(7))]
    assert statuses == ["clear", "unknown", "clear", "unknown", "breach", "breach", "clear"]


# ---------------------------------------------------------------- delivery

@pytest.mark.parametrize("url, allowlist, problem", [
    ("https://hooks.example.com/x", ("hooks.example.com",), None),
    ("https://a.hooks.example.com/x", ("*.example.com",), None),
    ("https://example.com/x", ("*.example.com",), "not in the server's allow-list"),
    ("http://127.0.0.1:9000/h", ("127.0.0.1:9000",), None),
    ("http://127.0.0.1:9001/h", ("127.0.0.1:9000",), "(port 9001) is not in the server's allow-list"),
    ("http://169.254.169.254/latest", ("hooks.example.com",), "not in the server's allow-list"),
    ("https://hooks.example.com.evil.io/x", ("hooks.example.com",), "not in the server's allow-list"),
    ("ftp://hooks.example.com/x", ("hooks.example.com",), "must start with http:// or https://"),
    ("https://user:pw@hooks.example.com/x", ("hooks.example.com",), "must not carry a user name"),
    ("https://hooks.example.com/x", (), "webhooks are off on this server"),
    ("https://hooks.example.com/a b", ("hooks.example.com",), "without spaces"),
    ("http://[::1/x", ("::1",), "not a valid URL"),
])
def test_webhook_urls_are_checked_against_the_allow_list(url, allowlist, problem):
    found = webhooks.url_problem(url, allowlist)
    assert (found is None) if problem is None else (problem in found), found


def test_backoff_doubles_up_to_a_cap():
    waits = [webhooks.backoff(n).total_seconds() for n in range(1, webhooks.MAX_ATTEMPTS + 1)]
    assert waits[:4] == [15, 30, 60, 120] and max(waits) == webhooks.LONGEST_WAIT.total_seconds()


def test_the_digest_covers_the_24_hours_before_the_digest_hour():
    before = datetime(2026, 11, 28, 7, 59, tzinfo=timezone.utc)
    after = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)
    assert alerts.digest_window(before, 8) == (datetime(2026, 11, 26, 8, tzinfo=timezone.utc),
                                               datetime(2026, 11, 27, 8, tzinfo=timezone.utc))
    assert alerts.digest_window(after, 8) == (datetime(2026, 11, 27, 8, tzinfo=timezone.utc), after)
