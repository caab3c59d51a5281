"""The Drill-down tab: a breadcrumb trail, a bar chart of the next dimension, and at the
last level the individual events in a server-side paged grid with a CSV download."""
from __future__ import annotations

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.overview import graph, metric_options

EVENT_COLUMNS = [
    {"field": "created_at", "headerName": "Time (UTC)", "sortable": True, "minWidth": 200},
    {"field": "channel", "sortable": False, "width": 100},
    {"field": "status", "sortable": False, "width": 110},
    {"field": "template", "headerName": "Template", "sortable": False, "minWidth": 180},
    {"field": "processing_time_ms", "headerName": "Processing (ms)", "sortable": True, "width": 150},
    {"field": "error_code", "headerName": "Error code", "sortable": False, "width": 150},
    {"field": "provider", "headerName": "Provider", "sortable": False, "width": 110},
    {"field": "notification_id", "headerName": "Notification", "sortable": False, "minWidth": 170,
     "cellClass": "grid-link", "headerTooltip": "Click an id to see the notification's whole lifecycle"},
    {"field": "user_id", "headerName": "User", "sortable": False, "width": 120, "cellClass": "grid-link",
     "headerTooltip": "Click an id to investigate the user"},
    {"field": "event_id", "headerName": "Event", "sortable": False, "minWidth": 220},
    {"field": "ingested_at", "headerName": "Ingested (UTC)", "sortable": False, "minWidth": 200},
    {"field": "metadata", "sortable": False, "minWidth": 200},
]


def layout(metric: str = "events", custom: list | None = None) -> html.Div:
    """`metric`: what the bars show (a ratio such as a rate drills channel → template)."""
    return html.Div([
        dbc.Row([
            dbc.Col(dbc.Breadcrumb(id=ids.BREADCRUMB, items=[{"label": "All", "active": True}], className="mb-0"),
                    className="d-flex align-items-center"),
            dbc.Col([dbc.Label("Bars show", html_for=ids.DRILL_METRIC, className="small text-muted mb-0 me-2 text-nowrap"),
                     dcc.Dropdown(id=ids.DRILL_METRIC, options=metric_options(custom), value=metric, clearable=False,
                                  style={"flex": 1})], md=4, className="d-flex align-items-center"),
        ], className="mb-2 g-2"),
        html.Div(id=ids.DRILL_ALERT),
        html.H5(id=ids.DRILL_TITLE, className="mb-2"),
        html.Div(dbc.Card(dbc.CardBody(graph(ids.DRILL_CHART, 380)), className="shadow-sm"),
                 id=ids.DRILL_CHART_WRAPPER),
        html.Div([
            html.Div([
                html.A("Download CSV", id=ids.EVENTS_CSV, href="#", className="btn btn-outline-secondary btn-sm"),
                html.Span(" the events of this selection (up to 1,000,000).", className="small text-muted"),
                html.Span(id=ids.EVENTS_COUNT, className="small fw-semibold ms-3"),
            ], className="mb-2"),
            html.Div(id=ids.EVENTS_HOLDER),
        ], id=ids.EVENTS_WRAPPER, style={"display": "none"}),
    ])


def events_grid(key: str) -> html.Div:
    """A fresh grid per selection: AG Grid's infinite model asks the server for each block."""
    return html.Div([
        dag.AgGrid(
            id=ids.events_grid(key), columnDefs=EVENT_COLUMNS, rowModelType="infinite",
            defaultColDef={"resizable": True, "filter": False},
            dashGridOptions={"cacheBlockSize": 100, "maxBlocksInCache": 50, "rowBuffer": 0,
                             "infiniteInitialRowCount": 1, "animateRows": False},
            style={"height": "560px"}, className="ag-theme-alpine"),
        dcc.Store(id=ids.events_cursors(key), data={}),
    ], **{"data-key": key})
