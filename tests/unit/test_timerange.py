from datetime import datetime, timedelta, timezone

import pytest

from services.query.timerange import QueryError, parse_time, resolve_window

NOW = datetime(2026, 11, 28, 12, 34, 56, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("now", NOW), ("now-30m", NOW - timedelta(minutes=30)), ("now-24h", NOW - timedelta(hours=24)),
    ("now-7d", NOW - timedelta(days=7)), ("now-2w", NOW - timedelta(weeks=2)),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc)),
    ("2026-11-01T08:00:00Z", datetime(2026, 11, 1, 8, tzinfo=timezone.utc)),
    ("2026-11-01T10:00:00+02:00", datetime(2026, 11, 1, 8, tzinfo=timezone.utc)),
    ("2026-11-01T08:00:00", datetime(2026, 11, 1, 8, tzinfo=timezone.utc)),
])
def test_time_forms(text, expected):
    assert parse_time(text, NOW, "start") == expected


@pytest.mark.parametrize("text", ["yesterday", "now-5y", "2026-02-30", "now+1h", ""])
def test_malformed_times_name_their_field(text):
    with pytest.raises(QueryError) as info:
        parse_time(text, NOW, "start")
    assert info.value.field == "start" and "ISO date" in info.value.message


@pytest.mark.parametrize("start, granularity", [
    ("now-6h", "minute"), ("now-7h", "hour"), ("now-14d", "hour"), ("now-30d", "hour"), ("now-32d", "hour"),
    ("now-33d", "day"), ("now-400d", "day"),
])
def test_automatic_granularity(start, granularity):
    assert resolve_window(start, None, None, NOW).granularity == granularity


def test_explicit_granularity_is_coarsened_past_two_thousand_points():
    window = resolve_window("now-7d", None, "minute", NOW)
    assert window.granularity == "hour" and len(window.buckets) <= 2000
    assert resolve_window("now-30h", None, "minute", NOW).granularity == "minute"


def test_window_is_aligned_to_buckets():
    window = resolve_window("now-6h", None, None, NOW)
    assert window.start == datetime(2026, 11, 28, 6, 34, tzinfo=timezone.utc)
    assert window.end == datetime(2026, 11, 28, 12, 35, tzinfo=timezone.utc)
    assert window.buckets[0] == window.start and window.buckets[-1] == window.end - timedelta(minutes=1)


@pytest.mark.parametrize("start, end, granularity, field, text", [
    ("now-1h", "now-2h", None, "end", "must be after start"),
    ("now-401d", None, None, "start", "at most 400 days"),
    ("now-1h", None, "week", "granularity", "not one of minute, hour, day"),
])
def test_bad_ranges(start, end, granularity, field, text):
    with pytest.raises(QueryError) as info:
        resolve_window(start, end, granularity, NOW)
    assert info.value.field == field and text in info.value.message
