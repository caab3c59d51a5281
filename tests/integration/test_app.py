"""The factory, /health and the dashboard shell against real Postgres and Redis."""
import redis as redis_lib

from dashapp import create_app
from tests.conftest import CACHE_PREFIX


def test_factory_applies_overrides_and_mounts_everything(sqlite_url):
    app = create_app({"DATABASE_URL": sqlite_url, "URL_PREFIX": "/dash/"})
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert "/health" in rules and "/dash/" in rules and "/dash/_dash-update-component" in rules
    assert app.config["DATABASE_URL"] == sqlite_url
    assert app.test_client().get("/dash/").status_code == 200


def test_two_apps_in_one_process_keep_their_own_engines(sqlite_url, pg_url):
    a, b = create_app({"DATABASE_URL": sqlite_url}), create_app({"DATABASE_URL": pg_url})
    assert a.extensions["analytics_db"]["engine"].dialect.name == "sqlite"
    assert b.extensions["analytics_db"]["engine"].dialect.name == "postgresql"


def test_health_on_sqlite_with_in_process_cache(sqlite_url):
    response = create_app({"DATABASE_URL": sqlite_url}).test_client().get("/health")
    assert response.status_code == 200
    assert response.json == {"status": "healthy", "database": "ok", "replica": "off", "cache": "simple", "scheduler": "off"}


def test_health_tells_when_the_last_rollup_ran(engine):
    from services.rollup.fold import rollup_pending

    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    assert app.test_client().get("/health").json["scheduler"] == "off; no rollup has run yet"
    rollup_pending(engine)
    assert app.test_client().get("/health").json["scheduler"].startswith("off; last rollup 0 s ago")


def test_health_on_postgres_and_redis(pg_url, redis_url):
    app = create_app({"DATABASE_URL": pg_url, "REDIS_URL": redis_url})
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.json["cache"] == "redis" and response.json["status"] == "healthy"
    probes = redis_lib.Redis.from_url(redis_url).keys(f"na:{CACHE_PREFIX}:*:health:probe")
    assert len(probes) == 1  # under this deployment's namespace


def test_health_degraded_when_redis_is_unreachable(pg_url):
    app = create_app({"DATABASE_URL": pg_url, "REDIS_URL": "redis://127.0.0.1:1/15"})
    response = app.test_client().get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "degraded"
    assert response.json["cache"] == "unreachable"
    assert app.test_client().get("/analytics/").status_code == 200


def test_health_503_when_database_is_unreachable():
    app = create_app({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/test"})
    response = app.test_client().get("/health")
    assert response.status_code == 503
    assert response.json["database"] == "not answering"


def test_unknown_api_path_answers_json(sqlite_url):
    response = create_app({"DATABASE_URL": sqlite_url}).test_client().get("/api/nothing-here")
    assert response.status_code == 404 and "error" in response.json and "field" in response.json


def test_a_database_without_tables_says_to_run_init_db(sqlite_url):
    client = create_app({"DATABASE_URL": sqlite_url}).test_client()
    response = client.get("/api/analytics/chart?metric=sent")
    assert response.status_code == 503 and "flask --app wsgi init-db" in response.json["error"]


def test_reads_have_their_own_pool_with_a_statement_timeout(pg_engine):
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from dashapp.health import is_timeout

    app = create_app({"DATABASE_URL": pg_engine.url.render_as_string(hide_password=False),
                      "QUERY_TIMEOUT_SECONDS": 0.05})
    read, write = app.extensions["analytics_db"]["read_engine"], app.extensions["analytics_db"]["engine"]
    assert read is not write
    with read.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "50ms"
        with pytest.raises(OperationalError) as info:
            conn.execute(text("SELECT pg_sleep(1)"))
    assert is_timeout(info.value)
    with write.connect() as conn:  # ingest and rollups are not cut short
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"


def test_dashboard_and_api_carry_security_headers_the_portal_pages_do_not(sqlite_url):
    from flask import Flask

    from dashapp import init_dashboard

    portal = Flask("portal")
    portal.config.update(DATABASE_URL=sqlite_url)
    portal.add_url_rule("/", "home", lambda: "portal home")
    init_dashboard(portal, url_base_pathname="/ops/analytics/")
    client = portal.test_client()
    page = client.get("/ops/analytics/")
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy and "script-src 'self'" in policy and "'sha256-" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/health").headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in client.get("/").headers


def test_the_standalone_root_opens_the_dashboard(sqlite_url):
    response = create_app({"DATABASE_URL": sqlite_url}).test_client().get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/analytics/"


def test_the_app_leaves_a_host_applications_logging_alone(sqlite_url):
    """Where the host configured logging, its root logger is not changed and our records reach
    its handlers; where nobody did, only this project's loggers get a handler (stderr)."""
    import logging
    import subprocess
    import sys

    class Kept(logging.Handler):
        def __init__(self):
            super().__init__()
            self.records = []

        def emit(self, record):
            self.records.append(record)

    root, kept = logging.getLogger(), Kept()
    root.addHandler(kept)
    try:
        before = (list(root.handlers), root.level, logging.getLogger("alembic").level)
        create_app({"DATABASE_URL": sqlite_url})
        assert (list(root.handlers), root.level, logging.getLogger("alembic").level) == before
        logging.getLogger("services.query.engine").warning("seen by the host")
        assert [r.getMessage() for r in kept.records if r.name == "services.query.engine"] == ["seen by the host"]
    finally:
        root.removeHandler(kept)
    alone = subprocess.run([sys.executable, "-c", (
        "import logging; from dashapp import create_app; "
        f"create_app({{'DATABASE_URL': {sqlite_url!r}}}); "
        "logging.getLogger('services.rollup.fold').info('folded'); logging.getLogger('other').info('not shown'); "
        "print(len(logging.getLogger().handlers), logging.getLogger().level)")],
        capture_output=True, text=True, timeout=60, check=True)
    assert alone.stdout.split() == ["0", str(logging.WARNING)]
    assert "folded" in alone.stderr and "not shown" not in alone.stderr


def test_a_fresh_process_serves_the_pages_scripts_to_its_first_concurrent_requests(sqlite_url):
    """A browser loads a page's scripts in parallel, often from a worker that has not yet
    served a page (another one served the HTML): each must come back, or the page stays
    blank. Dash prepares what it serves on its first request and, under threads, answered
    the requests racing that one with 404 (plotly/dash#3971)."""
    import re
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from tests.e2e.conftest import LiveServer

    page = create_app({"DATABASE_URL": sqlite_url}).test_client().get("/analytics/").get_data(as_text=True)
    scripts = re.findall(r'src="(/analytics/_dash-component-suites/[^"]+)"', page)
    assert len(scripts) >= 8
    with LiveServer(create_app({"DATABASE_URL": sqlite_url})) as server, ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda path: requests.get(server.url + path, timeout=30).status_code, scripts * 4))
    assert codes == [200] * len(codes)


def test_the_layout_holds_the_tab_its_pages_address_names_and_only_ours(sqlite_url):
    """The page's layout comes with the tab its address asks for (the layout request's
    Referer), the filters set for it and the location's search filled in (so no chart waits
    for the URL callback); a Referer from another site or none leaves them to callbacks."""
    from tests.conftest import fresh_engine

    fresh_engine(sqlite_url).dispose()
    app = create_app({"DATABASE_URL": sqlite_url})
    client = app.test_client()

    def rendered(referer):
        layout = client.get("/analytics/_dash-layout", headers={"Referer": referer} if referer else {}).get_json()
        stores = []

        props = {}

        def walk(node):
            if isinstance(node, dict):
                if node.get("props", {}).get("id") == "rendered-tab":
                    stores.append(node["props"]["data"])
                if node.get("props", {}).get("id") in ("url", "range", "channels", "address"):
                    props[node["props"]["id"]] = node["props"]
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)
        walk(layout)
        filters.append((props["url"].get("search"), props["range"]["value"], props["channels"]["value"],
                        props["address"].get("data")))
        return stores[0], "trend-headline" in str(layout)

    filters = []

    assert rendered("http://localhost/analytics/?tab=trends&range=7d") == ("trends|delivery_rate|None", True)
    assert rendered("http://localhost/analytics/") == ("overview|delivery_rate", False)
    assert rendered("http://elsewhere.example/analytics/?tab=trends") == (None, False)
    assert rendered("http://localhost/portal/?tab=trends") == (None, False)
    assert rendered(None) == (None, False)
    assert rendered("http://localhost/analytics/?range=30d&channel=sms,email") == ("overview|delivery_rate", False)
    assert filters == [("?tab=trends&range=7d", "7d", [], "?tab=trends&range=7d"),
                       ("", "24h", [], "?tab=overview&range=24h")] + [(None, "24h", [], None)] * 3 + [
                       ("?range=30d&channel=sms,email", "30d", ["email", "sms"], "?tab=overview&range=30d&channel=email,sms")]
