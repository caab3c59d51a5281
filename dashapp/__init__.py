"""The Flask application: `create_app` for a standalone server, `init_dashboard` and
`ensure_extensions` for embedding in an existing portal."""
from __future__ import annotations

from typing import Any

from flask import Flask

from dashapp.access import token_protect
from dashapp.config import ConfigError, build_settings
from dashapp.dashboard import init_dashboard
from dashapp.extensions import ensure_extensions

__all__ = ["create_app", "init_dashboard", "ensure_extensions"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then the environment, then `config`; the API and the dashboard mounted."""
    app = Flask(__name__, instance_relative_config=True)
    settings = build_settings(config)
    if settings["ENV"] == "production" and not (settings["READ_TOKEN"] or settings["ADMIN_TOKEN"]):
        raise ConfigError("ENV=production needs access control: set READ_TOKEN and ADMIN_TOKEN, or embed the "
                          "dashboard in a portal with init_dashboard(protect=...) (README, 'Access')")
    app.config.update(settings)
    ensure_extensions(app)
    protect = token_protect(settings["READ_TOKEN"], settings["ADMIN_TOKEN"]) \
        if settings["READ_TOKEN"] or settings["ADMIN_TOKEN"] else None
    init_dashboard(app, url_base_pathname=settings["URL_PREFIX"], protect=protect)
    return app
