"""The shell's callbacks: the URL holds the view (tab, range, channels) both ways,
the selected tab's content, and a database-status alert."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import parse_qs, urlencode

from dash import Dash, Input, Output, State, ctx, no_update

from layouts import ids, shell


@dataclass(frozen=True)
class ViewState:
    tab: str = shell.DEFAULT_TAB
    range: str = shell.DEFAULT_RANGE
    start: str | None = None  # ISO dates, only with range == "custom"
    end: str | None = None
    channels: tuple[str, ...] = ()


def _iso_date(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


def parse_search(search: str | None, known_channels: tuple[str, ...]) -> ViewState:
    """The view a query string asks for; anything unknown falls back to the default."""
    params = parse_qs((search or "").lstrip("?"))
    first = {k: v[0] for k, v in params.items() if v}
    tab = first.get("tab") if first.get("tab") in shell.TAB_IDS else shell.DEFAULT_TAB
    rng = first.get("range") if first.get("range") in shell.RANGE_IDS else shell.DEFAULT_RANGE
    start, end = _iso_date(first.get("start")), _iso_date(first.get("end"))
    if rng == "custom" and not (start and end and start <= end):
        rng, start, end = shell.DEFAULT_RANGE, None, None
    if rng != "custom":
        start = end = None
    requested = [c for c in first.get("channel", "").split(",") if c]
    channels = tuple(c for c in known_channels if c in requested)
    return ViewState(tab=tab, range=rng, start=start, end=end, channels=channels)


def to_search(state: ViewState) -> str:
    params = {"tab": state.tab, "range": state.range}
    if state.range == "custom":
        params.update(start=state.start, end=state.end)
    if state.channels:
        params["channel"] = ",".join(state.channels)
    return "?" + urlencode(params, safe=",")


def sync_view(search, tab, rng, start, end, channels, known_channels, trigger):
    """One callback owns both directions, so the URL and the controls never disagree.

    On a URL change (load, back button, shared link) the controls follow the URL; on a
    control change the URL follows the controls.
    """
    if trigger in (None, ids.URL):
        state = parse_search(search, known_channels)
    else:
        state = ViewState(tab=tab or shell.DEFAULT_TAB, range=rng or shell.DEFAULT_RANGE,
                          start=_iso_date(start), end=_iso_date(end),
                          channels=tuple(c for c in known_channels if c in (channels or [])))
        if state.range != "custom":
            state = replace(state, start=None, end=None)
        elif not (state.start and state.end):
            # custom picked but no dates yet: keep the URL until both are chosen
            return no_update, no_update, no_update, no_update, no_update, list(state.channels), {}
    search_out = to_search(state)
    wrapper_style = {} if state.range == "custom" else {"display": "none"}
    return (search_out if search_out != search else no_update, state.tab, state.range,
            state.start, state.end, list(state.channels), wrapper_style)


def register(dash_app: Dash, known_channels: tuple[str, ...], database_status) -> None:
    @dash_app.callback(
        Output(ids.URL, "search"), Output(ids.TABS, "active_tab"), Output(ids.RANGE, "value"),
        Output(ids.CUSTOM_RANGE, "start_date"), Output(ids.CUSTOM_RANGE, "end_date"),
        Output(ids.CHANNELS, "value"), Output(ids.CUSTOM_RANGE_WRAPPER, "style"),
        Input(ids.URL, "search"), Input(ids.TABS, "active_tab"), Input(ids.RANGE, "value"),
        Input(ids.CUSTOM_RANGE, "start_date"), Input(ids.CUSTOM_RANGE, "end_date"),
        Input(ids.CHANNELS, "value"),
    )
    def _sync(search, tab, rng, start, end, channels):
        return sync_view(search, tab, rng, start, end, channels, known_channels, ctx.triggered_id)

    @dash_app.callback(Output(ids.TAB_CONTENT, "children"), Input(ids.TABS, "active_tab"))
    def _tab_content(tab):
        return shell.placeholder(tab if tab in shell.TAB_IDS else shell.DEFAULT_TAB)

    @dash_app.callback(Output(ids.STATUS_ALERT, "children"), Input(ids.STATUS_POLL, "n_intervals"))
    def _status(_n):
        problem = database_status()
        return shell.error_alert(problem) if problem else None
