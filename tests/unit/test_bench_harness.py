"""The benchmark harness itself on a tiny dataset (the benchmark never runs in make test)."""
from datetime import datetime, timezone

from bench.__main__ import FIGURE_KEYS, dataset_rows, percentile


def test_dataset_has_the_mix_the_benchmark_promises():
    end = datetime(2026, 11, 28, 6, tzinfo=timezone.utc)
    rows = [row for batch in dataset_rows(40_000, 1, end) for row in batch]
    assert 30_000 < len(rows) < 55_000
    templates = {row[5] for row in rows}
    assert len(templates) >= 40
    days = {(end - row[0]).days for row in rows}
    assert max(days) >= 80 and min(days) == 0  # a 90-day tail behind 14 busy days
    recent = sum(1 for row in rows if (end - row[0]).days < 14)
    assert recent > 0.6 * len(rows)
    assert len({(row[0], row[1]) for row in rows}) == len(rows)


def test_figure_keys_are_the_documented_ones():
    assert FIGURE_KEYS == ("bulk_ingest_events_per_s", "http_ingest_events_per_s", "full_rollup_events_per_s",
                           "incremental_rollup_1m_s", "chart_miss_p50_ms", "chart_hit_p50_ms",
                           "raw_over_rollup_90d", "load_rps", "load_p99_ms", "load_errors", "freshness_s",
                           "dashboard_first_charts_s")
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
