"""Correlations callbacks: one report for the matrix (kept in a store), then the clicked
pair drawn from it without asking the database again."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from dash import Dash, Input, Output, State, no_update

from callbacks.common import alert, ask_report
from callbacks.view import ViewState, parse_search, shown_on, to_search, window_of
from layouts import correlations, figures, ids
from services.analysis import correlation
from services.analysis.correlation_report import correlation_report
from services.query.format import plain


def matrix_view(state: ViewState) -> tuple:
    """(matrix figure, the report as JSON data for the store, alert)."""
    window = window_of(state)
    if window is None:
        return figures.empty_figure("Pick an end after the start."), None, alert("The custom range is not valid.")
    chosen = state.correlate or correlations.DEFAULT_SET
    report, error = ask_report(correlation_report, list(chosen), *window, None, state.lag_max, state.detrend)
    if error:
        return figures.empty_figure(error), None, alert(error)
    return figures.correlation_matrix(report, to_search(state)), plain(report), None


def pair_view(report: dict | None, pair: list | None, revision: str) -> tuple:
    """(sentence, overlay, scatter, lag chart) for the pair a cell click picked (or the
    strongest significant pair)."""
    empty = figures.empty_figure("Click a cell of the matrix", 300)
    if not well_formed(report) or not report["pairs"]:
        return "", empty, empty, empty
    if pair:
        found = [p for p in report["pairs"] if {p["a"], p["b"]} == set(pair)]
    else:  # the strongest finding; else the first pair that could be measured
        findings = [p for p in report["pairs"] if [p["a"], p["b"]] in report["findings"][:1]]
        found = findings or [p for p in report["pairs"] if p["best_lag"] is not None][:1]
    if not found:
        return "", empty, empty, empty
    chosen = found[0]
    a, b = report["series"][chosen["a"]], report["series"][chosen["b"]]
    labels = dict(zip(report["matrix"]["metrics"], report["matrix"]["labels"]))
    overlay = figures.pair_overlay(a["times"], a["values"], b["values"], labels[chosen["a"]], labels[chosen["b"]],
                                   revision)
    as_array = lambda values: np.array([np.nan if v is None else v for v in values], dtype=float)  # noqa: E731
    lags = correlation.lagged_correlation(as_array(a["residuals"]), as_array(b["residuals"]),
                                          max(report_lag(report), 6))
    lag_fig = figures.lag_chart(lags, (chosen["best_lag"] or {}).get("lag", 0), report["granularity"], revision)
    scatter = figures.pair_scatter(a["residuals"], b["residuals"], labels[chosen["a"]], labels[chosen["b"]], revision)
    return chosen["sentence"], overlay, scatter, lag_fig


def clicked_pair(click) -> list[str] | None:
    """The pair a click on the matrix picked: each cell carries "a|b"."""
    points = (click or {}).get("points") if isinstance(click, dict) else None
    data = points[0].get("customdata") if points and isinstance(points[0], dict) else None
    return data.split("|") if isinstance(data, str) and data.count("|") == 1 else None


def well_formed(report) -> bool:
    """Whether the stored report has the shape matrix_view stored (the store comes back from
    the browser: anything else is drawn as nothing, not a server error)."""
    if not isinstance(report, dict) or not isinstance(report.get("pairs"), list):
        return False
    matrix, series = report.get("matrix"), report.get("series")
    return (isinstance(matrix, dict) and isinstance(series, dict) and isinstance(report.get("findings"), list)
            and all(isinstance(matrix.get(k), list) for k in ("metrics", "labels"))
            and isinstance(report.get("granularity"), str)
            and all(isinstance(p, dict) and {"a", "b", "best_lag", "sentence"} <= set(p) and p["a"] in series
                    and p["b"] in series for p in report["pairs"]))


def report_lag(report: dict) -> int:
    lags = [abs(p["best_lag"]["lag"]) for p in report["pairs"] if p["best_lag"] is not None]
    return max(lags, default=0)


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    @dash_app.callback(Output(ids.CORR_MATRIX, "figure"), Output(ids.CORR_REPORT, "data"),
                       Output(ids.CORR_ALERT, "children"), Input(ids.URL, "search"),
                       Input(ids.REFRESH, "n_intervals"))
    def _matrix(search, _tick):
        return matrix_view(shown_on(search, channels, "correlations"))

    @dash_app.callback(Output(ids.CORR_SENTENCE, "children"), Output(ids.CORR_OVERLAY, "figure"),
                       Output(ids.CORR_SCATTER, "figure"), Output(ids.CORR_LAGS, "figure"),
                       Input(ids.CORR_REPORT, "data"), Input(ids.CORR_MATRIX, "clickData"),
                       State(ids.URL, "search"))
    def _pair(report, click, search):
        return pair_view(report, clicked_pair(click), search or "")

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.CORR_METRICS, "value"),
                       Input(ids.CORR_LAG, "value"), Input(ids.CORR_DETREND, "value"), State(ids.URL, "search"),
                       prevent_initial_call=True)
    def _choose(chosen, lag, detrend, search):
        state = parse_search(search, channels)
        picked = tuple(chosen or ())
        new = replace(state, correlate=() if picked == correlations.DEFAULT_SET else picked,
                      lag_max=int(lag or 0), detrend=bool(detrend))
        return to_search(new) if new != state else no_update
