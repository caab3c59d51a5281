"""One user, one notification, one failure reason: every answer equals the same answer
computed in plain Python from the events the scenario sent, on both dialects."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from services.analysis.drilldown import drill_level, list_events
from services.analysis.investigate import MAX_USER_RANGE, lifecycle, rank_users, user_activity
from services.query.timerange import QueryError
from services.rollup.fold import rollup_pending
from services.store.ingest import ingest_events
from tests.factories import iso

CODES = {"failed": ("throttled", "invalid_number", None), "bounced": ("hard_bounce", "mailbox_full")}
PROVIDERS = ("twilio", "ses", None)


def scenario(seed: int, now: datetime, notifications: int = 400) -> list[dict]:
    """Lifecycles of random shape: users with few and many notifications, events without a
    user, notifications without a `sent` or an outcome, outcome and send in one microsecond."""
    rnd = random.Random(seed)
    events = []
    for n in range(notifications):
        nid, user = f"n{seed}-{n}", (f"user-{rnd.randrange(40) ** 2 % 97}" if rnd.random() > 0.05 else None)
        channel, template = rnd.choice(("email", "sms", "push")), rnd.choice((1, 2, 3, None))
        sent = now - timedelta(hours=70 * rnd.random() + 0.1)
        provider = rnd.choice(PROVIDERS)
        base = dict(notification_id=nid, channel=channel, template_id=template, provider=provider)
        if user:
            base["user_id"] = user
        if rnd.random() > 0.03:
            events.append({**base, "event_id": f"{nid}:sent", "created_at": iso(sent), "status": "sent"})
        outcome = rnd.choices(("delivered", "failed", "bounced", None), (70, 15, 10, 5))[0]
        if outcome is None:
            continue
        at = sent if rnd.random() < 0.1 else sent + timedelta(seconds=rnd.random() * 30)
        event = {**base, "event_id": f"{nid}:{outcome}", "created_at": iso(at), "status": outcome,
                 "processing_time_ms": rnd.randrange(1, 3000)}
        if outcome != "delivered":
            code = rnd.choice(CODES[outcome])
            if code:
                event["error_code"] = code
        events.append(event)
        if outcome == "delivered" and rnd.random() < 0.5:
            opened = at + timedelta(minutes=rnd.random() * 60)
            events.append({**base, "event_id": f"{nid}:opened", "created_at": iso(opened), "status": "opened"})
            if rnd.random() < 0.4:
                events.append({**base, "event_id": f"{nid}:clicked", "status": "clicked",
                               "created_at": iso(opened + timedelta(seconds=rnd.random() * 200))})
    rnd.shuffle(events)
    return [{k: v for k, v in e.items() if v is not None} for e in events]


@pytest.fixture
def sent(engine):
    now = datetime.now(timezone.utc)
    events = scenario(7, now)
    with engine.begin() as conn:
        report = ingest_events(conn, events, now=now)
    assert report.accepted == len(events) and not report.rejected
    rollup_pending(engine, now=now)
    return engine, events, now


def when(e: dict) -> datetime:
    return datetime.fromisoformat(e["created_at"].replace("Z", "+00:00"))


def test_events_by_user_notification_and_reason_are_exactly_those_sent(sent):
    engine, events, now = sent
    user = max({e.get("user_id") for e in events} - {None}, key=lambda u: sum(e.get("user_id") == u for e in events))
    cases = [({"user_id": user}, lambda e: e.get("user_id") == user),
             ({"notification_id": events[0]["notification_id"]},
              lambda e: e["notification_id"] == events[0]["notification_id"]),
             ({"error_code": "throttled,hard_bounce"}, lambda e: e.get("error_code") in ("throttled", "hard_bounce")),
             ({"status": "failed", "error_code": "(none)"}, lambda e: e["status"] == "failed" and "error_code" not in e),
             ({"user_id": user, "channel": "email", "status": "bounced"},
              lambda e: e.get("user_id") == user and e["channel"] == "email" and e["status"] == "bounced")]
    with engine.connect() as conn:
        for filters, wanted in cases:
            page = list_events(conn, filters, "now-3d", None, 1000)
            assert sorted(e["event_id"] for e in page.events) == sorted(e["event_id"] for e in events if wanted(e)), \
                filters
            assert all(ev["error_code"] == next(e for e in events if e["event_id"] == ev["event_id"]).get("error_code")
                       for ev in page.events)


def test_a_lifecycle_is_its_events_in_order_with_the_time_between_steps(sent):
    engine, events, _ = sent
    order = {s: i for i, s in enumerate(("sent", "delivered", "failed", "bounced", "opened", "clicked"))}
    by_note: dict[str, list] = {}
    for e in events:
        by_note.setdefault(e["notification_id"], []).append(e)
    with engine.connect() as conn:
        for nid, mine in list(by_note.items())[:60]:
            mine.sort(key=lambda e: (when(e), order[e["status"]]))
            found = lifecycle(conn, nid)
            assert [e["event_id"] for e in found.events] == [e["event_id"] for e in mine]
            assert [s["seconds"] for s in found.steps] == [
                round((when(b) - when(a)).total_seconds(), 3) for a, b in zip(mine, mine[1:])]
            outcome = next((e for e in mine if e["status"] in ("delivered", "failed", "bounced")), None)
            assert found.summary["outcome"] == (outcome or {}).get("status")
            assert found.summary["error_code"] == (outcome or {}).get("error_code")
            assert ("sent" in found.summary["missing"]) == all(e["status"] != "sent" for e in mine)
        assert lifecycle(conn, "never-sent").events == []
        with pytest.raises(QueryError, match="notification_id must be"):
            lifecycle(conn, "has space")


def oracle_ranking(events, numerator, denominator=None, min_volume=0, ascending=False, since=None):
    per: dict[str, dict[str, int]] = {}
    for e in events:
        if e.get("user_id") and (since is None or when(e) >= since):
            counts = per.setdefault(e["user_id"], {})
            counts[e["status"]] = counts.get(e["status"], 0) + 1
    rows = []
    for user, counts in per.items():
        num = counts.get(numerator, 0)
        if denominator is None:
            rows.append((num, num, user))
        elif counts.get(denominator, 0) >= min_volume and counts.get(denominator, 0):
            rows.append((num * 100.0 / counts[denominator], counts[denominator], user))
    rows.sort(key=lambda r: ((r[0] if ascending else -r[0]), -r[1], r[2]))
    return rows


def test_users_ranked_by_failures_and_by_lowest_delivery_rate_match_raw(sent):
    engine, events, now = sent
    since = now - timedelta(days=3)
    with engine.connect() as conn:
        most = rank_users(conn, "failed", "now-3d", None, limit=10)
        lowest = rank_users(conn, "delivery_rate", "now-3d", None, limit=10, min_volume=4)
        best = rank_users(conn, "delivery_rate", "now-3d", None, order="best", limit=500, min_volume=1)
    expected = oracle_ranking(events, "failed", since=since)[:10]
    assert [(u["user_id"], u["value"]) for u in most["users"]] == [(r[2], r[0]) for r in expected]
    expected = oracle_ranking(events, "delivered", "sent", 4, ascending=True, since=since)[:10]
    assert [(u["user_id"], u["volume"]) for u in lowest["users"]] == [(r[2], r[1]) for r in expected]
    assert [u["value"] for u in lowest["users"]] == pytest.approx([r[0] for r in expected])
    assert lowest["order"] == "asc" and best["order"] == "desc"
    assert best["metadata"]["users_ranked"] == len(oracle_ranking(events, "delivered", "sent", 1, since=since))
    assert lowest["metadata"]["rolled_up"] is False and lowest["metadata"]["source"] == "raw"
    sent_total = sum(e["status"] == "sent" and "user_id" in e for e in events)
    assert lowest["overall"]["volume"] == sent_total


def test_a_user_ranking_refuses_what_it_cannot_answer(sent):
    engine, _, _ = sent
    with engine.connect() as conn:
        with pytest.raises(QueryError, match=f"at most {MAX_USER_RANGE.days} days; this range holds 8.0 days"):
            rank_users(conn, "failed", "now-8d", None)
        with pytest.raises(QueryError, match="cannot rank users; rankable metrics: events, sent"):
            rank_users(conn, "p95_processing_time", "now-1d", None)
        with pytest.raises(QueryError, match="filtered by status it means nothing"):
            rank_users(conn, "delivery_rate", "now-1d", None, {"status": "sent"})
        with pytest.raises(QueryError, match="min_volume applies to rates only"):
            rank_users(conn, "failed", "now-1d", None, min_volume=3)
        with pytest.raises(QueryError, match="order must be worst, best, asc or desc"):
            rank_users(conn, "failed", "now-1d", None, order="sideways")


def test_failure_reasons_are_drill_levels_below_template(sent):
    engine, events, _ = sent
    bounced_email = [e for e in events if e["channel"] == "email" and e["status"] == "bounced" and e.get("template_id") == 2]
    with engine.connect() as conn:
        level = drill_level(conn, {"channel": "email", "status": "bounced", "template_id": 2}, "now-3d")
        assert level.dimension == "error_code" and level.next_dimensions == ()
        expected = {}
        for e in bounced_email:
            expected[e.get("error_code")] = expected.get(e.get("error_code"), 0) + 1
        assert {d.key: d.value for d in level.data} == expected
        code = level.data[0].key
        assert drill_level(conn, {**level.parent_filters, "error_code": code}, "now-3d").dimension is None
        deeper = drill_level(conn, {**level.parent_filters, "error_code": code}, "now-3d", dimension="provider")
        by_provider = {}
        for e in bounced_email:
            if e.get("error_code") == code:
                by_provider[e.get("provider")] = by_provider.get(e.get("provider"), 0) + 1
        assert {d.key: d.value for d in deeper.data} == by_provider
        assert [c.label for c in deeper.breadcrumbs] == ["All", "Email", "Bounced", "Template 2", code]
        # delivered events have no reason: the hierarchy stops at template
        assert drill_level(conn, {"channel": "email", "status": "delivered", "template_id": 2}, "now-3d").dimension is None
        with pytest.raises(QueryError, match="needs status failed or bounced"):
            drill_level(conn, {"channel": "email", "error_code": "throttled"}, "now-3d")
        with pytest.raises(QueryError, match="counted, not rated"):
            drill_level(conn, {"channel": "email", "status": "bounced"}, "now-3d", dimension="error_code",
                        metric="avg_processing_time")
        with pytest.raises(QueryError, match="no value within status 'bounced'"):  # a ratio has none per status
            drill_level(conn, {"channel": "email", "status": "bounced"}, "now-3d", dimension="error_code",
                        metric="delivery_rate")


def test_a_users_activity_is_their_notifications_and_rates_beside_the_channels(sent):
    engine, events, now = sent
    user = max({e.get("user_id") for e in events} - {None}, key=lambda u: sum(e.get("user_id") == u for e in events))
    mine = [e for e in events if e.get("user_id") == user]
    with engine.connect() as conn:
        answer = user_activity(conn, user, "now-3d", None)
    assert answer["events"] == len(mine)
    assert {n["notification_id"] for n in answer["notifications"]} == {e["notification_id"] for e in mine}
    assert [n["first_at"] for n in answer["notifications"]] == sorted((n["first_at"] for n in answer["notifications"]),
                                                                      reverse=True)
    for row in answer["comparison"]:
        if row["metric"] != "delivery_rate":
            continue
        channel_events = [e for e in events if e["channel"] == row["channel"]]
        user_sent = sum(e["status"] == "sent" for e in mine if e["channel"] == row["channel"])
        user_delivered = sum(e["status"] == "delivered" for e in mine if e["channel"] == row["channel"])
        assert (row["user_numerator"], row["user_denominator"]) == (user_delivered, user_sent)
        all_sent = sum(e["status"] == "sent" for e in channel_events)
        all_delivered = sum(e["status"] == "delivered" for e in channel_events)
        assert row["channel_value"] == pytest.approx(all_delivered * 100 / all_sent)
    with engine.connect() as conn:
        assert user_activity(conn, "nobody", "now-3d", None)["notifications"] == []


def test_the_api_answers_lookups_and_names_the_field_of_bad_input(sent):
    from dashapp import create_app

    engine, events, _ = sent
    client = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)}).test_client()
    nid = events[0]["notification_id"]
    body = client.get(f"/api/analytics/notifications/{nid}").get_json()
    assert {e["event_id"] for e in body["events"]} == {e["event_id"] for e in events if e["notification_id"] == nid}
    unknown = client.get("/api/analytics/notifications/no-such-id")
    assert unknown.status_code == 200 and unknown.get_json()["events"] == [] and unknown.get_json()["summary"] is None
    bad = client.get("/api/analytics/notifications/bad%20id")
    assert bad.status_code == 400 and bad.get_json()["field"] == "notification_id"
    assert client.get("/api/analytics/events?user_id=nobody&start=now-3d").get_json()["events"] == []
    bad = client.get("/api/analytics/events?user_id=a%20b")
    assert bad.status_code == 400 and bad.get_json()["field"] == "user_id"
    too_long = client.get("/api/analytics/users?metric=failed&start=now-30d")
    assert too_long.status_code == 400 and too_long.get_json()["field"] == "start"
    assert "at most 7 days" in too_long.get_json()["error"]
    missing = client.get("/api/analytics/users")
    assert missing.status_code == 400 and "metric is required: the metric users are ranked by, one of events" \
        in missing.get_json()["error"]
    ranked = client.get("/api/analytics/users?metric=bounce_rate&start=now-3d&min_volume=2&limit=3").get_json()
    assert len(ranked["users"]) <= 3 and ranked["metadata"]["rolled_up"] is False
    assert client.get("/api/analytics/users/nobody?start=now-3d").get_json()["notifications"] == []
    assert client.get("/api/analytics/users/a%20b").status_code == 400
