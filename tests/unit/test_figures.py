"""Figures carry the product's template exactly as a validated assignment would, each its own
copy: the shared template is never changed by a figure."""
import copy

import orjson
import plotly.graph_objects as go

from layouts import figures


def test_a_figure_holds_the_template_as_a_validated_assignment_would():
    bar = go.Bar(x=["Email", "SMS"], y=[1, 2])
    fast, validated = figures._figure(bar), go.Figure(bar, layout={"template": figures.TEMPLATE})
    assert orjson.dumps(fast.to_plotly_json()) == orjson.dumps(validated.to_plotly_json())
    assert fast.layout.template.layout.plot_bgcolor == "white"  # plotly_white's look
    assert set(fast.layout.template.data.to_plotly_json()) == {"scatter", "bar", "heatmap"}


def test_changing_one_figures_template_changes_no_other():
    before = copy.deepcopy(figures.TEMPLATE.to_plotly_json())
    first = figures._figure()
    first.layout.template.layout.plot_bgcolor = "black"
    first.update_layout(template={"layout": {"font": {"size": 30}}})
    assert figures.TEMPLATE.to_plotly_json() == before
    assert figures._figure().layout.template.layout.plot_bgcolor == "white"


def test_a_bar_chart_of_the_overview_is_built_in_the_template():
    fig = figures.bars([{"channel": "sms", "value": 2.0}, {"channel": "email", "value": 1.0}], "channel",
                       "Events", "count", revision="r")
    assert list(fig.data[0].x) == ["Email", "SMS"] and fig.layout.template.layout.plot_bgcolor == "white"
