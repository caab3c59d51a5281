"""Drill-down levels, breadcrumbs and the events list: paging through every event with
keyset cursors gives exactly the full ordered list, on both dialects."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.analysis.drilldown import DrillValue, drill_level, events_csv, list_events
from services.query.context import context_at
from services.query.timerange import QueryError
from services.rollup.fold import rollup_pending
from services.store.schema import templates
from tests.factories import iso, make_event
from tests.integration.test_rollup import ingest


@pytest.fixture
def loaded(engine):
    now = datetime.now(timezone.utc)
    events = []
    for i in range(90):
        events.append(make_event(created_at=iso(now - timedelta(minutes=7 * i, seconds=i % 3)),
                                 channel=("email", "sms", "push")[i % 3], status=("sent", "bounced")[i % 2],
                                 template_id=(1, 2)[i % 2] if i % 5 else None,
                                 processing_time_ms=None if i % 4 == 0 else (i * 37) % 500))
    # two events in the same microsecond: the event_id breaks the tie
    same = iso(now - timedelta(minutes=3))
    events += [make_event(created_at=same, event_id="tie-a"), make_event(created_at=same, event_id="tie-b")]
    ingest(engine, events, now=now)
    rollup_pending(engine, now=now)
    with engine.begin() as conn:
        conn.execute(templates.insert(), [{"template_id": 1, "name": "Password reset", "channel": "email"},
                                          {"template_id": 2, "name": "Weekly digest", "channel": "email"}])
    return engine, events


def all_pages(conn, sort, limit, **filters):
    seen, cursor = [], None
    while True:
        page = list_events(conn, filters, "now-1d", None, limit, cursor, sort)
        seen += page.events
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "-processing_time_ms", "processing_time_ms"])
def test_keyset_pages_give_exactly_the_full_ordered_list(loaded, sort):
    engine, events = loaded
    with engine.connect() as conn:
        paged = all_pages(conn, sort, 7)
        whole = list_events(conn, {}, "now-1d", None, 1000, None, sort).events
    assert [e["event_id"] for e in paged] == [e["event_id"] for e in whole]
    assert len(paged) == len(events)
    key = (lambda e: e["created_at"]) if "created_at" in sort else \
        (lambda e: (e["processing_time_ms"] if e["processing_time_ms"] is not None else -1, e["created_at"]))
    values = [key(e) for e in paged]
    assert values == sorted(values, reverse=sort.startswith("-"))


def test_filters_narrow_the_events(loaded):
    engine, events = loaded
    with engine.connect() as conn:
        got = all_pages(conn, None, 5, channel="email", status="bounced", template_id="2")
    want = [e for e in events if e["channel"] == "email" and e["status"] == "bounced" and e.get("template_id") == 2]
    assert sorted(e["event_id"] for e in got) == sorted(e["event_id"] for e in want) and want


def test_a_cursor_from_another_sort_or_forged_is_refused(loaded):
    engine, _ = loaded
    with engine.connect() as conn:
        cursor = list_events(conn, {}, "now-1d", None, 3, None, "-created_at").next_cursor
        with pytest.raises(QueryError, match="another sort order"):
            list_events(conn, {}, "now-1d", None, 3, cursor, "created_at")
        with pytest.raises(QueryError, match="not one this API issued"):
            list_events(conn, {}, "now-1d", None, 3, "'; DROP TABLE notification_events; --", None)


def test_levels_follow_the_hierarchy_with_breadcrumbs(loaded):
    engine, events = loaded
    with engine.connect() as conn:
        top = drill_level(conn, {}, "now-1d")
        email = drill_level(conn, {"channel": "email"}, "now-1d")
        bounced = drill_level(conn, {"channel": "email", "status": "bounced"}, "now-1d")
        last = drill_level(conn, {"channel": "email", "status": "bounced", "template_id": 2}, "now-1d")
        bottom = drill_level(conn, {"channel": "email", "status": "bounced", "template_id": 2, "error_code": None},
                             "now-1d")
        sent = drill_level(conn, {"channel": "email", "status": "sent", "template_id": 2}, "now-1d")
    assert (top.level, top.dimension, top.next_dimensions) == (0, "channel", ("status", "template_id"))
    assert {d.key: d.value for d in top.data} == {
        c: float(sum(e["channel"] == c for e in events)) for c in ("email", "sms", "push")}
    assert email.dimension == "status" and bounced.dimension == "template_id"
    assert {d.label for d in bounced.data} <= {"Password reset", "Weekly digest", "No template"}
    assert [c.label for c in last.breadcrumbs] == ["All", "Email", "Bounced", "Weekly digest"]
    assert last.breadcrumbs[2].filters == {"channel": "email", "status": "bounced"}
    # bounced events go on to why they bounced (none of these carries a code), then to the events
    bounced_here = sum(e["channel"] == "email" and e["status"] == "bounced" and e.get("template_id") == 2
                       for e in events)
    assert (last.dimension, last.data) == ("error_code", (DrillValue(None, "No error code", bounced_here),))
    assert [c.label for c in bottom.breadcrumbs][-1] == "No error code"
    assert (bottom.dimension, bottom.can_drill_down, bottom.data) == (None, False, ())
    assert (sent.dimension, sent.can_drill_down, sent.data) == (None, False, ())


@pytest.mark.parametrize("filters, dimension, field", [
    ({"channel": "fax"}, None, "channel"), ({"channel": ["email", "sms"]}, None, "filters"),
    ({}, "weekday", "dimension"), ({"channel": "email"}, "channel", "dimension"), ([1], None, "filters"),
])
def test_bad_drill_requests(loaded, filters, dimension, field):
    engine, _ = loaded
    with engine.connect() as conn, pytest.raises(QueryError) as info:
        drill_level(conn, filters, "now-1d", dimension=dimension)
    assert info.value.field == field


def test_csv_has_a_header_and_is_capped_with_a_message(loaded):
    engine, events = loaded
    def read(work):
        with engine.connect() as conn:
            return work(conn)

    lines = "".join(events_csv(read, {}, "now-1d", page=4)).splitlines()
    assert lines[0].startswith("created_at,event_id,notification_id") and len(lines) == len(events) + 1
    capped = "".join(events_csv(read, {}, "now-1d", cap=10, page=4)).splitlines()
    assert len(capped) == 12 and capped[-1].startswith("# export capped at 10 events")


NOW = datetime(2026, 11, 20, 12, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("seed", [3, 11])
def test_a_ratio_drills_channel_then_template_and_equals_raw_events(engine, seed):
    """Delivery rate and a saved ratio, on generated lifecycles with uneven channels and a
    template that only fails: each bar equals the ratio counted straight from raw events, and
    status is no level of a ratio (its value within one status does not exist)."""
    import random

    from services.query.custom_metrics import create_metric
    from tests.oracle import metric_from_raw, raw_events

    rng = random.Random(seed)
    events = []
    for n in range(rng.randint(150, 300)):
        channel = rng.choices(("email", "sms", "push"), (6, 1, 3))[0]
        template = rng.choice((1, 2, 3, None))
        at = NOW - timedelta(hours=rng.uniform(0.1, 20))
        outcome = "failed" if template == 3 else rng.choices(("delivered", "failed", "bounced"), (8, 1, 1))[0]
        for i, status in enumerate(("sent", outcome)):
            events.append(make_event(created_at=iso(at + timedelta(seconds=i)), channel=channel, status=status,
                                     template_id=template, notification_id=f"n{seed}-{n}"))
    ingest(engine, events, now=NOW)
    rollup_pending(engine, now=NOW)
    with engine.begin() as conn:
        create_metric(conn, {"name": "undelivered_pct", "formula": "(failed + bounced) / sent * 100", "unit": "%"})
    rows = [r for r in raw_events(engine) if r[0] >= NOW - timedelta(days=1)]
    with engine.connect() as conn:
        for metric in ("delivery_rate", "undelivered_pct"):
            top = drill_level(conn, {}, "now-1d", metric=metric, context=context_at(NOW))
            email = drill_level(conn, {"channel": "email"}, "now-1d", metric=metric, context=context_at(NOW))
            last = drill_level(conn, {"channel": "email", "template_id": 3}, "now-1d", metric=metric, context=context_at(NOW))
            assert (top.dimension, top.next_dimensions, email.dimension) == ("channel", ("template_id",), "template_id")
            assert (last.dimension, last.can_drill_down) == (None, False)

            def raw(channel, template=...):
                picked = [r for r in rows if r[1] == channel and (template is ... or r[2] == template)]
                delivered = metric_from_raw("delivery_rate", picked)
                return delivered if metric == "delivery_rate" or delivered is None else 100 - delivered

            for d in top.data:
                assert d.value == pytest.approx(raw(d.key), abs=1e-9), (metric, d)
            assert {d.key for d in email.data} == {r[2] for r in rows if r[1] == "email"}
            for d in email.data:
                assert d.value == pytest.approx(raw("email", d.key), abs=1e-9), (metric, d)
            with pytest.raises(QueryError, match="no value per status") as info:
                drill_level(conn, {"channel": "email"}, "now-1d", dimension="status", metric=metric, context=context_at(NOW))
            assert info.value.field == "dimension"
            with pytest.raises(QueryError, match="within status 'failed'") as info:
                drill_level(conn, {"channel": "email", "status": "failed"}, "now-1d", metric=metric, context=context_at(NOW))
            assert info.value.field == "filters"
        counted = drill_level(conn, {"channel": "email"}, "now-1d", metric="failed", context=context_at(NOW))
    assert counted.dimension == "status"  # a count keeps the status level
