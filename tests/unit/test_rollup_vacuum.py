"""Which tables the rollup job vacuums, from their statistics (services.rollup.fold.churned)."""
import pytest

from services.rollup import fold


@pytest.mark.parametrize("versions, folded, expected", [
    ({"rollup_deltas": (50, 9_999)}, 0, []),
    ({"rollup_deltas": (50, 9_999)}, 10_000, ["rollup_deltas"]),    # this run's folds, not yet counted
    ({"rollup_deltas": (5_000_000, 10_000)}, 0, ["rollup_deltas"]),  # the deltas wait for no fraction
    ({"metrics_hourly": (400_000, 79_999)}, 0, []),                   # under a fifth of the live rows
    ({"metrics_hourly": (400_000, 80_000), "metrics_daily": (1_000, 9_999)}, 0, ["metrics_hourly"]),
    ({"metrics_daily": (1_000, 10_000), "rollup_invalidations": (0, 10_000)}, 50_000,
     ["metrics_daily", "rollup_invalidations"]),
])
def test_which_tables_the_job_vacuums(versions, folded, expected):
    assert fold.churned(versions, folded) == expected
