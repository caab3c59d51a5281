"""Errors are answers: one exception type for bad input, one JSON shape for every error
of the API. The portal's own pages keep their own error pages."""
from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from dashapp.health import QUERY_TOO_LONG, SCHEMA_MISSING, is_missing_schema, is_timeout, short_error
from services.timerange import QueryError

JSON_PATHS = ("/api/", "/health")


class ApiError(Exception):
    """Bad input: HTTP `status` with `{"error": message, "field": field}`."""

    def __init__(self, message: str, field: str | None = None, status: int = 400, headers: dict | None = None):
        super().__init__(message)
        self.message, self.field, self.status, self.headers = message, field, status, headers or {}


def error_response(message: str, field: str | None, status: int, headers: dict | None = None):
    response = jsonify({"error": message, "field": field})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _database_down(exc: Exception):
    current_app.logger.error("database unavailable: %s", short_error(exc))
    return error_response("The analytics database is not answering; try again shortly.",
                          None, 503, {"Retry-After": "5"})


def register_blueprint_handlers(blueprint: Blueprint) -> None:
    @blueprint.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.message, exc.field, exc.status, exc.headers)

    @blueprint.errorhandler(QueryError)
    def _query_error(exc: QueryError):
        return error_response(exc.message, exc.field, 400)

    @blueprint.errorhandler(OperationalError)
    def _operational(exc: OperationalError):
        if is_timeout(exc):
            current_app.logger.warning("query stopped by the statement timeout: %s", short_error(exc))
            return error_response(QUERY_TOO_LONG, None, 503, {"Retry-After": "30"})
        if is_missing_schema(exc):  # SQLite says "no such table" as an OperationalError
            return error_response(SCHEMA_MISSING, None, 503)
        return _database_down(exc)

    @blueprint.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException) and exc.response is not None:
            return exc.response  # an answer made by whoever raised it (the rate limiter)
        if isinstance(exc, HTTPException):
            return error_response(exc.description or exc.name, None, exc.code or 500)
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return _database_down(exc)
        if isinstance(exc, DBAPIError) and is_missing_schema(exc):
            current_app.logger.error("schema missing: %s", short_error(exc))
            return error_response(SCHEMA_MISSING, None, 503)
        current_app.logger.exception("unhandled error")
        return error_response("Something went wrong on our side; it has been logged.", None, 500)


def register_app_handlers(app: Flask) -> None:
    """Unrouted API paths (404, 405) answer JSON too; the portal's pages are left alone."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.response is not None:  # the exception carries its own answer (the rate limiter's)
            return exc.response
        if request.path.startswith(JSON_PATHS):
            return error_response(exc.description or exc.name, None, exc.code or 500)
        return exc
