"""Hardening findings, each reproduced against the real app on Postgres and Redis: one bad
event, shared caches, writes that wait, huge or malformed bodies, forged writes, the
standalone access tokens, 500s that are client errors, and what an error may say."""
from __future__ import annotations

import base64
import gzip
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import flask_compress.flask_compress
import orjson
import pytest
from sqlalchemy import func, select, text

from dashapp import create_app
from dashapp.config import ConfigError
from services.store.schema import notification_events
from tests.factories import make_event, make_events

AUTH = {"Authorization": "Bearer test-token"}


def pg_app(pg_engine, **settings):
    return create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
                       "INGEST_TOKEN": "test-token", **settings})


def stored(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(notification_events)).scalar()


# ---------------------------------------------------------------- 1. one bad event

@pytest.mark.parametrize("bad, reason", [
    ({"metadata": {"note": "a\u0000b"}}, "NUL"),
    ({"metadata": {"a\u0000": 1}}, "NUL"),
    ({"created_at": "0001-01-01T00:00:00+01:00"}, "outside the supported dates"),
    ({"created_at": "9999-12-31T23:59:59-01:00"}, "outside the supported dates"),
    ({"template_id": 2 ** 31}, "template_id must be from 0"),
    ({"processing_time_ms": 10 ** 12}, "processing_time_ms must be from 0"),
    ({"user_id": "u\u00001"}, "user_id must be"),
])
def test_one_event_postgres_would_refuse_is_rejected_and_the_rest_stored(pg_engine, bad, reason):
    app = pg_app(pg_engine)
    batch = make_events(9_999)
    batch.insert(4_321, make_event(**bad))
    response = app.test_client().post("/api/events", data=orjson.dumps(batch), headers=AUTH)
    assert response.status_code == 200, response.data[:300]
    body = response.json
    assert body["accepted"] == 9_999 and len(body["rejected"]) == 1
    assert body["rejected"][0]["index"] == 4_321 and reason in body["rejected"][0]["error"]
    assert stored(pg_engine) == 9_999


def test_a_literal_backslash_u0000_in_metadata_is_ordinary_text(pg_engine):
    app = pg_app(pg_engine)
    response = app.test_client().post("/api/events", data=orjson.dumps([make_event(metadata={"a": "\\u0000"})]),
                                      headers=AUTH)
    assert response.json["accepted"] == 1


# ---------------------------------------------------------------- 2. shared Redis

def test_two_deployments_sharing_one_redis_db_never_answer_each_others_charts(pg_engine, sqlite_url, redis_url):
    apps = [pg_app(pg_engine, REDIS_URL=redis_url),
            create_app({"DATABASE_URL": sqlite_url, "INGEST_TOKEN": "test-token", "REDIS_URL": redis_url})]
    from dashapp.extensions import db
    from services.store.dialect import upgrade_database
    with apps[1].app_context():
        upgrade_database(db.engine)
    path = "/api/analytics/chart?metric=events&group_by=channel&start=now-24h"
    for app, count in zip(apps, (7, 3)):
        client = app.test_client()
        assert client.post("/api/events", data=orjson.dumps(make_events(count)), headers=AUTH).status_code == 200
    answers = []
    for _ in range(2):  # the second round would come from the cache
        for app in apps:
            body = app.test_client().get(path).json
            answers.append(sum(row["value"] for row in body["data"]))
    assert answers == [7, 3, 7, 3]


def test_cache_prefix_and_database_both_name_the_cache_keys():
    from dashapp.extensions import cache_namespace

    a = cache_namespace({"DATABASE_URL": "postgresql+psycopg://u:secret@db1/analytics"})
    b = cache_namespace({"DATABASE_URL": "postgresql+psycopg://u:other@db1/analytics"})
    c = cache_namespace({"DATABASE_URL": "postgresql+psycopg://u:secret@db2/analytics"})
    d = cache_namespace({"DATABASE_URL": "postgresql+psycopg://u:secret@db1/analytics", "CACHE_PREFIX": "eu"})
    assert a == b != c and d.startswith("na:eu:") and d.endswith(a[3:]) and "secret" not in a


# ---------------------------------------------------------------- 3. writes that would wait

@pytest.mark.parametrize("table, request_args", [
    ("notification_events", ("post", "/api/events", orjson.dumps(make_events(3)))),
    ("custom_metrics", ("post", "/api/analytics/metrics", orjson.dumps({"name": "ctr_x", "formula": "clicked"}))),
])
def test_a_write_blocked_by_a_lock_answers_503_json_with_retry_after(pg_engine, table, request_args):
    app = pg_app(pg_engine, WRITE_TIMEOUT_SECONDS=0.5)
    holder = pg_engine.connect()
    transaction = holder.begin()
    holder.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
    try:
        method, path, body = request_args
        started = time.monotonic()
        response = getattr(app.test_client(), method)(path, data=body, headers={**AUTH, "Content-Type": "application/json"})
        waited = time.monotonic() - started
    finally:
        transaction.rollback()
        holder.close()
    assert response.status_code == 503 and response.is_json, response.data[:300]
    assert response.headers["Retry-After"] == "5"
    assert "nothing" in response.json["error"] and "lock" not in response.json["error"].lower()
    assert waited < 5


# ---------------------------------------------------------------- 4. bodies

def test_a_huge_dash_callback_body_is_refused_before_it_is_read(pg_engine):
    response = pg_app(pg_engine).test_client().post(
        "/analytics/_dash-update-component", data=b"x" * (3 * 1024 * 1024), content_type="application/json")
    assert response.status_code == 413 and response.is_json and "2 MB" in response.json["error"]


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"output": "x"}', b'{"output": "nothing.children", "outputs": {}}',
                                  b'{"output": "kpi-row.children", "outputs": 5}', b"null"])
def test_a_malformed_dash_callback_body_is_a_json_400(pg_engine, body):
    response = pg_app(pg_engine).test_client().post("/analytics/_dash-update-component", data=body,
                                                     content_type="application/json")
    assert response.status_code == 400 and response.is_json and "callback request" in response.json["error"]


@pytest.mark.parametrize("path", ["/analytics/_dash-component-suites/os/path.py",
                                  "/analytics/_dash-component-suites/dash/not-there.js"])
def test_a_file_outside_the_dashboard_is_a_json_404(pg_engine, path):
    response = pg_app(pg_engine).test_client().get(path)
    assert response.status_code == 404 and response.is_json


# ---------------------------------------------------------------- 5. expensive reports

REPORTS = ["/api/analytics/trends?metric=sent&days=2", "/api/analytics/compare?metric=delivery_rate&start=now-2d",
           "/api/analytics/correlations?metrics=sent,delivered&start=now-2d", "/api/analytics/drilldown?start=now-2d"]


def at_a_minute_start(clock) -> None:
    """The clock moved to a minute's first second: a report's key, which holds the minute,
    stays the same for the seconds a test moves it on."""
    now = datetime.now(timezone.utc)
    clock.move_to(now.replace(second=1, microsecond=0) + timedelta(minutes=1))


def until(ask: Callable[[], Any], done: Callable[[Any], bool], seconds: float = 10) -> Any:
    """ask() again until done(answer): what a report computed in the background stores."""
    deadline = time.monotonic() + seconds
    while True:
        answer = ask()
        if done(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


@pytest.mark.parametrize("path", REPORTS)
def test_a_report_is_shared_until_its_data_changes_or_for_a_few_seconds_under_ingest(pg_engine, redis_url, path,
                                                                                      monkeypatch, clock):
    app = pg_app(pg_engine, REDIS_URL=redis_url, REPORT_FRESH_SECONDS=10)  # seconds to spare on a slow machine
    client = app.test_client()
    compressed = []
    real = flask_compress.flask_compress._compress_data
    monkeypatch.setattr(flask_compress.flask_compress, "_compress_data",
                        lambda *args: compressed.append(args[-1]) or real(*args))
    at_a_minute_start(clock)
    assert client.post("/api/events", data=orjson.dumps(make_events(20)), headers=AUTH).status_code == 200
    first, again = client.get(path).json, client.get(path).json
    assert first["cached"] is False and again["cached"] is True
    assert {k: v for k, v in again.items() if k != "cached"} == {k: v for k, v in first.items() if k != "cached"}
    zipped = client.get(path, headers={"Accept-Encoding": "gzip"})  # the stored answer, as stored
    assert zipped.headers["Content-Encoding"] == "gzip" and orjson.loads(gzip.decompress(zipped.data)) == again
    assert compressed == []  # kept compressed: never compressed again on its way out
    clock.shift(4)
    assert client.post("/api/events", data=orjson.dumps(make_events(3)), headers=AUTH).status_code == 200
    assert client.get(path).json == again  # a new batch 4 s after the answer read its data: still shared…
    clock.shift(7)  # …until the answer is more than REPORT_FRESH_SECONDS old: computed again in the
    assert client.get(path).json == again  # background, the one before sent meanwhile…
    computed = until(lambda: client.get(path).json, lambda answer: answer["as_of"] > first["as_of"])
    assert computed["as_of"] > first["as_of"] and computed["cached"] is True  # …until it is stored
    clock.shift(20)  # no batch since: shared however old, within the cache's 30 s
    assert client.get(path).json == computed
    assert client.post("/api/analytics/metrics", json={"name": "any", "formula": "sent"}).status_code == 201
    assert client.get(path).json["cached"] is False  # a metric edit: computed again at once


def test_without_report_freshness_a_new_batch_computes_a_report_again(pg_engine, redis_url, clock):
    client = pg_app(pg_engine, REDIS_URL=redis_url, REPORT_FRESH_SECONDS=0).test_client()
    at_a_minute_start(clock)
    client.post("/api/events", data=orjson.dumps(make_events(20)), headers=AUTH)
    assert [client.get(REPORTS[0]).json["cached"] for _ in range(2)] == [False, True]
    client.post("/api/events", data=orjson.dumps(make_events(3)), headers=AUTH)
    assert client.get(REPORTS[0]).json["cached"] is False


class SlowSecondReport:
    """A report (through cached_report) whose second computation lasts until `answered` is
    set; `computing` is set once it runs."""

    def __init__(self, app, kind: str):
        self.app, self.kind = app, kind
        self.computing, self.answered = threading.Event(), threading.Event()
        self.computations: list[int] = []

    def compute(self, _conn) -> dict:
        self.computations.append(1)
        if len(self.computations) == 2:
            self.computing.set()
            self.answered.wait(10)
        return {"computation": len(self.computations)}

    def ask(self) -> tuple:
        from dashapp.caching import cached_report

        with self.app.app_context():
            return cached_report(self.kind, {}, self.compute)


def test_while_a_report_is_computed_again_in_the_background_every_viewer_is_sent_the_kept_one(
        pg_engine, redis_url, clock):
    app = pg_app(pg_engine, REDIS_URL=redis_url, REPORT_FRESH_SECONDS=5)
    report = SlowSecondReport(app, "slow")
    at_a_minute_start(clock)
    app.test_client().post("/api/events", data=orjson.dumps(make_events(5)), headers=AUTH)
    assert report.ask() == ({"computation": 1}, False)
    app.test_client().post("/api/events", data=orjson.dumps(make_events(5)), headers=AUTH)
    clock.shift(6)  # the kept answer is past REPORT_FRESH_SECONDS and the data changed: computed again…
    try:
        assert report.ask() == ({"computation": 1}, True)  # …in the background: this viewer is sent the kept one,
        assert report.computing.wait(10)
        assert report.ask() == ({"computation": 1}, True)  # and so is the next, while it runs
    finally:
        report.answered.set()
    assert until(report.ask, lambda answer: answer[0] == {"computation": 2}) == ({"computation": 2}, True)
    assert len(report.computations) == 2


def test_a_report_computed_again_in_the_background_that_fails_is_tried_again_by_the_next_viewer(
        pg_engine, redis_url, clock, caplog):
    from dashapp.caching import cached_report

    app = pg_app(pg_engine, REDIS_URL=redis_url, REPORT_FRESH_SECONDS=5)
    computations: list[int] = []

    def compute(_conn) -> dict:
        computations.append(1)
        if len(computations) == 2:
            raise RuntimeError("the database went away")
        return {"computation": len(computations)}

    def ask() -> tuple:
        with app.app_context():
            return cached_report("failing", {}, compute)

    at_a_minute_start(clock)
    app.test_client().post("/api/events", data=orjson.dumps(make_events(5)), headers=AUTH)
    assert ask() == ({"computation": 1}, False)
    app.test_client().post("/api/events", data=orjson.dumps(make_events(5)), headers=AUTH)
    clock.shift(6)
    assert ask() == ({"computation": 1}, True)  # the kept one; the background computation fails…
    assert until(ask, lambda answer: answer[0] == {"computation": 3}) == ({"computation": 3}, True)
    assert "the database went away" in caplog.text  # …is logged, its claim given up: the next viewer's runs


def test_in_a_new_minute_viewers_are_sent_the_previous_minutes_report_while_it_is_computed(pg_engine, redis_url,
                                                                                           clock):
    """A report's key holds the minute: each minute its question is new. It is computed
    again in the background; meanwhile viewers are sent the previous minute's answer (a few
    seconds old), rather than wait for the computation."""
    report = SlowSecondReport(pg_app(pg_engine, REDIS_URL=redis_url, REPORT_FRESH_SECONDS=5), "minutely")
    now = datetime.now(timezone.utc)
    clock.move_to(now.replace(second=57, microsecond=0) + timedelta(minutes=1))
    assert report.ask() == ({"computation": 1}, False)
    clock.shift(5)  # 4 s into the next minute: a new key
    try:
        assert report.ask() == ({"computation": 1}, True)  # the previous minute's, while it is computed
        assert report.computing.wait(10)
        assert report.ask() == ({"computation": 1}, True)
    finally:
        report.answered.set()
    assert until(report.ask, lambda answer: answer[0] == {"computation": 2}) == ({"computation": 2}, True)
    assert len(report.computations) == 2


@pytest.mark.parametrize("first_fails", [False, True])
def test_a_new_report_asked_by_two_viewers_at_once_is_computed_once(pg_engine, redis_url, clock, monkeypatch,
                                                                     first_fails):
    """The second viewer waits for the first one's computation (no answer is kept yet to send
    meanwhile); if that computation fails, the second viewer computes the report itself."""
    from dashapp import caching

    app = pg_app(pg_engine, REDIS_URL=redis_url)
    computing, waiting, go = threading.Event(), threading.Event(), threading.Event()
    computations: list[int] = []
    real_wait = caching._wait_for
    monkeypatch.setattr(caching, "_wait_for", lambda *args: waiting.set() or real_wait(*args))

    def compute(_conn) -> dict:
        computations.append(1)
        if len(computations) == 1:
            computing.set()
            go.wait(10)
            if first_fails:
                raise RuntimeError("the first viewer's computation failed")
        return {"computation": len(computations)}

    results: dict = {}

    def ask(name: str) -> None:
        with app.app_context():
            try:
                results[name] = caching.cached_report("new", {}, compute)
            except RuntimeError as exc:
                results[name] = str(exc)

    at_a_minute_start(clock)
    viewers = [threading.Thread(target=ask, args=(name,)) for name in ("first", "second")]
    viewers[0].start()
    assert computing.wait(10)
    viewers[1].start()
    assert waiting.wait(10)  # the second viewer waits for the first one's answer…
    go.set()
    for viewer in viewers:
        viewer.join(10)
    if first_fails:  # …and computes it itself when that computation fails
        assert results == {"first": "the first viewer's computation failed",
                           "second": ({"computation": 2}, False)}
    else:
        assert results == {"first": ({"computation": 1}, False), "second": ({"computation": 1}, True)}
        assert len(computations) == 1


def test_a_report_past_its_budget_is_stopped_with_a_sentence(pg_engine):
    app = pg_app(pg_engine, REPORT_BUDGET_SECONDS=0.000001)
    client = app.test_client()
    client.post("/api/events", data=orjson.dumps(make_events(20)), headers=AUTH)
    response = client.get("/api/analytics/trends?metric=p99_processing_time&start=now-6h&granularity=minute")
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    assert "narrow the time range" in response.json["error"]


# ---------------------------------------------------------------- 6. forged writes

def test_a_cross_site_text_plain_form_cannot_create_a_metric(pg_engine):
    client = pg_app(pg_engine).test_client()
    forged = client.post("/api/analytics/metrics", data='{"name": "forged", "formula": "sent", "x": "="}',
                         content_type="text/plain")
    assert forged.status_code == 415 and "application/json" in forged.json["error"]
    other_site = client.post("/api/analytics/metrics", json={"name": "forged", "formula": "sent"},
                             headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    referer = client.post("/api/analytics/metrics", json={"name": "forged", "formula": "sent"},
                          headers={"Referer": "https://evil.example/page"})
    assert referer.status_code == 403
    assert client.get("/api/analytics/metrics").json["custom"] == []
    own = client.post("/api/analytics/metrics", json={"name": "own", "formula": "sent"},
                      headers={"Origin": "http://localhost"})
    assert own.status_code == 201


# ---------------------------------------------------------------- 7. standalone access

def basic(token: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"anyone:{token}".encode()).decode()}


def test_production_refuses_to_start_without_access_control(pg_engine):
    settings = {"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False), "ENV": "production",
                "SECRET_KEY": "k" * 32}
    with pytest.raises(ConfigError, match="READ_TOKEN"):
        create_app(settings)
    assert create_app({**settings, "READ_TOKEN": "r" * 20, "ADMIN_TOKEN": "a" * 20}) is not None


def test_tokens_let_readers_read_and_only_admins_write(pg_engine):
    app = pg_app(pg_engine, READ_TOKEN="read-token-0123456789", ADMIN_TOKEN="admin-token-0123456789")
    client = app.test_client()
    anonymous = client.get("/api/analytics/events")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/analytics/").status_code == 401
    assert client.get("/health").status_code == 200
    assert client.post("/api/events", data=orjson.dumps(make_events(2)), headers=AUTH).json["accepted"] == 2
    reader = {"Authorization": "Bearer read-token-0123456789"}
    assert client.get("/api/analytics/events", headers=reader).status_code == 200
    assert client.get("/analytics/", headers=basic("read-token-0123456789")).status_code == 200
    assert client.post("/api/analytics/metrics/validate", json={"formula": "sent"}, headers=reader).status_code == 200
    refused = client.post("/api/analytics/metrics", json={"name": "m1", "formula": "sent"}, headers=reader)
    assert refused.status_code == 403 and "admin token" in refused.json["error"]
    admin = {"Authorization": "Bearer admin-token-0123456789"}
    assert client.post("/api/analytics/metrics", json={"name": "m1", "formula": "sent"}, headers=admin).status_code == 201
    assert client.delete("/api/analytics/metrics/m1", headers=reader).status_code == 403
    assert client.delete("/api/analytics/metrics/m1", headers=admin).status_code == 204
    assert client.get("/api/analytics/events", headers={"Authorization": "Bearer wrong"}).status_code == 401


# ---------------------------------------------------------------- 8. custom metrics

def test_a_formula_whose_expansion_is_too_long_is_refused_at_save_time(pg_engine):
    client = pg_app(pg_engine).test_client()
    assert client.post("/api/analytics/metrics", json={
        "name": "wide", "formula": " + ".join(["(delivered + bounced + failed + opened + clicked)"] * 4)}).status_code == 201
    refused = client.post("/api/analytics/metrics", json={"name": "wider", "formula": " + ".join(["wide"] * 8)})
    assert refused.status_code == 400 and "expanded" in refused.json["error"] and "500 characters" in refused.json["error"]
    # and an edit that would make a metric built on it too long is refused too
    assert client.post("/api/analytics/metrics", json={"name": "two", "formula": "wide + wide"}).status_code == 201
    edit = client.put("/api/analytics/metrics/wide", json={"formula": " + ".join(["(sent + delivered + failed)"] * 12)})
    assert edit.status_code == 400 and "'two' uses 'wide'" in edit.json["error"]
    assert client.get("/api/analytics/chart?metric=two&group_by=channel").status_code == 200


def test_concurrent_edits_cannot_store_a_cycle(pg_engine):
    app = pg_app(pg_engine)
    client = app.test_client()
    for name in ("cyc_a", "cyc_b"):
        assert client.post("/api/analytics/metrics", json={"name": name, "formula": "sent"}).status_code == 201
    barrier = threading.Barrier(2)
    codes = []

    def edit(name, other):
        barrier.wait()
        codes.append(app.test_client().put(f"/api/analytics/metrics/{name}", json={"formula": f"{other} + 1"}).status_code)

    threads = [threading.Thread(target=edit, args=pair) for pair in (("cyc_a", "cyc_b"), ("cyc_b", "cyc_a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 400]
    for name in ("cyc_a", "cyc_b"):
        assert client.get(f"/api/analytics/chart?metric={name}&group_by=channel").status_code == 200


def test_a_cycle_saved_earlier_can_be_deleted(pg_engine):
    from datetime import datetime, timezone

    from services.store.schema import custom_metrics

    now = datetime.now(timezone.utc)
    with pg_engine.begin() as conn:  # as two concurrent saves could store it before writes were serialised
        for name, formula in (("cyc_a", "cyc_b + 1"), ("cyc_b", "cyc_a + 1")):
            conn.execute(custom_metrics.insert().values(name=name, display_name=name, formula=formula, unit="none",
                                                        description="", created_at=now, updated_at=now))
    client = pg_app(pg_engine).test_client()
    assert client.get("/api/analytics/chart?metric=cyc_a").status_code == 400
    assert client.delete("/api/analytics/metrics/cyc_a").status_code == 204
    assert client.delete("/api/analytics/metrics/cyc_b").status_code == 204


def test_the_number_of_metrics_is_capped_and_delete_costs_a_few_statements(pg_engine, monkeypatch):
    from datetime import datetime, timezone

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from services.query import custom_metrics as service
    from services.store.schema import custom_metrics

    monkeypatch.setattr(service, "MAX_METRICS", 300)
    now = datetime.now(timezone.utc)
    rows = [dict(name="basis", formula="sent")] + [dict(name=f"m{i}", formula=f"basis + {i}") for i in range(299)]
    with pg_engine.begin() as conn:
        conn.execute(custom_metrics.insert(), [dict(row, display_name=row["name"], unit="none", description="",
                                                    created_at=now, updated_at=now) for row in rows])
    client = pg_app(pg_engine).test_client()
    refused = client.post("/api/analytics/metrics", json={"name": "one_more", "formula": "sent"})
    assert refused.status_code == 400 and "300" in refused.json["error"]
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        in_use = client.delete("/api/analytics/metrics/basis")
        unused = client.delete("/api/analytics/metrics/m7")
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert in_use.status_code == 400 and "m0, m1, m10" in in_use.json["error"] and "more" in in_use.json["error"]
    assert unused.status_code == 204
    assert len(statements) < 30  # not one query per metric (the cost grew as n², 29.9 s at 5,000)


# ---------------------------------------------------------------- 9. client errors, not 500s

@pytest.mark.parametrize("path", [
    "/api/analytics/chart?metric=sent&start=now-999999w",
    "/api/analytics/chart?metric=sent&start=9999-12-30&end=9999-12-31T23:30:00",
    "/api/analytics/trends?metric=sent&start=0001-01-02&end=0001-01-03",
    "/api/analytics/compare?metric=sent&start=now-999999w",
    "/api/analytics/drilldown?start=now-999999w",
    "/api/analytics/events?start=now-999999w",
    "/api/analytics/correlations?metrics=sent,delivered&start=now-999999w",
    "/api/analytics/metrics/a%00b",
    "/api/analytics/chart?metric=sent&template_id=1.7",
    "/api/analytics/chart?metric=sent&template_id=%D9%A1%D9%A2",
    "/api/analytics/chart?metric=sent&template_id=1_000",
    "/api/analytics/events?cursor=" + base64.urlsafe_b64encode(
        orjson.dumps(["created_at", True, "2026-11-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00", "a\u0000b"])).decode(),
])
def test_bad_parameters_are_400s_that_say_what_is_allowed(pg_engine, path):
    response = pg_app(pg_engine).test_client().get(path)
    assert response.status_code in (400, 404), (path, response.status_code, response.data[:300])
    assert response.is_json and response.json["error"]


def test_a_nul_in_a_metric_description_is_a_400(pg_engine):
    client = pg_app(pg_engine).test_client()
    response = client.post("/api/analytics/metrics", json={"name": "nul", "formula": "sent", "description": "a\u0000b"})
    assert response.status_code == 400 and response.json["field"] == "description"


# ---------------------------------------------------------------- 10. leaks and headers

def test_health_says_the_database_is_down_without_naming_hosts():
    app = create_app({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=1"})
    response = app.test_client().get("/health")
    assert response.status_code == 503 and response.json["database"] == "not answering"
    assert "127.0.0.1" not in response.get_data(as_text=True) and "port" not in response.get_data(as_text=True)


def test_an_ingest_503_says_a_sentence_not_the_driver_error(pg_engine):
    with pg_engine.begin() as conn:
        conn.execute(text("CREATE OR REPLACE FUNCTION refuse_all() RETURNS trigger AS $$ BEGIN "
                          "RAISE EXCEPTION 'could not write block 7 of relation base/16384/2619' USING ERRCODE = 'io_error'; "
                          "END $$ LANGUAGE plpgsql"))
        conn.execute(text("CREATE TRIGGER refuse_all BEFORE INSERT ON notification_events "
                          "FOR EACH ROW EXECUTE FUNCTION refuse_all()"))
    try:
        response = pg_app(pg_engine).test_client().post("/api/events", data=orjson.dumps(make_events(3)), headers=AUTH)
    finally:
        with pg_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER refuse_all ON notification_events"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "relation" not in response.json["error"] and "nothing of it was stored" in response.json["error"]


def test_retry_after_only_where_a_retry_is_asked_for(pg_engine, redis_url):
    app = pg_app(pg_engine, REDIS_URL=redis_url, RATE_LIMIT="2 per minute")
    client = app.test_client()
    ok = client.get("/api/analytics/chart?metric=sent&group_by=channel")
    assert ok.status_code == 200 and "Retry-After" not in ok.headers
    client.get("/api/analytics/chart?metric=sent&group_by=channel")
    limited = client.get("/api/analytics/chart?metric=sent&group_by=channel")
    assert limited.status_code == 429 and 0 < int(limited.headers["Retry-After"]) <= 60
    down = create_app({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=1",
                       "REDIS_URL": redis_url}).test_client().get("/api/analytics/chart?metric=sent")
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"


# ---------------------------------------------------------------- 12. CSV and ids

def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(pg_engine):
    import csv

    app = pg_app(pg_engine)
    client = app.test_client()
    events = [make_event(user_id=user) for user in ("-A1-B1", "plain")] + [make_event(event_id="-2-3")]
    assert client.post("/api/events", data=orjson.dumps(events), headers=AUTH).json["accepted"] == 3
    rows = list(csv.reader(client.get("/api/analytics/events?format=csv").get_data(as_text=True).splitlines()))
    cells = [cell for row in rows[1:] for cell in row]
    assert "'-A1-B1" in cells and "'-2-3" in cells and "plain" in cells
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_the_dashboards_reports_share_the_report_cache(pg_engine, redis_url):
    from callbacks.common import ask_report
    from dashapp.caching import cache_stats
    from services.analysis.trend_report import trend_report

    app = pg_app(pg_engine, REDIS_URL=redis_url)
    app.test_client().post("/api/events", data=orjson.dumps(make_events(20)), headers=AUTH)
    with app.test_request_context():
        before = cache_stats()
        first, error = ask_report(trend_report, "sent", "now-2d", None, None, {}, None, None)
        again, _ = ask_report(trend_report, "sent", "now-2d", None, None, {}, None, None)
        after = cache_stats()
    assert error is None and again == first
    assert (after["misses"] - before["misses"], after["hits"] - before["hits"]) == (1, 1)


def test_editing_a_metrics_unit_changes_its_cached_chart(pg_engine, redis_url, clock):
    app = pg_app(pg_engine, REDIS_URL=redis_url)
    client = app.test_client()
    client.post("/api/events", data=orjson.dumps(make_events(20)), headers=AUTH)
    assert client.post("/api/analytics/metrics", json={"name": "ctr", "formula": "clicked / delivered * 100"}
                       ).status_code == 201
    clock.shift(10)  # data at rest: whole chart answers are cached
    path = "/api/analytics/chart?metric=ctr&group_by=channel&start=now-2d&end=now-1h"
    assert client.get(path).json["metadata"]["unit"] == "none"
    assert client.get(path).json["metadata"]["cached"] is True
    assert client.put("/api/analytics/metrics/ctr", json={"unit": "%"}).status_code == 200
    edited = client.get(path).json["metadata"]
    assert edited["unit"] == "%" and edited["cached"] is False
