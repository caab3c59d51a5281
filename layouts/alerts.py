"""The Alerts tab: every rule with its state and a sparkline of what it watches, the form
that creates and edits rules, and the picked rule's history and notification deliveries."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from urllib.parse import quote

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from layouts.overview import card, metric_options
from services.query.format import number
from services.store.schema import channel_label

GRANULARITY_OPTIONS = [{"label": "Minute", "value": "minute"}, {"label": "Hour", "value": "hour"},
                       {"label": "Day", "value": "day"}]
CONDITION_OPTIONS = [{"label": "Anomaly (outside the expected band)", "value": "anomaly"},
                     {"label": "Threshold", "value": "threshold"}]
SEVERITY_OPTIONS = [{"label": "Low or more", "value": "low"}, {"label": "Medium or more", "value": "medium"},
                    {"label": "High only", "value": "high"}]
ANOMALY_DIRECTIONS = [{"label": "Either way", "value": "both"}, {"label": "Above the band", "value": "above"},
                      {"label": "Below the band", "value": "below"}]
THRESHOLD_DIRECTIONS = [{"label": "Above the threshold", "value": "above"},
                        {"label": "Below the threshold", "value": "below"}]
NOTIFY_OPTIONS = [{"label": "Immediately", "value": "immediate"}, {"label": "In a daily digest", "value": "daily_digest"}]
STATE_COLOURS = {"firing": "danger", "resolved": "success", "ok": "secondary"}
DELIVERY_COLOURS = {"sent": "success", "failed": "danger", "pending": "warning", "silenced": "secondary"}
ADVERB = {"minute": "by minute", "hour": "by hour", "day": "by day"}
HIDDEN = {"display": "none"}
SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 120, 30, 3


def when(text: str | None) -> str:
    """"2026-11-23T17:00:00Z" → "2026-11-23 17:00 UTC"."""
    return f"{text[:16].replace('T', ' ')} UTC" if text else "—"


def state_badge(state: str) -> dbc.Badge:
    return dbc.Badge(state, color=STATE_COLOURS.get(state, "secondary"), className="alert-state")


def watches(metric_label: str, filters: Mapping[str, Sequence], granularity: str,
            template_names: Mapping[int, str] | None = None) -> str:
    """"Delivery rate · SMS · by hour": the metric, its filters and the granularity."""
    names = template_names or {}
    parts = [metric_label]
    if filters.get("channel"):
        parts.append(", ".join(channel_label(c) for c in filters["channel"]))
    if filters.get("status"):
        parts.append("status " + ", ".join(filters["status"]))
    if filters.get("template_id"):
        parts.append(", ".join(names.get(t, f"template {t}") for t in filters["template_id"]))
    parts.append(ADVERB.get(granularity, granularity))
    return " · ".join(parts)


# ---------------------------------------------------------------- sparkline

def sparkline_geometry(values: Sequence[float | None], threshold: float | None = None, width: int = SPARK_WIDTH,
                       height: int = SPARK_HEIGHT, pad: int = SPARK_PAD):
    """(runs of (x, y) points, one per stretch without gaps; y of the threshold or None),
    scaled so the lowest value (or threshold) touches the bottom and the highest the top."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return [], None
    scale = known + ([threshold] if threshold is not None and math.isfinite(threshold) else [])
    low, high = min(scale), max(scale)
    if high == low:  # a flat line sits in the middle
        low, high = low - 1, high + 1
    step = (width - 2 * pad) / max(len(values) - 1, 1)

    def y(v: float) -> float:
        return round(pad + (high - v) / (high - low) * (height - 2 * pad), 2)

    runs, run = [], []
    for i, v in enumerate(values):
        if v is None or not math.isfinite(v):
            if run:
                runs.append(run)
            run = []
            continue
        run.append((round(pad + i * step, 2), y(v)))
    if run:
        runs.append(run)
    return runs, (y(threshold) if threshold is not None and math.isfinite(threshold) else None)


def sparkline_svg(values: Sequence[float | None], threshold: float | None = None, colour: str = "#4C78A8",
                  width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str | None:
    """The series as a small SVG (the last point dotted, a threshold dashed); None when it
    has no value at all."""
    runs, threshold_y = sparkline_geometry(values, threshold, width, height)
    if not runs:
        return None
    shapes = []
    if threshold_y is not None:
        shapes.append(f'<line x1="0" x2="{width}" y1="{threshold_y}" y2="{threshold_y}" stroke="#E45756" '
                      f'stroke-width="1" stroke-dasharray="3,2"/>')
    for run in runs:
        if len(run) == 1:
            shapes.append(f'<circle cx="{run[0][0]}" cy="{run[0][1]}" r="1.2" fill="{colour}"/>')
        else:
            points = " ".join(f"{x},{y}" for x, y in run)
            shapes.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5" '
                          f'stroke-linejoin="round"/>')
    x, y = runs[-1][-1]
    shapes.append(f'<circle cx="{x}" cy="{y}" r="2.2" fill="{colour}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(shapes)}</svg>')


def sparkline(values: Sequence[float | None], unit: str, granularity: str, threshold: float | None = None,
              colour: str = "#4C78A8", error: str | None = None):
    """The image with its numbers in words (title and alt) for hover and screen readers."""
    svg = None if error else sparkline_svg(values, threshold, colour)
    if svg is None:
        return html.Span(error or "no data yet", className="small text-muted", title=error or "")
    known = [v for v in values if v is not None and math.isfinite(v)]
    text = (f"Last {len(values)} {granularity}s: from {number(min(known), unit)} to "
            f"{number(max(known), unit)}, last {number(known[-1], unit)}")
    return html.Img(src="data:image/svg+xml;utf8," + quote(svg), alt=text, title=text, className="sparkline",
                    width=SPARK_WIDTH, height=SPARK_HEIGHT)


# ---------------------------------------------------------------- the rules

def rules_table(rows: Sequence[dict], selected: str | None) -> html.Div | dbc.Table:
    """`rows`: {"rule": AlertRule.as_dict(), "watches", "unit", "spark" (a component),
    "silenced" (bool)} per rule."""
    if not rows:
        return html.P(["No alert rules yet. Create one with the form below, or press ",
                       html.Em("Alert me when this…"), " on the Trends tab."], className="text-muted mb-0")
    head = html.Thead(html.Tr([html.Th(h, className="text-nowrap") for h in (
        "Rule", "Watches", "Condition", "State", "Since", "Last value", "Recent buckets", "")]))
    return dbc.Table([head, html.Tbody([_rule_row(r, selected) for r in rows])], size="sm", hover=True,
                     responsive=True, className="mb-0 align-middle alert-rules")


def _rule_row(row: dict, selected: str | None) -> html.Tr:
    rule = row["rule"]
    rid = rule["id"]
    notes = []
    if not rule["enabled"]:
        notes.append(dbc.Badge("paused", color="light", text_color="dark", className="ms-1"))
    if row.get("silenced"):
        notes.append(html.Span(f"silenced until {when(rule['silenced_until'])}", className="small text-muted ms-1"))
    condition = [html.Div(rule["description"])]
    if rule.get("last_error"):
        condition.append(html.Div(f"Could not be evaluated: {rule['last_error']}",
                                  className="small text-danger alert-rule-error"))
    return html.Tr([
        html.Td([dbc.Button(rule["name"], id=ids.alert_select(rid), color="link", size="sm",
                            className="p-0 text-start fw-semibold alert-rule-name", title="Show its history"),
                 *notes]),
        html.Td(row["watches"], className="small"),
        html.Td(condition, className="small"),
        html.Td(state_badge(rule["state"])),
        html.Td(when(rule["state_since"]), className="small text-nowrap"),
        html.Td(number(rule["last_value"], row["unit"]), className="text-nowrap"),
        html.Td(row["spark"]),
        html.Td([dbc.Button("Edit", id=ids.alert_edit(rid), size="sm", color="secondary", outline=True,
                            className="me-1"),
                 dbc.Button("Delete", id=ids.alert_delete(rid), size="sm", color="danger", outline=True)],
                className="text-nowrap"),
    ], className="table-active" if selected == str(rid) else None, id=f"alert-row-{rid}")


# ---------------------------------------------------------------- history

def history_panel(rule: dict, unit: str, transitions: Sequence[dict], deliveries: Sequence[dict],
                  links: Sequence[tuple[str | None, str | None]]) -> html.Div:
    """The picked rule's transitions (each with its trend and drill-down links, in `links`)
    and its recent notification attempts."""
    header = html.Div([html.H5([rule["name"], " ", state_badge(rule["state"])], className="mb-1"),
                       html.P(rule["description"], className="text-muted small mb-3")])
    return html.Div([header, html.H6("Changes of state", className="text-muted"),
                     transitions_table(transitions, unit, links),
                     html.H6("Notifications", className="text-muted mt-3"),
                     deliveries_table(deliveries, rule)], className="alert-history")


def _value_against(t: dict, unit: str) -> list:
    """The value, and under it what it was judged against."""
    lines = [html.Div(number(t.get("value"), unit), className="fw-semibold")]
    if t.get("lower") is not None and t.get("upper") is not None:
        lines += [html.Div(f"expected {number(t.get('expected'), unit)}", className="text-muted"),
                  html.Div(f"band {number(t['lower'], unit)} to {number(t['upper'], unit)}",
                           className="text-muted text-nowrap")]
    elif t.get("expected") is not None:
        lines.append(html.Div(f"threshold {number(t['expected'], unit)}", className="text-muted text-nowrap"))
    return lines


def transitions_table(transitions: Sequence[dict], unit: str,
                      links: Sequence[tuple[str | None, str | None]]) -> html.P | dbc.Table:
    if not transitions:
        return html.P("No change of state yet: every bucket judged so far was within the rule.",
                      className="text-muted small")
    rows = []
    for t, (trend_href, drill_href) in zip(transitions, links):
        jumps = [dcc.Link("trend", href=trend_href) if trend_href else None,
                 dcc.Link("drill down", href=drill_href) if drill_href else None]
        rows.append(html.Tr([
            html.Td([html.Div(t["bucket"][:10]), html.Div(when(t["bucket"])[11:], className="text-muted")],
                    className="text-nowrap"),
            html.Td(state_badge(t["state"])),
            html.Td(_value_against(t, unit)), html.Td(t.get("explanation") or "", className="alert-explanation"),
            html.Td([html.Div(j) for j in jumps if j], className="text-nowrap"),
        ]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Bucket", "State", "Value", "Why", "")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, responsive=True,
                     className="small alert-transitions")


def deliveries_table(deliveries: Sequence[dict], rule: dict) -> html.P | dbc.Table:
    if not deliveries:
        text = ("No webhook set: changes of state show here and in the navbar only." if not rule.get("webhook_url")
                else "Nothing sent yet.")
        return html.P(text, className="text-muted small mb-0")
    rows = [html.Tr([
        html.Td(when(d["created_at"]), className="text-nowrap"),
        html.Td("change of state" if d["kind"] == "transition" else d["kind"]),
        html.Td(dbc.Badge(d["status"], color=DELIVERY_COLOURS.get(d["status"], "secondary"))),
        html.Td(d["attempts"]),
        html.Td(_delivery_note(d)),
    ]) for d in deliveries]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Queued", "Kind", "Status", "Attempts", "")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", responsive=True, className="small mb-0 alert-deliveries")


def _delivery_note(d: dict) -> str:
    if d["status"] == "sent":
        return f"sent {when(d.get('sent_at'))}"
    if d["status"] == "pending" and d.get("next_attempt_at"):
        note = f"next attempt {when(d['next_attempt_at'])}"
        return f"{d['last_error']}; {note}" if d.get("last_error") else note
    if d["status"] == "silenced":
        return "not sent: the rule was silenced"
    return d.get("last_error") or ""


# ---------------------------------------------------------------- the form

def _field(label: str, component, help_text: str | None = None, html_for: str | None = None) -> html.Div:
    parts = [dbc.Label(label, html_for=html_for, className="small mb-1"), component]
    if help_text:
        parts.append(dbc.FormText(help_text))
    return html.Div(parts, className="mb-2")


def rule_form(values: Mapping, custom: list | None, channels: Sequence[str], drafted: bool = False) -> dbc.Form:
    """The create / edit form, filled with `values` (see callbacks.alerts.DEFAULT_FORM);
    `drafted` when they come from another tab's view (the name field then takes the focus)."""
    anomaly = values["condition"] != "threshold"
    directions = ANOMALY_DIRECTIONS if anomaly else THRESHOLD_DIRECTIONS
    note = html.P("Drafted from the view you were on: check the fields, then create the rule.",
                  className="small text-muted mb-2") if drafted else None
    return dbc.Form([
        html.Div(note, id=ids.ALERT_DRAFT_NOTE),
        _field("Name", dbc.Input(id=ids.ALERT_NAME, value=values["name"], maxLength=100, autoFocus=drafted,
                                 placeholder="e.g. SMS delivery rate"), html_for=ids.ALERT_NAME),
        dbc.Row([
            dbc.Col(_field("Metric", dcc.Dropdown(id=ids.ALERT_METRIC, options=metric_options(custom),
                                                  value=values["metric"], clearable=False)), md=7),
            dbc.Col(_field("Channels", dcc.Dropdown(
                id=ids.ALERT_CHANNEL, options=[{"label": channel_label(c), "value": c} for c in channels],
                value=list(values["channel"]), multi=True, placeholder="All channels")), md=5),
        ], className="g-2"),
        dbc.Row([
            dbc.Col(_field("Granularity", dbc.Select(id=ids.ALERT_GRANULARITY, options=GRANULARITY_OPTIONS,
                                                     value=values["granularity"]), html_for=ids.ALERT_GRANULARITY),
                    md=4),
            dbc.Col(_field("Condition", dbc.RadioItems(id=ids.ALERT_CONDITION, options=CONDITION_OPTIONS,
                                                       value=values["condition"])), md=8),
        ], className="g-2"),
        dbc.Row([
            dbc.Col(_field("Direction", dbc.Select(id=ids.ALERT_DIRECTION, options=directions,
                                                   value=values["direction"]), html_for=ids.ALERT_DIRECTION), md=6),
            dbc.Col(_field("Minimum severity", dbc.Select(
                id=ids.ALERT_SEVERITY, options=SEVERITY_OPTIONS, value=values["min_severity"] or "medium"),
                html_for=ids.ALERT_SEVERITY), md=6, id=ids.ALERT_ANOMALY_FIELDS, style=None if anomaly else HIDDEN),
            dbc.Col(_field("Threshold", dbc.InputGroup([
                dbc.Input(id=ids.ALERT_THRESHOLD, type="number", value=values["threshold"], step="any"),
                dbc.InputGroupText("", id=ids.ALERT_THRESHOLD_UNIT)], className="flex-nowrap"),
                html_for=ids.ALERT_THRESHOLD), md=6, id=ids.ALERT_THRESHOLD_FIELDS, style=HIDDEN if anomaly else None),
        ], className="g-2"),
        dbc.Row(dbc.Col(_field("For (buckets in a row)", dbc.Input(
            id=ids.ALERT_FOR_BUCKETS, type="number", value=values["for_buckets"], min=1, step=1),
            "Fires once this many buckets in a row are past the threshold.",
            html_for=ids.ALERT_FOR_BUCKETS), md=6), className="g-2", id=ids.ALERT_FOR_FIELDS,
            style=HIDDEN if anomaly else None),
        dbc.Row([
            dbc.Col(_field("Minimum volume", dbc.Input(id=ids.ALERT_MIN_VOLUME, type="number", min=0, step="any",
                                                       value=values["min_volume"]),
                           "Buckets with fewer events are not judged.", html_for=ids.ALERT_MIN_VOLUME), md=5),
            dbc.Col(_field("Notify", dbc.Select(id=ids.ALERT_NOTIFY, options=NOTIFY_OPTIONS, value=values["notify"]),
                           html_for=ids.ALERT_NOTIFY), md=7),
        ], className="g-2"),
        _field("Webhook URL", dbc.Input(id=ids.ALERT_WEBHOOK, type="url", value=values["webhook_url"], maxLength=1000,
                                        placeholder="https://hooks.example.com/alerts"),
               "Optional; left empty, changes of state show here and in the navbar only.", html_for=ids.ALERT_WEBHOOK),
        dbc.Row([
            dbc.Col(_field("Silence until (UTC)", dbc.Input(id=ids.ALERT_SILENCE_UNTIL, type="datetime-local",
                                                            value=values["silenced_until"]),
                           "Changes of state are recorded but not sent until then.",
                           html_for=ids.ALERT_SILENCE_UNTIL), md=7),
            dbc.Col(dbc.Switch(id=ids.ALERT_ENABLED, label="Enabled", value=values["enabled"]), md=5,
                    className="pt-md-4"),
        ], className="g-2 mb-2"),
        html.Div([dbc.Button("Create rule", id=ids.ALERT_SAVE, color="primary", className="me-2"),
                  dbc.Button("Preview", id=ids.ALERT_PREVIEW, color="secondary", outline=True, className="me-2",
                             title="What this rule would have done over its recent buckets; nothing is saved"),
                  dbc.Button("New rule", id=ids.ALERT_NEW, color="secondary", outline=True)]),
        html.Div(id=ids.ALERT_FORM_MESSAGE, className="mt-2"),
        dcc.Loading(html.Div(id=ids.ALERT_PREVIEW_RESULT, className="mt-2"), type="dot"),
    ])


def layout(values: Mapping, custom: list | None, channels: Sequence[str], drafted: bool = False) -> html.Div:
    return html.Div([
        dcc.Store(id=ids.ALERT_EDITING, data=None),
        dcc.Store(id=ids.ALERT_ERROR_FIELD, data=None),
        dcc.Store(id=ids.ALERT_PENDING_DELETE, data=None),
        dcc.ConfirmDialog(id=ids.ALERT_CONFIRM_DELETE),
        html.Div(id=ids.ALERTS_MESSAGE),
        html.Div(card("Alert rules", dcc.Loading(html.Div(id=ids.ALERT_RULES), delay_show=300),
                      "Pick a rule's name for its history. Rules are judged on every complete bucket."),
                 className="mb-3"),
        dbc.Row([
            dbc.Col(card(html.Span("New rule", id=ids.ALERT_FORM_TITLE), rule_form(values, custom, channels,
                                                                                 drafted)), lg=5),
            dbc.Col(card("History", html.Div(id=ids.ALERT_HISTORY)), lg=7),
        ], className="g-3 mb-3"),
    ])


def pick_a_rule() -> html.P:
    return html.P("Pick a rule's name in the table to see when it fired and resolved, and what was sent.",
                  className="text-muted mb-0")


def preview_result(answer: dict) -> html.Div:
    """The preview's sentence and the changes of state it would have made."""
    rows = [html.Tr([html.Td(when(t["bucket"]), className="text-nowrap"),
                     html.Td(state_badge(t["state"])), html.Td(t["explanation"], className="small")])
            for t in answer["transitions"]]
    return html.Div([
        html.P(answer["sentence"], className="mb-1 fw-semibold"),
        dbc.Table(html.Tbody(rows), size="sm", className="mb-0") if rows else None,
    ], className="border rounded p-2 bg-light")
