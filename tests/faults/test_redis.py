"""A slow Redis and a Redis that comes back: answers stay correct and quick, health says
degraded, and caching resumes."""
from __future__ import annotations

import time

import pytest

from dashapp import caching, create_app
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo
from tests.proxy import proxy_for

QUERY = "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-2d"


@pytest.fixture
def setup(pg_engine, redis_url, monkeypatch, clock):
    seed_demo(pg_engine.begin, days=2, per_hour=80, seed=13)
    rollup_pending(pg_engine)
    clock.shift(10)  # nothing has arrived for a while: whole answers are cached
    monkeypatch.setattr(caching, "BREAKER_SECONDS", 0.5)
    proxy, proxied = proxy_for(redis_url)
    app = create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
                      "REDIS_URL": proxied, "REDIS_SOCKET_TIMEOUT": 0.2})
    yield app.test_client(), proxy
    proxy.stop()


def timed(client, path):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def test_a_slow_redis_costs_one_timeout_not_an_error_and_caching_resumes(setup):
    client, proxy = setup
    truth = client.get(QUERY).json["data"]
    assert client.get(QUERY).json["metadata"]["cached"] is True
    proxy.delay = 1.0  # every reply from Redis now takes longer than the 0.2 s socket timeout
    slow, seconds = timed(client, QUERY)
    assert slow.status_code == 200 and slow.json["data"] == truth and seconds < 1.0
    again, seconds = timed(client, QUERY)  # the breaker is open: Redis is not even asked
    assert again.json["data"] == truth and seconds < 0.5
    assert client.get("/health").json["status"] == "degraded"
    proxy.delay = 0.0
    time.sleep(0.6)
    client.get(QUERY)
    assert client.get(QUERY).json["metadata"]["cached"] is True
    assert client.get("/health").json["cache"] == "redis"
