"""The Correlations tab: a matrix of the chosen metrics, and for a clicked cell both series
overlaid, their scatter with the fit line, the lags, and the sentence."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.overview import card, graph
from services.query.catalogue import CATALOGUE
from services.store.schema import channel_label

DEFAULT_SET = ("sms:delivery_rate", "email:bounce_rate", "email:delivery_rate", "push:delivery_rate",
               "email:open_rate", "sms:sent")


def spec_options(channels: tuple[str, ...], custom: list | None = None) -> list[dict]:
    named = [(m.name, m.label) for m in CATALOGUE.values()] + [(c.name, c.display_name) for c in custom or []]
    options = [{"label": label, "value": name} for name, label in named]
    for channel in channels:
        options += [{"label": f"{channel_label(channel)} · {label}", "value": f"{channel}:{name}"}
                    for name, label in named]
    return options


def layout(chosen: tuple[str, ...], lag_max: int, detrend: bool, channels: tuple[str, ...],
           custom: list | None = None) -> html.Div:
    return html.Div([
        dbc.Row([
            dbc.Col(dcc.Dropdown(id=ids.CORR_METRICS, options=spec_options(channels, custom), value=list(chosen or DEFAULT_SET),
                                 multi=True), md=7),
            dbc.Col(dcc.Dropdown(id=ids.CORR_LAG, options=[{"label": f"lags up to {k}", "value": k}
                                                           for k in (0, 1, 2, 3, 6, 12, 24)],
                                 value=lag_max, clearable=False), md=2),
            dbc.Col(dbc.Switch(id=ids.CORR_DETREND, label="remove daily cycle and trend", value=detrend), md=3),
        ], className="g-3 mb-3 align-items-center"),
        html.Div(id=ids.CORR_ALERT),
        dcc.Store(id=ids.CORR_REPORT),
        card("Correlation matrix (grey: not significant after Benjamini–Hochberg, or related by definition: def.)", graph(ids.CORR_MATRIX, 480),
             "Click a cell to see the pair."),
        html.Div(id=ids.CORR_SENTENCE, className="my-3 fs-5"),
        dbc.Row([
            dbc.Col(card("Both series", graph(ids.CORR_OVERLAY, 300)), lg=6),
            dbc.Col(card("Residuals against each other", graph(ids.CORR_SCATTER, 300)), lg=3),
            dbc.Col(card("Correlation by lag", graph(ids.CORR_LAGS, 300)), lg=3),
        ], className="g-3 mb-3"),
    ])
