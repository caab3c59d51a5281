"""Overview callbacks: each reads the view from the URL, asks one service, and returns a
figure or components. Clicks drill down by rewriting the URL."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from dash import ClientsideFunction, Dash, Input, Output, State, no_update

from callbacks.common import alert, ask, ask_metric, ask_report, ask_series
from callbacks.view import (
    ViewState,
    channel_filter,
    drilled,
    focused_on_bucket,
    parse_search,
    shown_on,
    to_search,
    window_of,
)
from dashapp.caching import request_context
from layouts import figures, ids, overview
from services.alerts.rules import firing_spans
from services.analysis.kpis import kpis
from services.analysis.trend_report import total_anomalies
from services.query.engine import series_records, volume_heatmap
from services.query.format import plain
from services.query.timerange import EARLIEST, LATEST, STEP, ceil_to, floor_to, iso_z, resolve_window

INVALID_RANGE = "The custom range is not valid: pick an end after the start."


def kpi_row(state: ViewState):
    window = window_of(state)
    if window is None:
        return [], alert(INVALID_RANGE, "warning")
    tiles, error = ask_report(kpis, overview.KPI_METRICS, *window, channel_filter(state))
    if error:
        return [], alert(error)
    return [overview.kpi_tile(k.label, k.unit, k.value, k.change_percent, k.direction, k.good, k.untracked,
                              k.previous) for k in tiles], None


def timeseries_figure(state: ViewState, kept: dict | None = None, now: datetime | None = None):
    """(figure, what it shows). The figure starts with the marks kept for this view, so a
    refresh does not blink them away; what it shows (None for an empty chart) lets
    timeseries_marks mark it."""
    window = window_of(state)
    if window is None:
        return figures.empty_figure(INVALID_RANGE), None
    series, error = ask_series(state.metric, ("time", "channel"), *window, channel_filter(state))
    metric, metric_error = ask_metric(state.metric)
    if error or metric_error:
        return figures.empty_figure(error or metric_error), None
    records = series_records(series)
    if metric.kind == "rate":  # the events behind each point, for the hover
        for record, point in zip(records, series.points):
            record["volume"] = point.denominator
    revision = to_search(state)
    step = STEP[series.granularity]
    times = [p.time for p in series.points]
    filling = iso_z(max(times)) if times and max(times) + step > (now or datetime.now(timezone.utc)) else None
    marks = kept["marks"] if isinstance(kept, dict) and kept.get("search") == revision else None
    fig = figures.time_series(records, metric.label, metric.unit, revision=revision,
                              volume_of=metric.denominator if metric.kind == "rate" else None, filling=filling,
                              marks=marks)
    if not fig["data"]:
        return fig, None
    return fig, {"search": revision, "first": iso_z(min(times)), "last": iso_z(max(times)),
                 "step_s": step.total_seconds()}


def _drawn(data) -> tuple[str, datetime, datetime, timedelta] | None:
    """(view, first point, last point, step) of a time chart as its callback wrote them; None
    for anything else."""
    if not isinstance(data, dict) or not isinstance(data.get("search"), str):
        return None
    first, last = (_plotly_time(data.get(k)) if isinstance(data.get(k), str) else None for k in ("first", "last"))
    steps = {s.total_seconds(): s for s in STEP.values()}
    step = steps.get(data.get("step_s")) if isinstance(data.get("step_s"), (int, float)) else None
    if first is None or last is None or step is None or last < first:
        return None
    return data["search"], first, last, step


def timeseries_marks(drawn: dict, channels: tuple[str, ...]) -> dict | None:
    """The anomalies the trend report finds in the drawn view's total (the same detector over
    the same buckets, without the report's explanations and segment search: a refresh under
    ingest would otherwise run the whole report each time) and the incidents of alert rules on
    its metric; None for what no time chart drew."""
    shown = _drawn(drawn)
    if shown is None:
        return None
    search, first, last, step = shown
    state = parse_search(search, channels)
    metric, error = ask_metric(state.metric)
    window = window_of(state)
    if error or window is None:
        return {"search": search, "marks": None}
    report, error = ask_report(total_anomalies, state.metric, *window, None, channel_filter(state), None,
                               state.detector)
    report = None if error else plain(report)  # the marks are drawn from the answer's JSON form
    same_buckets = not error and STEP[report["granularity"]] == step
    anomalies = [a for a in report["anomalies"] if a["value"] is not None] if same_buckets else []
    incidents, error = ask(firing_spans, state.metric, first, last + step)
    marks = figures.time_marks(anomalies, incidents or [], iso_z(first), iso_z(last), step, metric.label, metric.unit)
    return {"search": search, "marks": marks}


def channel_figure(state: ViewState):
    window = window_of(state)
    if window is None:
        return figures.empty_figure(INVALID_RANGE)
    series, error = ask_series(state.metric, ("channel",), *window, channel_filter(state))
    metric, metric_error = ask_metric(state.metric)
    if error or metric_error:
        return figures.empty_figure(error or metric_error)
    return figures.bars(series_records(series), "channel", metric.label, metric.unit, revision=to_search(state),
                        height=372)


def status_figure(state: ViewState):
    window = window_of(state)
    if window is None:
        return figures.empty_figure(INVALID_RANGE)
    series, error = ask_series("events", ("status",), *window, channel_filter(state))
    if error:
        return figures.empty_figure(error)
    order = ("sent", "delivered", "failed", "bounced", "opened", "clicked")
    records = sorted(series_records(series), key=lambda r: order.index(r["status"]))
    return figures.bars(records, "status", "Events", "count", revision=to_search(state))


def heatmap_figure(state: ViewState):
    window = window_of(state)
    if window is None:
        return figures.empty_figure(INVALID_RANGE)
    matrix, error = ask(volume_heatmap, *window, channel_filter(state), context=request_context())
    if error:
        return figures.empty_figure(error)
    return figures.heatmap(matrix, revision=to_search(state))


def search_after_time_click(search: str, click: dict, channels: tuple[str, ...]) -> str:
    """A click on the time chart: the bucket becomes the range, its channel the first drill."""
    state = parse_search(search, channels)
    point = click["points"][0]
    try:
        when = datetime.fromisoformat(str(point.get("x")).replace(" ", "T")).replace(tzinfo=timezone.utc)
    except ValueError:  # not a point of this chart
        return no_update
    if not EARLIEST <= when < LATEST:
        return no_update
    window = window_of(state)
    granularity = resolve_window(window[0], window[1], None, datetime.now(timezone.utc)).granularity
    data = point.get("customdata")
    channel = data[0] if isinstance(data, list) and data else data  # [channel, volume] on the time chart
    return to_search(focused_on_bucket(state, when, STEP[granularity], channel if channel in channels else None))


def _plotly_time(value) -> datetime | None:
    """A time as Plotly reports an axis range ("2026-11-25 06:12:34.5678"), in UTC."""
    try:
        parsed = datetime.fromisoformat(str(value).strip().replace(" ", "T")[:26])
    except ValueError:
        return None
    parsed = parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    return parsed if EARLIEST <= parsed < LATEST else None


def search_after_zoom(search: str, relayout, channels: tuple[str, ...]) -> str:
    """A drag-zoom on the time chart sets the dashboard's range, as Grafana does: the URL
    holds it (so a refresh, a reload or a shared link keeps it), to the whole minute. A
    double-click back to the whole chart is not a new range."""
    if not isinstance(relayout, dict):
        return no_update
    ends = (relayout.get("xaxis.range[0]"), relayout.get("xaxis.range[1]"))
    if ends[0] is None and isinstance(relayout.get("xaxis.range"), list) and len(relayout["xaxis.range"]) == 2:
        ends = tuple(relayout["xaxis.range"])
    start, end = (_plotly_time(v) if v is not None else None for v in ends)
    if start is None or end is None:
        return no_update
    start, end = floor_to(start, "minute"), ceil_to(end, "minute")
    if end <= start:
        return no_update
    state = parse_search(search, channels)
    return to_search(replace(state, range="custom", start=iso_z(start), end=iso_z(end)))


def search_after_channel_click(search: str, click: dict, channels: tuple[str, ...]) -> str:
    state = parse_search(search, channels)
    channel = click["points"][0].get("customdata")
    if channel not in channels:
        return no_update
    return to_search(drilled(replace(state, drill=()), channel))


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    def view(search) -> ViewState:
        return parse_search(search, channels)

    def shown(search) -> ViewState:
        return shown_on(search, channels, "overview")

    @dash_app.callback(Output(ids.KPI_ROW, "children"), Output(ids.OVERVIEW_ALERT, "children"),
                       Input(ids.URL, "search"), Input(ids.REFRESH, "n_intervals"))
    def _kpis(search, _tick):
        return kpi_row(shown(search))

    for graph_id, build in ((ids.CHANNEL_BAR, channel_figure), (ids.STATUS_BAR, status_figure),
                            (ids.HEATMAP, heatmap_figure)):
        dash_app.callback(Output(graph_id, "figure"), Input(ids.URL, "search"), Input(ids.REFRESH, "n_intervals"))(
            lambda search, _tick, build=build: build(shown(search)))

    @dash_app.callback(Output(ids.TIMESERIES, "figure"), Output(ids.TIMESERIES_DRAWN, "data"),
                       Input(ids.URL, "search"), Input(ids.REFRESH, "n_intervals"), State(ids.TIMESERIES_MARKS, "data"))
    def _timeseries(search, _tick, kept):
        return timeseries_figure(shown(search), kept)

    # the marks come after the chart, which never waits for the trend report: worked out here
    # into their store, and drawn onto the chart by the browser (assets/marks.js) when they
    # change. The chart is not an output of the work, so it is not shown as loading meanwhile.
    @dash_app.callback(Output(ids.TIMESERIES_MARKS, "data"), Input(ids.TIMESERIES_DRAWN, "data"),
                       State(ids.TIMESERIES_MARKS, "data"), prevent_initial_call=True)
    def _timeseries_marks(drawn, kept):
        fresh = timeseries_marks(drawn, channels)
        if fresh is None or fresh == kept or fresh["marks"] is None:
            return no_update
        return fresh

    dash_app.clientside_callback(ClientsideFunction("analytics", "drawMarks"),
                                 Output(ids.TIMESERIES, "figure", allow_duplicate=True),
                                 Input(ids.TIMESERIES_MARKS, "data"), State(ids.TIMESERIES_DRAWN, "data"),
                                 prevent_initial_call=True)

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.METRIC_PICKER, "value"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _pick_metric(metric, search):
        state = view(search)
        if metric == state.metric or metric is None:
            return no_update
        return to_search(replace(state, metric=metric))

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.TIMESERIES, "clickData"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _time_click(click, search):
        return search_after_time_click(search, click, channels) if click else no_update

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.TIMESERIES, "relayoutData"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _zoom(relayout, search):
        return search_after_zoom(search, relayout, channels)

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.CHANNEL_BAR, "clickData"),
                       State(ids.URL, "search"), prevent_initial_call=True)
    def _channel_click(click, search):
        return search_after_channel_click(search, click, channels) if click else no_update
