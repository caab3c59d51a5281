"""Compare callbacks: one comparison of the channels (with the period against another) and
one ranking of the templates, each a single service call."""
from __future__ import annotations

from dataclasses import replace

from dash import Dash, Input, Output, State, html, no_update

from callbacks.common import alert, ask_metric, ask_report
from callbacks.view import ViewState, parse_search, shown_on, to_search, window_of
from layouts import compare as layout
from layouts import figures, ids
from services.analysis.compare import Comparison, PeriodComparison, compare
from services.analysis.trends import percent_change
from services.query.format import number


def summary_sentence(result: Comparison, unit: str) -> str:
    summary = result.summary
    if not summary.best_performer:
        return "Not enough data to compare: " + (summary.note or "")
    best, worst = result.comparisons[summary.best_performer], result.comparisons[summary.worst_performer]
    p = summary.p_value
    if p is None:  # no sampling model: nothing can be said of the noise
        verdict = {"formula": "no significance test for a formula",
                   "rate": "no significance test: a rate above 100 % is no proportion"}.get(
            result.kind, "no significance test for these values")
    else:
        verdict = ("a significant difference" if summary.significant else "not a significant difference") + \
            (" (p < 0.001)" if p < 0.001 else f" (p = {p:.3f})")
    difference = abs(summary.difference)
    gap = f"{difference:.1f} points" if unit == "%" else number(difference, unit)
    top, bottom = roles(result)
    return (f"{best.label} is {top} ({number(best.total, unit)}), {worst.label} {bottom} "
            f"({number(worst.total, unit)}): {gap} apart, {verdict}.")


def roles(result: Comparison) -> tuple[str, str]:
    """What the first and last of the ranking are called: best and worst where the metric has
    a good direction, highest and lowest where it has none (a saved formula, a plain count)."""
    return ("highest", "lowest") if result.better == "neutral" else ("best", "worst")


def period_sentence(period: PeriodComparison | None, unit: str, compare_to: str) -> str:
    """This period against the compared one: a rate moves by percentage points, anything else
    by percent; a change the test cannot tell from noise says so, and one too small to call a
    move ("flat", the trends' threshold) is never called both flat and significant."""
    if period is None:
        return "The compared period has no data."
    total = period.total
    now, then = total.value, total.previous_value
    if now is None or then is None:
        return "The compared period has no data."
    word = {"previous_period": "the previous period", "previous_week": "last week",
            "previous_year": "last year"}.get(compare_to, "the compared period")
    change = percent_change(now, then)  # the same "flat" as the trends
    if unit == "%":
        amount = f"{abs(now - then):.1f} percentage points"
    elif change.percent is not None:
        amount = f"{abs(change.percent):.1f} %"
    else:
        amount = None
    moved = "up" if now > then else "down" if now < then else None
    if amount is None and moved == "up":  # from nothing: no percent to give
        verdict = "up from none" + ("" if total.significant else ", not significant (within the noise)")
    elif moved is None or amount is None or amount.startswith("0.0 "):
        verdict = "unchanged" if moved is None else "about the same"
    elif not total.significant:
        verdict = f"{moved} {amount}, not significant (within the noise)"
    elif change.direction == "flat":
        verdict = f"{moved} {amount}: small, but significant"
    else:
        verdict = f"{moved} {amount}, significant"
    return (f"Against {word}: {number(now, unit)} now, {number(then, unit)} then — "
            f"{verdict}.")


def compare_view(state: ViewState) -> tuple:
    """(summary, cards, channel chart, period chart, template table, alert)."""
    window = window_of(state)
    empty = figures.empty_figure("")
    if window is None:
        return None, [], empty, empty, None, alert("The custom range is not valid.", "warning")
    channels = ",".join(f"channel:{c}" for c in state.channels) if len(state.channels) >= 2 else None
    result, error = ask_report(compare, state.metric, channels, *window, state.compare_to)
    metric, metric_error = ask_metric(state.metric)
    if error or metric_error:
        return None, [], figures.empty_figure(error or metric_error), empty, None, alert(error or metric_error)
    summary = result.summary
    top, bottom = roles(result)
    role_of = {summary.best_performer: top, summary.worst_performer: bottom}
    cards = [layout.value_card(entry, metric.unit, role_of.get(key)) for key, entry in result.comparisons.items()]
    records = [{"time": p.time, "channel": entry.value, "value": p.value}
               for entry in result.comparisons.values() for p in entry.series]
    revision = to_search(state)
    overlay = figures.time_series(records, metric.label, metric.unit, revision)
    period = figures.period_chart(result.period, metric.label, metric.unit, revision)
    templates, template_error = ask_report(compare, state.metric, "template_id", *window, None,
                                    {"channel": list(state.channels)} if state.channels else None)
    table = layout.template_table(templates, metric.unit) if not template_error else alert(template_error)
    text = html.Div([html.H4(summary_sentence(result, metric.unit), className="fw-semibold mb-1"),
                     html.P(period_sentence(result.period, metric.unit, state.compare_to),
                            className="text-muted mb-0")])
    return text, cards, overlay, period, table, None


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    @dash_app.callback(
        Output(ids.COMPARE_SUMMARY, "children"), Output(ids.COMPARE_CARDS, "children"),
        Output(ids.COMPARE_CHART, "figure"), Output(ids.COMPARE_PERIOD, "figure"),
        Output(ids.COMPARE_TEMPLATES, "children"), Output(ids.COMPARE_ALERT, "children"),
        Input(ids.URL, "search"), Input(ids.REFRESH, "n_intervals"))
    def _compare(search, _tick):
        return compare_view(shown_on(search, channels, "compare"))

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True), Input(ids.COMPARE_METRIC, "value"),
                       Input(ids.COMPARE_TO, "value"), State(ids.URL, "search"), prevent_initial_call=True)
    def _choose(metric, compare_to, search):
        state = parse_search(search, channels)
        chosen = replace(state, metric=metric or state.metric, compare_to=compare_to or state.compare_to)
        return to_search(chosen) if chosen != state else no_update
