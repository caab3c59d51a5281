"""The Compare tab: a KPI card per channel with the best highlighted and the worst flagged,
the channels overlaid, this period against another, and templates ranked."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.overview import card, graph, metric_options
from services.analysis.compare import ComparedValue, Comparison
from services.query.format import number

COMPARE_TO_OPTIONS = [{"label": "vs the previous period", "value": "previous_period"},
                      {"label": "vs the same period last week", "value": "previous_week"},
                      {"label": "vs the same period last year", "value": "previous_year"}]


def layout(metric: str, compare_to: str, custom: list | None = None) -> html.Div:
    return html.Div([
        dbc.Row([
            dbc.Col(dcc.Dropdown(id=ids.COMPARE_METRIC, options=metric_options(custom), value=metric, clearable=False),
                    md=4),
            dbc.Col(dcc.Dropdown(id=ids.COMPARE_TO, options=COMPARE_TO_OPTIONS, value=compare_to, clearable=False),
                    md=4),
        ], className="g-3 mb-3"),
        html.Div(id=ids.COMPARE_ALERT),
        dcc.Loading(html.Div(id=ids.COMPARE_SUMMARY, className="mb-3"), delay_show=150),
        dbc.Row(id=ids.COMPARE_CARDS, className="g-3 mb-3"),
        dbc.Row([
            dbc.Col(card("Channels over time", graph(ids.COMPARE_CHART, hover_sync=True)), lg=6),
            dbc.Col(card("This period against the compared one", graph(ids.COMPARE_PERIOD, hover_sync=True)), lg=6),
        ], className="g-3 mb-3"),
        card("Templates, best to worst", dcc.Loading(html.Div(id=ids.COMPARE_TEMPLATES), delay_show=150),
             "Templates with fewer than 100 events behind the metric are listed but not ranked."),
    ])


def value_card(entry: ComparedValue, unit: str, role: str | None) -> dbc.Col:
    border = {"best": "border-success border-2", "worst": "border-danger border-2",
              "highest": "border-secondary border-2", "lowest": "border-secondary border-2"}.get(role, "")
    colour = {"best": "success", "worst": "danger"}.get(role, "secondary")
    badge = dbc.Badge(role, color=colour, className="ms-2") if role else None
    interval = "" if entry.ci_low is None else \
        f"95 % interval {number(entry.ci_low, unit)} – {number(entry.ci_high, unit)}"
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div([entry.label, badge], className="small text-uppercase text-muted fw-semibold"),
        html.Div(number(entry.total, unit), className="fs-3 fw-semibold"),
        html.Div(interval, className="small text-muted"),
        html.Div(f"{entry.volume:,.0f} events behind it", className="small text-muted"),
    ]), className=f"h-100 shadow-sm compare-card {border}"), md=4)


def template_table(result: Comparison, unit: str) -> dbc.Table | html.P:
    comparisons, ranking = result.comparisons, result.summary.ranking
    rows = []
    for rank, key in enumerate(ranking, start=1):
        entry = comparisons[key]
        rows.append(html.Tr([html.Td(rank), html.Td(entry.label), html.Td(number(entry.total, unit)),
                             html.Td("" if entry.ci_low is None else
                                     f"{number(entry.ci_low, unit)} – {number(entry.ci_high, unit)}"),
                             html.Td(f"{entry.volume:,.0f}")]))
    for key in result.below_volume_floor:
        entry = comparisons[key]
        rows.append(html.Tr([html.Td("—"), html.Td(entry.label), html.Td(number(entry.total, unit)),
                             html.Td("too few events to rank", className="text-muted"),
                             html.Td(f"{entry.volume:,.0f}")], className="text-muted"))
    if not rows:
        return html.P("No templates have events in this range.", className="text-muted mb-0")
    head = html.Thead(html.Tr([html.Th(h) for h in ("#", "Template", "Value", "95 % interval", "Events")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="mb-0")
