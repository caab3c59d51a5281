"""What /health and the "data as of" line say of the read replica."""
from __future__ import annotations

from dashapp.replica import replica_sentence, replica_word

OK = {"state": "ok", "reason": None, "lag_seconds": 0.034, "reads_from": "replica"}
LOST = {"state": "lost", "reason": "the replica does not answer", "lag_seconds": None, "reads_from": "primary"}
BEHIND = {"state": "lagging", "reason": "the replica is 12.0 s behind the primary (more than 1 s)",
          "lag_seconds": 12.0, "reads_from": "primary"}


def test_health_says_how_far_behind_or_where_reads_go():
    assert replica_word(OK) == "ok, 0.03 s behind"
    assert replica_word(LOST) == "lost: the replica does not answer; reads go to the primary"
    assert replica_word(BEHIND) == ("lagging: the replica is 12.0 s behind the primary (more than 1 s); "
                                    "reads go to the primary")


def test_the_data_as_of_line_names_the_lag_only_with_a_replica():
    assert replica_sentence(None) is None
    assert replica_sentence(OK) == "replica 0.03 s behind"
    assert replica_sentence(LOST) == "replica not answering: reads from the primary"
    assert replica_sentence(BEHIND) == "replica behind: reads from the primary"
