"""The OpenAPI document of the JSON API, served at /api/analytics/openapi.json and kept
true by tests that call every operation with generated input (schemathesis). Query parameters
come from the declarations the views read them with (dashapp.parameters); bodies and answers
are described here."""
from __future__ import annotations

from dashapp.parameters import (
    ChartParameters,
    CompareParameters,
    CorrelationParameters,
    DrillParameters,
    EventsParameters,
    TrendParameters,
    UserActivityParameters,
    UsersParameters,
    openapi_parameters,
)
from services.analysis.investigate import MAX_USER_RANGE, USER_RANKING_TIMEOUT_S
from services.query.plan import DIMENSIONS
from services.store.ingest import ID_PATTERN as ID

ERROR = {"type": "object", "required": ["error", "field"],
         "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}}}
CUSTOM = {"type": "object", "required": ["name", "formula"], "properties": {
    "name": {"type": "string"}, "display_name": {"type": "string"}, "formula": {"type": "string"},
    "unit": {"type": "string", "enum": ["%", "ms", "count", "none"]}, "description": {"type": "string"}}}
ALERT_FIELDS = {
    "name": {"type": "string", "maxLength": 100}, "metric": {"type": "string"},
    "channel": {"type": "string"}, "status": {"type": "string"}, "template_id": {"type": "string"},
    "granularity": {"type": "string", "enum": ["minute", "hour", "day"]},
    "condition": {"type": "string", "enum": ["anomaly", "threshold"]},
    "direction": {"type": "string", "enum": ["above", "below", "both"]},
    "min_severity": {"type": ["string", "null"], "enum": ["low", "medium", "high", None]},
    "threshold": {"type": ["number", "null"]}, "for_buckets": {"type": "integer", "minimum": 1, "maximum": 60},
    "min_volume": {"type": "number", "minimum": 0}, "webhook_url": {"type": ["string", "null"]},
    "notify": {"type": "string", "enum": ["immediate", "daily_digest"]},
    "silenced_from": {"type": ["string", "null"]}, "silenced_until": {"type": ["string", "null"]},
    "enabled": {"type": "boolean"}}
ALERT_RULE = {"type": "object", "required": ["id", "name", "metric", "condition", "state", "description"],
              "properties": {**ALERT_FIELDS, "id": {"type": "integer"},
                             "state": {"type": "string", "enum": ["ok", "firing", "resolved"]},
                             "description": {"type": "string"}, "filters": {"type": "object"}}}
ALERT_BODY = {"type": "object", "additionalProperties": False, "properties": ALERT_FIELDS}


def _error_responses(*codes: int) -> dict:
    text = {400: "Bad input; `field` names the parameter", 401: "Missing or wrong token", 404: "No such item",
            403: "Not allowed: disabled on this server, another origin, or a token that may not write",
            413: "Too large", 415: "A write not sent as application/json",
            503: "Database unavailable or busy, or a report over its budget (see Retry-After)"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes}


REPORTS = ("trends", "compare", "correlations", "drilldown")  # answers kept and shared (dashapp.caching.cached_report)
REPORT_FIELDS = {
    "as_of": {"type": "string", "format": "date-time",
              "description": "When the report read its data; while events arrive, a report is shared for "
                             "REPORT_FRESH_SECONDS (5 s) after it, and while it is computed again in the "
                             "background: it may miss the newest seconds"},
    "cached": {"type": "boolean", "description": "Shared: computed for an earlier request"}}


def openapi_document(channels: tuple[str, ...]) -> dict:
    document = _document(channels)
    for name in REPORTS:
        schema = document["paths"][f"/api/analytics/{name}"]["get"]["responses"]["200"]["content"][
            "application/json"]["schema"]
        schema["required"] = [*schema["required"], *REPORT_FIELDS]
        schema["properties"] = {**schema.get("properties", {}), **REPORT_FIELDS}
    return document


def _document(channels: tuple[str, ...]) -> dict:
    chart_record = {"type": "object", "required": ["value"], "properties": {
        "time": {"type": "string", "format": "date-time"}, "channel": {"type": "string"},
        "status": {"type": "string"}, "template_id": {"type": ["integer", "null"]},
        "template_name": {"type": ["string", "null"]}, "value": {"type": ["number", "null"]}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Notification Analytics API", "version": "1",
                 "description": "Every error answers `{\"error\": sentence, \"field\": parameter}`."},
        "paths": {
            "/health": {"get": {
                "summary": "Database, read replica, cache and scheduler state",
                "responses": {"200": {"description": "Database answers", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["status", "database", "replica", "cache", "scheduler"],
                               "properties": {"status": {"type": "string", "enum": ["healthy", "degraded"]},
                                              "database": {"type": "string"},
                                              "replica": {"type": "string", "description":
                                                          "off; ok, N s behind; or lagging/lost and why"},
                                              "cache": {"type": "string"},
                                              "scheduler": {"type": "string"}}}}}},
                              "503": {"description": "Database does not answer"}}}},
            "/api/events": {"post": {
                "summary": "Ingest up to 10,000 events (JSON array or NDJSON, at most 10 MB)",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/x-ndjson": {"schema": {"type": "string"}}}},
                "responses": {"200": {"description": "Per-event outcome", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["accepted", "duplicates", "rejected"],
                               "properties": {"accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
                                              "rejected": {"type": "array", "items": {
                                                  "type": "object", "required": ["index", "error"],
                                                  "properties": {"index": {"type": "integer"},
                                                                 "error": {"type": "string"}}}}}}}}},
                              **_error_responses(400, 401, 403, 413, 503)}}},
            "/api/aggregation/status": {"get": {
                "summary": "Rollup watermark, lag, last run, table sizes, cache counters and replica lag",
                "responses": {"200": {"description": "Status", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["watermark", "lag_seconds", "last_run", "tables", "cache",
                                                   "replica"],
                    "properties": {"watermark": {"type": ["string", "null"]},
                                   "lag_seconds": {"type": ["number", "null"]},
                                   "last_run": {"type": ["object", "null"]}, "tables": {"type": "object"},
                                   "cache": {"type": "object"},
                                   "replica": {"type": ["object", "null"], "description":
                                               "null without DATABASE_READ_URL; else state (ok, lagging, "
                                               "lost), reads_from, reason, lag_seconds, lag_bytes, "
                                               "last_wait_s"}}}}}}, **_error_responses(503)}}},
            "/api/analytics/chart": {"get": {
                "summary": "A metric over time and/or by dimension, from rollups and the live tail",
                "description": "Granularity is automatic when omitted (≤ 6 h minute, ≤ 14 d hour, else day) "
                               "and coarsened so a series never has more than 2,000 points; start and end "
                               "are aligned to it. Rates grouped or filtered by status are refused.",
                "parameters": openapi_parameters(ChartParameters, channels),
                "responses": {"200": {"description": "Series", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["data", "metadata"],
                    "properties": {"data": {"type": "array", "items": chart_record},
                                   "metadata": {"type": "object", "required": [
                                       "metric", "granularity", "source", "cached", "total_points",
                                       "generated_at"], "properties": {
                                       "source": {"type": "string", "enum": ["rollup", "raw", "mixed"]},
                                       "cached": {"type": "boolean"},
                                       "total_points": {"type": "integer"}}}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/trends": {"get": {
                "summary": "Change, trend, moving average, seasonality and explained anomalies of a metric",
                "description": "Baselines: seasonal (the same hour of the previous days, or of the previous "
                               "weeks when a weekly cycle is significant; before or inside the range) where "
                               "the series has a significant daily cycle, robust (rolling median) where it "
                               "has none. Buckets with too little history are not judged (`judged`). Counts "
                               "are also tested against their Poisson noise and rates against their binomial "
                               "noise at each bucket's volume. `segment_anomalies` are single channel x "
                               "template segments judged on their own, at a threshold that pays for the "
                               "number of segments. Changes against the previous period and week are given "
                               "only when data covers the earlier stretch.",
                "parameters": openapi_parameters(TrendParameters, channels),
                "responses": {"200": {"description": "The analysis", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["metric", "time_range", "current_value", "percent_change",
                                                   "direction", "previous_period", "week_over_week", "judged",
                                                   "trend", "slope", "p_value", "moving_average", "series",
                                                   "anomalies", "anomaly_count", "segment_anomalies",
                                                   "seasonality", "headline"],
                    "properties": {"anomalies": {"type": "array", "items": {"type": "object", "required": [
                        "time", "value", "expected", "lower", "upper", "score", "severity", "explanation",
                        "contributors"]}},
                        "segment_anomalies": {"type": "array", "items": {"type": "object", "required": [
                            "channel", "template_id", "start", "end", "time", "value", "expected", "score",
                            "severity", "sentence"]}},
                        "direction": {"type": "string", "enum": ["up", "down", "flat"]},
                        "trend": {"type": "string", "enum": ["increasing", "decreasing", "stable"]}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/compare": {"get": {
                "summary": "Channels, templates or any values side by side, and a period against another",
                "description": "Significance: rates by a two-proportion test on their counts; counts by the "
                               "conditional binomial test of two Poisson counts; averages and percentiles by "
                               "Mann-Whitney U on the merged latency histograms. 95 % intervals: Wilson "
                               "(rates), exact Poisson (counts), normal interval of the mean (averages), "
                               "order statistics (percentiles). Best and worst follow the metric's direction.",
                "parameters": openapi_parameters(CompareParameters, channels),
                "responses": {"200": {"description": "The comparison", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["metric", "time_range", "comparisons", "summary"],
                               "properties": {"summary": {"type": "object", "required": [
                                   "best_performer", "worst_performer", "difference", "percent_difference",
                                   "significant", "p_value"]}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/correlations": {"get": {
                "summary": "Which metrics move together: r, rho, lags, elasticity, Benjamini-Hochberg q-values",
                "description": "By default each series' seasonal profile and level are removed first "
                               "(detrend=true), so a shared daily cycle is not reported as a relationship. "
                               "Each pair has lag0 and best_lag, each with its own r, p_value and q_value "
                               "(best_lag's p is multiplied by the lags tried). Pairs computed from the same "
                               "events (a shared numerator or denominator on overlapping channels) are "
                               "related_by_definition: reported, not ranked among the findings.",
                "parameters": openapi_parameters(CorrelationParameters, channels),
                "responses": {"200": {"description": "Pairs and matrix", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["method", "pairs", "matrix"],
                               "properties": {"pairs": {"type": "array", "items": {"type": "object", "required": [
                                   "a", "b", "lag0", "best_lag", "rho", "n", "related_by_definition",
                                   "relation", "significant", "elasticity", "sentence"]}}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/metrics": {
                "get": {"summary": "Saved custom metrics and the built-in catalogue",
                        "responses": {"200": {"description": "Metrics", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["custom", "catalogue"]}}}}, **_error_responses(503)}},
                "post": {"summary": "Save a custom metric",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": CUSTOM}}},
                         "responses": {"201": {"description": "Saved", "content": {"application/json": {
                             "schema": CUSTOM}}}, **_error_responses(400, 403, 413, 415, 503)}}},
            "/api/analytics/metrics/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {"summary": "One custom metric", "responses": {
                    "200": {"description": "The metric", "content": {"application/json": {"schema": CUSTOM}}},
                    **_error_responses(400, 404, 503)}},
                "put": {"summary": "Change a custom metric (formula, unit, display name, description)",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {
                            "type": "object"}}}},
                        "responses": {"200": {"description": "Changed", "content": {"application/json": {
                            "schema": CUSTOM}}}, **_error_responses(400, 403, 404, 413, 415, 503)}},
                "delete": {"summary": "Delete a custom metric no other one uses",
                           "responses": {"204": {"description": "Deleted"}, **_error_responses(400, 403, 404, 503)}}},
            "/api/analytics/metrics/validate": {"post": {
                "summary": "Check a formula: errors with their positions, and the names it uses",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["formula"], "properties": {"formula": {"type": "string"}}}}}},
                "responses": {"200": {"description": "The check", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["valid", "errors", "references"]}}}},
                              **_error_responses(400, 403, 413, 415, 503)}}},
            "/api/analytics/metrics/preview": {"post": {
                "summary": "A series of an unsaved formula over a range",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["formula"], "properties": {
                        "formula": {"type": "string"}, "start": {"type": "string"}, "end": {"type": "string"},
                        "group_by": {"type": "string"}, "unit": {"type": "string"}}}}}},
                "responses": {"200": {"description": "The series", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["data", "metadata"]}}}},
                              **_error_responses(400, 403, 413, 415, 503)}}},
            "/api/analytics/alerts": {
                "get": {"summary": "Every alert rule with its state, and the names of those firing",
                        "responses": {"200": {"description": "Rules", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["rules", "firing"], "properties": {
                                "rules": {"type": "array", "items": ALERT_RULE},
                                "firing": {"type": "array", "items": {"type": "string"}}}}}}},
                            **_error_responses(503)}},
                "post": {"summary": "Create an alert rule: condition anomaly (min_severity, direction) or threshold "
                                    "(direction above|below, threshold, for_buckets); webhook_url must be on the "
                                    "server's allow-list",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             **ALERT_BODY, "required": ["name", "metric", "condition"]}}}},
                         "responses": {"201": {"description": "Created", "content": {"application/json": {
                             "schema": ALERT_RULE}}}, **_error_responses(400, 403, 413, 415, 503)}}},
            "/api/analytics/alerts/preview": {"post": {
                "summary": "What a rule would have done over its recent buckets (2 hours of minutes, 7 days of "
                           "hours, 90 days of days), judged as the scheduler would; nothing stored or sent",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    **ALERT_BODY, "required": ["name", "metric", "condition"]}}}},
                "responses": {"200": {"description": "The preview", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["buckets", "judged", "fired", "sentence", "transitions"],
                    "properties": {"buckets": {"type": "integer"}, "judged": {"type": "integer"},
                                   "fired": {"type": "integer"}, "sentence": {"type": "string"},
                                   "transitions": {"type": "array"}}}}}},
                              **_error_responses(400, 403, 413, 415, 503)}}},
            "/api/analytics/alerts/{rule_id}": {
                "parameters": [{"name": "rule_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {"summary": "One rule, its transitions (newest first) and its recent notifications",
                        "responses": {"200": {"description": "The rule", "content": {"application/json": {
                            "schema": {**ALERT_RULE, "required": ALERT_RULE["required"] + ["history", "deliveries"]}}}},
                            **_error_responses(400, 404, 503)}},
                "put": {"summary": "Change some fields of a rule; a change to what is judged starts it afresh at ok",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": ALERT_BODY}}},
                        "responses": {"200": {"description": "Changed", "content": {"application/json": {
                            "schema": ALERT_RULE}}}, **_error_responses(400, 403, 404, 413, 415, 503)}},
                "delete": {"summary": "Delete a rule with its history",
                           "responses": {"204": {"description": "Deleted"}, **_error_responses(400, 403, 404, 503)}}},
            "/api/analytics/drilldown": {"get": {
                "summary": "One level of channel → status → template (→ error code → provider for failed and "
                           "bounced events), with its breadcrumb trail",
                "parameters": openapi_parameters(DrillParameters, channels),
                "responses": {"200": {"description": "A level", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["level", "dimension", "parent_filters", "data",
                                                   "next_dimensions", "can_drill_down", "breadcrumbs"],
                    "properties": {"level": {"type": "integer"}, "dimension": {"type": ["string", "null"]},
                                   "data": {"type": "array", "items": {"type": "object",
                                                                       "required": ["key", "label", "value"]}},
                                   "breadcrumbs": {"type": "array", "items": {
                                       "type": "object", "required": ["label", "filters"]}},
                                   "can_drill_down": {"type": "boolean"}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/events": {"get": {
                "summary": "Individual events, newest first, with keyset paging; format=csv streams them",
                "parameters": openapi_parameters(EventsParameters, channels),
                "responses": {"200": {"description": "A page of events", "content": {
                    "application/json": {"schema": {"type": "object", "required": ["events", "next_cursor"],
                                                    "properties": {"events": {"type": "array"},
                                                                   "next_cursor": {"type": ["string", "null"]}}}},
                    "text/csv": {"schema": {"type": "string"}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/notifications/{notification_id}": {"get": {
                "summary": "One notification's lifecycle in order (sent → outcome → opened → clicked) with the "
                           "time between steps; an id nothing carries answers an empty lifecycle",
                "parameters": [{"name": "notification_id", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": ID.pattern}}],
                "responses": {"200": {"description": "The lifecycle", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["notification_id", "summary", "events", "steps"],
                    "properties": {"notification_id": {"type": "string"},
                                   "summary": {"type": ["object", "null"]},
                                   "events": {"type": "array"},
                                   "steps": {"type": "array", "items": {"type": "object",
                                                                        "required": ["from", "to", "seconds"]}}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/users": {"get": {
                "summary": f"Users ranked by a count or rate metric, from raw events (users are not rolled up): "
                           f"at most {MAX_USER_RANGE.days} days, {USER_RANKING_TIMEOUT_S} s",
                "parameters": openapi_parameters(UsersParameters, channels),
                "responses": {"200": {"description": "The ranking", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["metric", "users", "overall", "metadata"],
                    "properties": {"users": {"type": "array", "items": {"type": "object", "required": [
                        "rank", "user_id", "value", "volume"]}}, "metadata": {"type": "object", "required": [
                            "source", "rolled_up", "max_range_days"]}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/users/{user_id}": {"get": {
                "summary": "One user's notifications with their lifecycles, and their success rates beside "
                           "their channels'",
                "parameters": [{"name": "user_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": ID.pattern}}] + openapi_parameters(UserActivityParameters, channels),
                "responses": {"200": {"description": "The user's activity", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["user_id", "notifications", "comparison"]}}}},
                              **_error_responses(400, 503)}}},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "INGEST_TOKEN"}}},
        "x-dimensions": list(DIMENSIONS),
    }
