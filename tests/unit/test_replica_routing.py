"""Which failures of a read on the replica send it to the primary, and which are the read's own."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError

from dashapp.replica import _recovery_conflict, _replica_went_away


def failure(orig: Exception, invalidated: bool = False) -> DBAPIError:
    return DBAPIError.instance("SELECT 1", {}, orig, psycopg.Error, connection_invalidated=invalidated)


@pytest.mark.parametrize("orig, went_away, conflict", [
    (psycopg.errors.QueryCanceled("statement timeout"), False, False),      # the read's own limit: no retry
    (psycopg.errors.AdminShutdown("terminating connection"), True, False),  # replica restarting
    (psycopg.errors.SerializationFailure("conflict with recovery"), False, True),  # replay cancelled it
    (psycopg.errors.UndefinedTable("no such table"), False, False),         # a bug: raised, not hidden
])
def test_failures_are_told_apart_by_their_sqlstate(orig, went_away, conflict):
    assert (_replica_went_away(failure(orig)), _recovery_conflict(failure(orig))) == (went_away, conflict)


def test_a_connection_that_broke_sends_the_read_to_the_primary():
    assert _replica_went_away(failure(psycopg.OperationalError("server closed the connection"), invalidated=True))
    assert _replica_went_away(failure(psycopg.OperationalError("consuming input failed")))  # no sqlstate at all
