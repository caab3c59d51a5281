"""What alert tests share: twelve days of demo data (with its planted SMS drop) up to a
frozen now, and empty alert tables for each test."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Engine, text

from services.rollup.fold import rollup_pending
from services.store.demo import seed_demo
from tests.conftest import clock_at, fresh_engine


def seeded_demo(url: str, now: datetime) -> Iterator[tuple[Engine, dict]]:
    """For a module fixture: (engine, incidents by kind), seeded and rolled up once."""
    with clock_at(now):
        engine = fresh_engine(url)
        result = seed_demo(engine.begin, days=12, per_hour=400, seed=42, end=now)
        rollup_pending(engine)
    yield engine, {i.kind: i for i in result.incidents}
    engine.dispose()


def without_alerts(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE alert_deliveries, alert_transitions, alert_rules RESTART IDENTITY"))
    return engine
