"""Binding this product to a Flask app: settings, the database and cache extensions, error
handlers, body limits, the rate limiter, compression, the API blueprint, the CLI and the
optional in-process scheduler, in that order. `create_app` and `init_dashboard` both call
`ensure_extensions`, so a portal's app gets the same wiring as the standalone one.
"""
from __future__ import annotations

import math
import time

import click
from flask import Flask

from dashapp.api import api
from dashapp.cli import register as register_cli
from dashapp.config import DEFAULTS, build_settings, scheduler_mode
from dashapp.errors import error_response, register_app_handlers
from dashapp.extensions import cache, cache_config, cache_namespace, db


def ensure_extensions(app: Flask) -> None:
    """Bind the database, cache, API and CLI to `app` once (create_app or a portal)."""
    if db.key in app.extensions:
        return
    overrides = {k: v for k, v in app.config.items() if k in DEFAULTS and v is not None}
    settings = build_settings(overrides)
    app.config.update(settings)
    app.config.update(cache_config(settings))
    db.init_app(app)
    cache.init_app(app)

    register_app_handlers(app, settings["URL_PREFIX"])
    _limit_api(app, api, settings)
    _compress_responses(app, settings)
    _tell_where_reads_ran(app)
    app.register_blueprint(api)
    register_cli(app)
    click_ctx = click.get_current_context(silent=True)
    mode = scheduler_mode(settings, click_ctx.info_name if click_ctx else None)
    app.extensions["analytics_scheduler_state"] = mode
    if mode == "inprocess":
        from scheduler.runner import start_in_background  # only where the scheduler runs in-process

        app.extensions["analytics_scheduler_stop"] = start_in_background(app)


def _compress_responses(app: Flask, settings: dict) -> None:
    """Compress this product's responses over 1 KB (API answers, Dash payloads and assets):
    a 7-day chart is ~30 KB of JSON. Only our paths: a portal's own pages stay as they are."""
    from flask import request
    from flask_compress import Compress

    # zstd and gzip cost a tenth of brotli's time for the same JSON; gzip at level 1 compresses a
    # 7-day chart (38 KB) to 6.8 KB in 0.23 ms, at level 5 to 6.1 KB in 0.60 ms: on every answer, level 1
    for key, value in (("COMPRESS_REGISTER", False), ("COMPRESS_MIN_SIZE", 1024), ("COMPRESS_LEVEL", 1),
                       ("COMPRESS_ALGORITHM", ["zstd", "gzip", "br", "deflate"]),
                       ("COMPRESS_MIMETYPES", ["application/json", "text/html", "text/css", "text/csv",
                                               "application/javascript", "text/javascript"])):
        app.config.setdefault(key, value)
    compress = Compress(app)
    ours = (settings["URL_PREFIX"], "/api/")

    @app.after_request
    def compressed(response):
        return compress.after_request(response) if request.path.startswith(ours) else response


def _tell_where_reads_ran(app: Flask) -> None:
    """With DATABASE_READ_URL, a response whose reads chose a server says which (X-Analytics-Read:
    "replica", "primary" or both) and how long choosing took, the wait for the replica to catch
    up included (Server-Timing: replica-wait;dur=ms, shown by browsers' developer tools)."""
    from flask import g

    @app.after_request
    def told(response):
        seen = g.pop("analytics_reads", None)
        if seen:
            response.headers["X-Analytics-Read"] = ",".join(sorted(seen))
            response.headers.add("Server-Timing", f"replica-wait;dur={g.pop('analytics_replica_wait', 0.0) * 1000:.1f}")
        return response


def _limit_api(app: Flask, blueprint, settings: dict) -> None:
    """Requests per client address on the API (Redis-backed when REDIS_URL is set, shared
    by every worker); health probes are never limited, and a dead Redis never blocks."""
    from flask import request
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    if settings["RATE_LIMIT"] == "off":
        return
    timeout = settings["REDIS_SOCKET_TIMEOUT"]

    def breached(limit):
        # whole seconds until the window frees a request, never more than the window itself
        retry = min(max(1, math.ceil(limit.reset_at - time.time())), limit.limit.get_expiry())
        return error_response(f"Too many requests from this client: at most {limit.limit}. Retry in {retry} s.",
                              None, 429, {"Retry-After": str(retry)})

    limiter = Limiter(get_remote_address, app=app, storage_uri=settings.get("REDIS_URL") or "memory://",
                      storage_options={"socket_timeout": timeout, "socket_connect_timeout": timeout}
                      if settings.get("REDIS_URL") else {},
                      swallow_errors=True, in_memory_fallback_enabled=True, headers_enabled=False,
                      key_prefix="limit:" + cache_namespace(settings), on_breach=breached)
    limiter.limit(settings["RATE_LIMIT"], exempt_when=lambda: request.endpoint == "api.health")(blueprint)
    app.extensions["analytics_limiter"] = limiter
