"""Instructions per request, counted by valgrind's callgrind in the serving process: a
yardstick that does not wander with the machine's load or speed (timings on two shared cores
wander by 30 % from minute to minute; the same instructions repeat to within a fraction of a
percent). Judge a change to the chart path by these counts; confirm it over HTTP by
interleaved runs.

    python -m bench.instructions --events 2000000      # `make bench-instructions`

Loads a fresh schema (as `python -m bench` does), then serves, in one process under
`valgrind --tool=callgrind --instr-atstart=no`, the 7-day delivery-rate chart by channel
(the chart figures' question) in each of these ways, through Werkzeug's test client, with
the collector set as gunicorn's workers have it (gunicorn.conf.py):

- `harness`: a WSGI app answering "ok", and Redis flushed: the client's own cost, taken
  off every other figure;
- `floor`, `floor_hit`, `floor_exact`, `floor_exact_flask`: bench.floor's bare query, its
  answer from Redis, its exact floor, and that exact floor as a bare Flask route;
- `floor_exact_in_app` and `floor_exact_in_app_hit`: the exact floor as a route of this app
  (its request hooks), Redis flushed before each request or not;
- `miss` (Redis flushed before each request) and `hit`: the product's API.

Instrumentation is switched on (`callgrind_control -i on`) only around the measured requests,
after a warm-up. Postgres and Redis run in their own processes: their work is not counted,
so a figure is the serving process's share of a request. Writes
`bench/results/instructions-<timestamp>.json`: per scenario the instructions per request
(harness taken off) and the ratio to the floor.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import REDIS, RESULTS, ROOT, loaded_schema, log, machine, write_result

QUESTION = "/api/analytics/chart?metric=delivery_rate&group_by=time,channel&start=now-7d"
FLOOR_QUESTION = "delivery_rate_7d"
# name → (path, Redis flushed before each request)
SCENARIOS = {
    "harness": ("/harness", True),
    "floor": (f"/floor/?q={FLOOR_QUESTION}", False),
    "floor_hit": (f"/floor/?q={FLOOR_QUESTION}&cached=1", False),
    "floor_exact": (f"/floor/?q={FLOOR_QUESTION}&exact=1", True),
    "floor_exact_flask": (f"/floor/flask/?q={FLOOR_QUESTION}", True),
    "floor_exact_in_app": (f"/bench/exact/?q={FLOOR_QUESTION}", True),
    "miss": (QUESTION, True),
    "hit": (QUESTION, False),
    "floor_exact_in_app_hit": (f"/bench/exact/?q={FLOOR_QUESTION}", False),
}
WARMUP = 5
POLL_SECONDS = 0.005


# ---------------------------------------------------------------- the serving process (under valgrind)

def serving_app(config: dict | None = None):
    """This app (`create_app(config)`) with the exact floor added as one of its routes, and
    the floor and the harness beside it under their own path prefixes: one WSGI callable for
    the test client."""
    from datetime import datetime, timezone

    from flask import Response, request

    from bench import floor
    from dashapp import create_app

    app = create_app(config)

    @app.get("/bench/exact/")
    def exact_in_app():
        body = floor.exact_answer(request.args.get("q", ""), datetime.now(timezone.utc))
        return Response(body, mimetype="application/json", headers={"Content-Encoding": "gzip"})

    def dispatch(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/harness":
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]
        if path.startswith("/floor/"):
            environ["PATH_INFO"] = path[len("/floor"):]
            return floor.app(environ, start_response)
        return app(environ, start_response)
    return dispatch


def get(client, path: str):
    """The response to GET `path`, taking gzip as a browser does; an error unless 200."""
    response = client.get(path, headers={"Accept-Encoding": "gzip"})
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return response


def _wait_for(path: Path) -> None:
    """Sleep in short steps until `path` exists: a process blocked in one long system call
    would not answer callgrind_control."""
    while not path.exists():
        time.sleep(POLL_SECONDS)
    path.unlink()


def serve(requests: int, signals: Path) -> None:
    import redis
    from werkzeug.test import Client

    client = Client(serving_app())
    cache = redis.Redis.from_url(os.environ["REDIS_URL"])

    def run(path: str, flush: bool) -> None:
        if flush:
            cache.flushdb()
        get(client, path).close()

    for name, (path, flush) in SCENARIOS.items():
        for _ in range(WARMUP):
            run(path, flush)
        gc.collect()
        gc.freeze()  # as gunicorn.conf.py's post_worker_init
        gc.set_threshold(10_000, 10, 10)
        (signals / f"{name}.warm").touch()
        _wait_for(signals / f"{name}.go")
        for _ in range(requests):
            run(path, flush)
        (signals / f"{name}.done").touch()
        _wait_for(signals / f"{name}.counted")


# ---------------------------------------------------------------- the measuring process

def _control(*args: str) -> None:
    done = subprocess.run(["callgrind_control", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control {' '.join(args)}: {done.stdout}{done.stderr}")


def _await(path: Path, child: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if child.poll() is not None:
            raise RuntimeError(f"the serving process exited ({child.returncode}) before {path.name}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {path.name} after {seconds:.0f} s")
        time.sleep(0.05)
    path.unlink()


def _instructions(dump: Path) -> int:
    """The instructions counted in one callgrind dump (its "totals:" line)."""
    found = re.search(r"^totals:\s+(\d+)", dump.read_text(), re.MULTILINE)
    if not found:
        raise RuntimeError(f"no total in {dump}")
    return int(found.group(1))


def measure(url: str, schema: str, requests: int) -> dict:
    """{scenario: instructions per request, the harness's included} from one serving process."""
    work = Path(tempfile.mkdtemp(prefix="instructions-"))
    signals = work / "signals"
    signals.mkdir()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "SCHEDULER": "off", "RATE_LIMIT": "off",
           "RAW_RETENTION_DAYS": "120", "FLOOR_DATABASE_URL": url.split("?")[0], "FLOOR_SCHEMA": schema,
           "FLOOR_REDIS_URL": REDIS, "PYTHONPATH": str(ROOT)}
    with open(work / "valgrind.log", "w") as valgrind_log:
        child = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                  f"--callgrind-out-file={work}/callgrind.out", sys.executable, "-m",
                                  "bench.instructions", "--serve", "--requests", str(requests),
                                  "--signals", str(signals)],
                                 cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=valgrind_log)
    counts = {}
    try:
        for name in SCENARIOS:
            _await(signals / f"{name}.warm", child, 900)
            _control("-i", "on", str(child.pid))
            (signals / f"{name}.go").touch()
            _await(signals / f"{name}.done", child, 900)
            _control("-i", "off", str(child.pid))
            _control("-d", str(child.pid))
            dumps = sorted(work.glob("callgrind.out.*"), key=lambda p: p.stat().st_mtime)
            counts[name] = _instructions(dumps[-1]) / requests
            log(f"  {name}: {counts[name] / 1e6:.2f}M instructions per request")
            for dump in dumps:
                dump.unlink()
            (signals / f"{name}.counted").touch()
        child.wait(timeout=300)
    except RuntimeError as exc:  # what the serving process said last (its traceback, valgrind's errors)
        tail = (work / "valgrind.log").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"{exc}\n" + "\n".join(tail)) from None
    finally:
        if child.poll() is None:
            child.kill()
        shutil.rmtree(work, ignore_errors=True)
    return counts


def figures(counts: dict) -> dict:
    """Instructions per request with the harness taken off, and each over the floor's."""
    harness = counts["harness"]
    net = {name: n - harness for name, n in counts.items() if name != "harness"}
    out = {f"{name}_instructions": round(n) for name, n in net.items()}
    out.update({f"{name}_over_floor": round(n / net["floor"], 3) for name, n in net.items() if name != "floor"})
    out["hit_over_floor_hit"] = round(net["hit"] / net["floor_hit"], 3)
    out["harness_instructions"] = round(harness)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--signals", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.requests, Path(args.signals))
        return
    if not shutil.which("valgrind"):
        sys.exit("valgrind is needed: apt-get install valgrind")
    with loaded_schema(args.events, args.seed) as (url, schema, engine, _end, rows, _seconds):
        log(f"counting instructions of {args.requests} requests per scenario under callgrind")
        counts = measure(url, schema, args.requests)
        result = {"dataset": {"events": rows, "seed": args.seed}, "machine": machine(engine),
                  "requests": args.requests, "question": QUESTION, "raw": {k: round(v) for k, v in counts.items()},
                  "figures": figures(counts)}
    path = write_result(args.out, "instructions", result)
    log(f"wrote {path}")
    print(json.dumps(result["figures"], indent=2))


if __name__ == "__main__":
    main()
