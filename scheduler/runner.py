"""Run the jobs: blocking in their own process (`python -m scheduler`) or in a background
thread of the web process (`SCHEDULER=inprocess`, the embedded default under `flask run`)."""
from __future__ import annotations

import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from dashapp.extensions import db
from scheduler.jobs import add_jobs
from scheduler.lock import wait_for_leadership

STATE_KEY = "analytics_scheduler_state"
log = logging.getLogger("scheduler")


def _set_state(app: Flask, state: str) -> None:
    app.extensions[STATE_KEY] = state


def _lead(app: Flask, stop: threading.Event, poll: float, label: str):
    """Wait as a standby until this process leads; returns the held lock (None if stopped)."""
    with app.app_context():
        engine = db.engine
    _set_state(app, f"{label}standby")
    lock = wait_for_leadership(engine, stop, poll)
    if lock is not None:
        _set_state(app, f"{label}leader")
    return lock


def _serve(app: Flask, stop: threading.Event, poll: float, label: str) -> None:
    """Run the jobs only while this process holds the leader lock, checked every second (or
    every `poll`, if shorter). A lock lost with its connection starts no more jobs; the one
    running finishes (the rollup holds its own lock, webhook deliveries their claims) before
    this process asks for the lead again, as a standby."""
    while not stop.is_set():
        lock = _lead(app, stop, poll, label)
        if lock is None:
            return
        scheduler = BackgroundScheduler(timezone="UTC", daemon=True)
        add_jobs(scheduler, app)
        scheduler.start()
        while not stop.wait(min(poll, 1.0)) and lock.still_held():
            pass
        lost = not stop.is_set()
        if lost:
            log.warning("scheduler: lost the leader lock (its database connection broke); starting no more jobs")
        scheduler.shutdown(wait=lost)  # lost: let the running job end before asking for the lead again
        lock.release()


def run_blocking(app: Flask, stop: threading.Event, poll: float = 5.0) -> None:
    """The scheduler process (`python -m scheduler`): lead or stand by until `stop`."""
    _serve(app, stop, poll, "")


def start_in_background(app: Flask, poll: float = 5.0) -> threading.Event:
    """Lead or stand by in a daemon thread of the web process. Returns an event that stops it."""
    stop = threading.Event()
    threading.Thread(target=_serve, args=(app, stop, poll, "inprocess, "), name="scheduler-leader",
                     daemon=True).start()
    return stop
