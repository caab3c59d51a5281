"""The Trends tab: the headline sentences, the series with its expected band, moving
average and anomalies, the anomalies explained, and the seasonal profiles."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.figures import format_value
from layouts.overview import card, graph, metric_options

DETECTOR_OPTIONS = [
    {"label": "Automatic", "value": "auto"},
    {"label": "Seasonal (same hour, previous days)", "value": "seasonal"},
    {"label": "Robust (rolling median)", "value": "robust"},
    {"label": "Volume-aware (rates)", "value": "volume"},
]


def layout(metric: str, detector: str | None, custom: list | None = None) -> html.Div:
    return html.Div([
        dbc.Row([
            dbc.Col(dcc.Dropdown(id=ids.TREND_METRIC, options=metric_options(custom), value=metric, clearable=False), md=4),
            dbc.Col(dcc.Dropdown(id=ids.TREND_DETECTOR, options=DETECTOR_OPTIONS, value=detector or "auto",
                                 clearable=False), md=4),
        ], className="g-3 mb-3"),
        html.Div(id=ids.TREND_ALERT),
        dcc.Loading(html.Div(id=ids.TREND_HEADLINE, className="mb-3"), delay_show=150),
        card("The series, its expected band and anomalies", graph(ids.TREND_CHART, 380),
             "Hover an anomaly for its explanation; click it to drill into that hour."),
        html.Div(id=ids.TREND_ANOMALIES, className="my-3"),
        dbc.Row([
            dbc.Col(card("By hour of day (UTC)", graph(ids.TREND_HOURS, 260)), lg=7),
            dbc.Col(card("By weekday", graph(ids.TREND_WEEKDAYS, 260)), lg=5),
        ], className="g-3 mb-3"),
    ])


def headline(sentences: list[str]) -> html.Div:
    first, *rest = sentences
    return html.Div([html.H4(first, className="fw-semibold mb-1"),
                     *[html.P(s, className="mb-0 text-muted") for s in rest]])


def anomaly_table(anomalies: list[dict], unit: str, prefix: str) -> dbc.Table | None:
    if not anomalies:
        return None
    rows = [html.Tr([
        html.Td(a["time"][:16].replace("T", " ")),
        html.Td(dbc.Badge(a["severity"], color={"high": "danger", "medium": "warning"}.get(a["severity"], "secondary"))),
        html.Td(f"{format_value(a['value'], unit)} (expected {format_value(a['expected'], unit)})"),
        html.Td(a["explanation"] or ""),
        html.Td(dcc.Link("drill down", href=prefix + a["drilldown"]) if a.get("drilldown") else ""),
    ]) for a in sorted(anomalies, key=lambda a: -abs(a["score"]))[:10]]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Hour (UTC)", "Severity", "Value", "Explanation", "")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="bg-white shadow-sm")
