"""The shell's callbacks: the URL holds the view (tab, range, channels) both ways,
the selected tab's content, and a database-status alert."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, no_update

from callbacks.alerts import DEFAULT_FORM, draft_from_view
from callbacks.common import ask, guarded
from callbacks.view import ViewState, iso_time, parse_search, to_search, window_of
from dashapp.extensions import db
from dashapp.replica import replica_sentence
from layouts import (
    alerts,
    compare,
    correlations,
    drilldown,
    ids,
    investigate,
    metrics,
    overview,
    shell,
    trends,
)
from services.alerts.evaluation import firing_rules
from services.query.custom_metrics import list_metrics
from services.query.timerange import iso_z, resolve_range
from services.rollup.fold import rollup_watermark


def typed_time(text) -> datetime | None:
    """A time typed into From or To: an ISO date (midnight) or date and time, UTC unless it
    says otherwise ("2026-11-25 06:00", "2026-11-25T06:00:00Z"); None if it is neither."""
    normal = iso_time(text) if isinstance(text, str) else None
    if normal is None:
        return None
    return datetime.fromisoformat(normal + "T00:00:00+00:00" if len(normal) == 10 else normal.replace("Z", "+00:00"))


def shown_time(t: datetime) -> str:
    """How From and To show a time: 2026-11-25 06:00 (seconds only when there are some)."""
    return t.strftime("%Y-%m-%d %H:%M:%S" if t.second or t.microsecond else "%Y-%m-%d %H:%M")


def absolute_window(state: ViewState, now: datetime) -> tuple[datetime, datetime] | None:
    """The window a view shows, as absolute UTC times (a preset's end is now)."""
    window = window_of(state)
    return None if window is None else resolve_range(window[0], window[1], now)


def sync_view(search, rng, typed_from, typed_to, channels, known_channels, trigger, now: datetime | None = None):
    """One callback owns both directions, so the URL and the controls never disagree.

    On a URL change (load, back button, shared link, a tab's link) the controls follow the
    URL; on a control change the URL follows the controls. From and To always show the window on
    show in UTC; typing into them (Enter or leaving the field) looks at exactly that window,
    and picking Custom turns the window on show into fixed times. Returns (search, range,
    from, to, from invalid, to invalid, channels).
    """
    now = now or datetime.now(timezone.utc)
    current = parse_search(search, known_channels)
    if trigger in (None, ids.URL):
        state = current
    elif trigger in (ids.RANGE_FROM, ids.RANGE_TO):
        start, end = typed_time(typed_from), typed_time(typed_to)
        bad_from, bad_to = start is None, end is None or (start is not None and end <= start)
        if bad_from or bad_to:  # say which, and change nothing until both are right
            return (no_update,) * 4 + (bad_from, bad_to, no_update)
        state = replace(current, range="custom", start=iso_z(start), end=iso_z(end))
    else:
        state = replace(current, range=rng or shell.DEFAULT_RANGE,
                        channels=tuple(c for c in known_channels if c in (channels or [])))
        if state.range != "custom":
            state = replace(state, start=None, end=None)
        elif current.range != "custom":
            window = absolute_window(current, now)
            state = replace(state, start=iso_z(window[0]), end=iso_z(window[1])) if window else current
    window = absolute_window(state, now)
    shown = (shown_time(window[0]), shown_time(window[1])) if window else ("", "")
    return (to_search(state) if state != current else no_update, state.range, *shown, False, False,
            list(state.channels))


def url_controls(search: str | None, channels: tuple[str, ...], now: datetime | None = None) -> dict:
    """What the filters show for an address: {range, from, to, channels}."""
    _, rng, shown_from, shown_to, _, _, picked = sync_view(search, None, None, None, None, channels, None, now)
    return {"range": rng, "from": shown_from, "to": shown_to, "channels": picked}


def tab_links(state: ViewState) -> tuple[list[str], list[bool]]:
    """Each tab's address (this view on that tab) and whether it is the one on show."""
    return ([to_search(replace(state, tab=tab)) for tab in shell.TAB_IDS],
            [tab == state.tab for tab in shell.TAB_IDS])


def page_look(state: ViewState) -> tuple:
    """(colour mode, page classes, dark switch, compact switch) the URL asks for."""
    return ("dark" if state.dark else "light", "analytics-page" + (" density-compact" if state.compact else ""),
            state.dark, state.compact)


def search_with_look(search: str | None, dark, compact, known_channels: tuple[str, ...]):
    """The URL with the theme and density the navbar switches say (kept in the URL, so a
    wall screen's link holds them)."""
    state = parse_search(search, known_channels)
    chosen = replace(state, dark=dark is True, compact=compact is True)
    return to_search(chosen) if chosen != state else no_update


def tab_content(tab: str, state, channels: tuple[str, ...] = ("email", "sms", "push")):
    custom, _ = ask(list_metrics)  # every metric picker offers the saved custom metrics too
    if tab == "overview":
        return overview.layout(state.metric, custom)
    if tab == "drilldown":
        return drilldown.layout(state.drill_metric, custom)
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


def first_page(search: str, channels: tuple[str, ...]) -> dict:
    """The parts of a page that follow its address (`search`), as shell.page takes them: the
    tab's content and what it was built from, the filters' values, the canonical address."""
    state = parse_search(search, channels)
    return {"search": search, "content": tab_content(state.tab, state, channels), "rendered": content_key(state),
            "controls": url_controls(search, channels), "address": to_search(state)}


def content_key(state: ViewState) -> str:
    """What a tab's content is built from: the tab and the URL's parts its controls start
    from. The content is rebuilt only when this changes; a new range, channel filter or drill
    step leaves it in place (its charts follow the URL themselves), so nothing is asked twice
    and nothing blinks. The Alerts tab keeps its form whatever the URL says."""
    parts = {"overview": (state.metric,), "drilldown": (state.drill_metric,), "trends": (state.metric, state.detector),
             "compare": (state.metric, state.compare_to),
             "correlations": (",".join(state.correlate), state.lag_max, state.detrend)}.get(state.tab, ())
    return "|".join(map(str, (state.tab, *parts)))


def data_as_of_text(status: dict, state, replica: dict | None = None) -> str:
    """"Rolled up to 06:52:10 UTC (3 s ago) · newest bucket still filling · replica 0.02 s
    behind", from the rollup watermark and, with a read replica, its replay lag."""
    behind = replica_sentence(replica)
    watermark = status.get("watermark")
    if not watermark:
        return "No rollup has run yet; charts read raw events" + (" · " + behind if behind else "")
    when = datetime.fromisoformat(watermark)
    if not status.get("lag_seconds"):  # nothing waits: the watermark is the last fold, not a delay
        text = f"Everything ingested is rolled up (last fold {when:%Y-%m-%d %H:%M:%S} UTC)"
    else:
        text = f"Rolled up to {when:%Y-%m-%d %H:%M:%S} UTC ({status['lag_seconds']:.0f} s ago)"
    if state.range != "custom":
        text += " · newest bucket still filling"
    if behind:
        text += " · " + behind
    return text


def firing_link(state: ViewState, firing: list[dict], prefix: str) -> str:
    """The Alerts tab in the current view, with the rule picked when a single one fires."""
    picked = str(firing[0]["id"]) if len(firing) == 1 else None
    return prefix + to_search(replace(state, tab="alerts", alert=picked))


def register(dash_app: Dash, known_channels: tuple[str, ...], database_status) -> None:
    prefix = dash_app.config.requests_pathname_prefix

    @dash_app.callback(
        Output(ids.URL, "search"), Output(ids.RANGE, "value"), Output(ids.RANGE_FROM, "value"),
        Output(ids.RANGE_TO, "value"), Output(ids.RANGE_FROM, "invalid"), Output(ids.RANGE_TO, "invalid"),
        Output(ids.CHANNELS, "value"), Output(ids.ADDRESS, "data"),
        Input(ids.URL, "search"), Input(ids.RANGE, "value"), Input(ids.RANGE_FROM, "value"),
        Input(ids.RANGE_TO, "value"), Input(ids.CHANNELS, "value"),
        # a layout that read its address already holds the controls and the location's search,
        # so when the page loads no chart waits on a round trip of this one (which writes the
        # search the charts read); without, the location fills its search in and this runs
        prevent_initial_call=True,
    )
    def _sync(search, rng, typed_from, typed_to, channels):
        out = sync_view(search, rng, typed_from, typed_to, channels, known_channels, ctx.triggered_id)
        address = to_search(parse_search(search, known_channels)) if ctx.triggered_id == ids.URL else no_update
        return (*out, address)

    # the address bar shows the view's canonical address, in place of the one typed (no new
    # history entry, so Back leaves the dashboard rather than coming back to the same view)
    dash_app.clientside_callback(ClientsideFunction("analytics", "showAddress"), Input(ids.ADDRESS, "data"))

    @dash_app.callback(Output(ids.tab_link(ALL), "href"), Output(ids.tab_link(ALL), "active"),
                       Input(ids.URL, "search"))
    def _tab_links(search):
        return tab_links(parse_search(search, known_channels))

    @dash_app.callback(Output(ids.PAGE, "data-bs-theme"), Output(ids.PAGE, "className"),
                       Output(ids.THEME_DARK, "value"), Output(ids.DENSITY_COMPACT, "value"), Input(ids.URL, "search"))
    def _look(search):
        return page_look(parse_search(search, known_channels))

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.THEME_DARK, "value"),
                       Input(ids.DENSITY_COMPACT, "value"), State(ids.URL, "search"), prevent_initial_call=True)
    def _choose_look(dark, compact, search):
        return search_with_look(search, dark, compact, known_channels)

    @dash_app.callback(Output(ids.TAB_CONTENT, "children"), Output(ids.RENDERED_TAB, "data"),
                       Input(ids.URL, "search"), State(ids.RENDERED_TAB, "data"))
    def _tab_content(search, rendered):
        state = parse_search(search, known_channels)
        key = content_key(state)
        if key == rendered:
            return no_update, no_update
        return tab_content(state.tab, state, known_channels), key

    @dash_app.callback(Output(ids.REFRESH, "interval"), Output(ids.REFRESH, "disabled"),
                       Input(ids.REFRESH_CHOICE, "value"))
    def _refresh(seconds):
        if seconds not in {value for value, _ in shell.REFRESH_CHOICES}:  # not one the dropdown offers
            seconds = shell.DEFAULT_REFRESH
        return max(seconds, 1) * 1000, not seconds

    @dash_app.callback(Output(ids.DATA_AS_OF, "children"), Output(ids.DATA_AS_OF, "title"),
                       Input(ids.REFRESH, "n_intervals"), Input(ids.URL, "search"))
    def _data_as_of(_tick, search):  # the title holds the whole line where the navbar cuts it short
        status, error = ask(rollup_watermark)
        replica, _ = guarded(db.replica_status)
        text = data_as_of_text(status, parse_search(search, known_channels), replica) if not error else ""
        return text, text

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
