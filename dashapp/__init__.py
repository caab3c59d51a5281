"""The Flask application: `create_app` for a standalone server, `init_dashboard` and
`ensure_extensions` for embedding in an existing portal."""
from __future__ import annotations

from typing import Any

from flask import Flask

from dashapp.config import build_settings
from dashapp.dashboard import init_dashboard
from dashapp.extensions import ensure_extensions

__all__ = ["create_app", "init_dashboard", "ensure_extensions"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then the environment, then `config`; the API and the dashboard mounted."""
    app = Flask(__name__, instance_relative_config=True)
    settings = build_settings(config)
    app.config.update(settings)
    ensure_extensions(app)
    init_dashboard(app, url_base_pathname=settings["URL_PREFIX"])
    return app
