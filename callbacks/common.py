"""What every callback does the same way: read the view from the URL, ask one service,
and turn any failure into a sentence for an alert (the log gets the details)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dash_bootstrap_components as dbc
from sqlalchemy.exc import DBAPIError

from dashapp.caching import ReportTooLong, cached_report, cached_series, metric_definition, request_context
from dashapp.extensions import db
from dashapp.health import QUERY_TOO_LONG, SCHEMA_MISSING, is_missing_schema, is_timeout
from services.query.plan import build_query
from services.query.timerange import QueryError

log = logging.getLogger(__name__)
DATABASE_DOWN = ("The analytics database is not answering, so this chart cannot load right now. "
                 "It will come back on its own once the database does.")
UNEXPECTED = "This chart could not be drawn because of an error on our side; it has been logged."


def guarded(work: Callable[[], Any]) -> tuple[Any, str | None]:
    """(answer, None) or (None, sentence a user can read)."""
    try:
        return work(), None
    except QueryError as exc:
        return None, exc.message
    except ReportTooLong as exc:
        return None, exc.message
    except DBAPIError as exc:
        log.warning("dashboard query failed: %s", exc)
        if is_timeout(exc):
            return None, QUERY_TOO_LONG
        return None, SCHEMA_MISSING if is_missing_schema(exc) else DATABASE_DOWN
    except Exception:
        log.exception("dashboard callback failed")
        return None, UNEXPECTED


def ask(service: Callable[..., Any], *args, **kwargs) -> tuple[Any, str | None]:
    """`service(conn, *args, **kwargs)` on a read connection, guarded."""
    return guarded(lambda: db.read(lambda conn: service(conn, *args, **kwargs)))


def ask_report(report: Callable[..., Any], *args, **kwargs) -> tuple[Any, str | None]:
    """A report (trend, comparison, correlation, drill level, KPIs) given the request's
    QueryContext, through the shared report cache and within the report budget, guarded:
    viewers refreshing the same view share one computation while its data and metrics stay
    as they were, and under ingest for REPORT_FRESH_SECONDS (dashapp.caching.cached_report)."""
    context = request_context()
    parameters = {"args": args, "kwargs": kwargs}

    def work():
        answer, _ = cached_report(f"{report.__module__}.{report.__name__}", parameters,
                                  lambda conn: report(conn, *args, **kwargs, context=context))
        return answer
    return guarded(work)


def ask_series(metric: str, group_by, start, end, filters) -> tuple[Any, str | None]:
    """A chart series (catalogue or saved metric) through the shared cache, guarded."""
    def work():
        context = request_context()
        query = build_query(metric_definition(metric), group_by, start, end, filters, None, context.now, context.channels)
        return cached_series(query, context)
    return guarded(work)


def ask_metric(name: str) -> tuple[Any, str | None]:
    """The definition of a catalogue or saved metric (label, unit), guarded."""
    return guarded(lambda: metric_definition(name))


def alert(message: str | None, colour: str = "danger"):
    return dbc.Alert(message, color=colour, className="mb-3", dismissable=True) if message else None
