"""Run the jobs: blocking in their own process (`python -m scheduler`) or in a background
thread of the web process (`SCHEDULER=inprocess`, the embedded default under `flask run`)."""
from __future__ import annotations

import threading

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from dashapp.extensions import db
from scheduler.jobs import add_jobs
from scheduler.lock import wait_for_leadership

STATE_KEY = "analytics_scheduler_state"


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


def run_blocking(app: Flask, stop: threading.Event, poll: float = 5.0) -> None:
    lock = _lead(app, stop, poll, "")
    if lock is None:
        return
    scheduler = BlockingScheduler(timezone="UTC")
    add_jobs(scheduler, app)
    threading.Thread(target=lambda: (stop.wait(), scheduler.shutdown(wait=False)), daemon=True).start()
    try:
        scheduler.start()
    finally:
        lock.release()


def start_in_background(app: Flask, poll: float = 5.0) -> threading.Event:
    """Wait for leadership in a daemon thread, then run the jobs in a BackgroundScheduler.
    Returns an event that stops it."""
    stop = threading.Event()

    def lead() -> None:
        lock = _lead(app, stop, poll, "inprocess, ")
        if lock is None:
            return
        scheduler = BackgroundScheduler(timezone="UTC", daemon=True)
        add_jobs(scheduler, app)
        scheduler.start()
        stop.wait()
        scheduler.shutdown(wait=False)
        lock.release()

    threading.Thread(target=lead, name="scheduler-leader", daemon=True).start()
    return stop
