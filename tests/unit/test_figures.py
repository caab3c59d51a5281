"""Every figure is the plain dict Plotly.js draws: valid for Plotly (read through go.Figure,
which validates every property), with titles as objects (Plotly.js ignores a bare string
since v3, which go.Figure would quietly accept), colour scales given in full (Plotly.js has
other scales under the same names) and the product's template, shared and never changed."""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace as NS

import plotly.graph_objects as go
import pytest

from layouts import figures as F

T0 = datetime(2026, 11, 29, tzinfo=timezone.utc)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


SERIES = [{"time": at(h), "channel": c, "value": None if h == 7 else 90.0 + h % 5, "volume": 100 + h}
          for c in ("sms", "email", "push", "webhook") for h in range(30)]
MARKS = F.time_marks([{"time": at(3), "value": 50, "expected": 90, "severity": "high"}], [], at(0), at(29),
                     timedelta(hours=1), "Delivery rate", "%")
TREND = {"unit": "%", "series": [{"time": at(h), "value": 90 + h % 3, "upper": 95, "lower": 85} for h in range(20)],
         "moving_average": [{"time": at(h), "value": 90} for h in range(20)],
         "anomalies": [{"time": at(5), "value": 70, "expected": 90, "severity": "high", "explanation": "why",
                        "drilldown": "/x"}]}
PERIOD = NS(points=[NS(time=T0 + timedelta(hours=h), previous_time=T0 - timedelta(days=7, hours=-h), value=h * 1.5,
                       previous_value=h * 1.2, difference=0.3 * h, percent_difference=25.0) for h in range(10)])
MATRIX = NS(labels=("A", "B", "C"), metrics=("a", "b", "c"), r=[[1, 0.9, None], [0.9, 1, -0.5], [None, -0.5, 1]],
            q=[[0, 0.01, None], [0.01, 0, 0.2], [None, 0.2, 0]], lag=[[0, 1, 0], [1, 0, 0], [0, 0, 0]],
            related_by_definition=[[False] * 3, [False, False, True], [False, True, False]])
NOTES = [{"template_name": "Welcome", "channel": "email", "notification_id": "n1",
          "steps": [{"time": at(0), "status": "sent", "after_seconds": 0.0},
                    {"time": at(0.01), "status": "delivered", "after_seconds": 36.0}]},
         {"template_name": None, "channel": "sms", "notification_id": None,
          "steps": [{"time": at(0), "status": "failed", "after_seconds": 0.0}]}]
FIGURES = {
    "empty": lambda: F.empty_figure("Nothing here", 260),
    "time series": lambda: F.time_series(SERIES, "Delivery rate", "%", revision="r"),
    "time series, marked": lambda: F.time_series(SERIES, "Sent", "count", revision="r", volume_of="sent",
                                                  filling=at(29), marks=MARKS),
    "bars": lambda: F.bars([{"channel": c, "value": v} for c, v in (("push", 3.0), ("email", 1.0), ("sms", None))],
                           "channel", "Delivery rate", "%", revision="b"),
    "bars by template": lambda: F.bars([{"template_id": 3, "value": 1.5}], "template_id", "Bounce rate", "%",
                                       revision="b", labels={3: "Welcome"}),
    "heatmap": lambda: F.heatmap([[float(i * j) for j in range(24)] for i in range(7)], revision="h"),
    "trend": lambda: F.trend_chart(TREND, "Delivery rate", "t"),
    "profile": lambda: F.profile_bars([1.0, None, 3.0], ["00", "01", "02"], "Sent", "count", [2], "p"),
    "periods": lambda: F.period_chart(PERIOD, "Sent", "count", "p"),
    "correlations": lambda: F.correlation_matrix(NS(matrix=MATRIX), "c"),
    "overlay": lambda: F.pair_overlay([at(0), at(1)], [1.0, 2.0], [2.0, 1.0], "A", "B", "o"),
    "scatter": lambda: F.pair_scatter([1.0, 2.0, 3.0, None, 4.0], [2.0, 4.1, 6.3, 1.0, 7.9], "A", "B", "s"),
    "lags": lambda: F.lag_chart([(-1, 0.2, 10), (0, 0.5, 10), (1, 0.9, 10)], 1, "hour", "l"),
    "lifecycle": lambda: F.lifecycle_timeline(NOTES, "l"),
}


def titles(figure: dict):
    layout = figure["layout"]
    for key, value in layout.items():
        if key.startswith(("xaxis", "yaxis")) and "title" in value:
            yield value["title"]
    for trace in figure["data"]:
        if "colorbar" in trace:
            yield trace["colorbar"]["title"]


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_is_valid_for_plotly_as_it_is_drawn(name):
    figure = FIGURES[name]()
    drawn = go.Figure(figure)  # raises on any property Plotly does not know or any value it refuses
    assert isinstance(figure, dict) and len(drawn.data) == len(figure["data"])
    assert all(isinstance(title, dict) and title["text"] for title in titles(figure))
    assert not any(isinstance(trace.get("colorscale"), str) for trace in figure["data"])
    assert figure["layout"]["template"] is F.TEMPLATE and drawn.layout.template.layout.plot_bgcolor == "white"


def test_the_template_keeps_the_trace_types_drawn_and_no_figure_changes_it():
    before = copy.deepcopy(F.TEMPLATE)
    assert set(F.TEMPLATE["data"]) == {"scatter", "bar", "heatmap"}
    drawn = go.Figure(F.bars([{"channel": "sms", "value": 2.0}], "channel", "Events", "count", revision="r"))
    drawn.layout.template.layout.plot_bgcolor = "black"
    drawn.update_layout(template={"layout": {"font": {"size": 30}}})
    assert F.TEMPLATE == before


def test_bars_of_the_channels_are_in_their_order_and_colours():
    figure = go.Figure(F.bars([{"channel": "sms", "value": 2.0}, {"channel": "email", "value": 1.0}], "channel",
                              "Events", "count", revision="r"))
    assert list(figure.data[0].x) == ["Email", "SMS"]
    assert list(figure.data[0].marker.color) == [F.CHANNEL_COLOURS["email"], F.CHANNEL_COLOURS["sms"]]
    assert figure.layout.yaxis.title.text == "Events" and figure.layout.showlegend is False
