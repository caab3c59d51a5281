"""Browser tests: the real app served on a loopback port, driven by headless Chromium
from Debian's `chromium` and `chromium-driver` packages."""
from __future__ import annotations

import threading

import pytest
from selenium.webdriver.chrome.options import Options
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"


def pytest_setup_options():
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic", "--window-size=1400,1000"):
        options.add_argument(flag)
    return options


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


class LiveServer:
    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._thread.join(timeout=5)


def serve_demo(live_server, engine, days: int, per_hour: int, seed: int):
    """`days` of demo data, rolled up, and the app over them on a loopback port: (server, a
    test client of the same app, for the API's own answers)."""
    from dashapp import create_app
    from services.rollup.fold import rollup_pending
    from services.store.demo import seed_demo

    seed_demo(engine.begin, days=days, per_hour=per_hour, seed=seed)
    rollup_pending(engine)
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    return live_server(app), app.test_client()


@pytest.fixture
def live_server():
    """`live_server(app)` serves `app` until the test ends."""
    servers: list[LiveServer] = []

    def start(app) -> LiveServer:
        server = LiveServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)
