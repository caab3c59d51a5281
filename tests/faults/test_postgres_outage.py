"""Postgres goes away while events are ingested over HTTP and rolled up — every connection
cut mid-transaction, new ones refused for a second and a half, as in a restart or a
failover — then comes back: no accepted event is lost or counted twice, clients get 503
with Retry-After (never a 500) during the outage, the web app reconnects by itself, and the
next rollup equals the from-raw truth. The outage is made by a TCP proxy in front of the
test database: the machine's Postgres is never touched."""
from __future__ import annotations

import threading
import time

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from dashapp import create_app
from dashapp.extensions import make_engine
from services.rollup.fold import rollup_pending
from services.store.schema import notification_events, rollup_deltas
from tests.factories import make_events
from tests.integration.test_rollup import assert_rollups_match_raw
from tests.proxy import proxy_for

AUTH = {"Authorization": "Bearer test-token"}


def test_an_outage_during_ingest_and_rollup_loses_and_doubles_nothing(pg_engine):
    from datetime import datetime, timezone

    proxy, proxied = proxy_for(pg_engine.url.render_as_string(hide_password=False))
    roller_engine = make_engine(proxied)
    app = create_app({"DATABASE_URL": proxied, "INGEST_TOKEN": "test-token"})
    client = app.test_client()
    batches = [make_events(200) for _ in range(30)]
    statuses: list[int] = []
    retry_after: list[str] = []
    stop = threading.Event()

    def ingest() -> None:
        for batch in batches:
            body = orjson.dumps(batch)
            for _ in range(400):  # a client that retries the same batch until it is accepted
                response = client.post("/api/events", data=body, headers=AUTH)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    break
                retry_after.append(response.headers.get("Retry-After", ""))
                time.sleep(0.05)
            time.sleep(0.1)  # keeps ingest going for about four seconds, across the outage

    roller_errors: list[str] = []  # anything but the database being away fails the test

    def roll() -> None:
        while not stop.is_set():
            try:
                rollup_pending(roller_engine)
            except DBAPIError:
                time.sleep(0.1)  # the database is away; the next run picks up where this one was
            except Exception as exc:  # noqa: BLE001  (reported by the test, not lost in a thread)
                roller_errors.append(repr(exc))
                time.sleep(0.1)

    writer, roller = threading.Thread(target=ingest), threading.Thread(target=roll)
    writer.start()
    roller.start()
    time.sleep(0.4)
    proxy.cut()
    time.sleep(1.5)
    proxy.restore()
    writer.join(timeout=120)
    stop.set()
    roller.join(timeout=60)
    assert not writer.is_alive() and not roller.is_alive(), "a thread is stuck after the outage"
    assert not roller_errors, roller_errors
    roller_engine.dispose()

    assert 500 not in statuses, statuses
    assert 503 in statuses  # the outage was really exercised
    assert statuses.count(200) == len(batches)
    assert all(value == "5" for value in retry_after)
    assert client.get("/health").status_code == 200  # reconnected without a restart of the app
    proxy.stop()
    # the next scheduled run: a session cut by the proxy may hold the leader lock until the
    # server has noticed it is gone, so it waits for the lock, not for a fixed time
    deadline = time.monotonic() + 30
    while True:
        try:
            if not rollup_pending(pg_engine).locked_out:
                break
        except DBAPIError:
            pass
        assert time.monotonic() < deadline, "the final rollup never had the lock"
        time.sleep(0.1)
    with pg_engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(notification_events)).scalar()
        pending = conn.execute(select(func.count()).select_from(rollup_deltas)).scalar()
    assert pending == 0, f"{pending} delta rows left unfolded"
    assert stored == sum(len(b) for b in batches)  # nothing lost, nothing twice
    assert_rollups_match_raw(pg_engine, datetime.now(timezone.utc))


def test_a_read_after_a_restart_runs_again_on_a_new_connection(pg_engine):
    """The read pool lends connections without a ping (a chart hit is one statement); a
    connection cut while idle in the pool (a restart between two requests) fails its first
    statement, and the read runs again on a new connection: the user sees the answer."""
    proxy, proxied = proxy_for(pg_engine.url.render_as_string(hide_password=False))
    app = create_app({"DATABASE_URL": proxied, "INGEST_TOKEN": "test-token"})
    client = app.test_client()
    try:
        assert client.post("/api/events", data=orjson.dumps(make_events(50)), headers=AUTH).status_code == 200
        path = "/api/analytics/chart?metric=events&group_by=channel&start=now-7d"
        before = client.get(path)
        assert before.status_code == 200
        proxy.cut()     # every pooled connection is closed under the app…
        proxy.restore()  # …and the server takes new ones at once, as after a quick restart
        after = client.get(path)
        assert after.status_code == 200, after.data
        assert sum(p["value"] for p in after.json["data"]) == 50
        with app.app_context():
            from dashapp.extensions import db
            assert db.read_engine.pool._pre_ping is False  # the read was served without a ping
    finally:
        proxy.stop()
