"""Shared fixtures: real Postgres and Redis, each test isolated, and a frozen clock.

Postgres: one schema per test session (so parallel runs never meet), emptied before
each test. Redis: the database of TEST_REDIS_URL (db 15 unless told; never 0). The suite
runs in parallel processes (pytest-xdist, `make test`): every app a process makes keeps its
keys under that process's own CACHE_PREFIX, and a test that uses Redis starts with that
prefix's keys deleted, never another process's.

Clock: the whole session runs at TEST_NOW (default below; the clock ticks on from there),
so no answer depends on the hour the suite happens to run at. `TEST_NOW=2026-11-25T23:55:00Z
make test` runs it at another hour. Tests that start other processes (which keep the real
clock) are marked `real_clock` and run on the real clock.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from datetime import datetime

import pytest
import redis
import time_machine
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Every test client and test server speaks from one address; the rate limit has its own test.
os.environ.setdefault("RATE_LIMIT", "off")
# this process's cache keys (apps and the servers it starts read it from the environment)
CACHE_PREFIX = os.environ["CACHE_PREFIX"] = f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_NOW = datetime.fromisoformat(os.environ.get("TEST_NOW", "2026-11-25T13:05:00+00:00").replace("Z", "+00:00"))

HOW_TO_START = (
    "Postgres or Redis is not reachable ({problem}); start them with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` and "
    "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no`, "
    "or point TEST_DATABASE_URL / TEST_REDIS_URL at running servers."
)


def pytest_sessionstart(session):
    if make_url(TEST_DATABASE_URL).database == "postgres" or TEST_REDIS_URL.rstrip("/").endswith("/0"):
        pytest.exit("Tests never use the 'postgres' database or Redis db 0; set TEST_DATABASE_URL / "
                    "TEST_REDIS_URL to others.", returncode=4)


def pytest_collection_finish(session):
    """Unit tests (tests/unit) need no services; anything else needs Postgres and Redis,
    checked once before the first test."""
    if all("tests/unit/" in str(item.fspath) for item in session.items):
        return
    try:
        engine = create_engine(TEST_DATABASE_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # one sentence, then stop: no silent skips
        pytest.exit(HOW_TO_START.format(problem=str(exc).splitlines()[0]), returncode=3)


_CLOCK = time_machine.travel(TEST_NOW, tick=True)
_COORDINATES: list = []


def pytest_configure(config):
    """The clock is frozen before collection, so module-level `now`s see TEST_NOW too."""
    _COORDINATES.append(_CLOCK.start())


@pytest.fixture
def clock():
    """The session's clock, to move it on (`clock.shift(seconds)`) instead of sleeping."""
    return _COORDINATES[-1]


def pytest_unconfigure(config):
    _CLOCK.stop()


@pytest.fixture(autouse=True)
def _real_clock_when_marked(request):
    if request.node.get_closest_marker("real_clock") is None:
        yield
        return
    _CLOCK.stop()
    try:
        yield
    finally:
        _COORDINATES.append(_CLOCK.start())


@contextmanager
def clock_at(instant: datetime):
    """Run a block (or a module fixture) at `instant`, the clock ticking from there."""
    traveller = time_machine.travel(instant, tick=True)
    traveller.start()
    try:
        yield instant
    finally:
        traveller.stop()


@pytest.fixture(scope="session")
def pg_schema():
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(TEST_DATABASE_URL, pool_pre_ping=True)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    yield name
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_url(pg_schema) -> str:
    """A URL whose connections live in this session's own schema."""
    url = make_url(TEST_DATABASE_URL).update_query_dict({"options": f"-csearch_path={pg_schema}"})
    return url.render_as_string(hide_password=False)


def clear_cache_keys(url: str = TEST_REDIS_URL) -> None:
    """Delete this process's keys (answers, counters, rate-limit windows) from Redis."""
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"*na:{CACHE_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def redis_url() -> str:
    clear_cache_keys()
    return TEST_REDIS_URL


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'analytics.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """Service tests run on both dialects."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analytics.db'}"
    return request.getfixturevalue("pg_url")


def fresh_engine(url: str):
    """An upgraded database with every table empty."""
    from dashapp.extensions import make_engine
    from services.store.dialect import upgrade_database
    from services.store.schema import metadata

    eng = make_engine(url)
    upgrade_database(eng)
    if eng.dialect.name == "postgresql":
        names = ", ".join(t.name for t in metadata.sorted_tables)
        with eng.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    return eng


@pytest.fixture
def engine(database_url):
    """An upgraded, empty database on each dialect."""
    eng = fresh_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(pg_url):
    eng = fresh_engine(pg_url)
    yield eng
    eng.dispose()


@pytest.fixture
def app(engine):
    from dashapp import create_app

    return create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False),
                       "INGEST_TOKEN": "test-token"})
