"""Rollups equal the same numbers computed straight from raw events, whatever the order of
ingest, late events, duplicates, reruns, crashes and concurrent runs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text

from services.analysis.investigate import lifecycle
from services.rollup import fold
from services.rollup.fold import generation, index_rebuilt_days, invalidate_all, rollup_pending, rollup_status
from services.store import dialect, latency
from services.store.ingest import ingest_events, store_rows, validate_event
from services.store.schema import ROLLUP_TABLES, metadata, rollup_deltas, rollup_invalidations
from tests.factories import iso, make_event, make_events
from tests.oracle import actual_rollups, expected_rollups, minute_floor_for, raw_events, table_snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def reset(engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(delete(table))


def ingest(engine, events, now=None, backfill: bool | None = None):
    """Through validation; `backfill=True` stores the valid rows the way a large batch of
    old events is stored (no deltas: its hours queued for a rebuild, read from raw)."""
    with engine.begin() as conn:
        if not backfill:
            return ingest_events(conn, events, now=now)
        now = now or datetime.now(timezone.utc)
        rows = [validate_event(e, now) for e in events]
        return store_rows(conn, list({(r[0], r[1]): r for r in rows}.values()), now=now, backfill=True)


def assert_rollups_match_raw(engine, now):
    expected = expected_rollups(engine, minute_floor_for(now))
    actual = actual_rollups(engine)
    differing = [name for name in expected if actual[name] != expected[name]]
    # every table that differs, with its events against raw's: a rollup that missed events in
    # one table only points elsewhere than one that missed them everywhere
    events = lambda rows: sum(values[0] for values in rows.values())  # noqa: E731
    assert not differing, "differ from raw: " + "; ".join(
        f"{name} holds {events(actual[name]):,} events in {len(actual[name])} rows, raw "
        f"{events(expected[name]):,} in {len(expected[name])}" for name in differing)


event_strategy = st.fixed_dictionaries({
    "minutes_ago": st.floats(0, 4 * 24 * 60),
    "channel": st.sampled_from(["email", "sms", "push"]),
    "template_id": st.sampled_from([None, 1, 2, 3]),
    "status": st.sampled_from(["sent", "delivered", "failed", "bounced", "opened", "clicked"]),
    "processing_time_ms": st.one_of(st.none(), st.integers(0, 10_000)),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(event_strategy, max_size=15), min_size=1, max_size=4),
       rollup_after=st.lists(st.booleans(), min_size=4, max_size=4),
       backfills=st.lists(st.booleans(), min_size=4, max_size=4),
       duplicate_every=st.integers(2, 6))
def test_rollups_equal_raw_for_any_batches(engine, batches, rollup_after, backfills, duplicate_every):
    reset(engine)
    now = datetime.now(timezone.utc)
    sent: list[dict] = []
    for number, batch in enumerate(batches):
        events = [make_event(created_at=iso(now - timedelta(minutes=e.pop("minutes_ago"))), **e) for e in batch]
        events += sent[::duplicate_every]  # retries of earlier events
        ingest(engine, events, now=now, backfill=backfills[number] and bool(events))
        sent += events
        if rollup_after[number]:
            rollup_pending(engine, now=now)
    rollup_pending(engine, now=now)
    assert_rollups_match_raw(engine, now)


def test_percentiles_from_rollups_are_within_two_percent(engine):
    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(3)
    times = rng.lognormal(6, 1.0, 3000).astype(int)
    ingest(engine, [make_event(processing_time_ms=int(t), created_at=iso(now - timedelta(minutes=float(m))))
                    for t, m in zip(times, rng.uniform(0, 3000, 3000))], now=now)
    rollup_pending(engine, now=now)
    daily = ROLLUP_TABLES[("day", False)]
    with engine.connect() as conn:
        merged = latency.merge(latency.decode(h) for h in conn.execute(select(daily.c.latency_histogram)).scalars())
    for q in (0.5, 0.95, 0.99):
        exact = float(np.quantile(times, q, method="inverted_cdf"))
        assert abs(latency.quantile(merged, q) - exact) <= 0.02 * exact


def test_a_rerun_changes_nothing_byte_for_byte(engine):
    ingest(engine, make_events(300, created_at=iso(datetime.now(timezone.utc) - timedelta(hours=2))))
    first = rollup_pending(engine)
    before = table_snapshot(engine)
    second = rollup_pending(engine)
    assert first.folded_events == 300 and not second.did_work and second.summary().startswith("nothing pending")
    assert table_snapshot(engine) == before


def test_a_late_event_changes_exactly_its_own_rows(engine):
    now = datetime.now(timezone.utc)
    last_tuesday = (now - timedelta(days=(now.weekday() - 1) % 7 or 7)).replace(hour=10, minute=17)
    ingest(engine, make_events(50, created_at=iso(last_tuesday - timedelta(hours=5))) +
           make_events(50, created_at=iso(now - timedelta(minutes=30))), now=now)
    rollup_pending(engine, now=now)
    before = table_snapshot(engine)
    ingest(engine, [make_event(created_at=iso(last_tuesday), status="bounced", processing_time_ms=700)], now=now)
    report = rollup_pending(engine, now=now)
    after = table_snapshot(engine)
    assert (report.folded_events, report.hours) == (1, 0)
    changed = {name: set(after[name]) ^ set(before[name]) for name in after}
    hour, day = last_tuesday.replace(minute=0, second=0, microsecond=0), last_tuesday.replace(hour=0, minute=0, second=0, microsecond=0)
    assert {r[0] for r in changed["metrics_hourly"]} == {hour}
    assert {r[0] for r in changed["metrics_daily"]} == {day}
    assert {r[0] for r in changed["metrics_hourly_channel"]} == {hour}
    assert {r[0] for r in changed["metrics_daily_channel"]} == {day}
    minute_changed = {r[0] for r in changed["metrics_minute"]}
    assert minute_changed <= {last_tuesday.replace(second=0, microsecond=0)}
    assert_rollups_match_raw(engine, now)


def test_status_reports_watermark_lag_and_sizes(engine):
    ingest(engine, make_events(20))
    with engine.connect() as conn:
        pending = rollup_status(conn)
    assert pending["tables"]["pending_deltas"] == 1 and pending["lag_seconds"] < 60
    rollup_pending(engine)
    with engine.connect() as conn:
        status = rollup_status(conn)
    assert status["tables"]["pending_deltas"] == 0 and status["tables"]["metrics_hourly"] == 1
    assert status["last_run"]["hours_rebuilt"] == 0 and status["last_run"]["events"] == 20
    assert status["last_run"]["error"] is None and status["lag_seconds"] == 0
    assert status["generation"]["fold"] >= 1


def test_full_rebuild_reproduces_the_tables(engine):
    ingest(engine, make_events(100, created_at=iso(datetime.now(timezone.utc) - timedelta(days=3))))
    rollup_pending(engine)
    before = table_snapshot(engine)
    assert invalidate_all(engine) == 1
    assert rollup_pending(engine).hours == 1
    assert table_snapshot(engine) == before


def test_hours_past_raw_retention_are_skipped_not_erased(engine):
    now = datetime.now(timezone.utc)
    ingest(engine, make_events(10, created_at=iso(now - timedelta(days=20))), now=now)
    rollup_pending(engine, now=now)
    before = table_snapshot(engine)
    with engine.begin() as conn:  # the hour is dirty again, but its raw day has gone by then
        conn.execute(rollup_invalidations.insert().values(
            bucket_hour=(now - timedelta(days=20)).replace(minute=0, second=0, microsecond=0), logged_at=now))
    report = rollup_pending(engine, now=now + timedelta(days=15), raw_retention_days=30)
    assert report.expired_hours == 1 and report.hours == 0
    assert table_snapshot(engine)["metrics_hourly"] == before["metrics_hourly"]


def test_a_backfill_over_days_is_rebuilt_days_at_once_equal_to_raw(engine):
    """A backfill's days are rebuilt REBUILD_WORKERS at a time on Postgres (one by one on
    SQLite): the tables equal raw, nothing stays queued, the rebuild count moved once per
    day and the progress reached every queued hour."""
    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(11)
    statuses = ["sent", "delivered", "failed", "bounced", "opened", "clicked"]
    events = [make_event(created_at=iso(now - timedelta(minutes=float(m))), channel=str(rng.choice(["email", "sms"])),
                         status=str(rng.choice(statuses)), template_id=int(rng.integers(1, 4)),
                         processing_time_ms=int(rng.integers(0, 5000))) for m in rng.uniform(60, 6 * 24 * 60, 800)]
    ingest(engine, events, now=now, backfill=True)
    with engine.connect() as conn:
        counted = generation(conn, "rebuild")
        hours = conn.execute(select(func.count(func.distinct(rollup_invalidations.c.bucket_hour)))).scalar()
    days = len({e["created_at"][:10] for e in events})
    seen = []
    report = rollup_pending(engine, now=now, progress=lambda done, total: seen.append((done, total)))
    assert report.batches == days >= 6 and report.hours == hours
    assert_rollups_match_raw(engine, now)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rollup_invalidations)).scalar() == 0
        assert generation(conn, "rebuild") - counted == days
    assert seen[-1] == (hours, hours) and [d for d, _ in seen] == sorted(d for d, _ in seen)


# ---------------------------------------------------------------- other processes

def worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.worker", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.real_clock
def test_two_concurrent_runs_give_the_tables_of_one(engine):
    ingest(engine, make_events(400, created_at=iso(datetime.now(timezone.utc) - timedelta(hours=30))) +
           make_events(400, created_at=iso(datetime.now(timezone.utc) - timedelta(hours=3))))
    runs = [worker("rollup", url_of(engine), "--pause-after-batch", "0.3") for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in runs]
    assert all(p.returncode == 0 for p in runs), outputs
    assert sum("locked out" in out for out in outputs) <= 1
    assert_rollups_match_raw(engine, datetime.now(timezone.utc))


@pytest.mark.real_clock
def test_a_run_killed_midway_converges_on_the_next_run(engine):
    now = datetime.now(timezone.utc)
    for days in (1, 2, 3, 4):
        ingest(engine, make_events(200, created_at=iso(now - timedelta(days=days))))
    run = worker("rollup", url_of(engine), "--pause-after-batch", "30", "--chunk", "1")  # one delta row each
    first_line = run.stdout.readline()
    assert first_line.startswith("batch "), first_line
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=10)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(rollup_deltas)).scalar() > 0
    rollup_pending(engine)
    assert_rollups_match_raw(engine, datetime.now(timezone.utc))


@pytest.mark.real_clock
def test_ingest_in_another_process_while_rolling_up(engine):
    writer = worker("ingest", url_of(engine), "--seed", "5", "--batches", "15", "--size", "200")
    while writer.poll() is None:
        rollup_pending(engine)
    assert writer.returncode == 0, writer.stdout.read()
    rollup_pending(engine)
    assert len(raw_events(engine)) == 3000
    assert_rollups_match_raw(engine, datetime.now(timezone.utc))


def test_a_backfill_is_copied_straight_in_and_a_resent_one_is_deduplicated(engine):
    now = datetime.now(timezone.utc)
    events = [make_event(created_at=iso(now - timedelta(days=2, minutes=i))) for i in range(300)]
    assert ingest(engine, events, now=now, backfill=True) == 300
    assert ingest(engine, events, now=now, backfill=True) == 0  # every one exists: the de-duplicating path
    assert ingest(engine, events[:10] + [make_event(created_at=iso(now - timedelta(days=2)))], now=now,
                  backfill=True) == 1
    assert len(raw_events(engine)) == 301
    with engine.connect() as conn:
        queued = conn.execute(select(func.count(func.distinct(rollup_invalidations.c.bucket_hour)))).scalar()
        assert queued >= 5 and conn.execute(select(func.count()).select_from(rollup_deltas)).scalar() == 0
    report = rollup_pending(engine, now=now)
    assert report.hours >= 5 and report.folded_rows == 0
    assert_rollups_match_raw(engine, now)


def test_a_backfills_new_days_get_their_lookup_indexes_once_rolled_up(pg_engine):
    """Partitions a backfill makes are written without the lookup indexes and get them, one
    sorted build each, once no hour of their day waits for a rebuild; a live batch's new
    partition has them at once; answers read through them are the same before and after; a
    day a writer holds is left for the next run instead of waiting."""
    engine = pg_engine
    now = datetime.now(timezone.utc)
    today = now.date()
    backfilled = [today - timedelta(days=d) for d in (5, 4, 3)]
    live_day, held_day = today - timedelta(days=8), today - timedelta(days=10)
    with engine.begin() as conn:  # partitions other tests made for these days
        for day in (*backfilled, live_day, held_day):
            conn.execute(text(f"DROP TABLE IF EXISTS {dialect.partition_name(day)}"))
    noon = lambda day: datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)  # noqa: E731
    events = [make_event(created_at=iso(noon(day) + timedelta(minutes=7 * i)), user_id=f"u-{i % 7}",
                         metadata={"campaign": "été", "n": i}) for day in backfilled for i in range(60)]
    ingest(engine, events, now=now, backfill=True)
    ingest(engine, make_events(20, created_at=iso(noon(live_day))), now=now)  # a small batch: live
    note = events[70]["notification_id"]
    with engine.connect() as conn:
        assert set(backfilled) <= set(dialect.unindexed_partition_days(conn))
        assert live_day not in dialect.unindexed_partition_days(conn)
        before = lifecycle(conn, note)
        kinds = conn.execute(text("SELECT DISTINCT jsonb_typeof(metadata), metadata->>'campaign' "
                                  "FROM notification_events")).all()
    assert [e["event_id"] for e in before.events] == [events[70]["event_id"]]
    assert sorted(kinds) == [("object", "test"), ("object", "été")]  # written in binary, still JSON objects
    assert not set(backfilled) & set(index_rebuilt_days(engine))  # their hours wait for a rebuild

    rollup_pending(engine, now=now)
    ingest(engine, [make_event(created_at=iso(noon(held_day)))], now=now, backfill=True)
    rollup_pending(engine, now=now)
    with engine.connect() as holder:  # a write into the held day, not yet committed
        holder.execute(text(f"INSERT INTO {dialect.partition_name(held_day)} (created_at, event_id, ingested_at, "
                            "channel, status) VALUES (:t, 'held', :t, 'email', 'sent')"), {"t": noon(held_day)})
        built = index_rebuilt_days(engine)
        holder.rollback()
    assert set(backfilled) <= set(built) and held_day not in built
    assert index_rebuilt_days(engine) == [held_day]
    with engine.connect() as conn:
        assert dialect.unindexed_partition_days(conn) == []
        conn.execute(text("SET LOCAL enable_seqscan = off"))  # a few rows a day: the index, if usable
        plan = "\n".join(conn.execute(text("EXPLAIN (COSTS OFF) SELECT * FROM notification_events "
                                           "WHERE notification_id = :n"), {"n": note}).scalars())
        after = lifecycle(conn, note)
    assert f"{dialect.partition_name(backfilled[1])}_notification" in plan
    assert after == before
    assert_rollups_match_raw(engine, now)


def test_migration_0007_moves_the_lookup_indexes_onto_every_partition_and_back(pg_engine):
    from alembic import command
    from alembic.config import Config

    from services.store.schema import MIGRATIONS

    ingest(pg_engine, make_events(30, created_at=iso(datetime.now(timezone.utc) - timedelta(days=6))), backfill=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def indexes() -> tuple[set, list]:
        with pg_engine.connect() as conn:
            parent = set(conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                                           "AND tablename = 'notification_events'")).scalars())
            return parent, dialect.unindexed_partition_days(conn)

    lookup = {"ix_events_user_time", "ix_events_notification", "ix_events_dims_time"}
    for revision, on_parent in (("0006", True), ("head", False)):
        with pg_engine.begin() as conn:
            config.attributes["connection"] = conn
            (command.downgrade if on_parent else command.upgrade)(config, revision)
        parent, unindexed = indexes()
        with pg_engine.connect() as conn:
            days = dialect.existing_partition_days(conn)
        assert parent & lookup == (lookup if on_parent else set())
        assert set(unindexed) == (days if on_parent else set())


def test_deltas_folded_by_many_small_runs_are_vacuumed_by_the_job(pg_engine, monkeypatch):
    """Under live ingest every run folds a few hundred deltas, never VACUUM_AFTER at once; the
    dead versions they leave are still cleared by the job once they add up (on a server whose
    autovacuum is off or behind, nothing else clears them and each edge read walks past them)."""
    monkeypatch.setattr(fold, "VACUUM_AFTER", 250)

    def vacuums() -> int:
        with pg_engine.connect() as conn:
            return conn.execute(text("SELECT vacuum_count FROM pg_stat_user_tables "
                                     "WHERE relid = to_regclass('rollup_deltas')")).scalar()

    def fold_a_small_batch(n: int) -> int:
        now = datetime.now(timezone.utc)
        ingest(pg_engine, [make_event(created_at=iso(now - timedelta(minutes=m, seconds=n % 50)))
                           for m in range(100)], now=now)
        return rollup_pending(pg_engine, now=now).folded_rows

    before = vacuums()
    assert fold_a_small_batch(0) == 100 and vacuums() == before  # 100 dead: under the threshold
    deadline = time.monotonic() + 60  # the statistics count dead rows seconds after the commit
    runs = 1
    while vacuums() == before and time.monotonic() < deadline:
        assert fold_a_small_batch(runs) < fold.VACUUM_AFTER
        runs += 1
        time.sleep(0.2)
    assert vacuums() > before, f"{runs} runs folded {runs * 100} deltas and none vacuumed them"
    assert runs * 100 >= fold.VACUUM_AFTER  # once they added up, not for one run's 100
    # (the dead rows the statistics count afterwards are no measure: a pooled connection reports
    # its deletes up to seconds later, after the vacuum that cleared them, and they are added back)
    assert_rollups_match_raw(pg_engine, datetime.now(timezone.utc))


def test_what_a_full_rebuild_leaves_dead_is_vacuumed(pg_engine, monkeypatch):
    """A rebuild replaces every row of the hours it rebuilds: the old ones are dead rows, half
    of each rollup table after a full rebuild, that every chart read walks past until a
    vacuum (on a server with autovacuum off, nothing else clears them)."""
    monkeypatch.setattr(fold, "VACUUM_AFTER", 100)
    now = datetime.now(timezone.utc)
    ingest(pg_engine, [make_event(created_at=iso(now - timedelta(hours=h, minutes=m)), channel=c)
                       for h in range(1, 60) for m in (5, 35) for c in ("email", "sms")], now=now)
    rollup_pending(pg_engine, now=now)

    def counts() -> dict:
        with pg_engine.connect() as conn:
            return {name: conn.execute(text("SELECT vacuum_count FROM pg_stat_user_tables "
                                            "WHERE relid = to_regclass(:t)"), {"t": name}).scalar()
                    for name in ("metrics_hourly", "metrics_minute_channel")}  # this schema's tables

    before = counts()
    invalidate_all(pg_engine, now)
    report = rollup_pending(pg_engine, now=now)
    assert report.hours >= 59
    deadline = time.monotonic() + 60  # the statistics count the rebuild's dead rows seconds later

    def all_vacuumed() -> bool:
        after = counts()
        return all(after[name] > before[name] for name in before)

    while not all_vacuumed() and time.monotonic() < deadline:  # each table's count arrives on its own
        fold.vacuum_churned(pg_engine)  # what the next run that does work calls
        time.sleep(0.2)
    assert all_vacuumed(), (before, counts())
    versions = dialect.row_versions(pg_engine, ["metrics_hourly", "metrics_minute_channel"])
    assert all(dead < fold.VACUUM_AFTER for _, dead in versions.values()), versions
    assert_rollups_match_raw(pg_engine, now)
