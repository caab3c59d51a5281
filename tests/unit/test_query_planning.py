import pickle
from datetime import datetime, timedelta, timezone

import pytest

from services.query.catalogue import CATALOGUE
from services.query.engine import (
    Totals,
    _keyer,
    evaluate,
    measures_from_plain,
    measures_to_plain,
    series_of,
    series_records,
)
from services.query.plan import Segment, build_query, parse_filters, plan_segments, restricted, seal_edge
from services.query.timerange import QueryError, TimeWindow

DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)
H = timedelta(hours=1)


def test_each_granularity_reads_its_own_table():
    for granularity, span in (("day", timedelta(days=3)), ("hour", 48 * H), ("minute", 3 * H)):
        window = TimeWindow(DAY + H, DAY + H + span, granularity)
        assert plan_segments(window, minute_floor=DAY) == [Segment(granularity, DAY + H, DAY + H + span)]


def test_minute_windows_use_raw_outside_minute_retention():
    start = DAY + timedelta(minutes=30)
    window = TimeWindow(start, start + 3 * H, "minute")
    assert plan_segments(window, minute_floor=DAY + H) == [Segment("raw", start, DAY + H),
                                                           Segment("minute", DAY + H, start + 3 * H)]
    assert plan_segments(window, minute_floor=DAY + 5 * H) == [Segment("raw", start, start + 3 * H)]


def test_days_queued_for_a_rebuild_are_read_from_raw():
    window = TimeWindow(DAY, DAY + timedelta(days=4), "hour")
    queued = [DAY + timedelta(days=1), DAY + timedelta(days=2)]
    assert plan_segments(window, minute_floor=DAY, raw_days=queued) == [
        Segment("hour", DAY, DAY + timedelta(days=1)), Segment("raw", DAY + timedelta(days=1), DAY + timedelta(days=3)),
        Segment("hour", DAY + timedelta(days=3), DAY + timedelta(days=4))]
    minutes = TimeWindow(DAY + timedelta(hours=23), DAY + timedelta(days=1, hours=1), "minute")
    assert plan_segments(minutes, minute_floor=DAY, raw_days=queued) == [
        Segment("minute", DAY + timedelta(hours=23), DAY + timedelta(days=1)),
        Segment("raw", DAY + timedelta(days=1), DAY + timedelta(days=1, hours=1))]


def test_a_total_reads_whole_days_and_hours_from_the_coarser_tables():
    week = TimeWindow(DAY + 5 * H, DAY + timedelta(days=7, hours=6), "hour")
    assert plan_segments(week, minute_floor=DAY, coarsen=True) == [
        Segment("hour", DAY + 5 * H, DAY + timedelta(days=1)),
        Segment("day", DAY + timedelta(days=1), DAY + timedelta(days=7)),
        Segment("hour", DAY + timedelta(days=7), DAY + timedelta(days=7, hours=6))]
    assert plan_segments(week, minute_floor=DAY) == [Segment("hour", week.start, week.end)]  # by time: its own
    start = DAY + 22 * H + timedelta(minutes=30)
    minutes = TimeWindow(start, start + 27 * H, "minute")  # 22:30 to 01:30 two days on
    assert plan_segments(minutes, minute_floor=DAY, coarsen=True) == [
        Segment("minute", start, DAY + 23 * H), Segment("hour", DAY + 23 * H, DAY + timedelta(days=1)),
        Segment("day", DAY + timedelta(days=1), DAY + timedelta(days=2)),
        Segment("hour", DAY + timedelta(days=2), DAY + timedelta(days=2, hours=1)),
        Segment("minute", DAY + timedelta(days=2, hours=1), start + 27 * H)]
    queued = [DAY + timedelta(days=3)]  # a day queued for a rebuild is still read from raw
    assert Segment("raw", DAY + timedelta(days=3), DAY + timedelta(days=4)) in plan_segments(
        week, minute_floor=DAY, raw_days=queued, coarsen=True)
    short = TimeWindow(DAY + 2 * H, DAY + 5 * H, "hour")
    assert plan_segments(short, minute_floor=DAY, coarsen=True) == [Segment("hour", short.start, short.end)]


def test_the_seal_edge_leaves_the_last_minutes_live():
    now = DAY + 10 * H + timedelta(minutes=3, seconds=20)
    hours = TimeWindow(DAY, DAY + 11 * H, "hour")
    assert seal_edge(hours, now) == DAY + 9 * H  # 09:58:20 is in the 09:00 bucket: sealed up to it
    minutes = TimeWindow(DAY + 9 * H, DAY + 10 * H + timedelta(minutes=4), "minute")
    assert seal_edge(minutes, now) == DAY + 9 * H + timedelta(minutes=58)
    past = TimeWindow(DAY, DAY + 2 * H, "hour")
    assert seal_edge(past, now) == past.end  # all sealed
    assert restricted(build_query("sent", ("time",), DAY, DAY + 3 * H, now=now), DAY, DAY + H).window == \
        TimeWindow(DAY, DAY + H, "minute")


def test_evaluate_each_kind_and_zero_denominators():
    # counts in STATUSES order: sent, delivered, failed, bounced, opened, clicked
    acc = Totals(counts=[200, 150, 0, 0, 30, 3], psum=4500, pcount=150, histogram={100: 10})
    assert (acc.count("opened"), acc.count("failed"), acc.events) == (30, 0, 383)
    assert evaluate(CATALOGUE["delivery_rate"], acc) == (75.0, 150.0, 200.0)
    assert evaluate(CATALOGUE["events"], acc)[0] == 383.0
    assert evaluate(CATALOGUE["avg_processing_time"], acc)[0] == 30.0
    assert evaluate(CATALOGUE["click_to_open_rate"], acc)[0] == 10.0
    empty = Totals()
    assert evaluate(CATALOGUE["delivery_rate"], empty)[0] is None
    assert evaluate(CATALOGUE["avg_processing_time"], empty)[0] is None
    assert evaluate(CATALOGUE["p95_processing_time"], empty)[0] is None
    assert evaluate(CATALOGUE["sent"], empty)[0] == 0.0


def test_measures_keep_their_values_through_the_cache_and_share_equal_keys():
    """Rows come with a new datetime each; the groups' keys share one object per bucket (the
    cached measures then pickle each bucket once), and what comes back from the cache format
    answers exactly as what went in, holes and all."""
    query = build_query("delivery_rate", ("time", "channel"), DAY, DAY + 3 * H, granularity="hour", now=DAY + 30 * H)
    key_of = _keyer(query, aligned=True)
    accs = {}
    for hour in range(3):
        for channel, sent in (("email", 10 + hour), ("sms", 0 if hour == 1 else 4)):
            bucket = datetime.fromtimestamp((DAY + hour * H).timestamp(), timezone.utc)  # a new object per row
            if sent:
                accs[key_of(bucket, (channel,))] = Totals([sent, sent - 1, 1, 0, 0, 0], 100 * sent, sent)
    buckets = {id(bucket) for bucket, _ in accs}
    assert len(accs) == 5 and len(buckets) == 3
    back = measures_from_plain(pickle.loads(pickle.dumps(measures_to_plain(accs))))
    assert back == accs
    metric = CATALOGUE["delivery_rate"]
    records = series_records(series_of(query, metric, back, "rollup", False))
    assert records == series_records(series_of(query, metric, accs, "rollup", False))
    assert [(r["time"], r["channel"], r["value"]) for r in records] == [
        ("2026-11-20T00:00:00Z", "email", 90.0), ("2026-11-20T01:00:00Z", "email", 10 / 11 * 100),
        ("2026-11-20T02:00:00Z", "email", 11 / 12 * 100),
        ("2026-11-20T00:00:00Z", "sms", 75.0), ("2026-11-20T01:00:00Z", "sms", None),
        ("2026-11-20T02:00:00Z", "sms", 75.0)]


def test_filters_are_normalized_so_order_does_not_matter():
    a = parse_filters({"channel": "sms,email", "template_id": "3,1"})
    b = parse_filters({"template_id": [1, 3], "channel": "email,sms"})
    assert a == b == (("channel", ("email", "sms")), ("template_id", (1, 3)))
    now = datetime(2026, 11, 28, tzinfo=timezone.utc)
    assert build_query("sent", "channel,time", "now-1h", None, {"channel": "sms,email"}, now=now).cache_key() == \
        build_query("sent", "time,channel", "now-1h", None, {"channel": "email,sms"}, now=now).cache_key()


@pytest.mark.parametrize("kwargs, field, text", [
    ({"metric": "nope"}, "metric", "known metrics: events, sent"),
    ({"metric": "open_rate", "group_by": "status"}, "group_by", "would mean nothing"),
    ({"metric": "open_rate", "filters": {"status": "opened"}}, "group_by", "would mean nothing"),
    ({"group_by": "time,user"}, "group_by", "cannot group by 'user'"),
    ({"filters": {"user": "1"}}, "user", "unknown filter 'user'"),
    ({"filters": {"status": "read"}}, "status", "status 'read' is not one of"),
    ({"filters": {"template_id": "1,x"}}, "template_id", "whole numbers"),
    ({"filters": {"channel": ",".join(["email"] * 101)}}, "channel", "at most 100"),
])
def test_bad_queries_say_what_is_wrong(kwargs, field, text):
    args = {"metric": "sent", "group_by": "time", "filters": {}} | kwargs
    with pytest.raises(QueryError) as info:
        build_query(args["metric"], args["group_by"], "now-1h", None, args["filters"])
    assert info.value.field == field and text in info.value.message
