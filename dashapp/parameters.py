"""The JSON API's query parameters, declared once. Each view reads its parameters through its
model here (`read(Model)`), and the OpenAPI document lists them from the same models
(`openapi_parameters`), so what is documented is what is checked.

A parameter the model does not declare, a value outside what it declares, or a missing
required one is refused with a sentence naming the parameter and what it takes. An empty value
(`?days=`) counts as absent. Meanings that need the data (a saved metric's name, a channel of
this deployment, a time expression) are checked by the service that reads them, with its own
sentence; the declaration says what the parameter is and, where the values are fixed, which.
"""
from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.analysis.compare import DEFAULT_MIN_VOLUME as COMPARE_MIN_VOLUME
from services.analysis.correlation_report import MAX_LAG
from services.analysis.drilldown import LOOKUPS, MAX_PAGE, REASONS
from services.analysis.investigate import DEFAULT_MIN_VOLUME as USERS_MIN_VOLUME
from services.analysis.investigate import MAX_USERS, RANKABLE
from services.query.catalogue import CATALOGUE
from services.query.custom_metrics import NAME as CUSTOM_NAME
from services.query.plan import DIMENSIONS, GROUPABLE
from services.query.timerange import MAX_RANGE
from services.store.schema import STATUSES

TIME_HELP = ("ISO date (2026-11-01), ISO datetime (2026-11-01T08:00:00Z; UTC when no zone) or relative time "
             "(now, now-30m, now-24h, now-7d, now-2w).")
MANY_EVENTS = 1e12  # the bound of an event-count parameter, said "from 0 up"
DEPLOYMENT = "x-analytics-values"  # a schema whose values the deployment decides (its channels)


def _list_of(values) -> str:
    choice = "(" + "|".join(values) + ")"
    return f"^{choice}(,{choice})*$"


def _documented(**schema) -> dict:
    """Schema keywords shown in the document and left to the service to check (its sentence
    names the bad value)."""
    return {"json_schema_extra": schema}


Start = Annotated[str | None, Field(description="Default: end − 24 h. " + TIME_HELP)]
End = Annotated[str | None, Field(description="Default: now. " + TIME_HELP)]
Granularity = Annotated[Literal["minute", "hour", "day"] | None, Field(
    description="minute, hour or day; default: the finest that keeps the series under 2,000 points.")]
Channel = Annotated[str | None, Field(description="One or several (comma-separated) of the deployment's channels.",
                                      **_documented(**{DEPLOYMENT: "channels"}))]
Status = Annotated[str | None, Field(description=f"One or several (comma-separated) of {', '.join(STATUSES)}.",
                                     **_documented(pattern=_list_of(STATUSES)))]
TemplateIds = Annotated[str | None, Field(description="One or several (comma-separated) template ids.",
                                          **_documented(pattern=r"^\d{1,9}(,\d{1,9}){0,99}$"))]
METRIC_SCHEMA = {"anyOf": [{"type": "string", "enum": list(CATALOGUE)},
                           {"type": "string", "pattern": CUSTOM_NAME.pattern}]}
Metric = Annotated[str, Field(description="A metric of the catalogue, or a saved custom metric's name "
                                          f"(catalogue: {', '.join(CATALOGUE)})", **_documented(**METRIC_SCHEMA))]


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filtered(Parameters):
    channel: Channel = None
    status: Status = None
    template_id: TemplateIds = None

    def filters(self) -> dict:
        """The filters the request sets (dimensions, and lookups where the endpoint takes
        them), as the services take them."""
        return {d: getattr(self, d) for d in type(self).model_fields if d in DIMENSIONS + LOOKUPS and getattr(self, d)}


class Lookups(Filtered):
    notification_id: Annotated[str | None, Field(description="One or several (comma-separated) notification ids.")] \
        = None
    error_code: Annotated[str | None, Field(
        description="Failed and bounced events' reasons; (none) for events without one.")] = None
    provider: Annotated[str | None, Field(description="One or several providers; (none) for events without one.")] \
        = None


class ChartParameters(Filtered):
    metric: Metric
    group_by: Annotated[str | None, Field(description=f"Comma-separated, any of {', '.join(GROUPABLE)} "
                                                      "(default time).", **_documented(pattern=_list_of(GROUPABLE)))] \
        = None
    start: Start = None
    end: End = None
    granularity: Granularity = None


class TrendParameters(Filtered):
    metric: Metric
    start: Annotated[str | None, Field(description=TIME_HELP)] = None
    end: Annotated[str | None, Field(description=TIME_HELP)] = None
    days: Annotated[int | None, Field(ge=1, le=MAX_RANGE.days, description="Instead of start: this many days back from now.")] \
        = None
    granularity: Granularity = None
    detector: Annotated[Literal["seasonal", "robust"] | None, Field(
        description="seasonal or robust; default: chosen by the data.")] = None


class CompareParameters(Filtered):
    metric: Metric
    dimensions: Annotated[str | None, Field(
        description="dimension:value pairs (channel:email,channel:sms,template_id:3), or a bare dimension for all "
                    "its values; default every channel.")] = None
    start: Annotated[str | None, Field(description=TIME_HELP)] = None
    end: Annotated[str | None, Field(description=TIME_HELP)] = None
    compare_to: Annotated[str | None, Field(
        description="previous_period, previous_week, previous_year or an ISO start.")] = None
    min_volume: Annotated[float, Field(ge=0, le=MANY_EVENTS, description=(
        f"Values with fewer events are not ranked (default {COMPARE_MIN_VOLUME:g}, when comparing all values of a "
        "dimension)."))] = COMPARE_MIN_VOLUME


class CorrelationParameters(Parameters):
    metrics: Annotated[str, Field(description="Comma-separated metrics, optionally channel:metric "
                                              "(email:bounce_rate,sms:delivery_rate); 2 to 10.")]
    start: Annotated[str | None, Field(description=TIME_HELP)] = None
    end: Annotated[str | None, Field(description=TIME_HELP)] = None
    granularity: Granularity = None
    lag_max: Annotated[int, Field(ge=0, le=MAX_LAG, description="Largest lag to try, in buckets.")] = 0
    detrend: Annotated[bool, Field(description="Remove each series' seasonal profile and level first.")] = True


class DrillParameters(Parameters):
    filters: Annotated[str | None, Field(
        description='JSON object of one value per dimension, e.g. {"channel": "email"}.')] = None
    dimension: Annotated[Literal[DIMENSIONS + REASONS] | None, Field(  # type: ignore[valid-type]
        description="Dimension to group by; default: the next one of the hierarchy. error_code and provider follow "
                    "template_id once status is failed or bounced.")] = None
    metric: Annotated[str, Field(description="A metric of the catalogue, or a saved custom metric's name. "
                                             "Default events.", **_documented(**METRIC_SCHEMA))] = "events"
    start: Annotated[str | None, Field(description=TIME_HELP)] = None
    end: Annotated[str | None, Field(description=TIME_HELP)] = None


class EventsParameters(Lookups):
    start: Start = None
    end: End = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE, description="Events per page.")] = 100
    cursor: Annotated[str | None, Field(description="next_cursor of the previous page.")] = None
    sort: Annotated[Literal["created_at", "-created_at", "processing_time_ms", "-processing_time_ms"] | None, Field(
        description="created_at or processing_time_ms; prefix - for descending (default -created_at).")] = None
    format: Annotated[Literal["json", "csv"], Field(description="json, or csv (capped at 1,000,000 events).")] \
        = "json"
    user_id: Annotated[str | None, Field(description="One or several (comma-separated) user ids.")] = None


class UsersParameters(Lookups):
    metric: Annotated[Literal[RANKABLE], Field(  # type: ignore[valid-type]
        description=f"The metric users are ranked by, one of {', '.join(RANKABLE)}.")]
    start: Start = None
    end: End = None
    order: Annotated[Literal["worst", "best", "asc", "desc"] | None, Field(
        description="worst (default: most failures, lowest delivery rate), best, asc or desc.")] = None
    limit: Annotated[int, Field(ge=1, le=MAX_USERS, description="Users listed.")] = 20
    min_volume: Annotated[float | None, Field(ge=0, le=MANY_EVENTS, description=(
        f"Rates only: the fewest events behind a user's rate (default {USERS_MIN_VOLUME:g})."))] = None


class UserActivityParameters(Parameters):
    start: Start = None
    end: End = None


# ---------------------------------------------------------------- reading a request

class ParameterError(ValueError):
    def __init__(self, message: str, field: str | None):
        super().__init__(message)
        self.message, self.field = message, field


M = TypeVar("M", bound=Parameters)


def read(model: type[M], args: Any) -> M:
    """`args` (a request's query: one value per name, the first where repeated) as `model`,
    or ParameterError with the sentence for the first problem."""
    given = {name: value for name, value in args.items() if value != ""}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise ParameterError(*sentence(model, exc.errors()[0])) from None


def sentence(model: type[Parameters], error: dict) -> tuple[str, str | None]:
    """What was wrong and what is allowed, from the declaration itself."""
    name = str(error["loc"][0])[:40] if error.get("loc") else None
    if error["type"] == "extra_forbidden":
        return f"unknown parameter {name!r}; this endpoint takes {', '.join(model.model_fields)}", name
    field = model.model_fields[name]
    description = (field.description or "").rstrip(".")
    if error["type"] == "missing":
        return f"{name} is required: {description[:1].lower() + description[1:]}", name
    return f"{name} must be {allowed(field.annotation, field.metadata)}", name


def allowed(annotation, metadata) -> str:
    """"a whole number from 1 to 400", "one of json, csv", "true or false", …"""
    optional = get_origin(annotation) in (Union, UnionType)
    kind = next(a for a in get_args(annotation) if a is not type(None)) if optional else annotation
    low = next((m.ge for m in metadata if hasattr(m, "ge")), None)   # annotated_types.Ge, as pydantic keeps it
    high = next((m.le for m in metadata if hasattr(m, "le")), None)
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(str, get_args(kind)))
    if kind is bool:
        return "true or false"
    what = "a whole number" if kind is int else "a number"
    if low is not None and high is not None and high < MANY_EVENTS:
        return f"{what} from {low:g} to {high:g}"
    return f"{what} from {low:g} up" if low is not None else what


# ---------------------------------------------------------------- the document

def openapi_parameters(model: type[Parameters], channels: tuple[str, ...]) -> list[dict]:
    """The model's fields as OpenAPI query parameters (JSON Schema from the same declaration)."""
    properties = model.model_json_schema()["properties"]
    out = []
    for name, field in model.model_fields.items():
        required = field.is_required()
        schema = _plain(properties[name])
        if schema.pop(DEPLOYMENT, None) == "channels":
            schema = {"type": "string", "pattern": _list_of(channels)}
        description = field.description or ""
        if not required and field.default is not None and "default" not in description.lower():
            description += f" Default {str(field.default).lower() if isinstance(field.default, bool) else field.default}."
        out.append({"name": name, "in": "query", "required": required,
                    "description": description, "schema": schema})
    return out


def _plain(schema: dict) -> dict:
    """A field's JSON Schema without pydantic's title and the `null` of an optional value (an
    absent query parameter, not a null one)."""
    schema = {k: v for k, v in schema.items() if k not in ("title", "description", "default")}
    options = schema.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        kept = [o for o in options if o.get("type") != "null"]
        schema.pop("anyOf")
        schema = {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **schema}
    return schema
