"""The Flask application: `create_app` for a standalone server, `init_dashboard` and
`ensure_extensions` for embedding in an existing portal."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect
from flask.logging import default_handler

from dashapp.access import token_protect
from dashapp.config import ConfigError, build_settings
from dashapp.dashboard import init_dashboard
from dashapp.factory import ensure_extensions

__all__ = ["create_app", "init_dashboard", "ensure_extensions"]


PROJECT_LOGGERS = ("dashapp", "services", "callbacks", "layouts", "scheduler", "analytics")


def configure_logging() -> None:
    """This project's loggers at INFO, written to stderr by Flask's own handler, only in a
    process whose logging nobody configured (its root logger has no handler). The root
    logger and third-party loggers are never touched: where a host application configured
    logging, our records simply propagate to its handlers at its levels."""
    if logging.getLogger().handlers:
        return
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        if default_handler not in logger.handlers:
            logger.addHandler(default_handler)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Defaults, then the environment, then `config`; the API and the dashboard mounted."""
    configure_logging()
    app = Flask(__name__, instance_relative_config=True)
    settings = build_settings(config)
    if settings["ENV"] == "production" and not (settings["READ_TOKEN"] or settings["ADMIN_TOKEN"]):
        raise ConfigError("ENV=production needs access control: set READ_TOKEN and ADMIN_TOKEN, or embed the "
                          "dashboard in a portal with init_dashboard(protect=...) (README, 'Access')")
    app.config.update(settings)
    if settings["TRUSTED_PROXIES"]:  # client address, scheme and host as the load balancer saw them
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    ensure_extensions(app)
    protect = token_protect(settings["READ_TOKEN"], settings["ADMIN_TOKEN"]) \
        if settings["READ_TOKEN"] or settings["ADMIN_TOKEN"] else None
    init_dashboard(app, url_base_pathname=settings["URL_PREFIX"], protect=protect)
    if settings["URL_PREFIX"] != "/":  # the standalone app's root is the dashboard

        @app.get("/")
        def root():
            return redirect(settings["URL_PREFIX"])
    return app
