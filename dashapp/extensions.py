"""Extensions, created unbound and bound to an app in `init_app`.

Nothing here holds an engine at import time: each app keeps its own in
`app.extensions`, so two apps in one process (tests, a portal) never share one.
"""
from __future__ import annotations

import hashlib
import logging
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psycopg
from flask import Flask, current_app, g, has_request_context
from flask_caching import Cache
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
cache = Cache()
T = TypeVar("T")


READ_ISOLATION = "REPEATABLE READ"  # snapshot_reads: every statement of a read sees one snapshot
# A server whose host vanished (a network cut, not a stopped process) must cost seconds, not
# the minutes TCP takes to give up: statement_timeout is the server's and cannot fire then.
NETWORK_LIMITS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                  "keepalives_count": 3, "tcp_user_timeout": 30_000}


def make_engine(url: str, statement_timeout_ms: int | None = None, snapshot_reads: bool = False,
                pre_ping: bool = True) -> Engine:
    """An engine for `url` with the settings this product relies on on each dialect. A
    statement timeout (Postgres) keeps one heavy dashboard query from holding the pool;
    `snapshot_reads` makes every statement of a read see one snapshot (rollup rows and the
    deltas a fold moves between statements must not be counted twice or missed). `pre_ping`
    tests each connection with a round trip before lending it; without it, a connection lost
    to a restart fails its first statement, which invalidates the pool's older connections
    (Database.read then runs the read once more)."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1] if "///" in url else ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        # pysqlite's own BEGIN handling defers the lock; issue BEGIN ourselves so a
        # write transaction is a real transaction (documented SQLAlchemy recipe).
        # A transaction that reads and then writes (the rollup) asks for IMMEDIATE so it
        # holds the write lock from the start instead of failing to upgrade later.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get("write_intent") else "BEGIN"))
    else:
        engine = create_engine(url, pool_pre_ping=pre_ping, pool_size=5, max_overflow=10, connect_args=NETWORK_LIMITS,
                               **({"isolation_level": READ_ISOLATION} if snapshot_reads else {}))
        event.listen(engine, "connect", _postgres_on_connect)
        if statement_timeout_ms:
            event.listen(engine, "connect", lambda dbapi, _r: _set_timeout(dbapi, statement_timeout_ms))
    _dispose_after_fork(engine)
    return engine


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is issued by the "begin" listener
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class BinaryResultsCursor(psycopg.Cursor):
    """Results in Postgres's binary format: a number or a time is copied, not parsed from
    text (a 7-day chart's 504 groups × 8 sums and a bucket each: ~5 % of a miss's work)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.format = psycopg.pq.Format.BINARY


def _postgres_on_connect(dbapi_connection, _record) -> None:
    dbapi_connection.cursor_factory = BinaryResultsCursor
    # buckets are UTC whatever the server's default zone is
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.commit()


def _set_timeout(dbapi_connection, milliseconds: int) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {int(milliseconds)}")
    dbapi_connection.commit()


def _dispose_after_fork(engine: Engine) -> None:
    """A forked worker must not reuse its parent's sockets (gunicorn --preload)."""
    ref = weakref.ref(engine)

    def dispose_in_child() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=dispose_in_child)


class Database:
    """Holds the engines of each app it is bound to: the primary's for writes, and for
    reads the primary's read pool or, with DATABASE_READ_URL, a replica behind a router."""

    key = "analytics_db"

    def init_app(self, app: Flask) -> None:
        from dashapp.replica import ReplicaRouter

        url = app.config["DATABASE_URL"]
        engine = make_engine(url)
        # reads get their own pool and a statement timeout: a heavy chart cannot starve ingest
        timeout_ms = int(app.config["QUERY_TIMEOUT_SECONDS"] * 1000)
        # a chart hit is one statement: a ping before it would double its round trips to
        # Postgres (under load a third of a worker's time went to pings); reads are run
        # again instead when their connection turns out to be lost
        read_engine = engine if url.startswith("sqlite") else make_engine(url, timeout_ms, snapshot_reads=True,
                                                                           pre_ping=False)
        replica_url = app.config.get("DATABASE_READ_URL")
        router = None
        if replica_url and replica_url != url:  # settings refuse one beside SQLite
            router = ReplicaRouter(read_engine, make_engine(replica_url, timeout_ms, snapshot_reads=True, pre_ping=False),
                                   app.config["REPLICA_WAIT_SECONDS"], app.config["REPLICA_RETRY_SECONDS"],
                                   READ_ISOLATION)
        app.extensions[self.key] = {"engine": engine, "read_engine": read_engine, "replica": router}

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A request's write transaction that gives up instead of waiting: on Postgres, a
        lock held elsewhere or a statement running longer than WRITE_TIMEOUT_SECONDS
        cancels it (rolled back whole), well before gunicorn would kill the worker."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                milliseconds = int(current_app.config["WRITE_TIMEOUT_SECONDS"] * 1000)
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")
            yield conn

    def read(self, work: Callable[[Connection], T]) -> T:
        """`work(conn)` on a read connection: the replica's once it has caught up with the
        primary (see dashapp.replica), else the primary's read pool. Where it ran is told to
        the response (header X-Analytics-Read)."""
        router = current_app.extensions[self.key]["replica"]

        def attempt() -> T:
            if router is None:
                with self.read_engine.connect() as conn:
                    return work(conn)
            return router.read(work, _tell)
        try:
            return attempt()
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # the server restarted or the connection was cut since it was last used: the
            # pool has dropped its older connections, and a read can simply run again
            log.info("a read lost its connection (%s); running it again on a new one", type(exc.orig).__name__)
            return attempt()

    def replica_status(self) -> dict | None:
        """The replica's lag and where reads go; None without a replica."""
        router = current_app.extensions[self.key]["replica"]
        return None if router is None else router.status()

    @property
    def engine(self) -> Engine:
        return current_app.extensions[self.key]["engine"]

    @property
    def read_engine(self) -> Engine:
        """The primary's read pool (statement timeout, one snapshot per transaction)."""
        return current_app.extensions[self.key]["read_engine"]


def _tell(where: str, waited: float) -> None:
    """Note on the request where a read ran and how long choosing took (response headers)."""
    if has_request_context():
        g.setdefault("analytics_reads", set()).add(where)
        g.analytics_replica_wait = g.get("analytics_replica_wait", 0.0) + waited


db = Database()


def cache_namespace(settings: dict) -> str:
    """The prefix of every cache key: CACHE_PREFIX and the identity of the database the
    answers come from (its URL without password), so deployments sharing a Redis never
    answer from each other's data."""
    url = make_url(settings["DATABASE_URL"]).render_as_string(hide_password=True)
    identity = hashlib.sha256(url.encode()).hexdigest()[:12]
    prefix = settings.get("CACHE_PREFIX") or ""
    return f"na:{prefix + ':' if prefix else ''}{identity}:"


def cache_config(settings: dict) -> dict:
    """Flask-Caching settings: Redis with short socket timeouts, or in-process."""
    if settings.get("REDIS_URL"):
        timeout = settings["REDIS_SOCKET_TIMEOUT"]
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": settings["REDIS_URL"],
            "CACHE_KEY_PREFIX": cache_namespace(settings),
            "CACHE_DEFAULT_TIMEOUT": settings["CACHE_DEFAULT_TIMEOUT"],
            "CACHE_OPTIONS": {"socket_timeout": timeout, "socket_connect_timeout": timeout},
        }
    return {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": settings["CACHE_DEFAULT_TIMEOUT"],
            "CACHE_THRESHOLD": 2000}
