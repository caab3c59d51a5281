"""Leadership: the scheduler that holds the lock runs the jobs; any other waits as a
standby and takes over within `poll` seconds of the leader's death (its lock dies with
its connection or process)."""
from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from services.store.dialect import LeaderLock

log = logging.getLogger("scheduler")
LOCK_NAME = "scheduler"


def wait_for_leadership(engine: Engine, stop: threading.Event, poll: float = 5.0,
                        on_standby=lambda: None) -> LeaderLock | None:
    """Block until this process leads (returns the held lock) or `stop` is set (None)."""
    lock = LeaderLock(engine, LOCK_NAME)
    announced = False
    while not stop.is_set():
        try:
            if lock.try_acquire():
                log.info("scheduler: leader; starting jobs")
                return lock
        except Exception as exc:  # database down: keep waiting, say so once per outage
            log.warning("scheduler: cannot reach the database for the leader lock: %s", exc)
        if not announced:
            log.info("scheduler: standby; another scheduler leads")
            on_standby()
            announced = True
        stop.wait(poll)
    return None
