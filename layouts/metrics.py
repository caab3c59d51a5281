"""The Metrics tab: a form to write a formula with live validation (the error underlined
where it is), a preview over the selected range, the saved formulas, and the catalogue."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.overview import card, graph
from services.query.catalogue import CATALOGUE
from services.query.custom_metrics import UNITS


def layout() -> html.Div:
    form = dbc.Form([
        dbc.Row([
            dbc.Col([dbc.Label("Name (for the API and URLs)", html_for=ids.FORMULA_NAME),
                     dbc.Input(id=ids.FORMULA_NAME, placeholder="ctr", maxLength=40)], md=6),
            dbc.Col([dbc.Label("Display name", html_for=ids.FORMULA_DISPLAY),
                     dbc.Input(id=ids.FORMULA_DISPLAY, placeholder="Click-through rate", maxLength=100)], md=6),
        ], className="g-3 mb-2"),
        dbc.Label("Formula", html_for=ids.FORMULA_TEXT),
        dbc.Textarea(id=ids.FORMULA_TEXT, placeholder="(clicked / delivered) * 100", maxLength=500,
                     style={"fontFamily": "monospace"}, rows=2),
        html.Div(id=ids.FORMULA_FEEDBACK, className="small mt-1 mb-2", style={"minHeight": "2.5rem"}),
        dbc.Row([
            dbc.Col([dbc.Label("Unit", html_for=ids.FORMULA_UNIT),
                     dbc.Select(id=ids.FORMULA_UNIT, options=[{"label": u, "value": u} for u in UNITS], value="none")],
                    md=3),
            dbc.Col([dbc.Label("Description", html_for=ids.FORMULA_DESCRIPTION),
                     dbc.Input(id=ids.FORMULA_DESCRIPTION, maxLength=1000)], md=9),
        ], className="g-3 mb-3"),
        dbc.Button("Save", id=ids.FORMULA_SAVE, color="primary"),
        html.Div(id=ids.FORMULA_MESSAGE, className="mt-2"),
    ])
    catalogue = dbc.Table([
        html.Thead(html.Tr([html.Th("Name"), html.Th("Unit"), html.Th("Definition")])),
        html.Tbody([html.Tr([html.Td(html.Code(m.name)), html.Td(m.unit), html.Td(m.description)])
                    for m in CATALOGUE.values()]),
    ], size="sm", className="mb-0")
    return html.Div([
        dcc.Store(id=ids.METRICS_VERSION, data=0),
        dcc.Store(id=ids.METRIC_PENDING_DELETE, data=None),
        dcc.ConfirmDialog(id=ids.METRIC_CONFIRM_DELETE),
        dbc.Row([
            dbc.Col(card("Write a formula", form, "Operators + − × ÷ ( ), functions abs, min, max, round, "
                                                  "coalesce; names from the catalogue or other custom metrics."),
                    lg=6),
            dbc.Col(card("Preview by channel over the selected range", graph(ids.FORMULA_PREVIEW, 340)), lg=6),
        ], className="g-3 mb-3"),
        card("Saved formulas", html.Div(id=ids.SAVED_METRICS)),
        html.Div(className="mb-3"),
        card("Built-in metrics", catalogue),
    ])


def feedback(formula: str, check: dict) -> html.Div:
    """The formula with the first error underlined at its position, and the sentence."""
    if not formula:
        return html.Div("Type a formula, e.g. (clicked / delivered) * 100", className="text-muted")
    if check["valid"]:
        uses = ", ".join(check["references"]) or "no metric"
        return html.Div([html.Span("✓ valid", className="text-success fw-semibold"), f" — uses {uses}"])
    error = check["errors"][0]
    at = min(error["position"], len(formula))
    end = at + 1
    while end < len(formula) and (formula[end].isalnum() or formula[end] == "_") and formula[at].isalnum():
        end += 1  # underline the whole name, not its first letter
    marked = html.Code([formula[:at], html.U(formula[at:end] or " ", className="text-danger fw-bold formula-error"),
                        formula[end:]])
    return html.Div([marked, html.Div(error["message"], className="text-danger formula-message")])


def saved_table(saved: list) -> html.Div | dbc.Table:
    if not saved:
        return html.P("No custom metrics yet.", className="text-muted mb-0")
    rows = [html.Tr([
        html.Td(html.Code(m.name)), html.Td(m.display_name), html.Td(html.Code(m.formula)), html.Td(m.unit),
        html.Td([dbc.Button("Edit", id={"type": "edit-metric", "name": m.name}, size="sm", color="secondary",
                            outline=True, className="me-1"),
                 dbc.Button("Delete", id={"type": "delete-metric", "name": m.name}, size="sm", color="danger",
                            outline=True)]),
    ]) for m in saved]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Name", "Display name", "Formula", "Unit", "")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="mb-0")
