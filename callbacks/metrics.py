"""Metrics callbacks: validate as the user types, preview, save, edit and delete."""
from __future__ import annotations

from dash import ALL, Dash, Input, Output, State, ctx, no_update

from callbacks.common import alert, guarded
from callbacks.view import channel_filter, parse_search, window_of
from dashapp.access import may_write_metrics
from dashapp.caching import request_context
from dashapp.extensions import db
from layouts import figures, ids
from layouts import metrics as layout
from services.query import custom_metrics
from services.query.engine import series_records


def check_and_preview(formula: str | None, unit: str | None, search: str, channels: tuple[str, ...]) -> tuple:
    """(feedback, preview figure) for the formula as typed so far."""
    formula = (formula or "").strip()
    if not formula:
        return layout.feedback("", {}), figures.empty_figure("The preview appears when the formula is valid")

    state = parse_search(search, channels)
    window = window_of(state) or ("now-24h", None)

    context = request_context()

    def read(conn):
        check = custom_metrics.check_formula(conn, formula)
        if not check["valid"]:
            return check, None
        series = custom_metrics.preview(conn, formula, *window, ("time", "channel"), channel_filter(state),
                                        unit=unit or "none", context=context)
        return check, series

    answer, error = guarded(lambda: db.read(read))
    if error:
        return alert(error), figures.empty_figure(error)
    check, series = answer
    if series is None:
        return layout.feedback(formula, check), figures.empty_figure("Fix the formula to see a preview")
    return layout.feedback(formula, check), figures.time_series(series_records(series), "Preview", unit or "none",
                                                               revision=formula)


def save(fields: dict) -> tuple:
    """(message, saved?) — create, or change the metric of that name."""
    if not may_write_metrics():
        return alert("Saving custom metrics needs the admin token; this session signed in with the read token."), False

    def work():
        with db.writing() as conn:
            exists = fields["name"] in {m.name for m in custom_metrics.list_metrics(conn)}
            if exists:
                return custom_metrics.update_metric(conn, fields["name"], fields), "changed"
            return custom_metrics.create_metric(conn, fields), "saved"

    answer, error = guarded(work)
    if error:
        return alert(error), False
    metric, verb = answer
    return alert(f"{metric.display_name} {verb}: use metric={metric.name} in any chart or API call.", "success"), True


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    @dash_app.callback(Output(ids.FORMULA_FEEDBACK, "children"), Output(ids.FORMULA_PREVIEW, "figure"),
                       Input(ids.FORMULA_TEXT, "value"), Input(ids.FORMULA_UNIT, "value"), State(ids.URL, "search"))
    def _check(formula, unit, search):
        return check_and_preview(formula, unit, search, channels)

    @dash_app.callback(Output(ids.FORMULA_MESSAGE, "children"), Output(ids.METRICS_VERSION, "data"),
                       Input(ids.FORMULA_SAVE, "n_clicks"),
                       State(ids.FORMULA_NAME, "value"), State(ids.FORMULA_DISPLAY, "value"),
                       State(ids.FORMULA_TEXT, "value"), State(ids.FORMULA_UNIT, "value"),
                       State(ids.FORMULA_DESCRIPTION, "value"), State(ids.METRICS_VERSION, "data"),
                       prevent_initial_call=True)
    def _save(_clicks, name, display, formula, unit, description, version):
        message, saved = save({"name": (name or "").strip(), "display_name": display or "", "formula": formula or "",
                               "unit": unit or "none", "description": description or ""})
        return message, (version or 0) + 1 if saved else no_update

    @dash_app.callback(Output(ids.SAVED_METRICS, "children"), Input(ids.METRICS_VERSION, "data"))
    def _list(_version):
        def work():
            return db.read(custom_metrics.list_metrics)
        saved, error = guarded(work)
        return alert(error) if error else layout.saved_table(saved)

    @dash_app.callback(Output(ids.FORMULA_NAME, "value"), Output(ids.FORMULA_DISPLAY, "value"),
                       Output(ids.FORMULA_TEXT, "value"), Output(ids.FORMULA_UNIT, "value"),
                       Output(ids.FORMULA_DESCRIPTION, "value"),
                       Input({"type": "edit-metric", "name": ALL}, "n_clicks"), prevent_initial_call=True)
    def _edit(clicks):
        if not any(clicks or []):
            return (no_update,) * 5

        def work():
            name = ctx.triggered_id["name"]
            return db.read(lambda conn: custom_metrics.get_custom(conn, name))
        metric, error = guarded(work)
        if error:
            return (no_update,) * 5
        return metric.name, metric.display_name, metric.formula, metric.unit, metric.description

    @dash_app.callback(Output(ids.METRIC_CONFIRM_DELETE, "displayed"), Output(ids.METRIC_CONFIRM_DELETE, "message"),
                       Output(ids.METRIC_PENDING_DELETE, "data"),
                       Input({"type": "delete-metric", "name": ALL}, "n_clicks"), prevent_initial_call=True)
    def _ask_delete(clicks):
        if not any(clicks or []) or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update, no_update
        name = ctx.triggered_id["name"]
        return True, f"Delete the custom metric “{name}”? Charts and links that use it will stop working.", name

    @dash_app.callback(Output(ids.FORMULA_MESSAGE, "children", allow_duplicate=True),
                       Output(ids.METRICS_VERSION, "data", allow_duplicate=True),
                       Input(ids.METRIC_CONFIRM_DELETE, "submit_n_clicks"), State(ids.METRIC_PENDING_DELETE, "data"),
                       State(ids.METRICS_VERSION, "data"), prevent_initial_call=True)
    def _delete(confirmed, name, version):
        if not confirmed or not isinstance(name, str):
            return no_update, no_update
        return delete_metric(name, version)


def delete_metric(name: str, version) -> tuple:
    """(message, new version or no_update): the confirmed deletion, or why it was refused."""
    if not may_write_metrics():
        return alert("Deleting custom metrics needs the admin token; this session signed in with the read "
                     "token."), no_update

    def work():
        with db.writing() as conn:
            custom_metrics.delete_metric(conn, name)
    _, error = guarded(work)
    if error:
        return alert(error), no_update
    return alert(f"{name} deleted.", "success"), (version or 0) + 1
