"""The page around every tab: navbar, global time range and channel filter, tabs."""
from __future__ import annotations

from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids


@dataclass(frozen=True)
class Tab:
    id: str
    label: str
    coming: str  # what the tab will show, until it does


TABS: tuple[Tab, ...] = (
    Tab("overview", "Overview", "KPI tiles with their change against the previous period, the chosen "
        "metric over time by channel, volume by channel and status, and an hour × weekday heatmap."),
    Tab("trends", "Trends", "Percent change, moving averages, anomalies with their explanation, "
        "and the daily and weekly seasonality of any metric."),
    Tab("compare", "Compare", "Channels, templates and periods side by side, with the significance "
        "of each difference."),
    Tab("drilldown", "Drill-down", "From totals to channel, status, template and the individual "
        "events, with a breadcrumb trail back."),
    Tab("metrics", "Metrics", "Custom metric formulas: write, validate, preview and save them."),
    Tab("correlations", "Correlations", "Which metrics move together once the daily cycle is "
        "removed, with lags and multiple-comparison control."),
)
TAB_IDS = tuple(t.id for t in TABS)
DEFAULT_TAB = "overview"

RANGE_PRESETS: tuple[tuple[str, str], ...] = (
    ("1h", "Last hour"), ("6h", "Last 6 hours"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"),
    ("30d", "Last 30 days"), ("90d", "Last 90 days"), ("custom", "Custom dates"),
)
RANGE_IDS = tuple(r for r, _ in RANGE_PRESETS)
DEFAULT_RANGE = "24h"


REFRESH_CHOICES: tuple[tuple[int, str], ...] = (
    (0, "Paused"), (10, "Every 10 s"), (30, "Every 30 s"), (60, "Every minute"), (300, "Every 5 minutes"))
DEFAULT_REFRESH = 30


def navbar(title: str = "Notification Analytics") -> dbc.Navbar:
    return dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand(title, className="fw-semibold"),
            html.Span(id=ids.DATA_AS_OF, className="small text-white-50 ms-auto"),
        ], fluid=True),
        color="dark", dark=True, className="mb-3",
    )


def filters(channels: tuple[str, ...]) -> dbc.Row:
    return dbc.Row(
        [
            dbc.Col([
                dbc.Label("Time range", html_for=ids.RANGE, className="small text-muted mb-1"),
                dcc.Dropdown(id=ids.RANGE, options=[{"label": lbl, "value": v} for v, lbl in RANGE_PRESETS],
                             value=DEFAULT_RANGE, clearable=False),
            ], md=3),
            dbc.Col(html.Div([
                dbc.Label("From – to (UTC)", className="small text-muted mb-1"),
                dcc.DatePickerRange(id=ids.CUSTOM_RANGE, display_format="YYYY-MM-DD", clearable=False),
            ], id=ids.CUSTOM_RANGE_WRAPPER, style={"display": "none"}), md="auto"),
            dbc.Col([
                dbc.Label("Channels", html_for=ids.CHANNELS, className="small text-muted mb-1"),
                dcc.Dropdown(id=ids.CHANNELS, options=[{"label": c.upper() if c == "sms" else c.capitalize(),
                                                         "value": c} for c in channels],
                             value=[], multi=True, placeholder="All channels"),
            ], md=4),
            dbc.Col([
                dbc.Label("Auto-refresh", html_for=ids.REFRESH_CHOICE, className="small text-muted mb-1"),
                dcc.Dropdown(id=ids.REFRESH_CHOICE, options=[{"label": lbl, "value": v} for v, lbl in REFRESH_CHOICES],
                             value=DEFAULT_REFRESH, clearable=False, searchable=False),
            ], md=2, className="ms-auto"),
        ],
        className="g-3 mb-3 align-items-end",
    )


def page(channels: tuple[str, ...]) -> html.Div:
    return html.Div([
        dcc.Location(id=ids.URL, refresh=False),
        dcc.Interval(id=ids.STATUS_POLL, interval=30_000),
        dcc.Interval(id=ids.REFRESH, interval=DEFAULT_REFRESH * 1000),
        navbar(),
        dbc.Container([
            html.Div(id=ids.STATUS_ALERT),
            filters(channels),
            dbc.Tabs([dbc.Tab(label=t.label, tab_id=t.id) for t in TABS], id=ids.TABS,
                     active_tab=DEFAULT_TAB, className="mb-3"),
            html.Div(id=ids.TAB_CONTENT),
        ], fluid=True),
    ])


def placeholder(tab_id: str) -> dbc.Card:
    tab = next(t for t in TABS if t.id == tab_id)
    return dbc.Card(dbc.CardBody([
        html.H5(tab.label, className="card-title"),
        html.P(f"Coming here: {tab.coming}", className="text-muted mb-0"),
    ]))


def error_alert(message: str) -> dbc.Alert:
    return dbc.Alert(message, color="danger", className="mb-3")
