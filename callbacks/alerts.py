"""Alerts callbacks: the rules table, the picked rule's history, and the form that creates,
edits and deletes rules (every write through the rule service, its refusals shown as said)."""
from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from dash import ALL, Dash, Input, Output, State, ctx, no_update
from flask import current_app

from callbacks.common import alert, ask_metric, ask_series, guarded
from callbacks.view import ViewState, parse_search, shown_on, to_search, window_of
from dashapp.access import may_write_metrics
from dashapp.alerting import preview_alert, rule_options
from dashapp.extensions import db
from layouts import alerts as layout
from layouts import ids
from services.alerts import evaluation as alerts
from services.alerts import rules as alert_rules
from services.query.catalogue import CATALOGUE
from services.query.custom_metrics import list_metrics
from services.query.engine import template_names
from services.query.timerange import QueryError, auto_granularity
from services.store.schema import channel_label

SPARK_BUCKETS = 48
RELATIVE_UNIT = {"minute": "m", "hour": "h", "day": "d"}
PRESET_SPANS = {"1h": timedelta(hours=1), "6h": timedelta(hours=6), "24h": timedelta(days=1),
                "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
DEFAULT_FORM = {"name": "", "metric": "delivery_rate", "channel": [], "granularity": "hour", "condition": "anomaly",
                "min_severity": "medium", "direction": "both", "threshold": None, "for_buckets": 1, "min_volume": 0,
                "webhook_url": "", "notify": "immediate", "silenced_until": "", "enabled": True}
FIELD_LABELS = {"name": "Name", "metric": "Metric", "channel": "Channels", "status": "Status",
                "template_id": "Template", "granularity": "Granularity", "condition": "Condition",
                "direction": "Direction", "min_severity": "Minimum severity", "threshold": "Threshold",
                "for_buckets": "For (buckets in a row)", "min_volume": "Minimum volume",
                "webhook_url": "Webhook URL", "notify": "Notify", "silenced_from": "Silence",
                "silenced_until": "Silence until", "enabled": "Enabled"}
# the inputs that can show a field as invalid
FIELD_INPUTS = {"name": ids.ALERT_NAME, "threshold": ids.ALERT_THRESHOLD, "for_buckets": ids.ALERT_FOR_BUCKETS,
                "min_volume": ids.ALERT_MIN_VOLUME, "webhook_url": ids.ALERT_WEBHOOK,
                "silenced_until": ids.ALERT_SILENCE_UNTIL}
READ_TOKEN_ONLY = "Saving or deleting alert rules needs the admin token; this session signed in with the read token."
UNIT_TEXT = {"%": "%", "ms": "ms", "count": "events"}


# ---------------------------------------------------------------- pure helpers

def view_granularity(state: ViewState) -> str:
    """The granularity the view's charts use (as the query engine picks it), so a rule judges
    the buckets one saw."""
    span = PRESET_SPANS.get(state.range)
    if span is None:
        window = window_of(state)
        if window is None:
            return "hour"
        start, end = (datetime.fromisoformat((t + "T00:00:00+00:00") if len(t) == 10 else t.replace("Z", "+00:00"))
                      for t in window)
        span = end - start
    return auto_granularity(span)


def draft_from_view(state: ViewState, custom: list | None = None) -> dict:
    """The form a view drafts ("alert me when this…"): its metric and channels, the
    granularity of its chart, an anomaly of medium severity or more on the bad side."""
    metric = CATALOGUE.get(state.metric)
    label = metric.label if metric else next((c.display_name for c in custom or [] if c.name == state.metric),
                                             state.metric)
    better = metric.better if metric else "neutral"
    name = label + (", " + ", ".join(channel_label(c) for c in state.channels) if state.channels else "")
    return {**DEFAULT_FORM, "name": name[:100], "metric": state.metric, "channel": list(state.channels),
            "granularity": view_granularity(state), "condition": "anomaly", "min_severity": "medium",
            "direction": {"higher": "below", "lower": "above"}.get(better, "both")}


def rule_form_values(rule: alert_rules.AlertRule) -> dict:
    """The form filled with a saved rule."""
    until = rule.silenced_until
    return {"name": rule.name, "metric": rule.metric, "channel": list(rule.filters.get("channel") or []),
            "granularity": rule.granularity, "condition": rule.condition,
            "min_severity": rule.min_severity or "medium", "direction": rule.direction, "threshold": rule.threshold,
            "for_buckets": rule.for_buckets, "min_volume": rule.min_volume, "webhook_url": rule.webhook_url or "",
            "notify": rule.notify,
            "silenced_until": until.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M") if until else "",
            "enabled": rule.enabled}


def _number(value):
    """A number input's value as the service takes it: whole numbers as int, anything that
    is not a finite number passed on as it came, for the service to name."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _text(value) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def form_fields(name, metric, channel, granularity, condition, min_severity, direction, threshold, for_buckets,
                min_volume, webhook_url, notify, silenced_until, enabled) -> dict:
    """The rule's fields as the service takes them, from what the form sent (types are
    checked by the service, which names the field of the first problem)."""
    threshold_rule = condition == "threshold"
    channels = [c for c in channel if isinstance(c, str)] if isinstance(channel, list) else channel
    fields = {
        "name": name.strip() if isinstance(name, str) else name,
        "metric": metric, "channel": channels or None, "granularity": granularity, "condition": condition,
        "direction": direction, "min_severity": None if threshold_rule else (min_severity or "medium"),
        "threshold": _number(threshold) if threshold_rule else None,
        "for_buckets": (_number(for_buckets) if for_buckets is not None else 1) if threshold_rule else 1,
        "min_volume": 0 if min_volume is None else _number(min_volume),
        "webhook_url": _text(webhook_url), "notify": notify or "immediate",
        "silenced_until": _text(silenced_until), "enabled": True if enabled is None else enabled,
    }
    if fields["silenced_until"] is None:
        fields["silenced_from"] = None  # no end, no silence: a start left alone would refuse the save
    return fields


def error_message(message: str, field: str | None):
    """The service's sentence, under the form label of the field it names."""
    label = FIELD_LABELS.get(field or "")
    text = [f"{label}: ", message] if label else [message]
    return alert(text)


def in_app_link(stored: str | None, prefix: str) -> str | None:
    """A link the engine stored (its base may be absolute) as a path inside this dashboard."""
    if not stored or "?" not in stored:
        return None
    return prefix + "?" + stored.split("?", 1)[1]


# ---------------------------------------------------------------- reads

def _labels_and_units(custom: list) -> dict[str, tuple[str, str]]:
    found = {m.name: (m.label, m.unit) for m in CATALOGUE.values()}
    found.update({c.name: (c.display_name, c.unit) for c in custom})
    return found


def recent_values(rule: alert_rules.AlertRule) -> tuple[list, str | None]:
    """The rule's metric over its last SPARK_BUCKETS buckets (the chart engine picks the
    rule's granularity for that span), through the shared chart cache."""
    start = f"now-{SPARK_BUCKETS}{RELATIVE_UNIT[rule.granularity]}"
    series, error = ask_series(rule.metric, ("time",), start, None, rule.filters)
    if error:
        return [], error
    return [p.value for p in series.points], None


def rules_rows(rules: list, custom: list, names: dict, now: datetime) -> list[dict]:
    known = _labels_and_units(custom)
    rows = []
    for rule in rules:
        label, unit = known.get(rule.metric, (rule.metric, "none"))
        values, error = recent_values(rule)
        threshold = rule.threshold if rule.condition == "threshold" else None
        colour = "#E45756" if rule.state == "firing" and rule.enabled else "#4C78A8"
        rows.append({"rule": rule.as_dict(), "unit": unit,
                     "watches": layout.watches(label, rule.filters, rule.granularity, names),
                     "spark": layout.sparkline(values, unit, rule.granularity, threshold, colour, error),
                     "silenced": rule.silenced_at(now)})
    return rows


def rules_view(search: str, channels: tuple[str, ...]):
    """(table, alert) for the rules table."""
    def work():
        return db.read(lambda conn: (alert_rules.list_rules(conn), list_metrics(conn), template_names(conn)))
    answer, error = guarded(work)
    if error:
        return None, alert(error)
    rules, custom, names = answer
    state = parse_search(search, channels)
    return layout.rules_table(rules_rows(rules, custom, names, datetime.now(timezone.utc)), state.alert), None


def history_view(search: str, channels: tuple[str, ...], prefix: str):
    state = parse_search(search, channels)
    if not state.alert or state.alert == "new":
        return layout.pick_a_rule()

    def work():
        def read(conn):
            rule = alert_rules.get_rule(conn, state.alert)
            return rule, alert_rules.history(conn, rule.id), alert_rules.deliveries(conn, rule.id)
        return db.read(read)
    answer, error = guarded(work)
    if error:
        return alert(error, "warning")
    rule, transitions, deliveries = answer
    metric, metric_error = ask_metric(rule.metric)
    unit = metric.unit if not metric_error else "none"
    links = [(alerts.view_link(prefix, rule, datetime.fromisoformat(t["bucket"].replace("Z", "+00:00"))),
              in_app_link(t.get("drilldown"), prefix)) for t in transitions]
    return layout.history_panel(rule.as_dict(), unit, transitions, deliveries, links)


# ---------------------------------------------------------------- writes

def save(fields: dict, editing) -> tuple:
    """(message, saved rule or None, field at fault or None): create, or change the rule
    being edited."""
    if not may_write_metrics():
        return alert(READ_TOKEN_ONLY), None, None
    rule_id = editing.get("id") if isinstance(editing, dict) else None
    options = rule_options(current_app.config)
    at_fault: list[str | None] = []

    def work():
        try:
            with db.writing() as conn:
                if isinstance(rule_id, int) and not isinstance(rule_id, bool):
                    return alert_rules.update_rule(conn, rule_id, fields, **options), "changed"
                return alert_rules.create_rule(conn, fields, **options), "created"
        except QueryError as exc:
            at_fault.append(exc.field)
            raise

    answer, error = guarded(work)
    if error:
        field = at_fault[0] if at_fault else None
        return error_message(error, field), None, field
    rule, verb = answer
    text = f"Rule “{rule.name}” {verb}: {rule.describe()}."
    if verb == "created":
        text += f" It judges each complete {rule.granularity} from the next evaluation on."
    return alert(text, "success"), rule, None


def preview(fields: dict):
    """What the form's rule would have done lately, or the refusal naming its field."""
    def work():
        config = current_app.config
        return db.read(lambda conn: preview_alert(conn, config, fields))

    answer, error = guarded(work)
    return layout.preview_result(answer) if error is None else alert(error)


def delete(rule_id: int) -> tuple:
    """(message, deleted?)."""
    if not may_write_metrics():
        return alert(READ_TOKEN_ONLY), False

    def work():
        with db.writing() as conn:
            rule = alert_rules.get_rule(conn, rule_id)
            alert_rules.delete_rule(conn, rule.id)
            return rule.name
    name, error = guarded(work)
    if error:
        return alert(error), False
    return alert(f"Rule “{name}” deleted, with its history.", "success"), True


def clicked_id(key: str):
    """The rule id of the pattern-matched button that was clicked, or None (a table redraw
    fires the callback with nothing clicked)."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or trigger.get("type") != key or not any(t.get("value") for t in ctx.triggered):
        return None
    rid = trigger.get("id")
    return rid if isinstance(rid, int) and not isinstance(rid, bool) and rid > 0 else None


def condition_fields(condition, direction) -> tuple:
    """(anomaly fields' style, threshold fields' styles ×2, direction options, direction)."""
    if condition == "threshold":
        allowed = layout.THRESHOLD_DIRECTIONS
        shown = (layout.HIDDEN, None, None)
    else:
        allowed = layout.ANOMALY_DIRECTIONS
        shown = (None, layout.HIDDEN, layout.HIDDEN)
    values = [o["value"] for o in allowed]
    return (*shown, allowed, direction if direction in values else values[0])


FORM_ORDER = ("name", "metric", "channel", "granularity", "condition", "min_severity", "direction", "threshold",
              "for_buckets", "min_volume", "webhook_url", "notify", "silenced_until", "enabled")
FORM_IDS = (ids.ALERT_NAME, ids.ALERT_METRIC, ids.ALERT_CHANNEL, ids.ALERT_GRANULARITY, ids.ALERT_CONDITION,
            ids.ALERT_SEVERITY, ids.ALERT_DIRECTION, ids.ALERT_THRESHOLD, ids.ALERT_FOR_BUCKETS, ids.ALERT_MIN_VOLUME,
            ids.ALERT_WEBHOOK, ids.ALERT_NOTIFY, ids.ALERT_SILENCE_UNTIL, ids.ALERT_ENABLED)


def register(dash_app: Dash, channels: tuple[str, ...]) -> None:
    prefix = dash_app.config.requests_pathname_prefix

    @dash_app.callback(Output(ids.ALERT_RULES, "children"), Input(ids.ALERTS_VERSION, "data"),
                       Input(ids.REFRESH, "n_intervals"), Input(ids.URL, "search"))
    def _rules(_version, _tick, search):
        shown_on(search, channels, "alerts")
        table, error = rules_view(search, channels)
        return error or table

    @dash_app.callback(Output(ids.ALERT_HISTORY, "children"), Input(ids.URL, "search"),
                       Input(ids.ALERTS_VERSION, "data"), Input(ids.REFRESH, "n_intervals"))
    def _history(search, _version, _tick):
        shown_on(search, channels, "alerts")
        return history_view(search, channels, prefix)

    @dash_app.callback(Output(ids.URL, "search", allow_duplicate=True),
                       Input(ids.alert_select(ALL), "n_clicks"), State(ids.URL, "search"), prevent_initial_call=True)
    def _select(_clicks, search):
        rid = clicked_id("alert-select")
        if rid is None:
            return no_update
        state = parse_search(search, channels)
        picked = to_search(replace(state, tab="alerts", alert=str(rid)))
        return picked if picked != search else no_update

    @dash_app.callback(Output(ids.ALERT_ANOMALY_FIELDS, "style"), Output(ids.ALERT_THRESHOLD_FIELDS, "style"),
                       Output(ids.ALERT_FOR_FIELDS, "style"),
                       Output(ids.ALERT_DIRECTION, "options"), Output(ids.ALERT_DIRECTION, "value"),
                       Input(ids.ALERT_CONDITION, "value"), State(ids.ALERT_DIRECTION, "value"))
    def _condition(condition, direction):
        return condition_fields(condition, direction)

    @dash_app.callback(Output(ids.ALERT_THRESHOLD_UNIT, "children"), Input(ids.ALERT_METRIC, "value"))
    def _unit(metric):
        if not isinstance(metric, str) or not metric:
            return ""
        definition, error = ask_metric(metric)
        return "" if error else UNIT_TEXT.get(definition.unit, "")

    @dash_app.callback(*[Output(i, "value") for i in FORM_IDS], Output(ids.ALERT_EDITING, "data"),
                       Output(ids.ALERT_ERROR_FIELD, "data", allow_duplicate=True),
                       Output(ids.ALERT_FORM_MESSAGE, "children", allow_duplicate=True),
                       Input(ids.alert_edit(ALL), "n_clicks"), Input(ids.ALERT_NEW, "n_clicks"),
                       prevent_initial_call=True)
    def _fill(_edits, new_clicks):
        unchanged = (no_update,) * (len(FORM_IDS) + 3)
        if ctx.triggered_id == ids.ALERT_NEW:
            if not new_clicks:
                return unchanged
            return (*[DEFAULT_FORM[k] for k in FORM_ORDER], None, None, None)
        rid = clicked_id("alert-edit")
        if rid is None:
            return unchanged

        def work():
            return db.read(lambda conn: alert_rules.get_rule(conn, rid))
        rule, error = guarded(work)
        if error:
            return (*unchanged[:-1], alert(error, "warning"))
        values = rule_form_values(rule)
        return (*[values[k] for k in FORM_ORDER], {"id": rule.id, "name": rule.name}, None, None)

    @dash_app.callback(Output(ids.ALERT_FORM_TITLE, "children"), Output(ids.ALERT_SAVE, "children"),
                       Input(ids.ALERT_EDITING, "data"))
    def _mode(editing):
        if isinstance(editing, dict) and isinstance(editing.get("name"), str):
            return f"Edit rule “{editing['name'][:100]}”", "Save changes"
        return "New rule", "Create rule"

    @dash_app.callback(Output(ids.ALERT_DRAFT_NOTE, "children"), Input(ids.ALERT_EDITING, "data"),
                       Input(ids.ALERT_NEW, "n_clicks"), prevent_initial_call=True)
    def _draft_done(editing, new_clicks):
        # saved (the form now edits a rule), or replaced by a blank form: no longer a draft
        replaced = ctx.triggered_id == ids.ALERT_NEW and bool(new_clicks)
        return None if isinstance(editing, dict) or replaced else no_update

    @dash_app.callback(Output(ids.ALERT_FORM_MESSAGE, "children"), Output(ids.ALERTS_VERSION, "data"),
                       Output(ids.ALERT_EDITING, "data", allow_duplicate=True), Output(ids.ALERT_ERROR_FIELD, "data"),
                       Output(ids.URL, "search", allow_duplicate=True),
                       Input(ids.ALERT_SAVE, "n_clicks"), *[State(i, "value") for i in FORM_IDS],
                       State(ids.ALERT_EDITING, "data"), State(ids.ALERTS_VERSION, "data"), State(ids.URL, "search"),
                       prevent_initial_call=True)
    def _save(clicks, *args):
        if not clicks:
            return (no_update,) * 5
        *values, editing, version, search = args
        message, rule, field = save(form_fields(*values), editing)
        if rule is None:
            return message, no_update, no_update, field, no_update
        state = parse_search(search, channels)
        picked = to_search(replace(state, tab="alerts", alert=str(rule.id)))
        return (message, _next(version), {"id": rule.id, "name": rule.name}, None,
                picked if picked != search else no_update)

    @dash_app.callback(Output(ids.ALERT_PREVIEW_RESULT, "children"), Input(ids.ALERT_PREVIEW, "n_clicks"),
                       *[State(i, "value") for i in FORM_IDS], prevent_initial_call=True)
    def _preview(clicks, *values):
        return preview(form_fields(*values)) if clicks else no_update

    @dash_app.callback(*[Output(i, "invalid") for i in FIELD_INPUTS.values()], Input(ids.ALERT_ERROR_FIELD, "data"))
    def _invalid(field):
        return tuple(field == name for name in FIELD_INPUTS)

    @dash_app.callback(Output(ids.ALERT_CONFIRM_DELETE, "displayed"), Output(ids.ALERT_CONFIRM_DELETE, "message"),
                       Output(ids.ALERT_PENDING_DELETE, "data"), Input(ids.alert_delete(ALL), "n_clicks"),
                       prevent_initial_call=True)
    def _ask_delete(_clicks):
        rid = clicked_id("alert-delete")
        if rid is None:
            return no_update, no_update, no_update

        def work():
            def read(conn):
                rule = alert_rules.get_rule(conn, rid)
                return rule.name, len(alert_rules.history(conn, rule.id))
            return db.read(read)
        answer, error = guarded(work)
        if error:
            return no_update, no_update, no_update
        name, changes = answer
        history = f"its {changes} recorded change{'s' if changes != 1 else ''} of state" if changes else "its history"
        return True, f"Delete the rule “{name}” with {history}? This cannot be undone.", rid

    @dash_app.callback(Output(ids.ALERTS_MESSAGE, "children"), Output(ids.ALERTS_VERSION, "data", allow_duplicate=True),
                       Output(ids.URL, "search", allow_duplicate=True),
                       Output(ids.ALERT_EDITING, "data", allow_duplicate=True),
                       Input(ids.ALERT_CONFIRM_DELETE, "submit_n_clicks"), State(ids.ALERT_PENDING_DELETE, "data"),
                       State(ids.ALERTS_VERSION, "data"), State(ids.URL, "search"), State(ids.ALERT_EDITING, "data"),
                       prevent_initial_call=True)
    def _delete(confirmed, rid, version, search, editing):
        if not confirmed or not isinstance(rid, int) or isinstance(rid, bool):
            return (no_update,) * 4
        message, deleted = delete(rid)
        if not deleted:
            return message, no_update, no_update, no_update
        state = parse_search(search, channels)
        cleared = to_search(replace(state, alert=None)) if state.alert == str(rid) else search
        was_editing = isinstance(editing, dict) and editing.get("id") == rid
        return (message, _next(version), cleared if cleared != search else no_update,
                None if was_editing else no_update)


def _next(version) -> int:
    return version + 1 if isinstance(version, int) and not isinstance(version, bool) and version < 2 ** 31 else 1
