"""The Trends tab: the headline sentences, the series with its expected band, moving
average and anomalies, the anomalies explained, and the seasonal profiles."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.overview import card, graph, metric_options
from services.query.format import number

DETECTOR_OPTIONS = [
    {"label": "Baseline: chosen by the data", "value": "auto"},
    {"label": "Baseline: same hour, previous days", "value": "seasonal"},
    {"label": "Baseline: rolling median", "value": "robust"},
]


def layout(metric: str, detector: str | None, custom: list | None = None) -> html.Div:
    return html.Div([
        dbc.Row([
            dbc.Col(dcc.Dropdown(id=ids.TREND_METRIC, options=metric_options(custom), value=metric, clearable=False), md=4),
            dbc.Col(dcc.Dropdown(id=ids.TREND_DETECTOR, options=DETECTOR_OPTIONS, value=detector or "auto",
                                 clearable=False), md=4),
            dbc.Col(dbc.Button("Alert me when this…", id=ids.TREND_ALERT_ME, color="danger", outline=True,
                               title="Open the Alerts tab with a rule drafted from this view"),
                    md="auto", className="ms-auto"),
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


def anomaly_tables(anomalies: list[dict], segments: list[dict], unit: str, prefix: str) -> html.Div | None:
    """The anomalies of the total with their explanation, and the segments (channel ×
    template) that moved on their own, each with a link into the drill-down."""
    def badge(severity: str):
        return dbc.Badge(severity, color={"high": "danger", "medium": "warning"}.get(severity, "secondary"))

    def link(row: dict):
        return dcc.Link("drill down", href=prefix + row["drilldown"]) if row.get("drilldown") else ""

    parts = []
    if anomalies:
        rows = [html.Tr([
            html.Td(a["time"][:16].replace("T", " ")), html.Td(badge(a["severity"])),
            html.Td(f"{number(a['value'], unit)} (expected {number(a['expected'], unit)})"),
            html.Td(a["explanation"] or ""), html.Td(link(a)),
        ]) for a in sorted(anomalies, key=lambda a: -abs(a["score"]))[:10]]
        head = html.Thead(html.Tr([html.Th(h) for h in ("Bucket (UTC)", "Severity", "Value", "Explanation", "")]))
        parts.append(dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="bg-white shadow-sm"))
    if segments:
        rows = [html.Tr([
            html.Td(f"{s['start'][:16].replace('T', ' ')} → {s['end'][11:16]}"), html.Td(badge(s["severity"])),
            html.Td(s["sentence"]), html.Td(link(s)),
        ]) for s in segments]
        head = html.Thead(html.Tr([html.Th(h) for h in ("When (UTC)", "Severity", "Segment that moved on its own",
                                                        "")]))
        parts += [html.H6("Inside single templates", className="mt-3 text-muted"),
                  dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="bg-white shadow-sm")]
    return html.Div(parts) if parts else None
