"""The demo generator: lifecycle-consistent, seasonal, deterministic, incidents where said."""
from datetime import datetime, timedelta, timezone

import numpy as np

from services.store import demo
from services.store.schema import STATUSES

END = datetime(2026, 11, 28, 6, tzinfo=timezone.utc)


def generated(days=8, per_hour=300, seed=7):
    return demo.generate(days, per_hour, seed, END)


def test_same_seed_same_data_and_another_seed_differs():
    (a, _), (b, _), (c, _) = generated(), generated(), generated(seed=8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["time_us"], c["time_us"])


def test_every_lifecycle_is_consistent():
    cols, _ = generated()
    by_note: dict[int, list[tuple[int, int]]] = {}
    for note, status, t in zip(cols["notification"].tolist(), cols["status"].tolist(), cols["time_us"].tolist()):
        by_note.setdefault(note, []).append((t, status))
    sent, delivered, opened, clicked = (STATUSES.index(s) for s in ("sent", "delivered", "opened", "clicked"))
    for events in by_note.values():
        statuses = [s for _, s in sorted(events)]
        assert statuses[0] == sent, "every notification starts with sent"
        if opened in statuses:
            assert delivered in statuses and statuses.index(opened) > statuses.index(delivered)
        if clicked in statuses:
            assert opened in statuses and statuses.index(clicked) > statuses.index(opened)
        assert len(statuses) == len(set(statuses))


def test_only_outcome_events_carry_processing_time():
    cols, _ = generated()
    outcome = np.isin(cols["status"], [1, 2, 3])
    assert (cols["processing"][outcome] >= 1).all() and (cols["processing"][~outcome] == -1).all()


def test_daily_peaks_at_morning_and_evening():
    profile = demo.hourly_profile()
    assert abs(profile.mean() - 1) < 1e-9
    assert profile.argmax() in (7, 8, 9)
    assert profile[18] > 2 * profile[3]


def test_nothing_is_in_the_future_and_times_are_sorted():
    cols, _ = generated()
    end_us = int(END.timestamp()) * 1_000_000
    assert cols["time_us"].max() < end_us and (np.diff(cols["time_us"]) >= 0).all()


def test_sms_delivery_drop_is_in_the_data():
    cols, plans = generated()
    drop = next(p for p in plans if p["kind"] == "sms_delivery_drop")
    lo = int(drop["start"].timestamp()) * 1_000_000
    hi = lo + drop["hours"] * 3_600_000_000
    sms = cols["channel"] == list(demo.CHANNEL_SHARE).index("sms")

    def delivery_rate(mask):
        sent = (mask & (cols["status"] == 0)).sum()
        return (mask & (cols["status"] == 1)).sum() / sent

    during = sms & (cols["time_us"] >= lo) & (cols["time_us"] < hi)
    assert 0.38 < delivery_rate(during) < 0.52
    assert 0.89 < delivery_rate(sms & ~during) < 0.95


def test_the_live_feed_gives_the_same_events_whatever_the_windows():
    start = datetime(2026, 11, 28, 6, 20, tzinfo=timezone.utc)
    mid, end = start + timedelta(minutes=47), start + timedelta(hours=3)
    whole = demo.events_between(start, end, 400, 9, start, end)
    parts = demo.events_between(start, mid, 400, 9, start, end) + demo.events_between(mid, end, 400, 9, start, end)
    assert [r[1] for r in whole] == [r[1] for r in parts] and len({r[1] for r in whole}) == len(whole)
    assert all(start <= r[0] < end for r in whole)
    # every event belongs to a notification whose send is fed too: no open without its send
    sent = {r[2] for r in whole if r[7] == "sent"}
    assert {r[2] for r in whole} == sent


def test_the_live_feed_has_an_outage_now_and_then():
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    hours = [start + timedelta(hours=h) for h in range(24 * 20)]
    outages = [h for h in hours if demo.live_incidents(h, 42)]
    assert 0.04 < len(outages) / len(hours) < 0.14
    hour = outages[0]
    rows = demo.events_between(hour, hour + timedelta(hours=1), 2000, 42, hour, hour + timedelta(hours=2))
    sms = [r for r in rows if r[4] == "sms" and r[7] in ("delivered", "failed", "bounced")]
    assert sum(r[7] == "delivered" for r in sms) / len(sms) < 0.7
    assert sum(r[11] == "carrier_outage" for r in sms) > 0.5 * sum(r[7] != "delivered" for r in sms)
