"""A drag-zoom on the Overview's time chart sets the dashboard's range (Grafana's way)."""
import plotly.graph_objects as go
from dash import no_update

from callbacks.overview import search_after_zoom

CHANNELS = ("email", "sms", "push")


def test_a_zoom_becomes_the_range_to_the_whole_minute():
    relayout = {"xaxis.range[0]": "2026-11-25 06:12:34.5678", "xaxis.range[1]": "2026-11-26 01:00:10"}
    assert search_after_zoom("?tab=overview&range=7d&channel=sms", relayout, CHANNELS) == \
        "?tab=overview&range=custom&start=2026-11-25T06:12:00Z&end=2026-11-26T01:01:00Z&channel=sms"
    assert search_after_zoom("?tab=overview", {"xaxis.range": ["2026-11-25 06:00", "2026-11-25 07:00"]},
                             CHANNELS) == "?tab=overview&range=custom&start=2026-11-25T06:00:00Z&end=2026-11-25T07:00:00Z"
    # inside one minute: that minute
    assert search_after_zoom("?tab=overview", {"xaxis.range[0]": "2026-11-25 06:00:10",
                                               "xaxis.range[1]": "2026-11-25 06:00:20"}, CHANNELS) == \
        "?tab=overview&range=custom&start=2026-11-25T06:00:00Z&end=2026-11-25T06:01:00Z"


def test_what_is_not_a_zoom_changes_nothing():
    for relayout in ({"xaxis.autorange": True}, {"autosize": True}, None, {"xaxis.range[0]": "x", "xaxis.range[1]": "y"},
                     {"xaxis.range[0]": "0001-01-01", "xaxis.range[1]": "2026-11-25"}, {"xaxis.range": "2026"}):
        assert search_after_zoom("?tab=overview", relayout, CHANNELS) is no_update, relayout


def test_a_click_on_the_correlation_matrix_names_its_pair():
    from callbacks.correlations import clicked_pair

    point = {"x": "Email bounce rate", "y": "SMS delivery rate", "customdata": "sms:delivery_rate|email:bounce_rate"}
    assert clicked_pair({"points": [point]}) == ["sms:delivery_rate", "email:bounce_rate"]
    for click in (None, {}, {"points": []}, {"points": [{"customdata": ["a", "b"]}]}, {"points": [{}]},
                  {"points": [{"customdata": "a|b|c"}]}, {"points": "x"}, "x"):
        assert clicked_pair(click) is None, click


def test_a_rate_chart_is_scaled_to_its_values_and_names_the_events_behind_each_point():
    from layouts.figures import time_series

    records = [{"time": "2026-11-25T06:00:00Z", "channel": "sms", "value": 97.5, "volume": 400.0},
               {"time": "2026-11-25T07:00:00Z", "channel": "sms", "value": 91.0, "volume": 380.0}]
    rate = go.Figure(time_series(records, "Delivery rate", "%", "r", volume_of="sent"))
    assert rate.layout.yaxis.rangemode == "normal"
    assert "of %{customdata[1]:,.0f} sent" in rate.data[0].hovertemplate
    assert [list(c) for c in rate.data[0].customdata] == [["sms", 400.0, ""], ["sms", 380.0, ""]]
    live = go.Figure(time_series(records, "Delivery rate", "%", "r", volume_of="sent", filling="2026-11-25T07:00:00Z"))
    assert [c[2] for c in live.data[0].customdata] == ["", "<br><i>this bucket is still filling</i>"]
    assert "%{customdata[2]}" in live.data[0].hovertemplate
    count = go.Figure(time_series([{**r, "value": 10.0} for r in records], "Sent", "count", "r"))
    assert count.layout.yaxis.rangemode == "tozero" and "of %{" not in count.data[0].hovertemplate


def test_every_chart_shows_channels_in_one_order():
    from layouts.figures import bars, time_series

    records = [{"time": "2026-11-25T06:00:00Z", "channel": c, "value": v} for c, v in
               (("push", 3.0), ("email", 1.0), ("sms", 2.0))]
    assert [t["name"] for t in time_series(records, "Sent", "count", "r")["data"]] == ["Email", "SMS", "Push"]
    by_channel = bars([{"channel": c, "value": v} for c, v in (("push", 3.0), ("sms", 2.0), ("email", 1.0))],
                      "channel", "Sent", "count", "r")
    assert by_channel["data"][0]["x"] == ["Email", "SMS", "Push"]


def test_a_click_on_a_line_drills_into_its_channel_and_bucket():
    from callbacks.overview import search_after_time_click

    click = {"points": [{"x": "2026-11-24 14:00", "customdata": ["sms", 412.0]}]}
    search = search_after_time_click("?tab=overview&range=7d", click, CHANNELS)
    assert search == "?tab=drilldown&range=custom&start=2026-11-24T14:00:00Z&end=2026-11-24T15:00:00Z&drill=sms"


def _matrix_report(r: float | None, q: float | None):
    from services.analysis.correlation_report import CorrelationReport, Matrix

    keys = ("sms:delivery_rate", "email:bounce_rate", "push:sent")
    n = len(keys)
    grid = lambda value: tuple(tuple(None if i == j else value for j in range(n)) for i in range(n))  # noqa: E731
    matrix = Matrix(keys, ("SMS delivery rate", "Email bounce rate", "Push sent"), grid(r), grid(q),
                    tuple((0,) * n for _ in range(n)), tuple((False,) * n for _ in range(n)))
    return CorrelationReport("pearson", True, "hour", None, (), (), matrix, {})


def test_a_matrix_with_no_significant_pair_still_draws_every_value():
    """Plotly draws a heatmap whose cells are all gaps as garbage and drops the traces after
    it: no trace of the matrix may be all gaps, and the values are on show either way."""
    from layouts.figures import correlation_matrix

    for r, q, coloured in ((0.12, 0.4, False), (0.8, 0.001, True)):
        fig = go.Figure(correlation_matrix(_matrix_report(r, q), "r"))
        assert all(any(v is not None for row in trace.z for v in row) for trace in fig.data), (r, q)
        assert any(trace.showscale is not False for trace in fig.data) == coloured
        labels = fig.data[-1].text
        assert labels[0][1] == f"{r:.2f}" and labels[0][0] == ""
        assert fig.data[0].customdata[0][1] == "sms:delivery_rate|email:bounce_rate"  # grey cells click too
