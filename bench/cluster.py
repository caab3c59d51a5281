"""`python -m bench.cluster`: the production topology on one machine.

Starts, on free loopback ports in a temporary directory: a Postgres primary and a streaming
replica (`initdb`, `pg_basebackup -R`), Redis, two gunicorn web nodes (reads from the replica,
writes to the primary) and two scheduler processes (one leads, one waits for the lock);
prints their addresses and stops them all on Ctrl-C. The scale-out benchmark
(`bench.scaleout`) and the cluster tests (`pytest -m cluster`) start the same pieces.

    .venv/bin/python -m bench.cluster                 # empty database
    .venv/bin/python -m bench.cluster --demo-days 3   # with demo data
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "cluster-token"
DATABASE = "analytics"


def postgres_bin() -> Path:
    """The directory of initdb, pg_ctl and pg_basebackup (PG_BIN, else pg_config, else Debian's)."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    if shutil.which("pg_config"):
        found = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
        if (found / "initdb").exists():
            return found
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise RuntimeError("initdb not found: install PostgreSQL's server binaries or set PG_BIN")
    return candidates[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    """Postgres refuses to run as root: run its tools as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")


class PostgresServer:
    """One Postgres server of the cluster, controlled with pg_ctl."""

    def __init__(self, data: Path, port: int):
        self.data, self.port = data, port
        self.log = data.parent / f"{data.name}.log"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _run([str(postgres_bin() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        _run([str(postgres_bin() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _configure(self, lines: list[str]) -> None:
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")


def init_primary(root: Path) -> PostgresServer:
    """A new primary holding the product's database, migrated."""
    from dashapp.extensions import make_engine
    from services.store.dialect import upgrade_database

    server = PostgresServer(root / "primary", free_port())
    _run([str(postgres_bin() / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
          "--no-sync"])
    server._configure([f"port = {server.port}", "listen_addresses = '127.0.0.1'",
                       f"unix_socket_directories = '{root}'", "wal_level = replica", "max_wal_senders = 5",
                       "max_connections = 200", "hot_standby = on",
                       # a replica's long dashboard read holds back vacuum on the primary instead of
                       # being cancelled by replay (docs/scaling.md, "Operating notes")
                       "hot_standby_feedback = on"])
    with open(server.data / "pg_hba.conf", "a") as hba:
        hba.write("host replication all 127.0.0.1/32 trust\n")
    server.start()
    admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    admin.dispose()
    engine = make_engine(server.url())
    upgrade_database(engine)
    engine.dispose()
    return server


def init_replica(root: Path, primary: PostgresServer) -> PostgresServer:
    server = PostgresServer(root / "replica", free_port())
    _run([str(postgres_bin() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
          "-D", str(server.data), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"])
    server._configure([f"port = {server.port}"])  # the copied settings are the primary's: later lines win
    server.start()
    return server


class Service:
    """A process of the cluster (Redis, a web node, a scheduler), its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict, root: Path, url: str | None = None):
        self.name, self.command, self.env, self.url = name, command, env, url
        self.log = root / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.command, cwd=ROOT, env={**os.environ, **self.env}, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group (gunicorn's workers too): a crash, not a shutdown."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")


class Cluster:
    """Primary, replica, Redis, web nodes and schedulers under one temporary directory."""

    def __init__(self, root: Path):
        self.root = root
        self.services: list[Service] = []   # every process started, for stop() whatever happens
        self.web: list[Service] = []
        self.schedulers: list[Service] = []

    def start(self, web_nodes: int = 2, workers: int = 2, schedulers: int = 2, settings: dict | None = None) -> None:
        """Start every piece; on a failure part-way, stop() stops what did start."""
        self.primary = init_primary(self.root)
        self.replica = init_replica(self.root, self.primary)
        redis_port = free_port()
        self.redis = self._started(Service("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                                                     "--save", "", "--appendonly", "no"], {}, self.root,
                                           f"redis://127.0.0.1:{redis_port}/0"))
        wait_until(lambda: socket.create_connection(("127.0.0.1", redis_port), 1).close() is None, 30, "redis")
        self.env = {"DATABASE_URL": self.primary.url(), "DATABASE_READ_URL": self.replica.url(),
                    "REDIS_URL": self.redis.url, "INGEST_TOKEN": TOKEN, "RATE_LIMIT": "off",
                    "SCHEDULER_STANDBY_POLL": "1", "ROLLUP_INTERVAL_SECONDS": "2", **(settings or {})}
        for n in range(schedulers):
            self.schedulers.append(self._started(Service(f"scheduler-{n + 1}", [sys.executable, "-m", "scheduler"],
                                                         self.env, self.root)))
        for n in range(web_nodes):
            self.web.append(self.start_web(f"web-{n + 1}", workers))

    def _started(self, service: Service) -> Service:
        self.services.append(service)
        return service

    def start_web(self, name: str, workers: int, port: int | None = None) -> Service:
        port = port or free_port()
        node = self._started(Service(name, [sys.executable, "-m", "gunicorn", "--no-control-socket", "-w", str(workers), "-b",
                              f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
                       {**self.env, "SCHEDULER": "off"}, self.root, f"http://127.0.0.1:{port}"))
        wait_until(lambda: requests.get(node.url + "/health", timeout=2).status_code == 200, 60, name)
        return node

    def restart_web(self, node: Service) -> None:
        node.start()
        wait_until(lambda: requests.get(node.url + "/health", timeout=2).status_code == 200, 60, node.name)

    def seed_demo(self, days: int) -> None:
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "seed-demo", "--days", str(days)],
                       cwd=ROOT, env={**os.environ, **self.env, "SCHEDULER": "off"}, check=True,
                       stdout=subprocess.DEVNULL)

    def addresses(self) -> list[tuple[str, str]]:
        rows = [("primary", self.primary.url()), ("replica", self.replica.url()), ("redis", self.redis.url)]
        rows += [(node.name, node.url + "/analytics/") for node in self.web]
        rows += [(s.name, f"pid {s.pid}") for s in self.schedulers]
        return rows

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        for server in (getattr(self, "replica", None), getattr(self, "primary", None)):
            if server is not None and server.running:
                try:
                    server.stop("immediate")
                except RuntimeError:
                    pass


@contextmanager
def cluster_dir():
    """A temporary directory the Postgres servers (run as `postgres` under root) and the
    other processes can all write to; whatever Postgres still runs there is stopped and the
    directory removed afterwards (CLUSTER_KEEP=1 keeps it, logs included)."""
    root = Path(tempfile.mkdtemp(prefix="analytics-cluster-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    os.chmod(root, 0o777)
    try:
        yield root
    finally:
        for name in ("replica", "primary"):
            if (root / name / "postmaster.pid").exists():
                subprocess.run(_as_postgres([str(postgres_bin() / "pg_ctl"), "-D", str(root / name), "-m",
                                             "immediate", "-w", "stop"]), capture_output=True)
        if not os.environ.get("CLUSTER_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


@contextmanager
def database_pair():
    """A primary with the product's schema and its streaming replica: (primary, replica)."""
    with cluster_dir() as root:
        primary = init_primary(root)
        yield primary, init_replica(root, primary)


@contextmanager
def running_cluster(**options):
    """A started cluster in a temporary directory, stopped and removed afterwards."""
    with cluster_dir() as root:
        cluster = Cluster(root)
        try:
            cluster.start(**options)
            yield cluster
        finally:
            cluster.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--web-nodes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per web node")
    parser.add_argument("--schedulers", type=int, default=2)
    parser.add_argument("--demo-days", type=int, default=0, help="seed this many days of demo data first")
    args = parser.parse_args(argv)
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's background job starts with it ignored
        signal.signal(sig, lambda *_: stop.append(True))
    print("starting: primary, replica, redis, web nodes, schedulers ...", flush=True)
    with running_cluster(web_nodes=args.web_nodes, workers=args.workers, schedulers=args.schedulers) as cluster:
        if args.demo_days:
            print(f"seeding {args.demo_days} days of demo data ...", flush=True)
            cluster.seed_demo(args.demo_days)
        width = max(len(name) for name, _ in cluster.addresses())
        for name, address in cluster.addresses():
            print(f"  {name:<{width}}  {address}")
        print(f"ingest token: {TOKEN}   logs: {cluster.root}   Ctrl-C stops everything", flush=True)
        while not stop:
            time.sleep(0.5)
        print("stopping ...", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
