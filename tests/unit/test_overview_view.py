"""The Overview as pure data: marks over the time chart (bands clipped to the chart, one per
run of anomalous buckets, incidents named, every number the report's) and the KPI tiles' changes."""
from datetime import datetime, timedelta, timezone

from layouts.figures import time_marks
from services.alerts.rules import FiringSpan

HOUR = timedelta(hours=1)
T0 = datetime(2026, 11, 20, tzinfo=timezone.utc)


def at(hours: float) -> str:
    return (T0 + hours * HOUR).isoformat().replace("+00:00", "Z")


def anomaly(hours: int, value: float, expected: float, severity: str = "medium") -> dict:
    return {"time": at(hours), "value": value, "expected": expected, "severity": severity}


def test_bands_stay_inside_the_chart_and_neighbours_share_one():
    marks = time_marks([anomaly(0, 50, 90, "low"), anomaly(5, 40, 90), anomaly(6, 42, 90, "high"),
                        anomaly(9, 99, 90), anomaly(30, 1, 90)], [], at(0), at(23), HOUR, "Delivery rate", "%")
    assert [(s["x0"], s["x1"]) for s in marks["shapes"]] == [(at(0), at(0.5)), (at(4.5), at(6.5)), (at(8.5), at(9.5))]
    assert [s["fillcolor"] for s in marks["shapes"]][1] == "rgba(228,87,86,0.28)"  # the run's worst: high
    notes = marks["annotations"]
    assert [n["text"] for n in notes] == ["▼", "▼", "▲"]
    assert notes[1]["hovertext"] == ("2 anomalous buckets in a row: Delivery rate<br>"
                                     "2026-11-20 05:00 UTC: 40.0 % against an expected 90.0 % (medium severity)<br>"
                                     "2026-11-20 06:00 UTC: 42.0 % against an expected 90.0 % (high severity)")


def test_incidents_are_clipped_named_and_say_when_they_ended():
    spans = [FiringSpan(1, "SMS delivery below 80 % " + "x" * 40, T0 - 5 * HOUR, T0 + 2 * HOUR),
             FiringSpan(2, "Bounces", T0 + 20 * HOUR, None), FiringSpan(3, "Old", T0 - 9 * HOUR, T0 - HOUR)]
    marks = time_marks([], spans, at(0), at(23), HOUR, "Sent", "count")
    assert [(s["x0"], s["x1"]) for s in marks["shapes"]] == [(at(0), at(2)), (at(20), at(23))]
    first, second = marks["annotations"]
    # each name reads into the chart from its band's nearer edge, so it never widens the axis
    assert (first["x"], first["xanchor"], second["x"], second["xanchor"]) == (at(0), "left", at(23), "right")
    assert first["text"].startswith("⚠ SMS delivery below 80 %") and first["text"].endswith("…")
    assert first["hovertext"].endswith("fired from 2026-11-19 19:00 UTC to 2026-11-20 02:00 UTC")
    assert second["hovertext"] == "Alert “Bounces” fired from 2026-11-20 20:00 UTC and still fires"


def test_a_kpi_change_never_reads_zero_beside_an_arrow_that_says_it_moved():
    from layouts.overview import kpi_tile

    def text(*args, **kwargs):
        return str(kpi_tile(*args, **kwargs))

    assert "▼ −0.04 percentage points" in text("Click rate", "%", 6.30, -0.6, "down", False, previous=6.34)
    assert "▲ +1.2 percentage points" in text("Delivery rate", "%", 95.2, 1.3, "up", True, previous=94.0)
    assert "● 0.00 % vs previous period" in text("Sent", "count", 1000, 0.001, "flat", None)
    assert "● 0.00 percentage points" in text("Click rate", "%", 6.598, -0.05, "flat", None, previous=6.601)


def test_a_tile_and_a_trend_call_the_same_change_flat():
    """One threshold for "flat" in the product: the KPI tiles and the trend report agree."""
    from services.analysis.kpis import change_between
    from services.analysis.trends import FLAT_PERCENT, percent_change
    from services.query.catalogue import CATALOGUE

    rate = CATALOGUE["delivery_rate"]
    for before, after in [(100.0, 100.7), (100.0, 99.2), (80.0, 80.0 * (1 + FLAT_PERCENT / 100) + 0.01), (50.0, 49.0)]:
        tile = change_between(rate, after, before)
        trend = percent_change(after, before)
        assert (tile[0], tile[1]) == (trend.percent, trend.direction), (before, after)
    assert change_between(rate, 100.7, 100.0)[1:] == ("flat", None)
    assert change_between(rate, 98.0, 100.0)[1:] == ("down", False)
    assert change_between(CATALOGUE["failure_rate"], 2.0, 1.0)[1:] == ("up", False)
    assert change_between(rate, 5.0, None) == (None, "flat", None)


def test_one_way_to_write_a_number():
    from services.query.format import in_words, number, signed

    assert [number(v, u) for v, u in [(12345.4, "count"), (97.345, "%"), (412, "ms"), (1.25, "none"),
                                      (None, "%"), (float("nan"), "ms")]] == \
        ["12,345", "97.3 %", "412.0 ms", "1.2", "—", "—"]
    assert in_words(None, "%") == "no data" and in_words(3, "count") == "3"
    assert [signed(v, u) for v, u in [(118, "count"), (-6.66, "%"), (462, "ms")]] == ["+118", "−6.7 points", "+462.0 ms"]


def test_a_change_never_reads_minus_zero():
    from services.analysis import trends
    from services.analysis.trend_report import headline
    from services.query.format import signed_change

    assert [signed_change(x) for x in (12.34, -0.04, 0.04, -0.004, 0.0, -0.0, -0.05)] == \
        ["+12.3", "−0.04", "+0.04", "0.00", "0.00", "0.00", "−0.1"]
    assert headline("sent", trends.Change(-0.04, "flat"), "week-over-week") == "Sent flat week-over-week (−0.04 %)."
    assert headline("sent", trends.Change(-12.345, "down"), "week-over-week") == "Sent down 12.3 % week-over-week."
    # a rate says its two levels: "down 5 %" would not say whether 5 % of the rate or 5 points
    assert headline("delivery rate", trends.Change(-5.3, "down"), "against the previous 7 days", "%", 88.0, 92.93) \
        == "Delivery rate down against the previous 7 days, from 92.9 % to 88.0 %."
