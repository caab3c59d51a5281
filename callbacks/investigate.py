"""Investigate callbacks: the navbar's Find box opens a user or a notification; the view
follows the URL's `find`; a click on the timeline opens that notification."""
from __future__ import annotations

from dataclasses import replace

from dash import Dash, Input, Output, State, no_update
from flask import current_app

from callbacks.common import alert, ask
from callbacks.view import ViewState, parse_search, shown_on, to_search, valid_id, window_of
from dashapp.caching import request_context
from layouts import ids, investigate, shell
from services.analysis.investigate import lifecycle, user_activity

BAD_ID = "Ids are 1–100 letters, digits and . _ : -"


def find_search(search: str | None, typed, channels: tuple[str, ...]) -> tuple:
    """(new URL search, input invalid, message) for what was typed into Find."""
    text = typed.strip() if isinstance(typed, str) else ""
    if not text:
        return no_update, False, ""
    found = valid_id(text)
    if found is None:
        return no_update, True, BAD_ID
    state = parse_search(search, channels)
    return to_search(replace(state, tab="investigate", find=found, drill=(), user=None)), False, ""


def span_text(state: ViewState) -> str:
    """"in the last 24 hours", "from 2026-11-20 to 2026-11-21 UTC"."""
    if state.range != "custom":
        label = dict(shell.RANGE_PRESETS)[state.range]
        return "in the " + label[0].lower() + label[1:]
    return f"from {state.start.replace('T', ' ').rstrip('Z')} to {state.end.replace('T', ' ').rstrip('Z')} UTC"


def linker(state: ViewState, prefix: str):
    def link(**changes) -> str:
        fresh = {"drill": (), "user": None, "find": None, **changes}
        return prefix + to_search(replace(state, **fresh))
    return link


def investigation(state: ViewState, prefix: str, retention_days: int) -> tuple:
    """(body, alert) for the URL's `find`: the notification with that id, the user with it,
    both, or a sentence saying neither exists."""
    if not state.find:
        return investigate.prompt(), None
    window = window_of(state)
    if window is None:
        return investigate.prompt(), alert("The custom range is not valid.", "warning")
    found, error = ask(lifecycle, state.find)
    activity, user_error = (None, None) if error else ask(user_activity, state.find, *window, context=request_context())
    if error or user_error:
        return investigate.prompt(), alert(error or user_error)
    link, revision, span = linker(state, prefix), to_search(state), span_text(state)
    parts = []
    if found.events:
        parts.append(investigate.notification_view(found, link, revision))
    if activity["events"]:
        parts.append(investigate.user_view(activity, span, link, revision))
    if not parts:
        parts.append(investigate.nothing_found(state.find, span, retention_days))
    return parts, None


def search_after_timeline_click(search: str, click: dict, channels: tuple[str, ...]) -> str:
    data = click["points"][0].get("customdata")
    found = valid_id(data[0]) if isinstance(data, list) and data and isinstance(data[0], str) else None
    state = parse_search(search, channels)
    if found is None or found == state.find:
        return no_update
    return to_search(replace(state, tab="investigate", find=found))


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    prefix = dash_app.config.requests_pathname_prefix

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Output(ids.FIND_INPUT, "invalid"),
                       Output(ids.FIND_MESSAGE, "children"),
                       Input(ids.FIND_BUTTON, "n_clicks"), Input(ids.FIND_INPUT, "n_submit"),
                       State(ids.FIND_INPUT, "value"), State(ids.URL, "search"), prevent_initial_call=True)
    def _find(_clicks, _submits, typed, search):
        return find_search(search, typed, channels)

    @dash_app.callback(Output(ids.INVESTIGATE_BODY, "children"), Output(ids.INVESTIGATE_ALERT, "children"),
                       Input(ids.URL, "search"))
    def _body(search):
        state = shown_on(search, channels, "investigate")
        return investigation(state, prefix, current_app.config["RAW_RETENTION_DAYS"])

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.INVESTIGATE_TIMELINE, "clickData"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _timeline_click(click, search):
        return search_after_timeline_click(search, click, channels) if click else no_update
