"""A slow Redis and a Redis that comes back: answers stay correct and quick, health says
degraded, and caching resumes."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from dashapp import caching, create_app
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo
from tests.proxy import proxy_for

QUERY = "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-2d"


@pytest.fixture
def setup(pg_engine, redis_url, monkeypatch, clock):
    """(client, proxy in front of Redis, the cache breaker's clock: it stands still unless the
    test moves it on)."""
    seed_demo(pg_engine.begin, days=2, per_hour=80, seed=13)
    rollup_pending(pg_engine)
    clock.shift(10)  # nothing has arrived for a while: whole answers are cached
    breaker_clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(caching, "time", SimpleNamespace(monotonic=lambda: breaker_clock.now))
    proxy, proxied = proxy_for(redis_url)
    app = create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
                      "REDIS_URL": proxied, "REDIS_SOCKET_TIMEOUT": 0.2})
    yield app.test_client(), proxy, breaker_clock
    proxy.stop()


def test_a_slow_redis_costs_one_timeout_not_an_error_and_caching_resumes(setup):
    client, proxy, breaker_clock = setup
    truth = client.get(QUERY).json["data"]
    assert client.get(QUERY).json["metadata"]["cached"] is True
    proxy.hold()  # Redis turns slow: its replies are held until the test releases them
    asked, replied = proxy.requests, proxy.replies
    slow = client.get(QUERY)
    assert slow.status_code == 200 and slow.json["data"] == truth
    assert proxy.replies == replied  # answered while Redis's reply was still held
    assert proxy.requests == asked + 1  # one command waited for its socket timeout; no other was tried
    again = client.get(QUERY)  # the breaker is open: Redis is not even asked
    assert again.status_code == 200 and again.json["data"] == truth and proxy.requests == asked + 1
    assert client.get("/health").json["status"] == "degraded"  # health asks Redis itself
    proxy.release()
    assert client.get("/health").json["cache"] == "redis"
    assert client.get(QUERY).json["metadata"]["cached"] is False  # the breaker is still open
    breaker_clock.now += caching.BREAKER_SECONDS + 1  # and now it has passed
    resumed = client.get(QUERY).json
    assert resumed["metadata"]["cached"] is True and resumed["data"] == truth
