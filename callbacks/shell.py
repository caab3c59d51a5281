"""The shell's callbacks: the URL holds the view (tab, range, channels) both ways,
the selected tab's content, and a database-status alert."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dash import Dash, Input, Output, State, ctx, no_update

from callbacks.alerts import DEFAULT_FORM, draft_from_view
from callbacks.common import ask
from callbacks.view import ViewState, iso_time, parse_search, to_search
from layouts import alerts, compare, correlations, drilldown, ids, investigate, metrics, overview, shell, trends
from services.alerts import firing_rules
from services.custom_metrics import list_metrics
from services.rollup import rollup_watermark


def sync_view(search, tab, rng, start, end, channels, known_channels, trigger):
    """One callback owns both directions, so the URL and the controls never disagree.

    On a URL change (load, back button, shared link) the controls follow the URL; on a
    control change the URL follows the controls.
    """
    current = parse_search(search, known_channels)
    if trigger in (None, ids.URL):
        state = current
    else:
        if trigger == ids.CUSTOM_RANGE:  # dates picked by hand replace a bucket's datetimes
            start, end = iso_time(start), iso_time(end)
        else:
            start, end = current.start or iso_time(start), current.end or iso_time(end)
        state = replace(current, tab=tab or shell.DEFAULT_TAB, range=rng or shell.DEFAULT_RANGE,
                        start=start, end=end, channels=tuple(c for c in known_channels if c in (channels or [])))
        if state.range != "custom":
            state = replace(state, start=None, end=None)
        elif not (state.start and state.end):
            # custom picked but no dates yet: keep the URL until both are chosen
            return no_update, no_update, no_update, no_update, no_update, list(state.channels), {}
    search_out = to_search(state)
    wrapper_style = {} if state.range == "custom" else {"display": "none"}
    return (search_out if search_out != search else no_update, state.tab, state.range,
            (state.start or "")[:10] or None, (state.end or "")[:10] or None, list(state.channels), wrapper_style)


def tab_content(tab: str, state, channels: tuple[str, ...] = ("email", "sms", "push")):
    custom, _ = ask(list_metrics)  # every metric picker offers the saved custom metrics too
    if tab == "overview":
        return overview.layout(state.metric, custom)
    if tab == "drilldown":
        return drilldown.layout()
    if tab == "trends":
        return trends.layout(state.metric, state.detector, custom)
    if tab == "compare":
        return compare.layout(state.metric, state.compare_to, custom)
    if tab == "correlations":
        return correlations.layout(state.correlate, state.lag_max, state.detrend, channels, custom)
    if tab == "metrics":
        return metrics.layout()
    if tab == "investigate":
        return investigate.layout()
    if tab == "alerts":
        drafted = state.alert == "new"
        values = draft_from_view(state, custom) if drafted else DEFAULT_FORM
        return alerts.layout(values, custom, channels, drafted=drafted)
    return overview.layout(state.metric, custom)  # an unknown tab shows the default one


def keeps_content(tab, rendered) -> bool:
    """Whether the tab on show stays as it is when the URL changes. The Alerts tab does: it
    holds a form being filled in, and its table and history follow the URL themselves."""
    return tab == "alerts" and rendered == "alerts"


def data_as_of_text(status: dict, state) -> str:
    """"Data as of 06:52:10 UTC · newest bucket still filling", from the rollup watermark."""
    watermark = status.get("watermark")
    if not watermark:
        return "No rollup has run yet; charts read raw events"
    when = datetime.fromisoformat(watermark)
    if not status.get("lag_seconds"):  # nothing waits: the watermark is the last fold, not a delay
        text = f"Everything ingested is rolled up (last fold {when:%Y-%m-%d %H:%M:%S} UTC)"
    else:
        text = f"Rolled up to {when:%Y-%m-%d %H:%M:%S} UTC ({status['lag_seconds']:.0f} s ago)"
    if state.range != "custom":
        text += " · newest bucket still filling"
    return text


def firing_link(state: ViewState, firing: list[dict], prefix: str) -> str:
    """The Alerts tab in the current view, with the rule picked when a single one fires."""
    picked = str(firing[0]["id"]) if len(firing) == 1 else None
    return prefix + to_search(replace(state, tab="alerts", alert=picked))


def register(dash_app: Dash, known_channels: tuple[str, ...], database_status) -> None:
    prefix = dash_app.config.requests_pathname_prefix

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

    @dash_app.callback(Output(ids.TAB_CONTENT, "children"), Output(ids.RENDERED_TAB, "data"),
                       Input(ids.TABS, "active_tab"), State(ids.URL, "search"), State(ids.RENDERED_TAB, "data"))
    def _tab_content(tab, search, rendered):
        if keeps_content(tab, rendered):
            return no_update, no_update
        state = parse_search(search, known_channels)
        return tab_content(tab, state, known_channels), tab if tab in shell.TAB_IDS else None

    @dash_app.callback(Output(ids.REFRESH, "interval"), Output(ids.REFRESH, "disabled"),
                       Input(ids.REFRESH_CHOICE, "value"))
    def _refresh(seconds):
        if seconds not in {value for value, _ in shell.REFRESH_CHOICES}:  # not one the dropdown offers
            seconds = shell.DEFAULT_REFRESH
        return max(seconds, 1) * 1000, not seconds

    @dash_app.callback(Output(ids.DATA_AS_OF, "children"), Input(ids.REFRESH, "n_intervals"),
                       Input(ids.URL, "search"))
    def _data_as_of(_tick, search):
        status, error = ask(rollup_watermark)
        return data_as_of_text(status, parse_search(search, known_channels)) if not error else ""

    @dash_app.callback(Output(ids.STATUS_ALERT, "children"), Input(ids.STATUS_POLL, "n_intervals"))
    def _status(_n):
        problem = database_status()
        return shell.error_alert(problem) if problem else None

    @dash_app.callback(Output(ids.FIRING_BADGE, "children"), Input(ids.STATUS_POLL, "n_intervals"),
                       Input(ids.URL, "search"), Input(ids.ALERTS_VERSION, "data"))
    def _firing(_tick, search, _version):
        firing, error = ask(firing_rules)
        if error or not firing:
            return None
        state = parse_search(search, known_channels)
        return shell.firing_badge([f["name"] for f in firing], firing_link(state, firing, prefix))
