"""A separate process for concurrency and crash tests: `python -m tests.worker rollup URL`
or `python -m tests.worker ingest URL --seed N --batches B --size S`."""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone

from dashapp.extensions import make_engine
from services.rollup.fold import rollup_pending
from services.store.ingest import ingest_events
from tests.factories import iso


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["rollup", "ingest"])
    parser.add_argument("url")
    parser.add_argument("--pause-after-batch", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=None, help="deltas folded per transaction")
    args = parser.parse_args(argv)
    engine = make_engine(args.url)
    if args.action == "rollup":
        def progress(done, total):
            print(f"batch {done}/{total}", flush=True)
            time.sleep(args.pause_after_batch)

        report = rollup_pending(engine, progress=progress, **({"fold_chunk": args.chunk} if args.chunk else {}))
        print("locked out" if report.locked_out else f"done {report.hours}", flush=True)
    else:
        rng = random.Random(args.seed)
        now = datetime.now(timezone.utc)
        for b in range(args.batches):
            events = [{"event_id": f"w{args.seed}-{b}-{i}", "channel": rng.choice(["email", "sms", "push"]),
                       "status": rng.choice(["sent", "delivered", "failed"]),
                       "created_at": iso(now - timedelta(minutes=rng.uniform(0, 4 * 24 * 60))),
                       "processing_time_ms": rng.randint(1, 3000), "template_id": rng.randint(1, 4)}
                      for i in range(args.size)]
            with engine.begin() as conn:
                ingest_events(conn, events, now=now)
        print("ingested", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
