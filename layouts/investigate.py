"""The Investigate tab: one user's notifications with their lifecycles and success rates
beside their channels', or one notification's lifecycle step by step. Pure functions of
the services' answers; `link(**changes)` makes the in-app address of another view."""
from __future__ import annotations

from collections.abc import Callable

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import figures, ids
from layouts.overview import GRAPH_CONFIG
from services.store.schema import FAILURE_STATUSES, STATUSES, channel_label

TIMELINE_ROWS = 40  # notifications drawn on the user's timeline (the table lists them all)


def layout() -> html.Div:
    return html.Div([
        html.Div(id=ids.INVESTIGATE_ALERT),
        dcc.Loading(html.Div(id=ids.INVESTIGATE_BODY, children=prompt()), delay_show=150),
    ])


def prompt() -> html.Div:
    return html.Div([
        html.H5("Investigate a user or a notification"),
        html.P(["Type a user id or a notification id in ", html.B("Find"),
                " at the top right (ids are matched exactly), or click an id in the Drill-down events grid."],
               className="text-muted"),
    ], className="py-3")


def duration(seconds: float | None) -> str:
    """1.2 s, 4 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return ""
    s = abs(seconds)
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60)} s"
    if s < 86400:
        return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"
    return f"{int(s // 86400)} d {int(s % 86400 // 3600)} h"


def _time(iso: str | None, digits: int = 19) -> str:
    """2026-12-02 10:47:41 (`digits` 23: to the millisecond)."""
    return "" if not iso else iso.replace("T", " ").rstrip("Z")[:digits]


def nothing_found(find: str, span: str, retention_days: int) -> html.Div:
    return dbc.Alert([
        html.B(f"No user or notification has the id {find!r}. "),
        f"Users are searched {span}, notifications over the whole raw retention ({retention_days} days); ids are "
        "matched exactly (case included).",
    ], color="secondary", className="my-3")


def _outcome_badge(outcome: str | None, error_code: str | None) -> html.Span:
    if outcome is None:
        return dbc.Badge("no outcome yet", color="light", text_color="dark")
    colour = {"delivered": "success", "failed": "danger", "bounced": "warning"}.get(outcome, "secondary")
    text = outcome + (f" · {error_code}" if error_code else "")
    return dbc.Badge(text, color=colour)


def notification_view(found, link: Callable[..., str], revision: str) -> html.Div:
    """One notification: what it was, and each step with the time since the previous one."""
    summary = found.summary
    user = summary["user_id"]
    facts = [
        ("Channel", channel_label(summary["channel"])),
        ("Template", summary["template_name"] or (f"#{summary['template_id']}" if summary["template_id"] is not None
                                                  else "none")),
        ("User", dcc.Link(user, href=link(tab="investigate", find=user)) if user else "unknown"),
        ("Outcome", _outcome_badge(summary["outcome"], summary["error_code"])),
        ("Provider", summary["provider"] or "not given"),
        ("Sent", f"{_time(summary['sent_at'])} UTC" if summary["sent_at"] else "no sent event stored"),
    ]
    rows = [html.Tr([html.Td(e["status"].capitalize(), className="fw-semibold"), html.Td(_time(e["created_at"], 23)),
                     html.Td(duration(found.steps[i - 1]["seconds"]) if i else "", className="lifecycle-step"),
                     html.Td(e["error_code"] or ""), html.Td(e["provider"] or ""),
                     html.Td("" if e["processing_time_ms"] is None else f"{e['processing_time_ms']:,} ms"),
                     html.Td(e["event_id"], className="small text-muted")])
            for i, e in enumerate(found.events)]
    missing = [m for m in summary["missing"]]
    note = {"notification_id": found.notification_id, "channel": summary["channel"],
            "template_name": summary["template_name"],
            "steps": [{"status": e["status"], "time": e["created_at"],
                       "after_seconds": sum(s["seconds"] for s in found.steps[:i])} for i, e in enumerate(found.events)]}
    return html.Div([
        html.H5(["Notification ", html.Code(found.notification_id)], className="mb-3"),
        dbc.Row([dbc.Col([html.Div(label, className="small text-muted"), html.Div(value)], md=2)
                 for label, value in facts], className="mb-3 g-2"),
        dbc.Alert(f"Not stored for this notification: {', '.join(missing)}.", color="warning", className="py-2")
        if missing else None,
        dbc.Card(dbc.CardBody(dcc.Graph(id=ids.INVESTIGATE_TIMELINE, figure=figures.lifecycle_timeline(
            [note], revision, height=180), config=GRAPH_CONFIG)), className="shadow-sm mb-3"),
        dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("Step", "Time (UTC)", "After the previous step",
                                                             "Error code", "Provider", "Processing", "Event")])),
                   html.Tbody(rows)], size="sm", hover=True, responsive=True, id=ids.LIFECYCLE_TABLE),
    ])


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def user_view(activity: dict, span: str, link: Callable[..., str], revision: str) -> html.Div:
    """One user: their notifications in the range on a timeline and in a table, what
    happened to them per channel (each count opens those events), and their success rates
    against everyone's on the same channel."""
    user = activity["user_id"]
    counts = []
    for row in activity["by_channel"]:
        parts = []
        for status in STATUSES:
            n = row.get(status, 0)
            if not n:
                continue
            text = f"{n:,} {status}"
            href = link(tab="drilldown", drill=(row["channel"], status), user=user)
            colour = "text-danger" if status in FAILURE_STATUSES else ""
            parts += [dcc.Link(text, href=href, className=colour, id={"type": "user-count", "key":
                                                                       f"{row['channel']}-{status}"}), " · "]
        counts.append(html.Li([html.B(f"{row['channel_label']}: "), *parts[:-1]]))
    comparison = [html.Tr([html.Td(c["channel_label"]), html.Td(c["label"]),
                           html.Td(f"{_rate(c['user_value'])} ({c['user_numerator']:,} of {c['user_denominator']:,})"
                                   if c["user_denominator"] else f"n/a (none {c['denominator']})"),
                           html.Td(_rate(c["channel_value"]) + (f" of {c['channel_denominator']:,.0f}"
                                                                if c["channel_denominator"] else ""))])
                  for c in activity["comparison"]]
    notes = activity["notifications"]
    table = [html.Tr([
        html.Td(_time(n["first_at"])), html.Td(channel_label(n["channel"])),
        html.Td(n["template_name"] or (f"#{n['template_id']}" if n["template_id"] is not None else "")),
        html.Td(_outcome_badge(n["outcome"], n["error_code"])), html.Td(n["provider"] or ""),
        html.Td(" → ".join(s["status"] for s in n["steps"])),
        html.Td(dcc.Link(n["notification_id"], href=link(tab="investigate", find=n["notification_id"]))
                if n["notification_id"] else "no id"),
    ]) for n in notes]
    more = (f" (the {len(notes)} newest of {activity['notification_count']:,} are listed)"
            if activity["truncated"] else "")
    return html.Div([
        html.H5(["User ", html.Code(user)], className="mb-1"),
        html.P(f"{_count(activity['notification_count'], 'notification')} and {_count(activity['events'], 'event')} "
               f"{span}{more}. "
               "Users are not rolled up: this reads raw events.", className="text-muted small"),
        dbc.Row([
            dbc.Col([html.H6("What happened, per channel"), html.Ul(counts, className="mb-0", id=ids.USER_COUNTS)],
                    md=5),
            dbc.Col([html.H6("Success against the channel"),
                     dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("Channel", "Metric", "This user",
                                                                         "Everyone on the channel")])),
                                html.Tbody(comparison)], size="sm", className="mb-0", id=ids.USER_COMPARISON)],
                    md=7),
        ], className="mb-3 g-3"),
        dbc.Card(dbc.CardBody([
            html.Div(f"Lifecycles of the {min(len(notes), TIMELINE_ROWS)} newest notifications; click one to open it.",
                     className="small text-muted"),
            dcc.Graph(id=ids.INVESTIGATE_TIMELINE, figure=figures.lifecycle_timeline(notes[:TIMELINE_ROWS], revision),
                      config=GRAPH_CONFIG)]), className="shadow-sm mb-3"),
        dbc.Table([html.Thead(html.Tr([html.Th(h) for h in ("First event (UTC)", "Channel", "Template", "Outcome",
                                                             "Provider", "Steps", "Notification")])),
                   html.Tbody(table)], size="sm", hover=True, responsive=True, id=ids.USER_NOTIFICATIONS),
    ])
