"""Raw retention on Postgres is a partition DROP: the expired days' tables go, every event of the
kept days stays, and no DELETE ever reaches the events table."""
from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import event, func, select, text

from services.rollup.fold import apply_retention
from services.store import dialect
from services.store.ingest import raw_retention_cutoff, store_rows, validate_event
from services.store.schema import notification_events
from tests.factories import iso, make_event

NOW = datetime(2026, 11, 25, 13, 5, tzinfo=timezone.utc)  # frozen: passed to every call
RETENTION_DAYS = 7
STORED = {0: 3, 1: 5, 6: 2, 7: 4, 8: 6, 9: 1, 15: 2, 40: 3}  # days before NOW's day → events stored that day
TODAY = datetime(NOW.year, NOW.month, NOW.day, tzinfo=timezone.utc)
CUTOFF = raw_retention_cutoff(NOW, RETENTION_DAYS)  # NOW's day − 7: days before it are dropped
EXPIRED = {(TODAY - timedelta(days=d)).date() for d in STORED if (TODAY - timedelta(days=d)).date() < CUTOFF}
KEPT = {(TODAY - timedelta(days=d)).date() for d in STORED} - EXPIRED

DELETE_FROM_EVENTS = re.compile(r"^\s*(DELETE\s+FROM|TRUNCATE(\s+TABLE)?)\s+\"?notification_events", re.IGNORECASE)
DROP_TABLE = re.compile(r"^\s*DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?\"?([\w.]+)\"?", re.IGNORECASE)


def store(engine) -> dict:
    """STORED's events, spread over each day from its first to its last microsecond (the day
    boundaries either side of the cutoff included); returns event ids by day."""
    ids: dict = {}
    rows = []
    for days_ago, count in STORED.items():
        start = TODAY - timedelta(days=days_ago)
        span = min(start + timedelta(days=1) - timedelta(microseconds=1), NOW) - start  # today: up to NOW
        for i in range(count):
            at = start + span * (i / max(1, count - 1))
            row = validate_event(make_event(created_at=iso(at)), NOW, raw_retention_days=90)
            rows.append(row)
            ids.setdefault(start.date(), set()).add(row[1])
    with engine.begin() as conn:
        assert store_rows(conn, rows, now=NOW) == len(rows)
    return ids


def events_by_day(engine) -> dict:
    day = func.date(func.timezone("UTC", notification_events.c.created_at))
    with engine.connect() as conn:
        rows = conn.execute(select(day, notification_events.c.event_id)).all()
    out: dict = {}
    for d, event_id in rows:
        out.setdefault(d, set()).add(event_id)
    return out


def test_retention_drops_the_expired_partitions_and_deletes_nothing(pg_engine):
    assert EXPIRED and KEPT and (CUTOFF - timedelta(days=1)) in EXPIRED and CUTOFF in KEPT
    ids = store(pg_engine)
    with pg_engine.connect() as conn:
        before = dialect.existing_partition_days(conn)
    assert EXPIRED | KEPT <= before
    # every partition before the cutoff goes: ours, and any empty one an earlier test of this
    # session's schema left behind
    expected_drops = {dialect.partition_name(d) for d in before if d < CUTOFF}
    assert {dialect.partition_name(d) for d in EXPIRED} <= expected_drops

    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(pg_engine, "before_cursor_execute", record)
    try:
        result = apply_retention(pg_engine, now=NOW, raw_retention_days=RETENTION_DAYS)
    finally:
        event.remove(pg_engine, "before_cursor_execute", record)

    assert not [s for s in statements if DELETE_FROM_EVENTS.search(s)], statements
    drops = [DROP_TABLE.match(s).group(1).split(".")[-1] for s in statements if DROP_TABLE.match(s)]
    assert sorted(drops) == sorted(expected_drops)  # each expired partition once, nothing else
    assert result["raw_dropped"] == len(expected_drops)

    with pg_engine.connect() as conn:
        after = dialect.existing_partition_days(conn)
        gone = {d: conn.execute(text("SELECT to_regclass(:t)"), {"t": dialect.partition_name(d)}).scalar()
                for d in EXPIRED}
    assert gone == {d: None for d in EXPIRED}  # the tables themselves no longer exist
    assert after == {d for d in before if d >= CUTOFF}
    assert events_by_day(pg_engine) == {d: ids[d] for d in KEPT}  # every kept event, nothing else
    assert sum(len(v) for v in events_by_day(pg_engine).values()) == sum(
        STORED[d] for d in STORED if (TODAY - timedelta(days=d)).date() in KEPT)


def test_a_second_run_with_nothing_expired_drops_nothing(pg_engine):
    ids = store(pg_engine)
    apply_retention(pg_engine, now=NOW, raw_retention_days=RETENTION_DAYS)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(pg_engine, "before_cursor_execute", record)
    try:
        result = apply_retention(pg_engine, now=NOW + timedelta(minutes=59),
                                 raw_retention_days=RETENTION_DAYS)
    finally:
        event.remove(pg_engine, "before_cursor_execute", record)
    assert result["raw_dropped"] == 0
    assert not [s for s in statements if DROP_TABLE.match(s) or DELETE_FROM_EVENTS.search(s)]
    assert events_by_day(pg_engine) == {d: ids[d] for d in KEPT}


def test_a_long_read_postpones_the_drop_instead_of_holding_ingest_behind_it(pg_engine):
    """A partition DROP waiting for its lock queues every insert behind it: it gives up after
    DDL_LOCK_TIMEOUT, the batch that came meanwhile is stored, and the next run drops the day."""
    ids = store(pg_engine)
    reader = pg_engine.connect()
    reader.execute(select(func.count()).select_from(notification_events))  # a dashboard read, still open
    try:
        outcome: dict = {}
        dropping = threading.Thread(target=lambda: outcome.update(
            apply_retention(pg_engine, now=NOW, raw_retention_days=RETENTION_DAYS)))
        dropping.start()
        # the DROP is queued behind the read; autocommit: activity is a snapshot per transaction
        with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            deadline = time.monotonic() + 5
            while not watcher.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'DROP TABLE%'")).scalar():
                assert time.monotonic() < deadline, "the DROP never waited for its lock"
                time.sleep(0.01)
        late = validate_event(make_event(created_at=iso(NOW - timedelta(minutes=5))), NOW, raw_retention_days=90)
        began = time.monotonic()
        with pg_engine.begin() as conn:  # queued behind the DROP until it gives up, then goes in
            conn.execute(text("SET LOCAL statement_timeout = '10s'"))  # a DROP that never gave up fails this
            assert store_rows(conn, [late], now=NOW) == 1
        waited = time.monotonic() - began
        assert waited < 5, f"the batch waited {waited:.1f} s behind the DROP (its lock timeout is 1 s)"
        dropping.join(timeout=30)
        assert not dropping.is_alive()
        assert outcome["raw_postponed"] is True and outcome["raw_dropped"] == 0
        with pg_engine.connect() as conn:
            assert EXPIRED <= dialect.existing_partition_days(conn)  # nothing dropped yet
    finally:
        reader.close()
    result = apply_retention(pg_engine, now=NOW, raw_retention_days=RETENTION_DAYS)
    assert result["raw_postponed"] is False and result["raw_dropped"] >= len(EXPIRED)
    kept = events_by_day(pg_engine)
    assert late[1] in kept[NOW.date()] and set(kept) == KEPT and ids[NOW.date()] <= kept[NOW.date()]
