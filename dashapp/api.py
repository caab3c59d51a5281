"""The JSON API: HTTP adapters only. Each view parses its parameters, calls one
service function and returns its plain result as JSON."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from dashapp.errors import register_blueprint_handlers
from dashapp.extensions import cache, db
from dashapp.health import cache_state, database_problem

api = Blueprint("api", __name__)
register_blueprint_handlers(api)


@api.get("/health")
def health():
    problem = database_problem(db.engine)
    cache_status = cache_state(cache, bool(current_app.config.get("REDIS_URL")))
    body = {
        "status": "healthy" if problem is None and not cache_status.startswith("error") else "degraded",
        "database": "ok" if problem is None else f"error: {problem}",
        "cache": cache_status,
        "scheduler": current_app.extensions.get("analytics_scheduler_state", "off"),
    }
    return jsonify(body), 200 if problem is None else 503
