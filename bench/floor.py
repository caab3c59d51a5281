"""The floor: each chart question of the live workload answered by one hand-written SQL
query over a rollup table, behind a bare WSGI endpoint (no framework, no cache, no
freshness: it never reads what the rollup has not folded yet). The product's chart
figures are reported as ratios to it, measured in the same run. With `cached=1` it answers
from Redis instead (one GET of the answer's bytes, stored by the first such request): the
floor of a cache hit.

With `exact=1` it also does the least that the benchmark's other targets ask of a miss,
each in one round trip and written by hand: read a data version (one counter, so that a
cached answer is never stale: every hit needs it first), look for the answer under that
version, look for the measures of the sealed buckets (kept apart, so that a refresh under
ingest reads only the live edge: ≥ 90 % of sealed buckets from the cache), compress the
answer (responses over 1 KB), and store both in one pipeline. What the product's miss costs
beyond this floor is the product's own (framework, planning, zero-filling, metadata).
At `/flask/` the same exact floor is one route of a bare Flask app: what the framework the
product is built on adds by itself, and so the least a miss of the product can cost.

    gunicorn -w 2 -b 127.0.0.1:18090 'bench.floor:app'   (FLOOR_DATABASE_URL, FLOOR_SCHEMA, FLOOR_REDIS_URL)
"""
from __future__ import annotations

import gzip
import os
import pickle
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

import orjson
import psycopg
import redis

DELIVERY_RATE = ("100.0 * coalesce(sum(event_count) FILTER (WHERE status = 'delivered'), 0) / "
                 "nullif(sum(event_count) FILTER (WHERE status = 'sent'), 0)")  # an hour with none delivered: 0 %
# name → (table, granularity, span, value expression over the grouped status counts)
QUESTIONS = {
    "events_1h": ("metrics_minute_channel", "minute", timedelta(hours=1), "sum(event_count)"),
    "events_24h": ("metrics_hourly_channel", "hour", timedelta(hours=24), "sum(event_count)"),
    "events_7d": ("metrics_hourly_channel", "hour", timedelta(days=7), "sum(event_count)"),
    "delivery_rate_24h": ("metrics_hourly_channel", "hour", timedelta(hours=24), DELIVERY_RATE),
    "delivery_rate_7d": ("metrics_hourly_channel", "hour", timedelta(days=7), DELIVERY_RATE),
    "events_by_channel_24h": ("metrics_hourly_channel", None, timedelta(hours=24), "sum(event_count)"),
}
_connection: psycopg.Connection | None = None
_redis: redis.Redis | None = None


def _conn() -> psycopg.Connection:
    global _connection
    if _connection is None or _connection.closed:
        url = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        _connection = psycopg.connect(url, autocommit=True, options=f"-csearch_path={os.environ['FLOOR_SCHEMA']}")
    return _connection


def answer(name: str, now: datetime) -> list[dict]:
    table, granularity, span, value = QUESTIONS[name]
    if granularity is None:
        sql = (f"SELECT channel, {value} FROM {table} WHERE bucket >= %s AND bucket < %s "
               "GROUP BY channel ORDER BY channel")
        rows = _conn().execute(sql, (now - span, now)).fetchall()
        return [{"channel": c, "value": None if v is None else float(v)} for c, v in rows]
    sql = (f"SELECT date_trunc('{granularity}', bucket) AS t, channel, {value} FROM {table} "
           "WHERE bucket >= %s AND bucket < %s GROUP BY 1, 2 ORDER BY 2, 1")
    rows = _conn().execute(sql, (now - span, now)).fetchall()
    return [{"time": t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), "channel": c,
             "value": None if v is None else float(v)} for t, c, v in rows]


def _cache() -> redis.Redis:
    global _redis
    _redis = _redis or redis.Redis.from_url(os.environ["FLOOR_REDIS_URL"])
    return _redis


def exact_answer(name: str, now: datetime) -> bytes:
    """The gzip-compressed answer, keyed by the data version, from Redis or made and kept."""
    version = _conn().execute("SELECT coalesce(sum(generation), 0) FROM rollup_state").fetchone()[0]
    key = f"floor-exact|{name}|{version}"
    cache = _cache()
    body = cache.get(key)
    if body is not None:
        return body
    cache.get(key + "|sealed")
    records = answer(name, now)
    body = gzip.compress(orjson.dumps({"data": records}), compresslevel=1)
    pipe = cache.pipeline(transaction=False)
    pipe.set(key + "|sealed", pickle.dumps(records, protocol=pickle.HIGHEST_PROTOCOL), ex=600)
    pipe.set(key, body, ex=600)
    pipe.execute()
    return body


def _flask_floor():
    from flask import Flask, Response, request

    flask_app = Flask("floor")

    @flask_app.get("/flask/")
    def exact():
        name = request.args.get("q", "")
        if name not in QUESTIONS:
            return Response("unknown question", 404, mimetype="text/plain")
        return Response(exact_answer(name, datetime.now(timezone.utc)), mimetype="application/json",
                        headers={"Content-Encoding": "gzip"})
    return flask_app


FLASK = _flask_floor()


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/flask/":
        return FLASK(environ, start_response)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    name = query.get("q", [""])[0]
    if name not in QUESTIONS:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"unknown question"]
    if query.get("exact") == ["1"]:
        body = exact_answer(name, datetime.now(timezone.utc))
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Encoding", "gzip"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    body = None
    if query.get("cached") == ["1"]:
        body = _cache().get(f"floor|{name}")
    if body is None:
        body = orjson.dumps({"data": answer(name, datetime.now(timezone.utc))})
        if query.get("cached") == ["1"]:
            _cache().set(f"floor|{name}", body, ex=600)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
