"""`python -m scheduler`: the rollup scheduler in its own process. Start one per
deployment; a second one waits as a standby and takes over when the first dies."""
from __future__ import annotations

import os
import signal
import threading

from dashapp import create_app
from scheduler.runner import run_blocking


def main() -> None:
    app = create_app({"SCHEDULER": "off"})  # this process is the scheduler; no second one inside
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # how often a standby tries for the lead; it takes over within this long of a leader's death
    poll = float(os.environ.get("SCHEDULER_STANDBY_POLL", "5"))
    run_blocking(app, stop, poll=poll)


if __name__ == "__main__":
    main()
