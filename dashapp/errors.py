"""Errors are answers: one exception type for bad input, one JSON shape for every error
of the API. The portal's own pages keep their own error pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from dashapp.caching import ReportTooLong
from dashapp.health import (
    QUERY_TOO_LONG,
    SCHEMA_MISSING,
    WRITE_BUSY,
    is_missing_schema,
    is_timeout,
    short_error,
)
from services.query.timerange import NotFound, QueryError

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
        return error_response(exc.message, exc.field, 404 if isinstance(exc, NotFound) else 400)

    @blueprint.errorhandler(ReportTooLong)
    def _report_too_long(exc: ReportTooLong):
        current_app.logger.warning("report stopped after %.0f s of database work: %s", exc.budget, request.full_path)
        return error_response(exc.message, None, 503, {"Retry-After": "30"})

    @blueprint.errorhandler(OperationalError)
    def _operational(exc: OperationalError):
        if is_timeout(exc):
            current_app.logger.warning("%s stopped by a timeout: %s", request.method, short_error(exc))
            if request.method not in ("GET", "HEAD"):
                return error_response(WRITE_BUSY, None, 503, {"Retry-After": "5"})
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


WRITE_TYPES = ("application/json",)
# ingest authenticates with a bearer token, which a browser never sends on its own: it takes
# any body type (producers post JSON or NDJSON with whatever header their tool sets)
TOKEN_ONLY_WRITES = ("/api/events",)


def write_request_problem(method: str, path: str, mimetype: str, origin: str | None, referer: str | None,
                          host: str) -> tuple[int, str] | None:
    """(status, message) when a write must be refused: a body that is not JSON, or an
    Origin (else Referer) naming another host than the one serving us."""
    source = origin if origin and origin != "null" else referer
    if origin == "null" or (source and urlsplit(source).netloc.lower() != host.lower()):
        return 403, "Writes are accepted only from this site's own pages or from API clients, not from another origin."
    if method != "DELETE" and path not in TOKEN_ONLY_WRITES and mimetype not in WRITE_TYPES:
        return 415, f"Send the body as application/json (Content-Type header), not {mimetype or 'nothing'}."
    return None


MAX_BODY = {"/api/events": 10 * 1024 * 1024}   # ingest batches; see dashapp.api
DEFAULT_MAX_BODY = 2 * 1024 * 1024              # every other request of ours (API, Dash callbacks)


def register_app_handlers(app: Flask, prefix: str) -> None:
    """Bodies of our requests are capped before they are read (413), and unrouted or
    refused requests on our paths answer JSON (404, 405, 413); the portal's pages are left
    alone."""
    ours = JSON_PATHS + (prefix + "_dash-",)

    @app.before_request
    def _limit_body():
        path = request.path
        if not path.startswith(JSON_PATHS + (prefix,)):
            return None
        limit = MAX_BODY.get(path, DEFAULT_MAX_BODY)
        request.max_content_length = limit  # a chunked body is cut off at the limit while read
        if (request.content_length or 0) > limit:
            return error_response(f"The request body is larger than {limit // (1024 * 1024)} MB, the most "
                                  "this endpoint accepts.", "body", 413)
        return None

    @app.before_request
    def _refuse_forged_writes():
        """Writes come from our own pages or from API clients, as JSON: a cross-site form
        (which can only send form or text bodies) or a request from another origin is refused
        before it reaches a view, whatever cookie it carries."""
        if request.method not in ("POST", "PUT", "PATCH", "DELETE") or not request.path.startswith(
                JSON_PATHS + (prefix,)):
            return None
        problem = write_request_problem(request.method, request.path, request.mimetype,
                                        request.headers.get("Origin"), request.headers.get("Referer"),
                                        request.host)
        return error_response(problem[1], "Content-Type" if problem[0] == 415 else "Origin", problem[0]) \
            if problem else None

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if exc.response is not None:  # the exception carries its own answer (the rate limiter's)
            return exc.response
        if request.path.startswith(ours):
            return error_response(exc.description or exc.name, None, exc.code or 500)
        return exc
