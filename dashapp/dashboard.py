"""Mount the Dash dashboard on any Flask server, under any prefix, behind any login."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dash import Dash
from flask import Flask, current_app

from dashapp.extensions import db, ensure_extensions
from dashapp.health import database_problem
from dashapp.security import add_security_headers
from layouts import shell

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def init_dashboard(server: Flask, url_base_pathname: str = "/analytics/",
                   protect: Callable | None = None) -> Dash:
    """Create the dashboard on `server` at `url_base_pathname`.

    `protect` (for example `flask_login.login_required`) wraps every Dash view: the page,
    its assets, its layout and dependencies, and every callback request.
    """
    # callbacks import dashapp's helpers; importing them here keeps `import dashapp` acyclic
    import callbacks.compare
    import callbacks.correlations
    import callbacks.drilldown
    import callbacks.metrics
    import callbacks.overview
    import callbacks.shell
    import callbacks.trends

    ensure_extensions(server)  # a portal's app may not have them yet
    dash_app = Dash(
        __name__,
        server=server,
        url_base_pathname=url_base_pathname,
        assets_folder=str(ASSETS),
        assets_ignore=r"vendor/.*",
        external_stylesheets=[url_base_pathname + "assets/vendor/bootstrap.min.css"],
        title="Notification Analytics",
        suppress_callback_exceptions=True,  # tab content is rendered on demand
        update_title=None,
    )
    channels = tuple(server.config["CHANNELS"])
    dash_app.layout = lambda: shell.page(channels)
    callbacks.shell.register(dash_app, channels, database_status=_dashboard_database_problem)
    callbacks.overview.register(dash_app, channels)
    callbacks.drilldown.register(dash_app, channels)
    callbacks.trends.register(dash_app, channels)
    callbacks.compare.register(dash_app, channels)
    callbacks.correlations.register(dash_app, channels)
    callbacks.metrics.register(dash_app, channels)
    if protect is not None:
        _protect_views(server, url_base_pathname, protect)
    add_security_headers(server, dash_app, url_base_pathname)
    return dash_app


def _dashboard_database_problem() -> str | None:
    problem = database_problem(db.read_engine)
    if problem is None:
        return None
    current_app.logger.warning("dashboard: database unavailable: %s", problem)
    return ("The analytics database is not answering, so charts cannot load right now. "
            "They will come back on their own once it does.")


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
