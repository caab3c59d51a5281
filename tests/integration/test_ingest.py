"""Ingest against real Postgres (COPY, partitions) and SQLite (executemany)."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from services.store import dialect
from services.store.ingest import ingest_events, raw_retention_cutoff
from services.store.schema import late_marks, notification_events, rollup_deltas
from tests.factories import iso, make_event, make_events


def count(engine, table=notification_events):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def ingest(engine, events, **kwargs):
    with engine.begin() as conn:
        return ingest_events(conn, events, **kwargs)


def deltas(engine) -> list:
    d = rollup_deltas.c
    with engine.connect() as conn:
        return conn.execute(select(d.bucket, d.channel, d.template_id, d.status, d.latency_bucket, d.event_count,
                                   d.processing_sum, d.processing_min, d.processing_max)
                            .order_by(d.bucket, d.status, d.latency_bucket)).all()


def test_a_batch_is_stored_with_its_deltas_by_minute(engine):
    now = datetime.now(timezone.utc)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    events = make_events(5, created_at=iso(hour + timedelta(minutes=10, seconds=7)), processing_time_ms=250) + \
        make_events(3, created_at=iso(hour + timedelta(hours=1, minutes=5)), status="sent", processing_time_ms=None)
    report = ingest(engine, events, now=now)
    assert (report.accepted, report.duplicates, report.rejected) == (8, 0, ())
    with engine.connect() as conn:
        stored = conn.execute(select(notification_events).where(
            notification_events.c.event_id == events[0]["event_id"])).one()
    assert stored.created_at == hour + timedelta(minutes=10, seconds=7) and stored.metadata == {"campaign": "test"}
    from services.store.latency import bucket_index
    assert [tuple(d) for d in deltas(engine)] == [
        (hour + timedelta(minutes=10), "email", 1, "delivered", bucket_index(250), 5, 1250, 250, 250),
        (hour + timedelta(hours=1, minutes=5), "email", 1, "sent", None, 3, 0, None, None)]


def test_late_events_mark_the_minutes_they_touch_and_current_ones_do_not(engine):
    now = datetime.now(timezone.utc)
    ingest(engine, make_events(3, created_at=iso(now - timedelta(seconds=20))), now=now)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(late_marks)).scalar() == 0
    late = now.replace(second=0, microsecond=0) - timedelta(hours=5)
    ingest(engine, make_events(2, created_at=iso(late + timedelta(seconds=30))) +
           make_events(1, created_at=iso(now - timedelta(seconds=5))), now=now)
    with engine.connect() as conn:
        marks = [tuple(m) for m in conn.execute(select(late_marks.c.bucket_start, late_marks.c.bucket_end)).all()]
    newest = (now - timedelta(seconds=5)).replace(second=0, microsecond=0)
    assert marks == [(late, newest + timedelta(minutes=1))]


def test_duplicates_within_and_across_batches_are_counted_not_stored(engine):
    events = make_events(10)
    report = ingest(engine, events + events[:3])
    assert (report.accepted, report.duplicates) == (10, 3)
    retry = ingest(engine, events)
    assert (retry.accepted, retry.duplicates) == (0, 10)
    assert count(engine) == 10


def test_a_retried_batch_adds_no_deltas(engine):
    events = make_events(4)
    ingest(engine, events)
    before = deltas(engine)
    ingest(engine, events)
    ingest(engine, events[:2] + make_events(1))
    after = deltas(engine)
    assert sum(d[5] for d in before) == 4 and sum(d[5] for d in after) == 5


def test_events_without_id_deduplicate_on_content(engine):
    events = make_events(3, event_id=None, notification_id="same", created_at=iso(datetime.now(timezone.utc)))
    report = ingest(engine, events)
    assert (report.accepted, report.duplicates) == (1, 2)


def test_one_bad_event_rejects_only_itself(engine):
    events = make_events(4)
    events[2]["channel"] = "pigeon"
    report = ingest(engine, events)
    assert report.accepted == 3
    assert [(r.index, r.error) for r in report.rejected] == [
        (2, "channel 'pigeon' is not one of email, sms, push")]


def test_a_failing_batch_leaves_nothing_behind(engine):
    rows = make_events(50)
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            ingest_events(conn, rows)
            raise RuntimeError("crash after the write, before commit")
    assert count(engine) == 0 and count(engine, rollup_deltas) == 0


def test_historic_events_get_their_partition_on_demand(engine):
    old = datetime.now(timezone.utc) - timedelta(days=20)
    report = ingest(engine, make_events(2, created_at=iso(old)))
    assert report.accepted == 2
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            assert old.date() in dialect.existing_partition_days(conn)


def test_raw_retention_drops_whole_old_days(engine):
    now = datetime.now(timezone.utc)
    cutoff = raw_retention_cutoff(now, 30)
    with engine.begin() as conn:  # load old rows as the demo generator does: straight to storage
        from services.store.ingest import store_rows, validate_event
        rows = [validate_event(make_event(created_at=iso(now - timedelta(days=d))), now, raw_retention_days=90)
                for d in (1, 29, 31, 40)]
        store_rows(conn, rows)
    with engine.begin() as conn:
        dialect.drop_raw_before(conn, cutoff)
    with engine.connect() as conn:
        left = conn.execute(select(notification_events.c.created_at)).scalars().all()
    assert all(t.date() >= cutoff for t in left) and len(left) == 2


def test_partitions_are_made_ahead_on_postgres(pg_engine):
    with pg_engine.connect() as conn:
        days = dialect.existing_partition_days(conn)
        kind = conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'notification_events' "
                                 "AND relnamespace = current_schema()::regnamespace")).scalar()
    today = datetime.now(timezone.utc).date()
    assert kind == "p"
    assert {today + timedelta(days=d) for d in range(0, 8)} <= days
