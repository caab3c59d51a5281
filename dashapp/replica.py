"""Reads from a streaming replica, never staler than the primary was when the read began.

With `DATABASE_READ_URL` set, every dashboard and API read runs on the replica, after it has
replayed the primary's WAL position taken at the start of the read: a chart asked right
after an ingest, or the list of metrics right after a save, sees them. The wait is bounded
(`REPLICA_WAIT_SECONDS`); a replica further behind, or not answering, is skipped for
`REPLICA_RETRY_SECONDS` and the primary answers, so a lost replica costs speed, never
answers. Why wait instead of reading the live tail from the primary: one rule then holds for
every read (charts, reports, drill-down, metric lists), each read is one snapshot of one
server, and on a healthy replica the wait is the replay lag, milliseconds.

A read that fails because the replica went away mid-read (restart, recovery conflict) is
run again on the primary: reads are idempotent.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from dashapp.health import short_error

log = logging.getLogger(__name__)
T = TypeVar("T")

# Everything committed before this read began is flushed (synchronous_commit on, the default),
# so the flush position covers it, and flushed WAL is what the replica can have: a write
# position would also cover an unfinished batch's WAL and wait for the WAL writer's next flush.
PRIMARY_POSITION = text("SELECT pg_current_wal_flush_lsn()::text")
# NULL on a server that was never in recovery (DATABASE_READ_URL naming a primary): it has everything
REPLAYED = text("SELECT pg_last_wal_replay_lsn() IS NULL OR pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)")
REPLICA_LAG = text(
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END")
LAG_BYTES = text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:lsn AS pg_lsn))")
# the replica went away: admin shutdown, crash shutdown, cannot connect now, connection failures
RETRY_ON_PRIMARY = {"57P01", "57P02", "57P03", "08000", "08003", "08006"}
RECOVERY_CONFLICT = "40001"  # replay needed what the read held (a routine cancel on a busy replica)


@dataclass(frozen=True)
class Routing:
    """Where reads go now, and why."""
    state: str          # "ok", "lagging" or "lost"
    reason: str | None  # for "lagging" and "lost"
    waited_s: float | None  # the last read's wait for the replica to catch up


class ReplicaRouter:
    """Chooses the replica or the primary for each read (one per app, shared by its threads)."""

    def __init__(self, primary: Engine, replica: Engine, wait_seconds: float, retry_seconds: float,
                 read_isolation: str):
        self.primary, self.replica = primary, replica
        self.read_isolation = read_isolation  # the replica engine's: restored after the polls
        self.wait_seconds, self.retry_seconds = wait_seconds, retry_seconds
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._routing = Routing("ok", None, None)

    # ------------------------------------------------------------ reads

    def read(self, work: Callable[[Connection], T],
             tell: Callable[[str, float], None] = lambda _where, _waited: None) -> T:
        """`work(conn)` on the replica once it has what the primary had, else on the primary;
        `tell(where, seconds spent choosing)` afterwards."""
        conn, waited = self._caught_up_replica()
        if conn is not None:
            try:
                with conn:
                    answer = work(conn)
                tell("replica", waited)
                return answer
            except DBAPIError as exc:
                if _recovery_conflict(exc):  # replay needed what the read held: this read only
                    log.info("a read cancelled by the replica's recovery runs again on the primary")
                elif _replica_went_away(exc):
                    self._skip("lost", "the replica stopped answering during a read", exc)
                else:
                    raise
        with self.primary.connect() as conn:
            answer = work(conn)
        tell("primary", waited)
        return answer

    def _caught_up_replica(self) -> tuple[Connection | None, float]:
        """A replica connection that has replayed the primary's flush position, or None; and
        the seconds it took to find out."""
        started = time.monotonic()
        return self._replica_after(started), time.monotonic() - started

    def _replica_after(self, started: float) -> Connection | None:
        if started < self._skip_until:
            return None
        # the position and the polls run outside transactions (no BEGIN/ROLLBACK round trips);
        # the read itself gets the engine's snapshot isolation back, so its snapshot starts
        # after the wait
        try:
            with self.primary.connect() as conn:
                position = conn.execution_options(isolation_level="AUTOCOMMIT").execute(PRIMARY_POSITION).scalar()
        except DBAPIError:
            position = None  # the primary is down: nothing newer than the replica can exist
        try:
            conn = self.replica.connect()
        except DBAPIError as exc:
            self._skip("lost", "the replica does not answer", exc)
            return None
        try:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            caught_up = position is None or self._wait_for(conn, position, started + self.wait_seconds)
            conn.rollback()  # ends SQLAlchemy's autobegun block; in autocommit no round trip
            conn.execution_options(isolation_level=self.read_isolation)
        except DBAPIError as exc:
            conn.close()
            self._skip("lost", "the replica does not answer", exc)
            return None
        waited = time.monotonic() - started
        if not caught_up:
            conn.close()
            self._skip("lagging", f"the replica was more than {self.wait_seconds:g} s behind the primary")
            return None
        with self._lock:
            if self._skip_until > started:  # skipped meanwhile by another read: that word stands
                return conn
            back = self._routing.state != "ok"
            self._routing = Routing("ok", None, round(waited, 4))
        if back:
            log.info("reads go to the replica again")
        return conn

    @staticmethod
    def _wait_for(conn: Connection, position: str, deadline: float) -> bool:
        pause = 0.001
        while True:
            if conn.execute(REPLAYED, {"lsn": position}).scalar():
                return True
            if time.monotonic() + pause > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _skip(self, state: str, reason: str, exc: BaseException | None = None) -> None:
        """Reads go to the primary for REPLICA_RETRY_SECONDS. The driver's text names hosts
        and ports: it goes to the log, never into an answer."""
        with self._lock:
            first = self._routing.state == "ok"
            self._skip_until = time.monotonic() + self.retry_seconds
            self._routing = Routing(state, reason, None)
        if first:
            log.warning("reads go to the primary for %g s: %s%s", self.retry_seconds, reason,
                        f" ({short_error(exc)})" if exc is not None else "")

    # ------------------------------------------------------------ status

    def status(self) -> dict:
        """The replica's replay lag, measured now, and where reads go: for /health, the
        aggregation status and the dashboard's "data as of" line."""
        routing = self._routing if time.monotonic() < self._skip_until else Routing("ok", None,
                                                                                      self._routing.waited_s)
        body: dict = {"reads_from": "replica" if routing.state == "ok" else "primary", "state": routing.state,
                      "reason": routing.reason, "last_wait_s": routing.waited_s,
                      "lag_seconds": None, "lag_bytes": None}
        try:
            with self.replica.connect() as conn:
                in_recovery, replayed, lag_seconds = conn.execute(REPLICA_LAG).one()
        except DBAPIError as exc:
            log.warning("replica status: %s", short_error(exc))
            return {**body, "state": "lost", "reads_from": "primary", "reason": "the replica does not answer"}
        if not in_recovery:
            return {**body, "lag_seconds": 0.0, "lag_bytes": 0,
                    "reason": "the read database is not a replica (not in recovery)"}
        try:
            with self.primary.connect() as conn:
                lag_bytes = int(conn.execute(LAG_BYTES, {"lsn": replayed}).scalar())
        except DBAPIError:
            lag_bytes = None
        lag = 0.0 if lag_bytes is not None and lag_bytes <= 0 else float(lag_seconds or 0.0)
        body = {**body, "lag_seconds": round(lag, 3), "lag_bytes": lag_bytes}
        if lag > self.wait_seconds:
            body = {**body, "state": "lagging", "reads_from": "primary",
                    "reason": f"the replica is {lag:.1f} s behind the primary (more than {self.wait_seconds:g} s)"}
        return body


def _recovery_conflict(exc: DBAPIError) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == RECOVERY_CONFLICT


def _replica_went_away(exc: DBAPIError) -> bool:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    closed = type(getattr(exc, "orig", None)).__name__ == "OperationalError" and code is None  # no reply at all
    return bool(exc.connection_invalidated) or code in RETRY_ON_PRIMARY or closed


def replica_sentence(status: dict | None) -> str | None:
    """"replica 0.02 s behind" / "replica not answering: reads from the primary" — None without one."""
    if status is None:
        return None
    if status["state"] == "lost":
        return "replica not answering: reads from the primary"
    if status["state"] == "lagging":
        return "replica behind: reads from the primary"
    if status["lag_seconds"] is None:
        return None
    return f"replica {status['lag_seconds']:.2f} s behind"


def replica_word(status: dict) -> str:
    """What /health says of the replica: "ok, 0.02 s behind", or why reads go to the primary."""
    if status["state"] == "ok":
        lag = status["lag_seconds"]
        return "ok" if lag is None else f"ok, {lag:.2f} s behind"
    return f"{status['state']}: {status['reason']}; reads go to the primary"
