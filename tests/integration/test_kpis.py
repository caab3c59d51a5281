"""The Overview's tiles against raw events: every tile reads the same base measures once per
period, and each equals its metric computed straight from the raw events of its window, on
both dialects, with part of the data still in the rollup's delta queue."""
import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from services.analysis.kpis import kpis
from services.query.context import context_at
from services.query.plan import build_query
from services.rollup.fold import rollup_pending
from services.store.ingest import ingest_events
from tests.factories import iso, make_event
from tests.oracle import metric_from_raw, raw_events

NOW = datetime(2026, 11, 25, 13, 7, 30, tzinfo=timezone.utc)
METRICS = ("sent", "delivery_rate", "open_rate", "click_rate", "bounce_rate", "p95_processing_time",
           "avg_processing_time", "events")
STATUSES = ("sent", "delivered", "failed", "bounced", "opened", "clicked")


def scenario(seed: int, start: datetime, hours: int) -> list[dict]:
    """Sparse, uneven traffic from `start` (history begins there, nothing before), some of it
    with no processing time, SMS never opened."""
    rnd = random.Random(seed)
    events = []
    for _ in range(rnd.randint(150, 400)):
        channel = rnd.choice(("email", "sms", "push"))
        statuses = STATUSES[:4] if channel == "sms" else STATUSES
        events.append(make_event(
            created_at=iso(start + timedelta(seconds=rnd.uniform(0, hours * 3600))), channel=channel,
            template_id=rnd.choice((None, 1, 2)), status=rnd.choice(statuses),
            processing_time_ms=None if rnd.random() < 0.2 else int(rnd.expovariate(1 / 800))))
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_each_tile_equals_its_metric_from_raw_events(engine, seed):
    events = scenario(seed, NOW - timedelta(hours=40), 40)
    with engine.begin() as conn:
        ingest_events(conn, events[: len(events) // 2], now=NOW)
    rollup_pending(engine, now=NOW)
    with engine.begin() as conn:  # the rest waits in the delta queue
        ingest_events(conn, events[len(events) // 2:], now=NOW)
    rows = raw_events(engine)
    context = context_at(NOW)
    for filters in ({}, {"channel": ["sms"]}, {"channel": ["email", "push"]}):
        window = build_query("events", (), "now-24h", None, filters, None, NOW).window
        span = window.end - window.start
        with engine.connect() as conn:
            tiles = {k.metric: k for k in kpis(conn, METRICS, "now-24h", None, filters, context=context)}
        chosen = set(filters.get("channel", ("email", "sms", "push")))

        def inside(lo, hi):
            return [r for r in rows if lo <= r[0].replace(tzinfo=timezone.utc) < hi and r[1] in chosen]
        for name in METRICS:
            tile = tiles[name]
            if tile.untracked:  # a status never seen in this scope: n/a, never 0 %
                assert filters == {"channel": ["sms"]} and name in ("open_rate", "click_rate")
                continue
            for got, lo, hi in ((tile.value, window.start, window.end),
                                (tile.previous, window.start - span, window.start)):
                want = metric_from_raw(name, inside(lo, hi))
                assert (got is None) == (want is None), (name, filters, got, want)
                if want is not None:
                    assert got == pytest.approx(want, rel=1e-9), (name, filters, got, want)


def test_the_tiles_read_each_period_once(engine):
    with engine.begin() as conn:
        ingest_events(conn, scenario(3, NOW - timedelta(hours=30), 30), now=NOW)
    rollup_pending(engine, now=NOW)
    statements = []
    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute",  # the reads (SQLite's BEGIN aside)
                     lambda *args: statements.append(args[2]) if args[2].lstrip().startswith("SELECT") else None)
        many = kpis(conn, METRICS, "now-24h", context=context_at(NOW))
        count_many = len(statements)
        statements.clear()
        one = kpis(conn, ("p95_processing_time",), "now-24h", context=context_at(NOW))
    assert len(many) == len(METRICS) and one[0].value == many[METRICS.index("p95_processing_time")].value
    assert count_many == len(statements), "eight tiles should read what one tile reads"
