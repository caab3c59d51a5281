"""The API's query parameters: one declaration per endpoint gives both the check a request
meets and the OpenAPI document's parameters, so the two cannot disagree."""
from __future__ import annotations

import pytest

from dashapp import parameters as P
from dashapp.openapi import openapi_document

CHANNELS = ("email", "sms", "push")
MODELS = {"/api/analytics/chart": P.ChartParameters, "/api/analytics/trends": P.TrendParameters,
          "/api/analytics/compare": P.CompareParameters, "/api/analytics/correlations": P.CorrelationParameters,
          "/api/analytics/drilldown": P.DrillParameters, "/api/analytics/events": P.EventsParameters,
          "/api/analytics/users": P.UsersParameters, "/api/analytics/users/{user_id}": P.UserActivityParameters}


@pytest.mark.parametrize("path", MODELS)
def test_the_document_lists_exactly_what_the_view_reads(path):
    document = openapi_document(CHANNELS)
    query = [q for q in document["paths"][path]["get"]["parameters"] if q["in"] == "query"]
    model = MODELS[path]
    assert [q["name"] for q in query] == list(model.model_fields)
    for q in query:
        field = model.model_fields[q["name"]]
        assert q["required"] == field.is_required()
        assert "null" not in str(q["schema"]) and q["description"]


@pytest.mark.parametrize("model, args, field, message", [
    (P.TrendParameters, {"metric": "sent", "days": "0"}, "days", "days must be a whole number from 1 to 400"),
    (P.TrendParameters, {"metric": "sent", "days": "2.5"}, "days", "days must be a whole number from 1 to 400"),
    (P.TrendParameters, {"metric": "sent", "detector": "magic"}, "detector", "detector must be one of seasonal, robust"),
    (P.ChartParameters, {}, "metric", "metric is required: a metric of the catalogue"),
    (P.ChartParameters, {"metric": "sent", "granularity": "week"}, "granularity",
     "granularity must be one of minute, hour, day"),
    (P.ChartParameters, {"metric": "sent", "banana": "1"}, "banana",
     "unknown parameter 'banana'; this endpoint takes channel, status, template_id, metric, group_by"),
    (P.EventsParameters, {"limit": "1001"}, "limit", "limit must be a whole number from 1 to 1000"),
    (P.EventsParameters, {"format": "xml"}, "format", "format must be one of json, csv"),
    (P.CompareParameters, {"metric": "sent", "min_volume": "-1"}, "min_volume", "min_volume must be a number from 0 up"),
    (P.CorrelationParameters, {"metrics": "sent,delivered", "detrend": "maybe"}, "detrend",
     "detrend must be true or false"),
    (P.CorrelationParameters, {"metrics": "sent,delivered", "lag_max": "49"}, "lag_max",
     "lag_max must be a whole number from 0 to 48"),
    (P.UsersParameters, {"metric": "p99_processing_time"}, "metric", "metric must be one of events, sent"),
])
def test_a_bad_parameter_is_named_with_what_it_takes(model, args, field, message):
    with pytest.raises(P.ParameterError) as info:
        P.read(model, args)
    assert info.value.field == field and info.value.message.startswith(message), info.value.message


def test_values_are_typed_and_an_empty_one_is_absent():
    events = P.read(P.EventsParameters, {"limit": "5", "channel": "email", "user_id": "u1", "start": "", "sort": ""})
    assert (events.limit, events.start, events.sort, events.format) == (5, None, None, "json")
    assert events.filters() == {"channel": "email", "user_id": "u1"}
    correlations = P.read(P.CorrelationParameters, {"metrics": "sent,delivered", "detrend": "false", "lag_max": "3"})
    assert (correlations.detrend, correlations.lag_max) == (False, 3)
    assert P.read(P.CompareParameters, {"metric": "sent"}).min_volume == 100
    trend = P.read(P.TrendParameters, {"metric": "sent", "channel": "sms,push", "status": "failed"})
    assert trend.filters() == {"channel": "sms,push", "status": "failed"}


def test_the_deployments_channels_are_documented_where_its_channels_are_taken():
    document = openapi_document(("email", "whatsapp"))
    channel = next(q for q in document["paths"]["/api/analytics/chart"]["get"]["parameters"] if q["name"] == "channel")
    assert channel["schema"] == {"type": "string", "pattern": "^(email|whatsapp)(,(email|whatsapp))*$"}
