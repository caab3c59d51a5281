"""Ingest against real Postgres (COPY, partitions) and SQLite (executemany)."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from services import dialect
from services.ingest import ingest_events, raw_retention_cutoff
from services.schema import notification_events, rollup_invalidations
from tests.factories import iso, make_event, make_events


def count(engine, table=notification_events):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def ingest(engine, events, **kwargs):
    with engine.begin() as conn:
        return ingest_events(conn, events, **kwargs)


def test_a_batch_is_stored_and_its_hours_logged(engine):
    now = datetime.now(timezone.utc)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    events = make_events(5, created_at=iso(hour + timedelta(minutes=10))) + \
        make_events(3, created_at=iso(hour + timedelta(hours=1, minutes=5)))
    report = ingest(engine, events, now=now)
    assert (report.accepted, report.duplicates, report.rejected) == (8, 0, ())
    with engine.connect() as conn:
        logged = conn.execute(select(rollup_invalidations.c.bucket_hour)).scalars().all()
        stored = conn.execute(select(notification_events).where(
            notification_events.c.event_id == events[0]["event_id"])).one()
    assert sorted(logged) == [hour, hour + timedelta(hours=1)]
    assert stored.created_at == hour + timedelta(minutes=10) and stored.metadata == {"campaign": "test"}


def test_duplicates_within_and_across_batches_are_counted_not_stored(engine):
    events = make_events(10)
    report = ingest(engine, events + events[:3])
    assert (report.accepted, report.duplicates) == (10, 3)
    retry = ingest(engine, events)
    assert (retry.accepted, retry.duplicates) == (0, 10)
    assert count(engine) == 10


def test_a_retried_batch_logs_no_new_work(engine):
    events = make_events(4)
    ingest(engine, events)
    before = count(engine, rollup_invalidations)
    ingest(engine, events)
    assert count(engine, rollup_invalidations) == before


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
    assert count(engine) == 0 and count(engine, rollup_invalidations) == 0


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
        from services.ingest import store_rows, validate_event
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
