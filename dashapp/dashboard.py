"""Mount the Dash dashboard on any Flask server, under any prefix, behind any login."""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from dash import Dash
from flask import Flask, current_app, has_request_context, request

from dashapp.extensions import db
from dashapp.factory import ensure_extensions
from dashapp.health import database_problem
from dashapp.security import add_security_headers
from layouts import shell

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PLOTLY_BUNDLE = "plotly-cartesian-4.1.1.min.js"  # the plotly.js version of the pinned plotly package
REGENERATOR = "regenerator-runtime-0.14.1.js"
_POLYFILL = re.compile(r'<script src="[^"]*/_dash-component-suites/dash/deps/polyfill@[^"]*"></script>\s*')


class AnalyticsDash(Dash):
    """Dash without the Babel polyfill it puts before every page's scripts: 99 KB of core-js
    for browsers older than any this page supports, about 0.1 s of script run on each fresh
    page load here. The one part of it Dash's bundles still use, the global
    regeneratorRuntime (their lazy-loading wrappers), is loaded in its place (REGENERATOR,
    before every component bundle)."""

    def interpolate_index(self, **kwargs) -> str:
        kwargs["scripts"] = _POLYFILL.sub("", kwargs["scripts"])
        return super().interpolate_index(**kwargs)


def init_dashboard(server: Flask, url_base_pathname: str = "/analytics/",
                   protect: Callable | None = None) -> Dash:
    """Create the dashboard on `server` at `url_base_pathname`.

    `protect` (for example `flask_login.login_required`) wraps every Dash view: the page,
    its assets, its layout and dependencies, and every callback request.
    """
    # callbacks import dashapp's helpers; importing them here keeps `import dashapp` acyclic
    import callbacks.alerts
    import callbacks.compare
    import callbacks.correlations
    import callbacks.drilldown
    import callbacks.investigate
    import callbacks.metrics
    import callbacks.overview
    import callbacks.shell
    import callbacks.trends

    ensure_extensions(server)  # a portal's app may not have them yet
    dash_app = AnalyticsDash(
        __name__,
        server=server,
        url_base_pathname=url_base_pathname,
        assets_folder=str(ASSETS),
        assets_path_ignore=["vendor"],  # Bootstrap is linked once, below
        external_stylesheets=[url_base_pathname + "assets/vendor/bootstrap.min.css"],
        # Plotly's cartesian bundle (scatter, bar, heatmap: all the charts draw), loaded with the
        # page: 1.5 MB to parse instead of the full 4.8 MB bundle, which dcc.Graph would fetch
        # only once the first chart asks for it (it uses window.Plotly when there is one)
        external_scripts=[url_base_pathname + f"assets/vendor/{REGENERATOR}",
                          url_base_pathname + f"assets/vendor/{PLOTLY_BUNDLE}"],
        title="Notification Analytics",
        suppress_callback_exceptions=True,  # tab content is rendered on demand
        update_title=None,
    )
    channels = tuple(server.config["CHANNELS"])

    def page():
        """The page with the tab its address asks for already in it, and the filters set for
        it, so that tab's charts are asked for in the first wave of callbacks, not after the
        ones filling the tab and the filters (a round trip and a script chunk later). The
        address is the layout request's Referer (same origin: Referrer-Policy same-origin);
        without one, callbacks fill the tab and set the filters."""
        search = _page_search(url_base_pathname)
        if search is None:
            return shell.page(channels)
        return shell.page(channels, **callbacks.shell.first_page(search, channels))

    dash_app.layout = page
    callbacks.shell.register(dash_app, channels, database_status=_dashboard_database_problem)
    callbacks.overview.register(dash_app, channels)
    callbacks.drilldown.register(dash_app, channels)
    callbacks.trends.register(dash_app, channels)
    callbacks.compare.register(dash_app, channels)
    callbacks.correlations.register(dash_app, channels)
    callbacks.metrics.register(dash_app, channels)
    callbacks.alerts.register(dash_app, channels)
    callbacks.investigate.register(dash_app, channels)
    _guard_dash_views(server, url_base_pathname, dash_app)
    if protect is not None:
        _protect_views(server, url_base_pathname, protect)
    add_security_headers(server, dash_app, url_base_pathname)
    # Dash prepares what it serves (which scripts it may send, the callback map) on its first
    # request; under threads it answered the requests racing that one with 404 (plotly/dash#3971),
    # so a page whose scripts came from a fresh worker stayed blank. Prepared before any request.
    dash_app._setup_server()
    return dash_app


def _page_search(prefix: str) -> str | None:
    """The query string ("?tab=…") of the dashboard page that sent this request, from its
    Referer; None outside a request or when the Referer is not one of our pages."""
    if not has_request_context() or not request.referrer:
        return None
    page = urlsplit(request.referrer)
    if page.netloc != request.host or not page.path.startswith(prefix):
        return None
    return f"?{page.query}" if page.query else ""


def _dashboard_database_problem() -> str | None:
    problem = database_problem(db.read_engine)
    if problem is None:
        return None
    current_app.logger.warning("dashboard: database unavailable: %s", problem)
    return ("The analytics database is not answering, so charts cannot load right now. "
            "They will come back on their own once it does.")


# What the page's components send for each property a callback reads; a value of another
# type or shape did not come from this dashboard (None is what a component sends before
# any input). Dropdowns and text inputs send text unless listed.
PROPERTY_TYPES: dict[str, tuple[type, ...]] = {
    "search": (str,), "n_intervals": (int,), "n_clicks": (int,), "clickData": (dict,),
    "getRowsRequest": (dict,), "submit_n_clicks": (int,), "cellClicked": (dict,), "n_submit": (int,),
    "relayoutData": (dict,),
}
VALUE_TYPES: dict[str, tuple[type, ...]] = {
    "refresh-choice": (int,), "theme-dark": (bool,), "density-compact": (bool,), "corr-lag": (int,),
    "corr-metrics": (list,), "corr-detrend": (bool,), "channels": (list,),
    "alert-channel": (list,), "alert-threshold": (int, float), "alert-for-buckets": (int, float),
    "alert-min-volume": (int, float), "alert-enabled": (bool,),
}
DATA_TYPES: dict[str, tuple[type, ...]] = {
    "metrics-version": (int,), "corr-report": (dict,), "alerts-version": (int,), "rendered-tab": (str,),
    "timeseries-drawn": (dict,), "timeseries-marks": (dict,),
    "alert-editing": (dict,), "alert-error-field": (str,), "alert-pending-delete": (int,),
    "metric-pending-delete": (str,),
}


def _value_problem(item: dict) -> str | None:
    prop, value, component = item["property"], item.get("value"), item["id"]
    if value is None:
        return None
    named = component if isinstance(component, str) else None
    if prop == "value":
        expected = VALUE_TYPES.get(named, (str,))
    elif prop == "data":
        expected = DATA_TYPES.get(named)
    else:
        expected = PROPERTY_TYPES.get(prop)
    if expected is None:
        return None
    wrong = (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected)
    if not wrong and prop == "clickData":
        points = value.get("points")
        wrong = not (isinstance(points, list) and points and all(isinstance(p, dict) for p in points))
    if not wrong and isinstance(value, list):
        wrong = not all(isinstance(v, str) for v in value)
    if wrong:
        return f"The callback request's {prop} has a value this dashboard never sends; reload the page."
    return None


def callback_body_problem(body, callback_map: dict) -> str | None:
    """What is wrong with a Dash callback request body, or None: a malformed one is the
    client's mistake (400), not an error of ours."""
    if not isinstance(body, dict):
        return "A callback request must be a JSON object."
    output = body.get("output")
    # only a callback the server runs: a clientside one runs in the browser and has no function here
    if not isinstance(output, str) or "callback" not in callback_map.get(output, {}):
        return "The callback request names no callback of this dashboard; reload the page."
    if not isinstance(body.get("outputs"), (dict, list)):
        return "The callback request has no outputs; reload the page."
    for part in ("inputs", "state", "changedPropIds"):
        items = body.get(part, [])
        if not isinstance(items, list):
            return f"The callback request's {part} must be a list; reload the page."
        flat = [i for item in items for i in (item if isinstance(item, list) else [item])]
        if part != "changedPropIds" and not all(isinstance(i, dict) and "id" in i and isinstance(i.get("property"), str)
                                               for i in flat):
            return f"The callback request's {part} are malformed; reload the page."
        if part != "changedPropIds":
            problem = next((p for p in map(_value_problem, flat) if p), None)
            if problem:
                return problem
        if part == "changedPropIds" and not all(isinstance(i, str) for i in flat):
            return "The callback request's changedPropIds are malformed; reload the page."
    return None


def _guard_dash_views(server: Flask, prefix: str, dash_app: Dash) -> None:
    """Dash's own routes answer like the API: a malformed callback body is a 400, a file
    that is not part of the dashboard a 404, an error of ours a logged 500 — JSON, never
    an HTML error page or a traceback."""
    from dash.exceptions import DependencyException, InvalidResourceError, PreventUpdate
    from flask import request
    from werkzeug.exceptions import HTTPException

    from dashapp.errors import error_response

    def guard(view, endpoint: str):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            if endpoint.endswith("_dash-update-component"):
                body = request.get_json(silent=True)
                problem = callback_body_problem(body, dash_app.callback_map)
                if problem:
                    server.logger.warning("refused a callback request: %s (%.300s)", problem, body)
                    return error_response(problem, "body", 400)
            try:
                return view(*args, **kwargs)
            except (DependencyException, InvalidResourceError):
                return error_response("No such file in this dashboard.", None, 404)
            except (HTTPException, PreventUpdate):
                raise
            except Exception:
                server.logger.exception("dashboard request failed: %s", request.path)
                return error_response("Something went wrong on our side; it has been logged.", None, 500)
        return guarded

    for rule in server.url_map.iter_rules():
        if rule.rule.startswith(prefix) and "_dash-" in rule.rule:
            server.view_functions[rule.endpoint] = guard(server.view_functions[rule.endpoint], rule.endpoint)


# Endpoints that authenticate on their own: load balancers probe /health, and producers
# post events with the ingest token.
UNPROTECTED_ENDPOINTS = frozenset({"api.health", "api.ingest"})


def _protect_views(server: Flask, prefix: str, protect: Callable) -> None:
    """Wrap every Dash view under `prefix` and every API view with the portal's `protect`."""
    for rule in server.url_map.iter_rules():
        dash_view = rule.rule.startswith(prefix)
        api_view = rule.endpoint.startswith("api.") and rule.endpoint not in UNPROTECTED_ENDPOINTS
        if dash_view or api_view:
            server.view_functions[rule.endpoint] = protect(server.view_functions[rule.endpoint])
