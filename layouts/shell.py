"""The page around every tab: navbar, global time range and channel filter, tabs."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from layouts import ids
from services.store.schema import channel_label

TABS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"), ("trends", "Trends"), ("compare", "Compare"), ("drilldown", "Drill-down"),
    ("investigate", "Investigate"), ("metrics", "Metrics"), ("correlations", "Correlations"), ("alerts", "Alerts"),
)
TAB_IDS = tuple(tab_id for tab_id, _ in TABS)
DEFAULT_TAB = "overview"

RANGE_PRESETS: tuple[tuple[str, str], ...] = (
    ("1h", "Last hour"), ("6h", "Last 6 hours"), ("24h", "Last 24 hours"), ("7d", "Last 7 days"),
    ("30d", "Last 30 days"), ("90d", "Last 90 days"), ("custom", "Custom (from – to)"),
)
RANGE_IDS = tuple(r for r, _ in RANGE_PRESETS)
DEFAULT_RANGE = "24h"


REFRESH_CHOICES: tuple[tuple[int, str], ...] = (
    (0, "Paused"), (10, "Every 10 s"), (30, "Every 30 s"), (60, "Every minute"), (300, "Every 5 minutes"))
DEFAULT_REFRESH = 30


def navbar(title: str = "Notification Analytics") -> dbc.Navbar:
    return dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand(title, className="fw-semibold"),
            html.Span(id=ids.FIRING_BADGE, className="me-3"),
            html.Span(id=ids.DATA_AS_OF, className="small text-white-50 ms-auto me-3 data-as-of"),
            dbc.Switch(id=ids.THEME_DARK, label="Dark", value=False, class_name="text-white-50 small me-3 mb-0"),
            dbc.Switch(id=ids.DENSITY_COMPACT, label="Compact", value=False,
                       class_name="text-white-50 small me-3 mb-0"),
            html.Div([
                dbc.Label("Find a user or notification by id", html_for=ids.FIND_INPUT, class_name="visually-hidden"),
                dbc.InputGroup([
                    dbc.Input(id=ids.FIND_INPUT, placeholder="User or notification id", type="search", size="sm",
                              maxlength=100, autocomplete="off", style={"width": "15rem"}),
                    dbc.Button("Find", id=ids.FIND_BUTTON, color="light", size="sm"),
                ], size="sm", class_name="flex-nowrap"),
                html.Div(id=ids.FIND_MESSAGE, className="small text-warning position-absolute"),
            ], className="position-relative"),
        ], fluid=True, class_name="flex-nowrap"),
        color="dark", dark=True, className="mb-3",
    )


def filters(channels: tuple[str, ...], controls: dict | None = None) -> dbc.Row:
    """The time range, From and To, the channel filter and the auto-refresh; `controls`
    holds the first four's values ({range, from, to, channels}) when the address is known."""
    controls = controls or {"range": DEFAULT_RANGE, "from": None, "to": None, "channels": []}
    return dbc.Row(
        [
            dbc.Col([
                dbc.Label("Time range", html_for=ids.RANGE, className="small text-muted mb-1"),
                dcc.Dropdown(id=ids.RANGE, options=[{"label": lbl, "value": v} for v, lbl in RANGE_PRESETS],
                             value=controls["range"], clearable=False),
            ], md=2),
            dbc.Col([
                dbc.Label("From – to (UTC)", html_for=ids.RANGE_FROM, className="small text-muted mb-1"),
                html.Div(dbc.InputGroup([
                    dbc.Input(id=ids.RANGE_FROM, type="text", debounce=True, maxlength=25, autocomplete="off",
                              placeholder="2026-11-25 06:00", value=controls["from"]),
                    dbc.InputGroupText("→"),
                    dbc.Input(id=ids.RANGE_TO, type="text", debounce=True, maxlength=25, autocomplete="off",
                              placeholder="2026-11-25 09:00", value=controls["to"]),
                ]), title="The window on show, in UTC. Type a date and time (2026-11-25 06:00) and press Enter "
                          "to look at exactly that window."),
            ], md=4),
            dbc.Col([
                dbc.Label("Channels", html_for=ids.CHANNELS, className="small text-muted mb-1"),
                dcc.Dropdown(id=ids.CHANNELS, options=[{"label": channel_label(c), "value": c}
                                                for c in channels],
                             value=controls["channels"], multi=True, placeholder="All channels"),
            ], md=3),
            dbc.Col([
                dbc.Label("Auto-refresh", html_for=ids.REFRESH_CHOICE, className="small text-muted mb-1"),
                dcc.Dropdown(id=ids.REFRESH_CHOICE, options=[{"label": lbl, "value": v} for v, lbl in REFRESH_CHOICES],
                             value=DEFAULT_REFRESH, clearable=False, searchable=False),
            ], md=2, className="ms-auto"),
        ],
        className="g-3 mb-3 align-items-end",
    )


def tab_nav() -> dbc.Nav:
    """The tabs, as links that carry the current view to their tab (the URL callback keeps
    their addresses current): a middle-click opens a tab in a new window, Back steps back."""
    return dbc.Nav([dbc.NavItem(dbc.NavLink(label, id=ids.tab_link(tab_id), href=f"?tab={tab_id}",
                                            active=tab_id == DEFAULT_TAB))
                    for tab_id, label in TABS], id=ids.TAB_NAV, class_name="nav-tabs mb-3")


def page(channels: tuple[str, ...], search: str | None = None, content=None, rendered: str | None = None,
         controls: dict | None = None, address: str | None = None) -> html.Div:
    """The whole page. When its address is known: `search` is its query string, `content`
    the tab it names, already rendered, `rendered` what that was built from
    (callbacks.shell.content_key), `controls` the values the filters show for it, and
    `address` its canonical form. Otherwise the URL callback sets them once the page is in
    the browser (the location fills its search in, which the charts then wait for)."""
    return html.Div(id=ids.PAGE, className="analytics-page", **{"data-bs-theme": "light"}, children=[
        dcc.Location(id=ids.URL, refresh=False, **({} if search is None else {"search": search})),
        dcc.Interval(id=ids.STATUS_POLL, interval=30_000),
        dcc.Interval(id=ids.REFRESH, interval=DEFAULT_REFRESH * 1000),
        dcc.Store(id=ids.ALERTS_VERSION, data=0),
        dcc.Store(id=ids.RENDERED_TAB, data=rendered),
        dcc.Store(id=ids.ADDRESS, data=address),
        navbar(),
        dbc.Container([
            html.Div(id=ids.STATUS_ALERT),
            filters(channels, controls),
            tab_nav(),
            html.Div(content, id=ids.TAB_CONTENT),
        ], fluid=True),
    ])


def error_alert(message: str) -> dbc.Alert:
    return dbc.Alert(message, color="danger", className="mb-3")


def firing_badge(names: list[str], href: str) -> dcc.Link | None:
    """"2 firing", red, naming the rules on hover and linking to the Alerts tab; nothing
    when no rule fires."""
    if not names:
        return None
    shown = names[:20]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return dcc.Link(f"{len(names)} firing", href=href, title="Firing: " + ", ".join(shown) + more,
                    className="badge rounded-pill bg-danger text-decoration-none firing-badge")
