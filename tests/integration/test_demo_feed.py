"""The live demo feed of `make run`: history fallen behind is filled in, new events arrive on
every tick, a window fed twice stores nothing twice, and the charts see them — on both
dialects, at a frozen now moved by hand."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from dashapp import create_app
from scheduler.jobs import run_demo_feed
from services.query.engine import query_metrics
from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo
from services.store.schema import notification_events


def count(engine, since=None) -> int:
    e = notification_events.c
    stmt = select(func.count()).select_from(notification_events)
    if since is not None:
        stmt = stmt.where(e.created_at >= since)
    with engine.connect() as conn:
        return conn.execute(stmt).scalar()


def test_the_feed_fills_in_history_then_keeps_events_arriving(engine, clock):
    now = datetime.now(timezone.utc)
    behind = (now - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    seed_demo(engine.begin, days=2, per_hour=60, seed=3, end=behind)   # a demo left a day ago
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False), "DEMO_FEED_PER_HOUR": 300})
    before = count(engine)

    run_demo_feed(app)                                                   # first tick: the gap is filled in
    filled = count(engine) - before
    assert filled > 30 * 300  # thirty hours of sends, outcomes and opens
    assert count(engine, now - timedelta(hours=1)) > 0
    with engine.connect() as conn:
        newest = conn.execute(select(func.max(notification_events.c.created_at))).scalar()
    assert newest <= datetime.now(timezone.utc)

    clock.shift(600)  # ten minutes later: new events, even in the quietest night hour (~20 notifications)
    tick = app.extensions["demo_feed"]["until"]  # where the first tick's window ended (the clock runs on)
    already = count(engine)
    run_demo_feed(app)
    arrived = count(engine) - already
    assert arrived > 0 and count(engine, tick) >= arrived  # all of them after the first tick's end

    rollup_pending(engine)
    with engine.connect() as conn:
        total = query_metrics(conn, "events", (), now - timedelta(days=5), datetime.now(timezone.utc) +
                              timedelta(minutes=1)).points[0].value
    assert total == count(engine)  # the charts see every stored and fed event

    state = app.extensions["demo_feed"]                                   # a window fed again: no duplicates
    fed_until = state["until"]
    state["until"] = fed_until - timedelta(minutes=10)
    again = count(engine) - count(engine, fed_until)  # what was stored before the last tick's end
    run_demo_feed(app)  # (the clock ticks on: events after fed_until may arrive, and are new)
    assert count(engine) - count(engine, fed_until) == again


def test_an_empty_database_starts_feeding_from_now(engine, clock):
    app = create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False), "DEMO_FEED_PER_HOUR": 3000})
    run_demo_feed(app)
    assert count(engine) == 0  # nothing happened before now
    clock.shift(120)
    run_demo_feed(app)
    assert 0 < count(engine) < 3000 * 2.5 * 3 / 60  # two minutes of a 3,000-an-hour feed, with some margin
