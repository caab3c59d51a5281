"""The OpenAPI document of the JSON API, served at /api/analytics/openapi.json and kept
true by tests that call every operation with generated input (schemathesis)."""
from __future__ import annotations

from services.analysis.drilldown import REASONS
from services.analysis.investigate import (
    DEFAULT_MIN_VOLUME,
    MAX_USER_RANGE,
    MAX_USERS,
    RANKABLE,
    USER_RANKING_TIMEOUT_S,
)
from services.query.custom_metrics import NAME as CUSTOM_NAME
from services.query.engine import CATALOGUE, DIMENSIONS, GROUPABLE
from services.query.timerange import GRANULARITIES
from services.store.ingest import ID_PATTERN as ID
from services.store.schema import STATUSES

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
TIME_PARAMETER_HELP = ("ISO date (2026-11-01), ISO datetime (2026-11-01T08:00:00Z; UTC when no zone) or "
                       "relative time (now, now-30m, now-24h, now-7d, now-2w).")


def _error_responses(*codes: int) -> dict:
    text = {400: "Bad input; `field` names the parameter", 401: "Missing or wrong token", 404: "No such item",
            403: "Not allowed: disabled on this server, another origin, or a token that may not write",
            413: "Too large", 415: "A write not sent as application/json",
            503: "Database unavailable or busy, or a report over its budget (see Retry-After)"}
    return {str(c): {"description": text[c], "content": {"application/json": {"schema": ERROR}}} for c in codes}


def _query(name: str, description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _metric_parameter(required: bool) -> dict:
    """A catalogue metric or the name of a saved custom metric."""
    schema = {"anyOf": [{"type": "string", "enum": list(CATALOGUE)},
                        {"type": "string", "pattern": CUSTOM_NAME.pattern}]}
    text = "A metric of the catalogue, or a saved custom metric's name."
    return _query("metric", text if required else text + " Default events.", schema, required=required)


def _list_of(values) -> dict:
    choice = "(" + "|".join(values) + ")"
    return {"type": "string", "pattern": f"^{choice}(,{choice})*$"}


def openapi_document(channels: tuple[str, ...]) -> dict:
    filters = [
        _query("channel", f"One or several (comma-separated) of {', '.join(channels)}.", _list_of(channels)),
        _query("status", f"One or several (comma-separated) of {', '.join(STATUSES)}.", _list_of(STATUSES)),
        _query("template_id", "One or several (comma-separated) template ids.",
               {"type": "string", "pattern": r"^\d{1,9}(,\d{1,9}){0,99}$"}),
    ]
    lookups = [
        _query("user_id", "One or several (comma-separated) user ids.", {"type": "string"}),
        _query("notification_id", "One or several (comma-separated) notification ids.", {"type": "string"}),
        _query("error_code", "Failed and bounced events' reasons; (none) for events without one.", {"type": "string"}),
        _query("provider", "One or several providers; (none) for events without one.", {"type": "string"}),
    ]
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
                "parameters": [
                    _metric_parameter(required=True),
                    _query("group_by", f"Comma-separated, any of {', '.join(GROUPABLE)} (default time).",
                           _list_of(GROUPABLE)),
                    _query("start", "Default: end − 24 h. " + TIME_PARAMETER_HELP),
                    _query("end", "Default: now. " + TIME_PARAMETER_HELP),
                    _query("granularity", "minute, hour or day.", {"type": "string", "enum": list(GRANULARITIES)}),
                    *filters,
                ],
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
                "parameters": [
                    _metric_parameter(required=True),
                    _query("start", TIME_PARAMETER_HELP), _query("end", TIME_PARAMETER_HELP),
                    _query("days", "Instead of start: this many days back from now.",
                           {"type": "integer", "minimum": 1, "maximum": 400}),
                    _query("granularity", "minute, hour or day.", {"type": "string", "enum": list(GRANULARITIES)}),
                    _query("detector", "seasonal or robust; default: chosen by the data.",
                           {"type": "string", "enum": ["seasonal", "robust"]}),
                    *filters,
                ],
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
                "parameters": [
                    _metric_parameter(required=True),
                    _query("dimensions", "dimension:value pairs (channel:email,channel:sms,template_id:3), or a "
                                         "bare dimension for all its values; default every channel."),
                    _query("start", TIME_PARAMETER_HELP), _query("end", TIME_PARAMETER_HELP),
                    _query("compare_to", "previous_period, previous_week, previous_year or an ISO start."),
                    _query("min_volume", "Values with fewer events are not ranked (default 100, when "
                                         "comparing all values of a dimension).", {"type": "number", "minimum": 0}),
                    *filters,
                ],
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
                "parameters": [
                    _query("metrics", "Comma-separated metrics, optionally channel:metric "
                                      "(email:bounce_rate,sms:delivery_rate); 2 to 10.", required=True),
                    _query("start", TIME_PARAMETER_HELP), _query("end", TIME_PARAMETER_HELP),
                    _query("granularity", "minute, hour or day.", {"type": "string", "enum": list(GRANULARITIES)}),
                    _query("lag_max", "Largest lag to try, in buckets (0-48).",
                           {"type": "integer", "minimum": 0, "maximum": 48}),
                    _query("detrend", "true (default) or false.", {"type": "string", "enum": ["true", "false"]}),
                ],
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
                    **_error_responses(400, 503)}},
                "put": {"summary": "Change a custom metric (formula, unit, display name, description)",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {
                            "type": "object"}}}},
                        "responses": {"200": {"description": "Changed", "content": {"application/json": {
                            "schema": CUSTOM}}}, **_error_responses(400, 403, 413, 415, 503)}},
                "delete": {"summary": "Delete a custom metric no other one uses",
                           "responses": {"204": {"description": "Deleted"}, **_error_responses(400, 403, 503)}}},
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
                "parameters": [
                    _query("filters", 'JSON object of one value per dimension, e.g. {"channel": "email"}.'),
                    _query("dimension", "Dimension to group by; default: the next one of the hierarchy. "
                                        "error_code and provider follow template_id once status is failed or bounced.",
                           {"type": "string", "enum": list(DIMENSIONS) + list(REASONS)}),
                    _metric_parameter(required=False),
                    _query("start", TIME_PARAMETER_HELP), _query("end", TIME_PARAMETER_HELP),
                ],
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
                "parameters": [
                    _query("start", "Default: end − 24 h. " + TIME_PARAMETER_HELP),
                    _query("end", "Default: now. " + TIME_PARAMETER_HELP),
                    _query("limit", "1–1000, default 100.", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("cursor", "next_cursor of the previous page."),
                    _query("sort", "created_at or processing_time_ms; prefix - for descending (default "
                                   "-created_at).", {"type": "string", "enum": [
                                       "created_at", "-created_at", "processing_time_ms", "-processing_time_ms"]}),
                    _query("format", "json (default) or csv (capped at 1,000,000 events).",
                           {"type": "string", "enum": ["json", "csv"]}),
                    *filters, *lookups,
                ],
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
                "parameters": [
                    _query("metric", f"One of {', '.join(RANKABLE)}.", {"type": "string", "enum": list(RANKABLE)},
                           required=True),
                    _query("start", "Default: end − 24 h. " + TIME_PARAMETER_HELP),
                    _query("end", "Default: now. " + TIME_PARAMETER_HELP),
                    _query("order", "worst (default: most failures, lowest delivery rate), best, asc or desc.",
                           {"type": "string", "enum": ["worst", "best", "asc", "desc"]}),
                    _query("limit", f"1–{MAX_USERS}, default 20.", {"type": "integer", "minimum": 1,
                                                                     "maximum": MAX_USERS}),
                    _query("min_volume", f"Rates only: the fewest events behind a user's rate (default "
                                         f"{DEFAULT_MIN_VOLUME}).", {"type": "number", "minimum": 0}),
                    *filters, *[q for q in lookups if q["name"] != "user_id"],
                ],
                "responses": {"200": {"description": "The ranking", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["metric", "users", "overall", "metadata"],
                    "properties": {"users": {"type": "array", "items": {"type": "object", "required": [
                        "rank", "user_id", "value", "volume"]}}, "metadata": {"type": "object", "required": [
                            "source", "rolled_up", "max_range_days"]}}}}}},
                              **_error_responses(400, 503)}}},
            "/api/analytics/users/{user_id}": {"get": {
                "summary": "One user's notifications with their lifecycles, and their success rates beside "
                           "their channels'",
                "parameters": [{"name": "user_id", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": ID.pattern}},
                               _query("start", "Default: end − 24 h. " + TIME_PARAMETER_HELP),
                               _query("end", "Default: now. " + TIME_PARAMETER_HELP)],
                "responses": {"200": {"description": "The user's activity", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["user_id", "notifications", "comparison"]}}}},
                              **_error_responses(400, 503)}}},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "INGEST_TOKEN"}}},
        "x-dimensions": list(DIMENSIONS),
    }
