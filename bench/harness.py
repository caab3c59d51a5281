"""What every benchmark shares: the dataset, a fresh schema, the servers it starts, logging
and the machine's description. Phases live in bench.__main__ and bench.live."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import redis
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dashapp.extensions import make_engine
from services.store import demo
from services.store.dialect import upgrade_database
from services.store.ingest import store_rows

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
TOKEN = "bench-token"
TEMPLATE_VARIANTS = 4  # 12 demo templates × 4 variants ≈ 50 templates
FLOOR_PORT = 18090


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def cpu_times() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine since boot, every core summed (/proc/stat):
    what no process list misses (kernel networking, processes that came and went)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


# ---------------------------------------------------------------- dataset

def dataset_rows(events: int, seed: int, end: datetime):
    """Batches of rows: the demo's realistic mix over the last 14 days plus a 90-day tail at
    a tenth of the rate, with ~50 templates."""
    hours_equivalent = 14 * 24 + 0.1 * 76 * 24
    per_hour = max(1, int(events / 2.35 / hours_equivalent))
    recent_start = end - timedelta(days=14)
    parts = [demo.generate(14, per_hour, seed, end)[0],
             demo.generate(76, max(1, per_hour // 10), seed + 1, recent_start)[0]]
    rng = np.random.default_rng(seed)
    now = datetime.now(timezone.utc)
    for part_no, columns in enumerate(parts):
        total = len(columns["time_us"])
        variants = rng.integers(0, TEMPLATE_VARIANTS, int(columns["notification"].max()) + 1 if total else 0)
        for lo in range(0, total, 100_000):
            hi = min(total, lo + 100_000)
            rows = demo.to_rows(columns, seed * 10 + part_no, now, lo, hi)
            notes = columns["notification"][lo:hi]
            shift = (variants[notes] * 100).tolist()
            yield [r[:5] + (r[5] + s,) + r[6:] for r, s in zip(rows, shift)]


def load_bulk(engine, events: int, seed: int, end: datetime) -> tuple[int, float]:
    """Write every batch through the ingest storage path (COPY, ON CONFLICT de-duplication).
    Returns (rows, seconds spent writing), generation excluded."""
    written, spent = 0, 0.0
    for rows in dataset_rows(events, seed, end):
        started = time.perf_counter()
        with engine.begin() as conn:
            store_rows(conn, rows)
        spent += time.perf_counter() - started
        written += len(rows)
    return written, spent


@contextmanager
def fresh_schema():
    """A new schema of the benchmark database, dropped afterwards: (url, schema, engine)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(DATABASE)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(DATABASE).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    engine = make_engine(url)
    try:
        upgrade_database(engine)
        yield url, schema, engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def loaded_schema(events: int, seed: int):
    """A fresh schema holding the dataset, rolled up as the scheduler would and analyzed:
    (url, schema, engine, end of the data, rows written, seconds spent writing)."""
    from services.rollup.fold import index_rebuilt_days, rollup_pending

    with fresh_schema() as (url, schema, engine):
        end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        log(f"generating and loading {events:,} events")
        rows, seconds = load_bulk(engine, events, seed, end)
        log(f"  {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} events/s)")
        started = time.perf_counter()
        rollup_pending(engine, raw_retention_days=120)
        index_rebuilt_days(engine)
        log(f"  rolled up and indexed in {time.perf_counter() - started:.1f} s")
        analyze(engine)
        yield url, schema, engine, end, rows, seconds


def analyze(engine) -> None:
    """ANALYZE this schema's tables only (the events parent recurses into its partitions): a
    bare ANALYZE visits every schema of the database and can deadlock with another session's
    DDL there. Statistics are transactional: committed here."""
    with engine.begin() as conn:
        names = conn.execute(text("SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND NOT "
                                  "relispartition AND relnamespace = current_schema()::regnamespace")
                             ).scalars().all()
        for name in names:
            conn.execute(text(f'ANALYZE "{name}"'))


# ---------------------------------------------------------------- servers

class Server:
    """gunicorn serving the app on a loopback port, for the HTTP phases."""

    def __init__(self, url: str, workers: int, port: int):
        self.base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS, "SCHEDULER": "off", "INGEST_TOKEN": TOKEN,
               "RAW_RETENTION_DAYS": "120", "RATE_LIMIT": "off"}  # one address plays 50 clients
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", str(workers), "-b",
                                      f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
                                     cwd=ROOT, env=env)
        for _ in range(100):
            try:
                if requests.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Process:
    """A helper process (the scheduler, the floor) that is stopped at the end."""

    def __init__(self, args: list[str], env: dict):
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_floor(schema: str) -> tuple[Process, str]:
    """bench.floor under gunicorn (2 workers) on the benchmark schema; (process, base URL)."""
    floor = Process([sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", "2", "-b", f"127.0.0.1:{FLOOR_PORT}", "--log-level",
                     "warning", "bench.floor:app"], {"FLOOR_DATABASE_URL": DATABASE, "FLOOR_SCHEMA": schema,
                                         "FLOOR_REDIS_URL": REDIS})
    base = f"http://127.0.0.1:{FLOOR_PORT}"
    for _ in range(100):
        try:
            if requests.get(base + "/?q=events_24h", timeout=1).status_code == 200:
                return floor, base
        except requests.RequestException:
            pass
        time.sleep(0.2)
    floor.stop()
    raise RuntimeError("the floor did not start")


def machine(engine) -> dict:
    with engine.connect() as conn:
        settings = {name: conn.execute(text(f"SHOW {name}")).scalar()
                    for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_connections",
                                 "synchronous_commit", "autovacuum")}
        version = conn.execute(text("SHOW server_version")).scalar()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cores": os.cpu_count(), "memory_gib": round(memory, 1), "python": platform.python_version(),
            "postgres": version, "postgres_settings": settings,
            "redis": redis.Redis.from_url(REDIS).info("server")["redis_version"]}


def write_result(out: str, prefix: str, result: dict) -> Path:
    """`result` as bench/results/<prefix>-<UTC timestamp>.json (no prefix: the timestamp
    alone), its figures printed one to a line."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    path = folder / (f"{prefix}-{stamp}.json" if prefix else f"{stamp}.json")
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    for key, value in result.get("figures", {}).items():
        print(f"{key:45s} {value}")
    print(f"\nwrote {path}")
    return path
