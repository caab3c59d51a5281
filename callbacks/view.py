"""The view a URL describes (tab, range, channels, metric, drill path) and back. Pure
functions: the URL is the only state, so reload and shared links land on the same view."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode

from dash.exceptions import PreventUpdate

from layouts import shell
from services.analysis.compare import COMPARE_TO
from services.analysis.drilldown import (  # NO_VALUE: a drill value for "without an error code"
    NO_VALUE,
    drill_path,
)
from services.analysis.trends import BASELINES
from services.query.catalogue import CATALOGUE
from services.query.custom_metrics import NAME as CUSTOM_NAME
from services.query.timerange import EARLIEST, LATEST, iso_z
from services.store.ingest import CODE_PATTERN, ID_PATTERN
from services.store.schema import FAILURE_STATUSES, STATUSES

DEFAULT_METRIC = "delivery_rate"


@dataclass(frozen=True)
class ViewState:
    tab: str = shell.DEFAULT_TAB
    range: str = shell.DEFAULT_RANGE
    start: str | None = None  # ISO date or datetime (UTC), only with range == "custom"
    end: str | None = None
    channels: tuple[str, ...] = ()
    metric: str = DEFAULT_METRIC
    drill: tuple[str, ...] = ()  # values along channel → status → template_id (channel → template_id for a ratio)
    drill_metric: str = "events"  # what the drill-down's bars show
    detector: str | None = None  # trends: None picks the default
    compare_to: str = "previous_period"
    correlate: tuple[str, ...] = ()  # correlations: metric specs; empty means the default set
    lag_max: int = 3
    detrend: bool = True
    alert: str | None = None  # alerts: "new" opens the form drafted from this view; a rule id picks that rule
    find: str | None = None   # investigate: a user id or notification id
    user: str | None = None   # drill-down: only this user's events
    dark: bool = False        # the dark theme
    compact: bool = False     # the compact density (a wall screen shows more)


def valid_alert(value: str | None) -> str | None:
    """"new" or a rule id (whole number, as the rule service takes it); anything else None."""
    if value == "new" or (value and value.isascii() and value.isdigit() and len(value) <= 9):
        return value
    return None


def iso_time(text: str | None) -> str | None:
    """An ISO date or datetime, normalized (datetimes to UTC with Z); None if malformed."""
    if not text:
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return day.isoformat() if EARLIEST.date() <= day < LATEST.date() else None
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        parsed = parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None
    if not EARLIEST <= parsed < LATEST:
        return None
    return iso_z(parsed)


def metric_kind(name: str) -> str:
    """A catalogue metric's kind; a saved metric is a formula."""
    return CATALOGUE[name].kind if name in CATALOGUE else "formula"


def valid_drill(values: list[str], channels: tuple[str, ...], kind: str = "count") -> tuple[str, ...]:
    """The longest valid prefix of a drill path (services.analysis.drilldown.drill_path)."""
    checks = {"channel": lambda v: v in channels, "status": lambda v: v in STATUSES,
              "template_id": lambda v: v.isdigit() and len(v) <= 9,
              "error_code": lambda v: v == NO_VALUE or bool(CODE_PATTERN.match(v))}
    out: list[str] = []
    for value, dimension in zip(values, drill_path(kind)):
        if not checks[dimension](value) or (dimension == "error_code" and out[1] not in FAILURE_STATUSES):
            break
        out.append(value)
    return tuple(out)


def known_metric(name: str | None, default: str) -> str:
    """A catalogue name or a well-formed custom one (its service says if it is not saved)."""
    return name if name in CATALOGUE or CUSTOM_NAME.match(name or "") else default


def valid_id(value: str | None) -> str | None:
    """A user or notification id as ingest accepts them; anything else None."""
    value = (value or "").strip()
    return value if ID_PATTERN.match(value) else None


MAX_SEARCH = 4096


def parse_search(search: str | None, known_channels: tuple[str, ...]) -> ViewState:
    """The view a query string asks for; anything unknown falls back to the default (a
    query string longer than any view needs is ignored whole)."""
    if search and len(search) > MAX_SEARCH:
        search = ""
    params = parse_qs((search or "").lstrip("?"), max_num_fields=50)
    first = {k: v[0] for k, v in params.items() if v}
    tab = first.get("tab") if first.get("tab") in shell.TAB_IDS else shell.DEFAULT_TAB
    rng = first.get("range") if first.get("range") in shell.RANGE_IDS else shell.DEFAULT_RANGE
    start, end = iso_time(first.get("start")), iso_time(first.get("end"))
    if rng == "custom" and not (start and end and window_of(ViewState(range=rng, start=start, end=end))):
        rng, start, end = shell.DEFAULT_RANGE, None, None
    if rng != "custom":
        start = end = None
    requested = [c for c in first.get("channel", "").split(",") if c]
    channels = tuple(c for c in known_channels if c in requested)
    # a custom metric's name is checked by the service that reads it, with a readable error
    metric = known_metric(first.get("metric"), DEFAULT_METRIC)
    drill_metric = known_metric(first.get("drill_metric"), "events")
    drill = valid_drill(first.get("drill", "").split(","), known_channels, metric_kind(drill_metric))
    detector = first.get("detector") if first.get("detector") in BASELINES else None
    compare_to = first.get("vs") if first.get("vs") in COMPARE_TO else "previous_period"
    correlate = tuple(dict.fromkeys(m for m in first.get("corr", "").split(",") if valid_spec(m, known_channels)))
    lag = first.get("lag", "3")
    lag_max = int(lag) if lag.isdigit() and int(lag) <= 24 else 3
    return ViewState(tab=tab, range=rng, start=start, end=end, channels=channels, metric=metric, drill=drill,
                     drill_metric=drill_metric,
                     detector=detector, compare_to=compare_to, correlate=correlate[:10], lag_max=lag_max,
                     detrend=first.get("detrend") != "false",
                     alert=valid_alert(first.get("alert")) if tab == "alerts" else None,
                     find=valid_id(first.get("find")) if tab == "investigate" else None,
                     user=valid_id(first.get("user")) if tab == "drilldown" else None,
                     dark=first.get("theme") == "dark", compact=first.get("density") == "compact")


def valid_spec(spec: str, channels: tuple[str, ...]) -> bool:
    """`metric` or `channel:metric` with a known channel and a metric name."""
    channel, _, name = spec.rpartition(":")
    return (name in CATALOGUE or bool(CUSTOM_NAME.match(name))) and (not channel or channel in channels)


def to_search(state: ViewState) -> str:
    params = {"tab": state.tab, "range": state.range}
    if state.range == "custom":
        params.update(start=state.start, end=state.end)
    if state.channels:
        params["channel"] = ",".join(state.channels)
    if state.metric != DEFAULT_METRIC:
        params["metric"] = state.metric
    if state.drill:
        params["drill"] = ",".join(state.drill)
    if state.drill_metric != "events":
        params["drill_metric"] = state.drill_metric
    if state.detector:
        params["detector"] = state.detector
    if state.compare_to != "previous_period":
        params["vs"] = state.compare_to
    if state.correlate:
        params["corr"] = ",".join(state.correlate)
    if state.lag_max != 3:
        params["lag"] = str(state.lag_max)
    if not state.detrend:
        params["detrend"] = "false"
    if state.alert and state.tab == "alerts":
        params["alert"] = state.alert
    if state.find and state.tab == "investigate":
        params["find"] = state.find
    if state.user and state.tab == "drilldown":
        params["user"] = state.user
    if state.dark:
        params["theme"] = "dark"
    if state.compact:
        params["density"] = "compact"
    return "?" + urlencode(params, safe=",:()")


def window_of(state: ViewState) -> tuple[str, str | None] | None:
    """(start, end) as the query engine takes them; a custom end date includes that day."""
    if state.range != "custom":
        return f"now-{state.range}", None
    if not (state.start and state.end):
        return None
    end = state.end
    if len(end) == 10:
        end = (date.fromisoformat(end) + timedelta(days=1)).isoformat()
    start_t = datetime.fromisoformat(state.start.replace("Z", "+00:00")) if len(state.start) > 10 else \
        datetime.fromisoformat(state.start + "T00:00:00+00:00")
    end_t = datetime.fromisoformat(end.replace("Z", "+00:00")) if len(end) > 10 else \
        datetime.fromisoformat(end + "T00:00:00+00:00")
    if end_t <= start_t:
        return None
    return state.start, end


def channel_filter(state: ViewState) -> dict:
    return {"channel": list(state.channels)} if state.channels else {}


def drilled(state: ViewState, value) -> ViewState:
    return replace(state, tab="drilldown", drill=state.drill + (str(value),))


def focused_on_bucket(state: ViewState, start: datetime, step: timedelta, channel: str | None) -> ViewState:
    """A click on a time chart: narrow the range to that bucket and drill into its channel."""
    return replace(state, tab="drilldown", range="custom", start=iso_z(start), end=iso_z(start + step),
                   drill=(channel,) if channel else ())


def shown_on(search, channels: tuple[str, ...], tab: str) -> ViewState:
    """The view, for a callback that computes `tab`'s content. A URL that has moved to another
    tab asks nothing: the tab being left keeps its components on the page for a moment, and
    without this its charts would be computed once more for a view nobody sees."""
    state = parse_search(search, channels)
    if state.tab != tab:
        raise PreventUpdate
    return state
