"""Slow clients against gunicorn with the shipped gunicorn.conf.py: connections that send
their headers a byte at a time, and a huge body, leave the workers answering everyone else."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.faults.test_worker_kill import free_port, wait_until_healthy
from tests.integration.test_rollup import ROOT


@pytest.fixture
def server(sqlite_url):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": sqlite_url, "SCHEDULER": "off", "WEB_CONCURRENCY": "2",
           "GUNICORN_BIND": f"127.0.0.1:{port}"}
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "init-db"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    master = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket", "--log-level", "warning",
                               "wsgi:app"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_until_healthy(base)
    yield port, base
    master.terminate()
    master.wait(timeout=30)


@pytest.mark.real_clock
def test_slow_header_senders_do_not_exhaust_the_workers(server):
    port, base = server
    slow = []
    for _ in range(6):  # as many slow clients as the issue saw, and more
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the end of the headers
        slow.append(s)
    try:
        for _ in range(3):
            for s in slow:
                s.sendall(b"X-Slow: 1\r\n")
            started = time.monotonic()
            assert requests.get(base + "/health", timeout=5).status_code == 200
            assert time.monotonic() - started < 2
            time.sleep(0.5)
    finally:
        for s in slow:
            s.close()


@pytest.mark.real_clock
def test_a_huge_dash_body_is_refused_with_json_before_it_is_read(server):
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /analytics/_dash-update-component HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 157286400\r\n\r\n" + b"x" * 65536)  # announces 150 MB, sends 64 KB
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"application/json" in head
    assert b"The request body is larger than 2 MB" in body
