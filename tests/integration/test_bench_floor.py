"""The benchmark's floor (bench.floor) on real Postgres and Redis: its exact mode answers
what its plain mode answers, from Redis while the data version stands, afresh once it moves."""
from __future__ import annotations

import gzip

import orjson
import pytest
import redis
from sqlalchemy import text

from bench import floor
from services.rollup.fold import bump, rollup_pending
from services.store.demo import seed_demo
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
def floor_app(pg_engine, pg_schema, monkeypatch):
    seed_demo(pg_engine.begin, days=8, per_hour=40, seed=5)
    rollup_pending(pg_engine)
    url = pg_engine.url.set(query={}).render_as_string(hide_password=False)
    monkeypatch.setenv("FLOOR_DATABASE_URL", url)
    monkeypatch.setenv("FLOOR_SCHEMA", pg_schema)
    monkeypatch.setenv("FLOOR_REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setattr(floor, "_connection", None)
    monkeypatch.setattr(floor, "_redis", None)
    client = redis.Redis.from_url(TEST_REDIS_URL)
    stale = list(client.scan_iter(match="floor*"))
    if stale:
        client.delete(*stale)
    yield client
    kept = list(client.scan_iter(match="floor*"))
    if kept:
        client.delete(*kept)
    if floor._connection is not None:
        floor._connection.close()


def call(query: str) -> tuple[dict, bytes]:
    started: list = []
    body = b"".join(floor.app({"QUERY_STRING": query}, lambda status, headers: started.append((status, headers))))
    status, headers = started[0]
    assert status == "200 OK"
    return dict(headers), body


def test_the_exact_floor_answers_as_the_floor_and_keeps_what_a_miss_must_keep(floor_app, pg_engine):
    headers, plain = call("q=delivery_rate_7d")
    records = orjson.loads(plain)["data"]
    assert len(records) > 400 and {r["channel"] for r in records} == {"email", "sms", "push"}  # a week by hour
    headers, body = call("q=delivery_rate_7d&exact=1")
    assert headers["Content-Encoding"] == "gzip" and headers["Content-Length"] == str(len(body))
    assert orjson.loads(gzip.decompress(body))["data"] == records
    kept = sorted(k.decode().rsplit("|", 1)[-1] for k in floor_app.scan_iter(match="floor-exact|*"))
    assert len(kept) == 2 and "sealed" in kept  # the answer and the sealed measures
    assert call("q=delivery_rate_7d&exact=1")[1] == body  # from Redis: the same bytes
    with pg_engine.begin() as conn:  # a batch, fold or rebuild moves the version
        bump(conn, "fold", conn.execute(text("SELECT now()")).scalar())
    call("q=delivery_rate_7d&exact=1")
    assert len(list(floor_app.scan_iter(match="floor-exact|*"))) == 4


def test_the_exact_floor_in_flask_answers_as_the_exact_floor(floor_app):
    from werkzeug.test import Client

    client = Client(floor.app)
    answer = client.get("/flask/?q=delivery_rate_7d")
    assert answer.status_code == 200 and answer.headers["Content-Encoding"] == "gzip"
    assert answer.data == call("q=delivery_rate_7d&exact=1")[1]  # the answer it stored, under the same key
    assert orjson.loads(gzip.decompress(answer.data))["data"] == orjson.loads(call("q=delivery_rate_7d")[1])["data"]
    assert client.get("/flask/?q=nope").status_code == 404


def test_every_scenario_of_the_instruction_count_answers_the_chart_question(floor_app, pg_url, redis_url, clock):
    """bench.instructions serves each of its scenarios from one process: each answers 200, the
    product's miss and hit answer the floor's question, and the exact floor as a route of
    this app sends the exact floor's bytes."""
    from werkzeug.test import Client

    from bench import instructions
    from dashapp.caching import QUIET_SECONDS

    clock.shift(QUIET_SECONDS + 1)  # data at rest: a whole answer is kept, and the next asking is a hit

    client = Client(instructions.serving_app({"DATABASE_URL": pg_url, "REDIS_URL": redis_url, "SCHEDULER": "off",
                                              "RATE_LIMIT": "off"}))
    bodies = {name: instructions.get(client, path).data for name, (path, _flush) in instructions.SCENARIOS.items()}
    assert bodies["harness"] == b"ok"
    floor_records = orjson.loads(bodies["floor"])["data"]
    assert orjson.loads(bodies["floor_hit"])["data"] == floor_records
    assert bodies["floor_exact_in_app"] == bodies["floor_exact"] == bodies["floor_exact_flask"]
    miss, hit = (orjson.loads(gzip.decompress(bodies[name])) for name in ("miss", "hit"))
    assert miss["metadata"]["cached"] is False and hit["metadata"]["cached"] is True
    assert hit["data"] == miss["data"]
    assert miss["metadata"]["metric"] == "delivery_rate" and miss["metadata"]["group_by"] == ["time", "channel"]
    # the same question: the floor's hours (sealed, whole) hold the product's values
    ours = {(r["time"], r["channel"]): r["value"] for r in miss["data"]}
    times = sorted({r["time"] for r in floor_records})
    whole = [r for r in floor_records if times[0] < r["time"] < times[-1]]  # the first hour is cut by the floor
    assert len(whole) > 400
    assert [ours[(r["time"], r["channel"])] for r in whole] == pytest.approx([r["value"] for r in whole])
