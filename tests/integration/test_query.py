"""Every metric, several groupings, filters and granularities: the engine's answers equal
the same numbers computed straight from raw events, with part of the data rolled up, part
still live, and late events in between (property-based, both dialects)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.query.catalogue import CATALOGUE
from services.query.context import context_at
from services.query.engine import query_metrics
from services.rollup.fold import rollup_pending
from tests.factories import iso, make_event
from tests.integration.test_rollup import event_strategy, ingest, reset
from tests.oracle import expected_chart, raw_events

GROUPINGS = [("time",), ("channel",), ("time", "channel"), ("status",), ("time", "template_id"),
             ("channel", "status", "template_id"), ()]


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def check(conn, engine, metric, group_by, start, end, granularity, filters, now):
    if CATALOGUE[metric].kind == "rate" and ("status" in group_by or "status" in filters):
        return
    series = query_metrics(conn, metric, group_by, start, end, filters, granularity, context=context_at(now))
    expected = expected_chart(raw_events(engine), metric, series.group_by, series.start, series.end,
                              series.granularity, filters)
    empty = expected_chart([], metric, series.group_by, series.start, series.end, series.granularity, {})
    got = {(p.time, p.dims): p.value for p in series.points}
    for key, value in expected.items():
        assert key in got, f"{metric} {group_by}: group {key} missing"
        assert close(got[key], value), f"{metric} {group_by} {key}: {got[key]} != {value}"
    from tests.oracle import metric_from_raw
    zero = metric_from_raw(metric, [])
    for key, value in got.items():
        if key not in expected:
            assert close(value, zero), f"{metric} {group_by} {key}: filled with {value}, want {zero}"
    assert empty == {}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rolled=st.lists(event_strategy, min_size=1, max_size=25), live=st.lists(event_strategy, max_size=10),
       backfilled=st.lists(event_strategy, max_size=10),
       metric=st.sampled_from(sorted(CATALOGUE)), group_by=st.sampled_from(GROUPINGS),
       channel_filter=st.sampled_from([None, ("email",), ("sms", "push")]),
       template_filter=st.sampled_from([None, (1,), (2, 3)]),
       window=st.sampled_from([("now-5h", None, None), ("now-2d", None, None), ("now-5d", None, "hour"),
                               ("now-20d", None, None), ("now-3h", "now-1h", "minute")]))
def test_answers_equal_raw(engine, rolled, live, backfilled, metric, group_by, channel_filter, template_filter,
                          window):
    reset(engine)
    now = datetime.now(timezone.utc)

    def events(specs):
        return [make_event(created_at=iso(now - timedelta(minutes=s["minutes_ago"])),
                           **{k: v for k, v in s.items() if k != "minutes_ago"}) for s in specs]

    ingest(engine, events(rolled), now=now)
    rollup_pending(engine, now=now)
    ingest(engine, events(live), now=now)  # the live tail and late events, not rolled up yet
    ingest(engine, events(backfilled), now=now, backfill=True)  # read from raw until rebuilt
    filters = {k: v for k, v in (("channel", channel_filter), ("template_id", template_filter)) if v}
    with engine.connect() as conn:
        check(conn, engine, metric, group_by, *window, filters, now)


@pytest.mark.parametrize("metric", sorted(CATALOGUE))
def test_every_metric_by_time_and_channel_on_fixed_data(engine, metric):
    now = datetime.now(timezone.utc)
    specs = []
    for i in range(120):
        specs.append(make_event(created_at=iso(now - timedelta(minutes=17 * i)),
                                channel=("email", "sms", "push")[i % 3], template_id=(1, 2, None)[i % 3 - 1],
                                status=("sent", "delivered", "opened", "sent", "bounced", "clicked", "failed")[i % 7],
                                processing_time_ms=None if i % 7 in (0, 2, 3, 5) else 40 * i + 7))
    ingest(engine, specs[:80], now=now)
    rollup_pending(engine, now=now)
    ingest(engine, specs[80:], now=now)
    with engine.connect() as conn:
        for group_by in (("time", "channel"), ("channel",), ("time",)):
            for window in (("now-36h", None, None), ("now-3h", None, None), ("now-3d", None, "day")):
                check(conn, engine, metric, group_by, *window, {}, now)


def test_an_event_is_in_the_next_answer_before_any_fold_and_sources_are_reported(engine):
    now = datetime.now(timezone.utc)
    hour = (now - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    ingest(engine, [make_event(created_at=iso(hour + timedelta(minutes=5)))], now=now)
    with engine.connect() as conn:  # pending deltas are read with the rollup rows
        pending = query_metrics(conn, "delivered", ("time",), hour, hour + timedelta(hours=1), {}, "hour", context=context_at(now))
        assert pending.source == "rollup" and [p.value for p in pending.points] == [1.0] and not pending.live
    rollup_pending(engine, now=now)
    ingest(engine, [make_event(created_at=iso(now - timedelta(minutes=2)))], now=now)
    with engine.connect() as conn:
        series = query_metrics(conn, "delivered", ("time",), "now-2d", None, {}, context=context_at(now))
        assert series.source == "rollup" and series.live and sum(p.value for p in series.points) == 2
        old = query_metrics(conn, "delivered", ("time",), hour, hour + timedelta(hours=1), {}, "minute",
                            context=context_at(now + timedelta(days=3)))  # past the minute retention: raw events
        assert old.source == "raw" and sum(p.value for p in old.points) == 1
        straddling = query_metrics(conn, "delivered", ("time",), now - timedelta(hours=49), now - timedelta(hours=46),
                                   {}, "minute", context=context_at(now))
        assert straddling.source == "mixed"


def test_missing_buckets_are_zero_counts_and_null_rates(engine):
    now = datetime.now(timezone.utc).replace(second=30)
    ingest(engine, [make_event(created_at=iso(now - timedelta(minutes=5)), status="sent")], now=now)
    with engine.connect() as conn:
        counts = query_metrics(conn, "sent", ("time",), "now-1h", None, {}, context=context_at(now))
        rates = query_metrics(conn, "delivery_rate", ("time",), "now-1h", None, {}, context=context_at(now))
    assert len(counts.points) == 61 and sum(p.value for p in counts.points) == 1
    assert sorted({p.value for p in counts.points}) == [0.0, 1.0]
    assert [p.value for p in rates.points].count(0.0) == 1
    assert all(p.value is None for p in rates.points if p.numerator == 0 and p.denominator == 0)


def test_the_statement_count_that_decides_the_snapshot_is_what_a_read_runs(engine):
    """A chart read of one statement runs without a transaction (dashapp.caching.measures);
    statements_of must count what collect_measures really runs, or a read of several
    statements would see several snapshots."""
    from sqlalchemy import event

    from services.query.engine import collect_measures, statements_of
    from services.query.plan import build_query
    from services.rollup.fold import queued_days

    now = datetime.now(timezone.utc)
    ingest(engine, [make_event(created_at=iso(now - timedelta(minutes=m)), processing_time_ms=40 + m)
                    for m in range(0, 3000, 37)], now=now)
    rollup_pending(engine, now=now)
    ingest(engine, [make_event(created_at=iso(now - timedelta(days=3)))], now=now, backfill=True)  # queues a day
    context = context_at(now)
    run: list[str] = []

    def seen(_conn, _cursor, statement, *_rest) -> None:
        run.append(statement)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for metric, group_by, start, end, granularity in (
                ("events", ("time", "channel"), "now-7d", None, None),        # hours, one day queued: raw + rollup
                ("p95_processing_time", ("channel",), "now-24h", None, None),  # histograms
                ("delivery_rate", ("time",), now - timedelta(hours=50), now - timedelta(hours=46), "minute"),  # raw + minute
                ("events", ("time",), "now-2h", None, "minute")):
            query = build_query(CATALOGUE[metric], group_by, start, end, {}, granularity, now, context.channels)
            with engine.connect() as conn:
                raw_days = queued_days(conn, query.window.start, query.window.end)
                run.clear()
                collect_measures(conn, query, metric.startswith("p95"), context, raw_days=raw_days)
                ran = [s for s in run if not s.lstrip().upper().startswith(("BEGIN", "SET", "ROLLBACK"))]
                assert len(ran) == statements_of(query, metric.startswith("p95"), context, raw_days), (metric, ran)
    finally:
        event.remove(engine, "before_cursor_execute", seen)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rolled=st.lists(event_strategy, min_size=1, max_size=25), live=st.lists(event_strategy, max_size=10),
       metric=st.sampled_from(sorted(CATALOGUE)), channel_filter=st.sampled_from([None, ("email",), ("sms", "push")]),
       hours=st.sampled_from([3, 30, 100]))
def test_segments_read_as_arrays_equal_raw(engine, rolled, live, metric, channel_filter, hours):
    """The trend report's and alerts' segments (channel × template by hour), read from the
    measures straight into arrays, hold in every bucket what raw events give, and in a bucket
    without events what the metric makes of none (a count 0, a rate or average NaN)."""
    from services.analysis.trend_report import read_segments
    from tests.oracle import metric_from_raw

    reset(engine)
    now = datetime.now(timezone.utc)

    def events(specs):
        return [make_event(created_at=iso(now - timedelta(minutes=s["minutes_ago"])),
                           **{k: v for k, v in s.items() if k != "minutes_ago"}) for s in specs]

    last = now.replace(minute=0, second=0, microsecond=0)
    times = [last - timedelta(hours=h) for h in reversed(range(hours))]
    edges = [make_event(created_at=iso(times[0] + timedelta(minutes=10)), channel="sms", status="sent"),
             make_event(created_at=iso(times[0] + timedelta(minutes=11)), channel="sms", status="delivered")]
    ingest(engine, events(rolled) + edges, now=now)  # the first bucket holds events, whatever was drawn
    rollup_pending(engine, now=now)
    ingest(engine, events(live), now=now)
    filters = {"channel": channel_filter} if channel_filter else {}
    with engine.connect() as conn:
        segments = read_segments(conn, CATALOGUE[metric], times, filters, "hour", context=context_at(now))
    expected = expected_chart(raw_events(engine), metric, ("time", "channel", "template_id"), times[0],
                              times[-1] + timedelta(hours=1), "hour", filters)
    assert segments.keys == sorted({tuple(v for _, v in dims) for _, dims in expected},
                                   key=lambda k: (k[0], -1 if k[1] is None else k[1]))
    nothing = metric_from_raw(metric, [])
    for i, (channel, template) in enumerate(segments.keys):
        for j, t in enumerate(times):
            want = expected.get((t, (("channel", channel), ("template_id", template))), nothing)
            got = segments.values[i, j]
            assert (want is None and np.isnan(got)) or close(float(got), want), (metric, channel, template, t, got, want)
