"""The scheduler: one declarative job list, one leader, a standby that takes over, and the
in-process mode of `make run`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from dashapp import create_app
from scheduler.jobs import JOBS, add_jobs
from services.alerts import rules as alert_rules
from tests.factories import make_events
from tests.integration.test_rollup import ROOT, ingest, url_of
from tests.receiver import Receiver


def test_jobs_are_registered_once_with_stable_ids(sqlite_url):
    app = create_app({"DATABASE_URL": sqlite_url})
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, app, start_now=False)
    add_jobs(scheduler, app, start_now=False)  # a restart re-registers: still one of each
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert sorted(jobs) == sorted(spec.id for spec in JOBS if not spec.enabled_setting) == [
        "alert-delivery", "lookup-indexes", "partition-maintenance", "retention", "rollup"]
    # the demo feed runs only where it is asked for (make run)
    fed = BackgroundScheduler(timezone="UTC")
    add_jobs(fed, create_app({"DATABASE_URL": sqlite_url, "DEMO_FEED_PER_HOUR": 400}), start_now=False)
    assert fed.get_job("demo-feed").trigger.interval.total_seconds() == 5
    assert jobs["rollup"].trigger.interval.total_seconds() == 2  # ROLLUP_INTERVAL_SECONDS
    assert jobs["retention"].trigger.interval.total_seconds() == 3600
    assert all(job.coalesce and job.max_instances == 1 and job.misfire_grace_time for job in jobs.values())


class Process:
    """A `python -m scheduler` process whose log lines are collected as they come."""

    def __init__(self, url: str, **settings: str):
        env = {**os.environ, "DATABASE_URL": url, "SCHEDULER_STANDBY_POLL": "0.3", **settings}
        self.proc = subprocess.Popen([sys.executable, "-m", "scheduler"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=20)


@contextmanager
def leader_and_standby(engine, events: int):
    """Two `python -m scheduler` processes: the first leads (it folded `events` events), the
    second stands by; both stopped afterwards."""
    ingest(engine, make_events(events))
    first = Process(url_of(engine))
    second = None
    try:
        assert first.wait_for("scheduler: leader"), first.lines
        assert first.wait_for(f"job rollup: folded {events} events"), first.lines
        second = Process(url_of(engine))
        assert second.wait_for("scheduler: standby"), second.lines
        yield first, second
    finally:
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop()


@pytest.mark.real_clock
def test_one_leader_and_the_standby_takes_over(pg_engine):
    with leader_and_standby(pg_engine, 10) as (first, second):
        assert not any("leader" in line for line in second.lines)
        first.stop(signal.SIGKILL)
        started = time.monotonic()
        assert second.wait_for("scheduler: leader", timeout=15), second.lines
        assert time.monotonic() - started < 10
        ingest(pg_engine, make_events(7))
        assert second.wait_for("job rollup: folded 7 events"), second.lines


# the session holding this schema's scheduler lock (one bigint key: high half in classid, low in objid)
TERMINATE_LEADER_SESSION = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND ((classid::bigint << 32) | objid::bigint) = hashtext(current_schema() || :suffix)::bigint")


@pytest.mark.real_clock
def test_a_leader_whose_lock_session_dies_stops_its_jobs_and_one_process_leads(pg_engine):
    with leader_and_standby(pg_engine, 4) as (first, second):
        with pg_engine.connect() as conn:  # a network cut or an idle timeout ends the lock's session
            assert conn.execute(TERMINATE_LEADER_SESSION, {"suffix": ":scheduler"}).scalar() == 1
        assert first.wait_for("lost the leader lock", timeout=10), first.lines
        lost = next(i for i, line in enumerate(first.lines) if "lost the leader lock" in line)
        # whichever asks first takes the free lock: the old leader again, or the standby
        since = {first: lost, second: -1}
        deadline = time.monotonic() + 10
        leaders: list = []
        while not leaders and time.monotonic() < deadline:
            leaders = [p for p in (first, second) if any("scheduler: leader" in line for line in p.lines[since[p] + 1:])]
            time.sleep(0.05)
        assert len(leaders) == 1, (first.lines, second.lines)
        leader, other = leaders[0], second if leaders[0] is first else first
        for n in (3, 5, 6):  # batches over three rollup intervals: the leader folds each, the other none
            ingest(pg_engine, make_events(n))
            assert leader.wait_for(f"job rollup: folded {n} events"), leader.lines
            time.sleep(2.1)
        assert not any("job " in line for line in other.lines[since[other] + 1:]), other.lines


@pytest.mark.real_clock
def test_the_scheduler_judges_rules_after_its_rollups_and_sends_their_webhooks(pg_engine):
    """A "nothing sent in a minute" rule fires at the first complete minute after the one
    event (delivered, half an hour ago), whenever the test runs; the scheduler posts it to
    a real local receiver."""
    ingest(pg_engine, make_events(1))
    receiver = Receiver()
    with pg_engine.begin() as conn:
        alert_rules.create_rule(conn, {"name": "no traffic", "metric": "sent", "granularity": "minute",
                                       "condition": "threshold", "direction": "below", "threshold": 1,
                                       "webhook_url": receiver.url()}, allowlist=("127.0.0.1",))
    process = Process(url_of(pg_engine), ALERT_WEBHOOK_ALLOWLIST="127.0.0.1", ALERT_SETTLE_SECONDS="0")
    try:
        assert process.wait_for("alerts: 1 rules, 1 buckets judged, no traffic firing at"), process.lines
        assert process.wait_for("job alert-delivery: 1 sent"), process.lines
        (body,) = receiver.bodies()
        assert body["state"] == "firing" and body["value"] == 0 and body["rule"]["name"] == "no traffic"
        assert body["explanation"].startswith("Sent was 0 in the minute from ")
    finally:
        process.stop()
        receiver.close()


def test_in_process_mode_rolls_up_without_a_separate_scheduler(engine):
    ingest(engine, make_events(10))
    app = create_app({"DATABASE_URL": url_of(engine), "SCHEDULER": "inprocess"})
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            body = app.test_client().get("/api/aggregation/status").json
            if body["tables"]["pending_deltas"] == 0 and body["tables"]["metrics_hourly"]:
                break
            time.sleep(0.2)
        assert body["tables"]["pending_deltas"] == 0 and body["tables"]["metrics_hourly"] == 1
        assert app.test_client().get("/health").json["scheduler"].startswith("inprocess, leader")
    finally:
        app.extensions["analytics_scheduler_stop"].set()
