"""A gunicorn worker killed under load: the master starts another, and no request gets a
500 (a request in flight on the dead worker sees its connection cut, never a server error)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo
from tests.integration.test_rollup import ROOT

PATHS = ["/api/analytics/chart?metric=sent&group_by=channel&start=now-1d",
         "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-2d",
         "/api/analytics/drilldown?start=now-1d", "/health"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(base: str, attempts: int = 150) -> None:
    """Until the server at `base` answers /health with 200 (it is starting)."""
    for _ in range(attempts):
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)


@pytest.mark.real_clock
def test_killing_a_worker_under_load_gives_no_500(pg_engine, redis_url):
    seed_demo(pg_engine.begin, days=2, per_hour=60, seed=21)
    rollup_pending(pg_engine)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": pg_engine.url.render_as_string(hide_password=False), "REDIS_URL": redis_url,
           "SCHEDULER": "off"}
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "2", "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", "wsgi:app"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base)
        statuses: list[int] = []
        cut = [0]
        deadline = time.monotonic() + 5

        def client(n: int) -> None:
            session = requests.Session()
            i = n
            while time.monotonic() < deadline:
                try:
                    statuses.append(session.get(base + PATHS[i % len(PATHS)], timeout=10).status_code)
                except requests.ConnectionError:
                    cut[0] += 1
                    session = requests.Session()
                i += 1

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        workers = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 2
        os.kill(int(workers[0]), signal.SIGKILL)
        for t in threads:
            t.join()
        assert 500 not in statuses and statuses.count(200) == len(statuses) > 50
        assert requests.get(base + "/health", timeout=5).status_code == 200
        alive = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True).stdout.split()
        assert len(alive) == 2 and workers[0] not in alive  # the master replaced the dead worker
    finally:
        master.terminate()
        master.wait(timeout=30)
