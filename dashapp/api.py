"""The JSON API: HTTP adapters only. Each view parses its parameters, calls one
service function and returns its plain result as JSON."""
from __future__ import annotations

import gzip
import hmac
from typing import TypeVar

import orjson
from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from sqlalchemy.exc import DBAPIError

from dashapp.alerting import preview_alert, rule_options
from dashapp.caching import (
    ApiAnswer,
    cache_stats,
    chart_answer,
    metric_definition,
    report_answer,
    request_context,
)
from dashapp.errors import ApiError, register_blueprint_handlers
from dashapp.extensions import cache, db
from dashapp.health import cache_state, database_problem, scheduler_state, short_error
from dashapp.parameters import (
    ChartParameters,
    CompareParameters,
    CorrelationParameters,
    DrillParameters,
    EventsParameters,
    ParameterError,
    Parameters,
    TrendParameters,
    UserActivityParameters,
    UsersParameters,
)
from dashapp.parameters import read as read_parameters
from dashapp.replica import replica_word
from services.alerts import rules as alert_service
from services.analysis import compare as compare_service
from services.analysis import drilldown as drilldown_service
from services.analysis import investigate
from services.analysis.correlation_report import correlation_report
from services.analysis.trend_report import trend_report
from services.query import catalogue, plan
from services.query import custom_metrics as custom_service
from services.query import engine as query_service
from services.query.format import to_json
from services.rollup.fold import rollup_status
from services.store.ingest import ingest_events

api = Blueprint("api", __name__)
P = TypeVar("P", bound=Parameters)
register_blueprint_handlers(api)


@api.get("/health")
def health():
    problem = database_problem(db.engine)
    if problem is not None:  # the driver's text names hosts and ports: logged, never shown
        current_app.logger.error("health: database not answering: %s", problem)
    cache_status = cache_state(cache, bool(current_app.config.get("REDIS_URL")))
    replica = db.replica_status()
    replica_ok = replica is None or replica["state"] == "ok"
    body = {
        "status": "healthy" if problem is None and cache_status != "unreachable" and replica_ok else "degraded",
        "database": "ok" if problem is None else "not answering",
        "replica": "off" if replica is None else replica_word(replica),
        "cache": cache_status,
        "scheduler": scheduler_state(db.engine, current_app.extensions.get("analytics_scheduler_state", "off"))
        if problem is None else current_app.extensions.get("analytics_scheduler_state", "off"),
    }
    return jsonify(body), 200 if problem is None else 503


MAX_EVENTS = 10_000
MAX_BODY_BYTES = 10 * 1024 * 1024


def _check_ingest_token() -> None:
    expected = current_app.config.get("INGEST_TOKEN")
    if not expected:
        raise ApiError("Ingest over HTTP is disabled: set INGEST_TOKEN on the server to enable it.",
                       "Authorization", 403)
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError("Missing or wrong ingest token: send 'Authorization: Bearer <INGEST_TOKEN>'.",
                       "Authorization", 401)


def _read_events() -> list:
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(f"Body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB; split it into batches.",
                       "body", 413)
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(f"Body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB; split it into batches.",
                       "body", 413)
    stripped = body.lstrip()
    if not stripped:
        raise ApiError("Body is empty: send a JSON array of events or NDJSON (one event per line).", "body")
    try:
        if stripped.startswith(b"["):
            events = orjson.loads(stripped)
        else:
            events = [orjson.loads(line) for line in stripped.splitlines() if line.strip()]
    except orjson.JSONDecodeError as exc:
        raise ApiError(f"Body is not JSON ({exc}); send a JSON array of events or NDJSON.", "body") from None
    if not isinstance(events, list):
        raise ApiError("Body must be a JSON array of events or NDJSON.", "body")
    if len(events) > MAX_EVENTS:
        raise ApiError(f"{len(events):,} events in one request; at most {MAX_EVENTS:,} are allowed.",
                       "body", 413)
    return events


@api.post("/api/events")
def ingest():
    _check_ingest_token()
    events = _read_events()
    try:
        with db.writing() as conn:
            report = ingest_events(conn, events, channels=current_app.config["CHANNELS"],
                                   raw_retention_days=current_app.config["RAW_RETENTION_DAYS"])
    except DBAPIError as exc:  # a full disk, a lost connection: the transaction rolled back whole
        current_app.logger.error("ingest batch refused by the database: %s", short_error(exc))
        raise ApiError("The database could not store the batch just now; nothing of it was stored. "
                       "Retry the same batch later: duplicates are skipped.", "body", 503,
                       {"Retry-After": "5"}) from None
    return jsonify(report.as_dict())


@api.get("/api/aggregation/status")
def aggregation_status():
    body = db.read(rollup_status)
    body["cache"] = cache_stats()
    body["replica"] = db.replica_status()
    return jsonify(body)


def json_response(body, status: int = 200) -> Response:
    return Response(to_json(body), status=status, mimetype="application/json")


def answer_response(answer: ApiAnswer) -> Response:
    """An API answer as it was kept: gzip-compressed to a client that takes gzip, plain to
    any other (an answer not kept whole is compressed on its way out, when asked)."""
    if not answer.gzipped:
        return Response(answer.body, mimetype="application/json")
    if request.accept_encodings["gzip"]:
        return Response(answer.body, mimetype="application/json",
                        headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    return Response(gzip.decompress(answer.body), mimetype="application/json")


def parameters(model: type[P]) -> P:
    """The request's query parameters as `model` declares them (dashapp.parameters), or 400
    with the sentence naming the parameter and what it takes."""
    try:
        return read_parameters(model, request.args)
    except ParameterError as exc:
        raise ApiError(exc.message, exc.field) from None


@api.get("/api/analytics/chart")
def chart():
    p = parameters(ChartParameters)
    context = request_context()
    query = plan.build_query(metric_definition(p.metric), p.group_by or "time", p.start, p.end, p.filters(),
                             p.granularity, context.now, context.channels)
    return answer_response(chart_answer(query, context))


@api.get("/api/analytics/openapi.json")
def openapi():
    from dashapp.openapi import openapi_document

    return jsonify(openapi_document(tuple(current_app.config["CHANNELS"])))


@api.get("/api/analytics/drilldown")
def drilldown():
    p = parameters(DrillParameters)
    try:
        filters = orjson.loads(p.filters or "{}")
    except orjson.JSONDecodeError:
        raise ApiError('filters must be JSON such as {"channel": "email", "status": "bounced"}', "filters") from None
    context = request_context()

    return answer_response(report_answer("drilldown", {**p.model_dump(), "filters": filters}, lambda conn: (
        drilldown_service.drill_level(conn, filters, p.start, p.end, p.dimension, p.metric, context=context))))


@api.get("/api/analytics/events")
def events():
    p = parameters(EventsParameters)
    context = request_context()
    if p.format == "csv":
        chunks = drilldown_service.events_csv(db.read, p.filters(), p.start, p.end, p.sort, context=context)
        return Response(stream_with_context(chunks), mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="events.csv"'})
    page = db.read(lambda conn: drilldown_service.list_events(conn, p.filters(), p.start, p.end, p.limit, p.cursor,
                                                              p.sort, context=context))
    return json_response({"events": page.events, "next_cursor": page.next_cursor})


@api.get("/api/analytics/notifications/<notification_id>")
def notification_lifecycle(notification_id: str):
    found = db.read(lambda conn: investigate.lifecycle(conn, notification_id))
    return json_response({"notification_id": found.notification_id, "summary": found.summary,
                          "events": found.events, "steps": found.steps})


@api.get("/api/analytics/users")
def rank_users():
    p = parameters(UsersParameters)
    context = request_context()
    body = db.read(lambda conn: investigate.rank_users(conn, p.metric, p.start, p.end, p.filters(), p.order, p.limit,
                                                       p.min_volume, context=context))
    return json_response(body)


@api.get("/api/analytics/users/<user_id>")
def user_activity(user_id: str):
    p = parameters(UserActivityParameters)
    context = request_context()
    body = db.read(lambda conn: investigate.user_activity(conn, user_id, p.start, p.end, context=context))
    return json_response(body)


@api.get("/api/analytics/trends")
def trends():
    p = parameters(TrendParameters)
    context = request_context()
    return answer_response(report_answer("trends", p.model_dump(), lambda conn: trend_report(
        conn, p.metric, p.start, p.end, p.days, p.filters(), p.granularity, p.detector, context=context)))


@api.get("/api/analytics/compare")
def compare():
    p = parameters(CompareParameters)
    context = request_context()
    return answer_response(report_answer("compare", p.model_dump(), lambda conn: compare_service.compare(
        conn, p.metric, p.dimensions, p.start, p.end, p.compare_to, p.filters(), p.min_volume, context=context)))


@api.get("/api/analytics/correlations")
def correlations():
    p = parameters(CorrelationParameters)
    context = request_context()
    return answer_response(report_answer("correlations", p.model_dump(), lambda conn: correlation_report(
        conn, p.metrics, p.start, p.end, p.granularity, p.lag_max, p.detrend, context=context)))


MAX_FORM_BYTES = 64 * 1024


METRIC_EXAMPLE = '{"name": "ctr", "formula": "(clicked / delivered) * 100", "unit": "%"}'
ALERT_EXAMPLE = ('{"name": "SMS delivery", "metric": "delivery_rate", "channel": "sms", "condition": "anomaly", '
                 '"min_severity": "medium"}')


def _json_body(example: str = METRIC_EXAMPLE) -> dict:
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise ApiError("The body is larger than 64 KB; a definition is far smaller.", "body", 413)
    raw = request.stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise ApiError("The body is larger than 64 KB; a definition is far smaller.", "body", 413)
    try:
        body = orjson.loads(raw or b"null")
    except orjson.JSONDecodeError:
        raise ApiError(f"The body is not JSON; send an object such as {example}.", "body") from None
    if not isinstance(body, dict):
        raise ApiError("The body must be a JSON object.", "body")
    return body


@api.get("/api/analytics/metrics")
def list_custom_metrics():
    saved = [m.as_dict() for m in db.read(custom_service.list_metrics)]
    listed = [{"name": m.name, "label": m.label, "unit": m.unit, "definition": m.description}
              for m in catalogue.CATALOGUE.values()]
    return json_response({"custom": saved, "catalogue": listed})


@api.post("/api/analytics/metrics")
def create_custom_metric():
    body = _json_body()
    with db.writing() as conn:
        created = custom_service.create_metric(conn, body)
    return json_response(created.as_dict(), 201)


@api.get("/api/analytics/metrics/<name>")
def get_custom_metric(name: str):
    found = db.read(lambda conn: custom_service.get_custom(conn, name))
    return json_response(found.as_dict())


@api.put("/api/analytics/metrics/<name>")
def update_custom_metric(name: str):
    body = _json_body()
    with db.writing() as conn:
        updated = custom_service.update_metric(conn, name, body)
    return json_response(updated.as_dict())


@api.delete("/api/analytics/metrics/<name>")
def delete_custom_metric(name: str):
    with db.writing() as conn:
        custom_service.delete_metric(conn, name)
    return Response(status=204)


@api.post("/api/analytics/metrics/validate")
def validate_formula():
    body = _json_body()
    if not isinstance(body.get("formula"), str):
        raise ApiError("send {\"formula\": \"...\"}", "formula")
    return json_response(db.read(lambda conn: custom_service.check_formula(conn, body["formula"])))


@api.post("/api/analytics/metrics/preview")
def preview_formula():
    body = _json_body()
    if not isinstance(body.get("formula"), str):
        raise ApiError("send {\"formula\": \"...\", \"start\": \"now-7d\"}", "formula")
    group_by = body.get("group_by", "time")
    grouping = plan.parse_group_by(group_by if isinstance(group_by, str) else "time")
    context = request_context()
    series = db.read(lambda conn: custom_service.preview(conn, body["formula"], body.get("start"), body.get("end"),
                                                         grouping, None, unit=body.get("unit", "none"),
                                                         context=context))
    return json_response({"data": query_service.series_records(series), "metadata": {
        "granularity": series.granularity, "start": series.start, "end": series.end, "source": series.source}})


@api.get("/api/analytics/alerts")
def list_alert_rules():
    rules = [r.as_dict() for r in db.read(alert_service.list_rules)]
    return json_response({"rules": rules, "firing": [r["name"] for r in rules if r["enabled"] and r["state"] == "firing"]})


@api.post("/api/analytics/alerts")
def create_alert_rule():
    body = _json_body(ALERT_EXAMPLE)
    with db.writing() as conn:
        created = alert_service.create_rule(conn, body, **rule_options(current_app.config))
    return json_response(created.as_dict(), 201)


@api.post("/api/analytics/alerts/preview")
def preview_alert_rule():
    body = _json_body(ALERT_EXAMPLE)
    config = current_app.config
    return json_response(db.read(lambda conn: preview_alert(conn, config, body)))


@api.get("/api/analytics/alerts/<rule_id>")
def get_alert_rule(rule_id: str):
    def read(conn):
        rule = alert_service.get_rule(conn, rule_id)
        return {**rule.as_dict(), "history": alert_service.history(conn, rule.id),
                "deliveries": alert_service.deliveries(conn, rule.id)}
    body = db.read(read)
    return json_response(body)


@api.put("/api/analytics/alerts/<rule_id>")
def update_alert_rule(rule_id: str):
    body = _json_body(ALERT_EXAMPLE)
    with db.writing() as conn:
        updated = alert_service.update_rule(conn, rule_id, body, **rule_options(current_app.config))
    return json_response(updated.as_dict())


@api.delete("/api/analytics/alerts/<rule_id>")
def delete_alert_rule(rule_id: str):
    with db.writing() as conn:
        alert_service.delete_rule(conn, rule_id)
    return Response(status=204)
