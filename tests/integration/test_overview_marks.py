"""The Overview's time chart marks anomalies and alert incidents: on a generated scenario
(history starting at the range start, a two-hour SMS outage diluted by healthy email), every
mark sits on the buckets the trend report flags, its numbers are the ones computed straight
from the raw events, and incidents come from the rules on the chart's metric only."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import plotly.graph_objects as go
import pytest
from sqlalchemy import insert

from callbacks import overview
from callbacks.view import parse_search
from dashapp import create_app
from services.alerts.rules import create_rule
from services.analysis.trend_report import trend_report
from services.query.format import plain
from services.rollup.fold import rollup_pending
from services.store.ingest import ingest_events
from services.store.schema import alert_transitions
from tests.factories import iso, outage_scenario

CHANNELS = ("email", "sms", "push")
HOURS = 72


def hourly_rate(events: list[dict], channels: tuple[str, ...], hour: datetime) -> float:
    """Delivered over sent in one hour, straight from the events."""
    def count(status):
        return sum(1 for e in events if e["status"] == status and e["channel"] in channels
                   and hour <= datetime.fromisoformat(e["created_at"].replace("Z", "+00:00")) < hour + timedelta(hours=1))
    return 100.0 * count("delivered") / count("sent")


@pytest.fixture
def start():
    """Six days before today's midnight: a past window whatever the clock says."""
    return datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)


def seeded(engine, events):
    with engine.begin() as conn:
        report = ingest_events(conn, events, raw_retention_days=120)
    assert report.accepted == len(events)
    rollup_pending(engine, raw_retention_days=120)
    return create_app({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})


def window(start: datetime) -> str:
    return f"?tab=overview&range=custom&start={iso(start)}&end={iso(start + timedelta(hours=HOURS))}"


def test_an_outage_is_marked_on_its_buckets_with_the_numbers_of_the_raw_events(engine, start):
    outage = (50, 51)
    events = outage_scenario(11, start, HOURS, outage)
    app = seeded(engine, events)
    with app.test_request_context():
        search = window(start) + "&metric=delivery_rate"
        figure, drawn = overview.timeseries_figure(parse_search(search, CHANNELS))
        figure = go.Figure(figure)
        assert {t.name for t in figure.data} == {"Email", "SMS"} and not figure.layout.shapes
        assert drawn["first"] == iso(start) and drawn["last"] == iso(start + timedelta(hours=HOURS - 1))
        marks = overview.timeseries_marks(drawn, CHANNELS)["marks"]
        with engine.connect() as conn:
            report = plain(trend_report(conn, "delivery_rate", iso(start), iso(start + timedelta(hours=HOURS))))
    flagged = [a["time"] for a in report["anomalies"]]
    assert flagged == [iso(start + timedelta(hours=h)) for h in outage]  # the outage and nothing else
    (band,) = marks["shapes"]
    assert (band["x0"], band["x1"]) == (iso(start + timedelta(hours=49, minutes=30)),
                                        iso(start + timedelta(hours=51, minutes=30)))
    (note,) = marks["annotations"]
    assert note["text"] == "▼"
    for h in outage:
        hour = start + timedelta(hours=h)
        rate = hourly_rate(events, ("email", "sms"), hour)
        assert f"{hour:%Y-%m-%d %H:%M} UTC: {rate:.1f} %" in note["hovertext"]
    assert note["hovertext"].startswith("2 anomalous buckets in a row: Delivery rate")


def test_a_flat_series_gets_no_mark_and_incidents_come_from_rules_on_its_metric(engine, start):
    events = outage_scenario(12, start, HOURS, ())
    app = seeded(engine, events)
    end = start + timedelta(hours=HOURS)
    with engine.begin() as conn:
        fired = create_rule(conn, {"name": "SMS delivery under 80 %", "metric": "delivery_rate", "channel": ["sms"],
                                   "condition": "threshold", "direction": "below", "threshold": 80})
        firing = create_rule(conn, {"name": "Delivery anomaly", "metric": "delivery_rate", "condition": "anomaly"})
        other = create_rule(conn, {"name": "Too many sent", "metric": "sent", "condition": "threshold",
                                   "direction": "above", "threshold": 1})

        def move(rule, hour, state, previous):
            conn.execute(insert(alert_transitions).values(
                rule_id=rule.id, bucket=start + timedelta(hours=hour), state=state, previous_state=previous,
                recorded_at=end, explanation="", drilldown=""))
        move(fired, -30, "firing", "ok"), move(fired, -20, "resolved", "firing")   # before the window: not shown
        move(fired, 10, "firing", "resolved"), move(fired, 13, "resolved", "firing")
        move(firing, 60, "firing", "ok")                                            # still firing
        move(other, 20, "firing", "ok")                                             # another metric
    with app.test_request_context():
        _, drawn = overview.timeseries_figure(parse_search(window(start), CHANNELS))
        marks = overview.timeseries_marks(drawn, CHANNELS)["marks"]
    texts = [n["text"] for n in marks["annotations"]]
    assert texts == ["⚠ SMS delivery under 80 %", "⚠ Delivery anomaly"]  # no anomaly in a flat series
    spans = [(s["x0"], s["x1"]) for s in marks["shapes"]]
    assert spans == [(iso(start + timedelta(hours=10)), iso(start + timedelta(hours=13))),
                     (iso(start + timedelta(hours=60)), iso(start + timedelta(hours=HOURS - 1)))]
    hovers = [n["hovertext"] for n in marks["annotations"]]
    assert hovers[0].endswith(f"fired from {start + timedelta(hours=10):%Y-%m-%d %H:%M} UTC to "
                              f"{start + timedelta(hours=13):%Y-%m-%d %H:%M} UTC")
    assert hovers[1].endswith("and still fires")


def test_a_refresh_of_the_same_view_draws_its_marks_at_once(engine, start):
    app = seeded(engine, outage_scenario(13, start, HOURS, (40,)))
    with app.test_request_context():
        state = parse_search(window(start), CHANNELS)
        _, drawn = overview.timeseries_figure(state)
        kept = overview.timeseries_marks(drawn, CHANNELS)
        again, _ = overview.timeseries_figure(state, kept)
        elsewhere, _ = overview.timeseries_figure(parse_search(window(start) + "&channel=sms", CHANNELS), kept)
    assert [s.x0 for s in go.Figure(again).layout.shapes] == [s["x0"] for s in kept["marks"]["shapes"]] != []
    assert not go.Figure(elsewhere).layout.shapes  # another view's marks are not drawn on this one
