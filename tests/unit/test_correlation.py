"""Synthetic series with known correlation are recovered; a shared daily cycle alone is not
a relationship once detrended; Benjamini–Hochberg keeps noise quiet."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy import stats

from services.analysis import correlation
from services.analysis.correlation_report import relation_by_definition
from services.query.catalogue import CATALOGUE, formula_metric

START = datetime(2026, 11, 2, tzinfo=timezone.utc)


def hours(n):
    return [START + timedelta(hours=i) for i in range(n)]


def correlated(rng, rho, n=400):
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho ** 2) * rng.normal(size=n)
    return a + 10, b + 10  # positive levels, like metrics


@pytest.mark.parametrize("rho", [0.9, -0.9, 0.0])
def test_known_correlations_are_recovered(rho):
    a, b = correlated(np.random.default_rng(1), rho)
    result = correlation.correlate(a, b, ("a", "b"))
    assert result.lag0.r == pytest.approx(rho, abs=0.08)
    assert (result.lag0.p_value < 0.001) == (rho != 0.0)
    assert result.lag0.n == 400 and result.best == result.lag0 and result.lags_tried == 1


def test_a_lagged_relationship_is_found_at_its_lag():
    rng = np.random.default_rng(2)
    a = rng.normal(size=300) + 50
    b = np.roll(a, 3) * 0.8 + rng.normal(0, 0.3, 300) + 10  # b follows a three buckets later
    result = correlation.correlate(a, b, ("a", "b"), lag_max=6)
    assert result.best.lag == 3 and result.best.r > 0.9 and result.best.p_value < 1e-6
    assert abs(result.lag0.r) < 0.3 and result.lags_tried == 13


def test_each_p_value_belongs_to_the_r_beside_it():
    """The strongest lag's p is its own r's p times the lags tried; lag 0 keeps its own."""
    rng = np.random.default_rng(21)
    a = rng.normal(size=300) + 50
    b = np.roll(a, 2) * 0.5 + rng.normal(0, 1, 300) + 10
    result = correlation.correlate(a, b, ("a", "b"), lag_max=4)
    x, y = a[:-2], b[2:]
    own = stats.pearsonr(x, y)
    assert result.best.lag == 2 and result.best.r == pytest.approx(own.statistic)
    assert result.best.p_value == pytest.approx(min(1.0, own.pvalue * 9), rel=1e-6)
    zero = stats.pearsonr(a, b)
    assert result.lag0.r == pytest.approx(zero.statistic) and result.lag0.p_value == pytest.approx(zero.pvalue)


def test_a_shared_daily_cycle_is_not_a_relationship_once_detrended():
    rng = np.random.default_rng(3)
    n = 24 * 14
    h = np.arange(n) % 24
    cycle = 1 + 0.8 * np.exp(-((h - 9) ** 2) / 8) + 0.6 * np.exp(-((h - 19) ** 2) / 8)
    a = 500 * cycle * (1 + rng.normal(0, 0.05, n))
    b = 80 * cycle * (1 + rng.normal(0, 0.05, n))
    raw = correlation.correlate(a, b, ("a", "b"))
    assert raw.lag0.r > 0.8 and raw.lag0.p_value < 1e-10  # the cycle alone looks like a strong relationship
    times = hours(n)
    clean = correlation.correlate(correlation.detrend(times, a, "hour"), correlation.detrend(times, b, "hour"),
                                  ("a", "b"))
    assert abs(clean.lag0.r) < 0.15 and clean.lag0.p_value > 0.01


def test_detrend_removes_profile_and_level_without_touching_the_input():
    n = 24 * 7
    values = np.array([100 + 30 * (i % 24 == 8) + i * 0.5 for i in range(n)], dtype=float)
    before = values.copy()
    residuals = correlation.detrend(hours(n), values, "hour")
    assert np.array_equal(values, before)
    assert np.nanmax(np.abs(residuals)) < 0.05


def test_benjamini_hochberg_keeps_a_noise_matrix_quiet_in_most_seeds():
    quiet = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        series = [rng.normal(size=200) + 5 for _ in range(10)]
        p = [correlation.correlate(series[i], series[j], ("x", "y")).best.p_value
             for i in range(10) for j in range(i + 1, 10)]
        q = correlation.benjamini_hochberg(p)
        quiet += all(v >= 0.05 for v in q)
    assert quiet >= 18


def test_bh_by_hand():
    assert correlation.benjamini_hochberg([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    assert correlation.benjamini_hochberg([]) == []


def test_constant_series_and_too_few_points_say_so():
    with pytest.raises(correlation.SeriesProblem, match="constant"):
        correlation.correlate(np.ones(50), np.arange(50.0), ("flat metric", "b"))
    sparse = np.full(50, np.nan)
    sparse[:5] = [1, 2, 3, 4, 5]
    with pytest.raises(correlation.SeriesProblem, match="only 5 buckets"):
        correlation.correlate(sparse, np.arange(50.0), ("a", "b"))


def test_elasticity_and_the_sentence():
    rng = np.random.default_rng(5)
    a = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    b = 50 * (a / 100) ** -0.3 * np.exp(rng.normal(0, 0.002, 300))  # b falls 3 % when a rises 10 %
    result = correlation.correlate(a, b, ("email bounce rate", "SMS delivery rate"))
    assert result.elasticity == pytest.approx(-0.3, abs=0.03)
    text = correlation.sentence("email bounce rate", "SMS delivery rate", result, 0.0001, True, "hour")
    assert text.startswith("When email bounce rate rises 10%, SMS delivery rate tends to fall ")
    assert f"fall {abs(result.elasticity) * 10:.1f}%" in text
    assert "q < 0.001" in text and "after removing the daily cycle" in text


def test_pairs_made_of_the_same_events_are_related_by_definition():
    m = CATALOGUE
    assert relation_by_definition((m["bounce_rate"], "email"), (m["delivery_rate"], "email")) == \
        "both divide by Email sent events"
    assert relation_by_definition((m["sent"], "sms"), (m["delivery_rate"], "sms")) == \
        "both are computed from SMS sent events"
    assert relation_by_definition((m["bounce_rate"], None), (m["delivery_rate"], "email")) is not None
    assert relation_by_definition((m["bounce_rate"], "email"), (m["delivery_rate"], "sms")) is None
    assert relation_by_definition((m["delivery_rate"], "sms"), (m["bounce_rate"], "email")) is None
    assert relation_by_definition((m["opened"], "email"), (m["failed"], "email")) is None
    ctr = formula_metric("ctr", "clicked / delivered * 100")
    assert relation_by_definition((ctr, "push"), (m["delivery_rate"], "push")) == \
        "both are computed from Push delivered events"
    assert relation_by_definition((m["p95_processing_time"], None), (m["avg_processing_time"], None)) == \
        "both are computed from processing times"
