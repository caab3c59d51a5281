"""Drill-down callbacks: the URL's drill path picks the level; a bar click appends its
value; at the last level the events grid pages through the server with keyset cursors."""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

import orjson
from dash import ALL, MATCH, Dash, Input, Output, State, no_update

from callbacks.common import alert, ask, ask_report
from callbacks.view import (
    NO_VALUE,
    ViewState,
    drilled,
    metric_kind,
    parse_search,
    shown_on,
    to_search,
    valid_id,
    window_of,
)
from dashapp.caching import request_context
from layouts import drilldown, figures, ids
from services.analysis.drilldown import (
    REASONS,
    count_events,
    drill_level,
    drill_path,
    hierarchy,
    list_events,
)
from services.query.engine import query_metrics, template_names

DIMENSION_TITLES = {"channel": "channel", "status": "status", "template_id": "template",
                    "error_code": "error code", "provider": "provider"}
PAGE_WALK_LIMIT = 50


def path_of(state: ViewState) -> tuple[str, ...]:
    """The dimensions the URL's drill values stand for, in order."""
    return drill_path(metric_kind(state.drill_metric))


def drill_filters(state: ViewState) -> dict:
    return {d: (int(v) if d == "template_id" else v) for d, v in zip(path_of(state), state.drill)}


def event_filters(state: ViewState) -> dict:
    """What the events list of this view shows: the drill path, and the user when one is picked."""
    filters = {d: str(v) for d, v in drill_filters(state).items()}
    return {**filters, "user_id": state.user} if state.user else filters


def selection_key(state: ViewState) -> str:
    window = window_of(state) or ("", None)
    return "|".join([*state.drill, window[0], window[1] or "", ",".join(state.channels), state.user or ""])


def csv_href(state: ViewState, window: tuple) -> str:
    params = {"format": "csv", "start": window[0], **({"end": window[1]} if window[1] else {})}
    params.update(event_filters(state))
    return "/api/analytics/events?" + urlencode(params)


def level_view(state: ViewState, prefix: str, current_key: str | None) -> tuple:
    """(breadcrumb items, title, figure, chart style, events style, csv href, grid, count, alert)."""
    hidden, shown = {"display": "none"}, {}
    window = window_of(state)
    if window is None:
        return ([{"label": "All", "active": True}], "", figures.empty_figure("Pick an end after the start."),
                shown, hidden, "#", no_update, "", alert("The custom range is not valid.", "warning"))
    level, error = ask_report(drill_level, drill_filters(state), *window, None, state.drill_metric)
    if error:
        return ([{"label": "All", "active": True}], "", figures.empty_figure(error), shown, hidden, "#",
                no_update, "", alert(error))
    crumbs = [{"label": c.label, "href": prefix + to_search(replace(state, drill=state.drill[:i])),
               "active": i == len(level.breadcrumbs) - 1 and not state.user} for i, c in enumerate(level.breadcrumbs)]
    if state.user:  # one user's events are listed, never rolled up: straight to the events
        crumbs.append({"label": f"User {state.user} ✕", "href": prefix + to_search(replace(state, user=None)),
                       "active": False})
    if level.can_drill_down and not state.user:
        title = f"{level.label} by {DIMENSION_TITLES[level.dimension]}"
        data = [d for d in level.data if level.dimension != "channel" or not state.channels
                or d.key in state.channels]  # the global channel filter narrows the top level
        keyed = (lambda k: NO_VALUE if k is None else k) if level.dimension in REASONS else (lambda k: k)
        records = [{level.dimension: keyed(d.key), "value": d.value} for d in data]
        labels = {keyed(d.key): d.label for d in level.data}
        figure = figures.bars(records, level.dimension, level.label, level.unit, revision=to_search(state), labels=labels,
                              height=360)
        return crumbs, title, figure, shown, hidden, "#", None, "", None
    key = selection_key(state)
    grid = no_update if key == current_key else drilldown.events_grid(key)
    if state.user or any(d in REASONS for d in drill_filters(state)):
        counted, _ = ask(count_events, event_filters(state), *window, context=request_context())
    else:
        total, _ = ask(query_metrics, "events", (), *window, {d: [v] for d, v in drill_filters(state).items()},
                       context=request_context())
        counted = total.points[0].value if total and total.points else None
    count = f"{counted:,.0f} events" if counted is not None else ""
    title = f"Events of user {state.user}, newest first" if state.user else "Individual events, newest first"
    return crumbs, title, no_update, hidden, shown, csv_href(state, window), grid, count, None


def search_after_bar_click(search: str, click: dict, channels: tuple[str, ...]) -> str:
    state = parse_search(search, channels)
    value = click["points"][0].get("customdata")
    if value is None or len(state.drill) >= len(hierarchy(drill_filters(state), metric_kind(state.drill_metric))):
        return no_update
    return to_search(drilled(state, value))


def search_after_metric_pick(search: str, metric, channels: tuple[str, ...]) -> str:
    """The bars show `metric`; the drill path is kept while it means the same dimensions
    (a count's channel → status → template, a ratio's channel → template), else it starts over."""
    state = parse_search(search, channels)
    chosen = parse_search(to_search(replace(state, drill_metric=metric)), channels) if isinstance(metric, str) else state
    if chosen.drill_metric == state.drill_metric:
        return no_update
    if path_of(chosen) != path_of(state):
        chosen = replace(chosen, drill=())
    return to_search(chosen)


def search_after_cell_click(search: str, click: dict | None, channels: tuple[str, ...]) -> str:
    """A click on a notification id (or a user id) opens it on the Investigate tab."""
    if not isinstance(click, dict) or click.get("colId") not in ("notification_id", "user_id"):
        return no_update
    found = valid_id(click.get("value") if isinstance(click.get("value"), str) else None)
    if found is None:
        return no_update
    state = parse_search(search, channels)
    return to_search(replace(state, tab="investigate", find=found, drill=(), user=None))


def sort_of(request: dict) -> str:
    """The grid's sort as the events API takes it (the API refuses unknown columns)."""
    model = (request or {}).get("sortModel") or []
    first = model[0] if isinstance(model, list) and model and isinstance(model[0], dict) else {}
    column, direction = first.get("colId"), first.get("sort")
    if not isinstance(column, str):
        return "-created_at"
    return ("-" if direction == "desc" else "") + column


def _row_number(value, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10_000_000 else default


def _known_cursors(cursors) -> dict[str, str]:
    """The remembered cursors ("sort|row" → cursor) the store holds, anything else dropped."""
    if not isinstance(cursors, dict):
        return {}
    return {k: v for k, v in cursors.items() if isinstance(k, str) and isinstance(v, str) and k.count("|") == 1
            and k.split("|")[1].isdigit()}


def rows_for(state: ViewState, request: dict, cursors: dict) -> tuple[dict, dict]:
    """One block of the grid: walk keyset cursors to its first row (remembered per block)."""
    window = window_of(state)
    cursors = _known_cursors(cursors)
    start_row = _row_number(request.get("startRow"), 0)
    end_row = _row_number(request.get("endRow"), start_row + 100)
    size = max(1, min(end_row - start_row, 1000))
    sort = sort_of(request)
    known = {int(k.split("|")[1]): v for k, v in cursors.items() if k.startswith(sort + "|")}
    at = max((row for row in known if row <= start_row), default=0)
    cursor = known.get(at)
    filters = event_filters(state)
    walked = 0
    while True:
        page, error = ask(list_events, filters, *window, size if at == start_row else min(1000, start_row - at),
                          cursor, sort, context=request_context())
        if error:
            return {"rowData": [], "rowCount": 0}, cursors
        if at == start_row or page.next_cursor is None or walked >= PAGE_WALK_LIMIT:
            break
        at += len(page.events)
        cursor = page.next_cursor
        cursors = {**cursors, f"{sort}|{at}": cursor}
        walked += 1
    if page.next_cursor:
        cursors = {**cursors, f"{sort}|{start_row + len(page.events)}": page.next_cursor}
    names, _ = ask(template_names)
    response = {"rowData": [grid_row(e, names) for e in page.events]}
    if page.next_cursor is None:
        response["rowCount"] = start_row + len(page.events)
    return response, cursors


def grid_row(event: dict, names: dict | None = None) -> dict:
    """An event as the grid shows it: readable times (to the millisecond), the template by
    name (with its id), metadata as text."""
    row = dict(event)
    template = row.get("template_id")
    row["template"] = "" if template is None else (f"{names[template]} (#{template})" if names and template in names
                                                   else f"#{template}")
    for key in ("created_at", "ingested_at"):
        row[key] = row[key].replace("T", " ").rstrip("Z")[:23]
    row["metadata"] = orjson.dumps(row["metadata"]).decode() if row["metadata"] is not None else ""
    return row


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    prefix = dash_app.config.requests_pathname_prefix

    @dash_app.callback(
        Output(ids.BREADCRUMB, "items"), Output(ids.DRILL_TITLE, "children"), Output(ids.DRILL_CHART, "figure"),
        Output(ids.DRILL_CHART_WRAPPER, "style"), Output(ids.EVENTS_WRAPPER, "style"),
        Output(ids.EVENTS_CSV, "href"), Output(ids.EVENTS_HOLDER, "children"), Output(ids.EVENTS_COUNT, "children"),
        Output(ids.DRILL_ALERT, "children"),
        Input(ids.URL, "search"), Input(ids.REFRESH, "n_intervals"), State(ids.EVENTS_HOLDER, "children"))
    def _level(search, _tick, holder):
        current = (holder or {}).get("props", {}).get("data-key") if isinstance(holder, dict) else None
        return level_view(shown_on(search, channels, "drilldown"), prefix, current)

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.DRILL_METRIC, "value"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _choose(metric, search):
        return search_after_metric_pick(search, metric, channels)

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.DRILL_CHART, "clickData"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _bar_click(click, search):
        return search_after_bar_click(search, click, channels) if click else no_update

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True),
                       Input({"type": "events-grid", "key": ALL}, "cellClicked"), State(ids.URL, "search"),
                       prevent_initial_call=True)
    def _cell_click(clicks, search):
        return search_after_cell_click(search, next((c for c in clicks or [] if c), None), channels)

    @dash_app.callback(
        Output({"type": "events-grid", "key": MATCH}, "getRowsResponse"),
        Output({"type": "events-cursors", "key": MATCH}, "data"),
        Input({"type": "events-grid", "key": MATCH}, "getRowsRequest"),
        State({"type": "events-cursors", "key": MATCH}, "data"), State(ids.URL, "search"),
        prevent_initial_call=True)
    def _rows(request, cursors, search):
        if not request:
            return no_update, no_update
        return rows_for(parse_search(search, channels), request, cursors or {})
