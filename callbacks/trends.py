"""Trends callbacks: one service call (the trend report) drives the headline, the chart,
the anomaly list and the profiles."""
from __future__ import annotations

from dataclasses import replace

from dash import Dash, Input, Output, State, no_update

from callbacks.common import alert, ask_report
from callbacks.view import ViewState, channel_filter, parse_search, shown_on, to_search, window_of
from layouts import figures, ids, trends
from services.analysis.trend_report import trend_report
from services.query.format import plain

WEEKDAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def trend_view(state: ViewState, prefix: str) -> tuple:
    """(headline, chart, anomalies, hour profile, weekday profile, alert)."""
    window = window_of(state)
    empty = figures.empty_figure("")
    if window is None:
        return None, empty, None, empty, empty, alert("The custom range is not valid.", "warning")
    report, error = ask_report(trend_report, state.metric, *window, None, channel_filter(state), None, state.detector)
    if error:
        return None, figures.empty_figure(error), None, empty, empty, alert(error)
    report = plain(report)  # drawn from the answer's JSON form, as the API sends it
    label, unit = report["label"], report["unit"]
    revision = to_search(state)
    season = report["seasonality"]
    if season:
        hours = figures.profile_bars(season["hour_profile"], [f"{h:02d}" for h in range(24)], label,
                                     unit, season["peak_hours"], revision)
        weekdays = figures.profile_bars(season["weekday_profile"], WEEKDAY_LABELS, label, unit,
                                        season["peak_weekdays"], revision)
    else:
        hours = weekdays = figures.empty_figure("Profiles need hourly or daily data: pick a range over 6 hours", 260)
    return (trends.headline(report["headline"]), figures.trend_chart(report, label, revision),
            trends.anomaly_tables(report["anomalies"], report["segment_anomalies"], unit, prefix),
            hours, weekdays, None)


def search_after_anomaly_click(search: str, click: dict, channels: tuple[str, ...]) -> str:
    point = click["points"][0]
    data = point.get("customdata")
    if not isinstance(data, list) or len(data) < 4 or not data[3]:
        return no_update
    return data[3]


def alert_me_search(search: str, channels: tuple[str, ...]) -> str:
    """The Alerts tab with a rule drafted from this view (metric, channels, range)."""
    return to_search(replace(parse_search(search, channels), tab="alerts", alert="new"))


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    prefix = dash_app.config.requests_pathname_prefix

    @dash_app.callback(
        Output(ids.TREND_HEADLINE, "children"), Output(ids.TREND_CHART, "figure"),
        Output(ids.TREND_ANOMALIES, "children"), Output(ids.TREND_HOURS, "figure"),
        Output(ids.TREND_WEEKDAYS, "figure"), Output(ids.TREND_ALERT, "children"),
        Input(ids.URL, "search"), Input(ids.REFRESH, "n_intervals"))
    def _trend(search, _tick):
        return trend_view(shown_on(search, channels, "trends"), prefix)

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.TREND_METRIC, "value"),
                       Input(ids.TREND_DETECTOR, "value"), State(ids.URL, "search"), prevent_initial_call=True)
    def _choose(metric, detector, search):
        state = parse_search(search, channels)
        chosen = replace(state, metric=metric or state.metric, detector=None if detector == "auto" else detector)
        return to_search(chosen) if chosen != state else no_update

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.TREND_CHART, "clickData"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _anomaly_click(click, search):
        return search_after_anomaly_click(search, click, channels) if click else no_update

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.TREND_ALERT_ME, "n_clicks"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _alert_me(clicks, search):
        return alert_me_search(search, channels) if clicks else no_update
