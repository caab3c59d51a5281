"""The Overview tab: KPI tiles, the chosen metric over time by channel, volume by channel
and status, and an hour × weekday heatmap."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import figures, ids
from services.query.catalogue import CATALOGUE
from services.query.format import number, signed_change

KPI_METRICS = ("sent", "delivery_rate", "open_rate", "click_rate", "p95_processing_time")
GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": "hover", "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def metric_options(custom: list | None = None) -> list[dict]:
    """Every catalogue metric, then the saved custom ones."""
    options = [{"label": f"{m.label} ({m.unit})" if m.unit != "count" else m.label, "value": m.name}
               for m in CATALOGUE.values()]
    return options + [{"label": f"{c.display_name} (custom)", "value": c.name} for c in custom or []]


def card(title: str, body, footer: str | None = None) -> dbc.Card:
    parts = [dbc.CardHeader(title, className="fw-semibold small text-uppercase text-muted"), dbc.CardBody(body)]
    if footer:
        parts.append(dbc.CardFooter(footer, className="small text-muted"))
    return dbc.Card(parts, className="h-100 shadow-sm")


def graph(graph_id: str, height: int = 320, hover_sync: bool = False) -> dcc.Loading:
    """A chart; `hover_sync` charts of a tab share the moment under the pointer
    (assets/hover_sync.js)."""
    return dcc.Loading(dcc.Graph(id=graph_id, figure=figures.blank_figure(height), config=GRAPH_CONFIG,
                                 style={"height": f"{height}px"},
                                 className="hover-sync" if hover_sync else None),
                       type="default", delay_show=150)


def layout(metric: str, custom: list | None = None) -> html.Div:
    return html.Div([
        html.Div(id=ids.OVERVIEW_ALERT),
        dcc.Loading(dbc.Row(id=ids.KPI_ROW, className="g-3 mb-3"), type="dot", delay_show=150),
        dbc.Row([
            dbc.Col(card("Over time, by channel", [
                dcc.Dropdown(id=ids.METRIC_PICKER, options=metric_options(custom), value=metric, clearable=False,
                             className="mb-2", style={"maxWidth": "22rem"}),
                graph(ids.TIMESERIES),
                dcc.Store(id=ids.TIMESERIES_DRAWN), dcc.Store(id=ids.TIMESERIES_MARKS),
            ], "Click a point to drill into that channel and time bucket. Red bands: anomalies (▼ below, ▲ above "
               "the expected value); amber: alerts firing."), lg=8),
            dbc.Col(card("By channel", graph(ids.CHANNEL_BAR, 372), "Click a bar to drill down."), lg=4),
        ], className="g-3 mb-3"),
        dbc.Row([
            dbc.Col(card("Events by status", graph(ids.STATUS_BAR)), lg=5),
            dbc.Col(card("Volume by weekday and hour (UTC)", graph(ids.HEATMAP)), lg=7),
        ], className="g-3 mb-3"),
    ])


def kpi_tile(label: str, unit: str, value, change: float | None, direction: str, good: bool | None,
             untracked: str | None = None, previous: float | None = None) -> dbc.Col:
    arrow = {"up": "▲", "down": "▼", "flat": "●"}[direction]
    colour = "text-muted" if good is None else ("text-success" if good else "text-danger")
    change_text = "no previous data" if change is None else f"{arrow} {signed_change(change)} % vs previous period"
    if change is not None and unit == "%" and previous is not None:  # a rate moves by points, not by percent
        points = value - previous
        change_text = f"{arrow} {signed_change(points)} percentage point{'' if abs(round(points, 1)) == 1 else 's'} vs previous period"
    if untracked:
        change_text = f"no {untracked} events recorded for this selection"
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div(label, className="small text-uppercase text-muted fw-semibold"),
        html.Div("n/a" if untracked else number(value, unit), className="fs-3 fw-semibold kpi-value"),
        html.Div(change_text, className=f"small {colour} kpi-change"),
    ]), className="h-100 shadow-sm kpi-tile"), xs=6, md=4, xl=True)
