"""Reads from a real streaming replica (its own primary and replica, started with initdb and
pg_basebackup in a temporary directory; nothing on the host's servers is touched).

Lag is made on purpose by pausing WAL replay on the replica, so every path is exercised
deterministically: caught up, behind (the primary answers), catching up within the wait,
stopped (the primary answers, health degraded), back.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import create_engine, func, select, text

from bench.cluster import database_pair
from dashapp import create_app
from dashapp.extensions import db
from services.store.schema import notification_events
from tests.factories import iso, make_event

pytestmark = [pytest.mark.cluster, pytest.mark.real_clock]
AUTH = {"Authorization": "Bearer t"}


@pytest.fixture(scope="module")
def pair():
    with database_pair() as servers:
        yield servers


@pytest.fixture
def client(pair):
    primary, replica = pair
    app = create_app({"DATABASE_URL": primary.url(), "DATABASE_READ_URL": replica.url(), "INGEST_TOKEN": "t",
                      "REPLICA_WAIT_SECONDS": 1.0, "REPLICA_RETRY_SECONDS": 0.3, "SCHEDULER": "off"})
    yield app.test_client()
    for engine in (app.extensions["analytics_db"]["engine"], app.extensions["analytics_db"]["read_engine"],
                   app.extensions["analytics_db"]["replica"].replica):
        engine.dispose()


@pytest.fixture
def replay(pair):
    """pause() / resume() WAL replay on the replica (always resumed afterwards)."""
    engine = create_engine(pair[1].url(), isolation_level="AUTOCOMMIT")

    class Replay:
        def pause(self):
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_wal_replay_pause()"))

        def resume(self):
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_wal_replay_resume()"))
    control = Replay()
    yield control
    control.resume()
    engine.dispose()


def raw_count(url: str, channel: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(notification_events).where(
            notification_events.c.channel == channel, notification_events.c.status == "failed",
            notification_events.c.created_at >= datetime.now(timezone.utc) - timedelta(hours=1))).scalar()
    engine.dispose()
    return count


def post_failures(client, channel: str, n: int) -> None:
    now = datetime.now(timezone.utc)
    events = [make_event(channel=channel, status="failed", created_at=iso(now - timedelta(seconds=5 + i)))
              for i in range(n)]
    answer = client.post("/api/events", data=orjson.dumps(events), headers=AUTH)
    assert answer.status_code == 200 and answer.json["accepted"] == n, answer.json


def failures(client, channel: str):
    """(failed events of the last hour on `channel` as the chart API answers, where it read)."""
    answer = client.get(f"/api/analytics/chart?metric=failed&group_by=channel&start=now-1h&channel={channel}")
    assert answer.status_code == 200, answer.json
    return sum(r["value"] for r in answer.json["data"]), answer.headers.get("X-Analytics-Read")


def test_a_chart_right_after_an_ingest_counts_it_and_is_read_on_the_replica(client, pair):
    before, _ = failures(client, "sms")
    post_failures(client, "sms", 7)
    counted, where = failures(client, "sms")
    assert counted == raw_count(pair[0].url(), "sms") == before + 7
    assert where == "replica"
    with client.application.app_context():  # the read is one snapshot on the replica, begun after the wait
        isolation, port = db.read(lambda conn: (conn.execute(text("SHOW transaction_isolation")).scalar(),
                                                conn.engine.url.port))
    assert (isolation, port) == ("repeatable read", pair[1].port)
    timing = client.get("/api/analytics/metrics").headers["Server-Timing"]
    assert timing.startswith("replica-wait;dur=") and float(timing.split("=")[1]) < 1000
    status = client.get("/api/aggregation/status").json["replica"]
    assert status["state"] == "ok" and status["reads_from"] == "replica" and status["lag_seconds"] is not None


def test_a_replica_behind_the_bound_leaves_the_read_to_the_primary_then_gets_it_back(client, pair, replay, caplog):
    caplog.set_level(logging.INFO, logger="dashapp.replica")
    post_failures(client, "push", 3)
    assert failures(client, "push") == (3, "replica")
    replay.pause()
    post_failures(client, "push", 4)  # on the primary; the replica does not replay it
    assert failures(client, "push") == (7, "primary")  # not the replica's stale 3
    health = client.get("/health").json
    assert health["status"] == "degraded" and health["replica"].startswith("lagging")
    assert "reads go to the primary" in health["replica"]
    replay.resume()
    time.sleep(0.4)  # REPLICA_RETRY_SECONDS: the replica is asked again
    assert failures(client, "push") == (7, "replica")
    assert client.get("/health").json["status"] == "healthy"
    said = [r.getMessage() for r in caplog.records if r.name == "dashapp.replica"]
    assert said[0].startswith("reads go to the primary for 0.3 s: the replica was more than 1 s behind")
    assert said[-1] == "reads go to the replica again"


def test_a_read_waits_for_a_replica_catching_up_within_the_bound(client, pair, replay):
    post_failures(client, "email", 2)
    assert failures(client, "email") == (2, "replica")
    replay.pause()
    post_failures(client, "email", 5)
    threading.Timer(0.1, replay.resume).start()  # caught up well within the 1 s wait
    assert failures(client, "email") == (7, "replica")


def test_a_stopped_replica_costs_nothing_but_speed_and_comes_back(client, pair):
    primary, replica = pair
    post_failures(client, "sms", 1)
    expected = raw_count(primary.url(), "sms")
    replica.stop("fast")
    try:
        assert failures(client, "sms") == (expected, "primary")
        health = client.get("/health")
        assert health.status_code == 200 and health.json["status"] == "degraded"
        assert health.json["replica"] == "lost: the replica does not answer; reads go to the primary"
        assert "127.0.0.1" not in health.get_data(as_text=True)  # the driver's text stays in the log
    finally:
        replica.start()
    time.sleep(0.4)
    deadline = time.monotonic() + 30
    while failures(client, "sms")[1] != "replica" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert failures(client, "sms") == (expected, "replica")


def test_a_read_cut_off_on_the_replica_is_run_again_on_the_primary(client, pair):
    admin = create_engine(pair[1].url(), isolation_level="AUTOCOMMIT")
    runs = []

    def work(conn):
        runs.append(conn.engine.url.port)
        if len(runs) == 1:  # the replica's backend dies under the read (a restart, a crash)
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return conn.execute(text("SELECT count(*) FROM notification_events")).scalar()

    with client.application.app_context():
        answer = db.read(work)
    admin.dispose()
    assert runs == [pair[1].port, pair[0].port]
    assert answer == raw_count_all(pair[0].url())


def test_an_export_streams_from_the_replica_page_by_page(client, pair):
    post_failures(client, "push", 3)
    answer = client.get("/api/analytics/events?format=csv&start=now-1h&status=failed&channel=push")
    lines = answer.get_data(as_text=True).splitlines()
    assert answer.status_code == 200 and answer.headers["X-Analytics-Read"] == "replica"
    assert len(lines) - 1 == raw_count(pair[0].url(), "push")  # a header, then every failed push event


def raw_count_all(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(notification_events)).scalar()
    engine.dispose()
    return count


def test_the_dashboard_says_how_far_behind_the_replica_is(client):
    from callbacks.shell import data_as_of_text
    from callbacks.view import parse_search

    with client.application.app_context():
        status = db.replica_status()
    assert status["state"] == "ok"
    line = data_as_of_text({"watermark": "2026-12-03T10:00:00+00:00", "lag_seconds": 0},
                           parse_search("", ("email", "sms", "push")), status)
    assert line.endswith(f"replica {status['lag_seconds']:.2f} s behind")
