"""Trend functions on small literal series with hand-checked answers, synthetic series with
known anomalies, and quiet seasonal series."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from services import trends

NAN = float("nan")


def test_percent_change_and_direction():
    assert trends.percent_change(123.0, 100.0) == trends.Change(pytest.approx(23.0), "up")
    assert trends.percent_change(95.0, 100.0).direction == "down"
    assert trends.percent_change(100.5, 100.0).direction == "flat"
    assert trends.percent_change(5.0, 0.0) == trends.Change(None, "flat")
    assert trends.percent_change(None, 3.0) == trends.Change(None, "flat")


def test_simple_moving_average_by_hand():
    out = trends.simple_moving_average(np.array([1, 2, 3, 4, NAN, 6.0]), 3)
    assert np.isnan(out[:2]).all()
    assert out[2:].tolist() == [2.0, 3.0, 3.5, 5.0]


def test_exponential_moving_average_by_hand():
    out = trends.exponential_moving_average(np.array([10.0, 20.0, NAN, 20.0]), 3)  # alpha 0.5
    assert out.tolist() == [10.0, 15.0, 15.0, 17.5]


def test_inputs_are_left_untouched():
    values = np.array([1.0, 2.0, NAN, 4.0])
    before = values.copy()
    trends.simple_moving_average(values, 2)
    trends.exponential_moving_average(values, 2)
    trends.linear_trend(values)
    trends.robust_band(values)
    assert np.array_equal(values, before, equal_nan=True)


def test_trend_needs_significance_and_material_size():
    rising = trends.linear_trend(np.arange(20, dtype=float) * 2 + 100)
    assert rising.direction == "increasing" and rising.slope == pytest.approx(2.0) and rising.p_value < 1e-6
    tiny = trends.linear_trend(np.arange(20, dtype=float) * 0.001 + 100)  # significant but immaterial
    assert tiny.direction == "stable"
    noise = trends.linear_trend(np.random.default_rng(1).normal(100, 5, 30))
    assert noise.direction == "stable"
    assert trends.linear_trend(np.array([1.0, NAN])).slope is None


def hours(n, start=datetime(2026, 11, 2, tzinfo=timezone.utc)):
    return [start + timedelta(hours=i) for i in range(n)]


def daily_cycle(n_days, rng, level=1000.0, noise=0.03):
    h = np.arange(n_days * 24) % 24
    shape = 0.4 + np.exp(-((h - 8) ** 2) / 4) + 0.9 * np.exp(-((h - 18) ** 2) / 6)
    return level * shape * (1 + rng.normal(0, noise, len(h)))


def test_seasonality_finds_the_two_daily_peaks():
    values = daily_cycle(14, np.random.default_rng(2))
    result = trends.seasonality(hours(len(values)), values)
    assert result.daily_cycle_significant and result.daily_p_value < 1e-6
    assert set(result.peak_hours[:2]) == {8, 18}
    flat = trends.seasonality(hours(14 * 24), np.random.default_rng(3).normal(100, 1, 14 * 24))
    assert not flat.daily_cycle_significant and flat.peak_hours == []


def test_circular_peaks_wrap_around_midnight():
    profile = [5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4]
    assert trends.circular_peaks(profile) == [0]


def flagged(values, detector, **kwargs):
    band = trends.detect(values, detector, 24, 168, **kwargs)
    return {a.index for a in trends.anomalies_from(values, band)}


def test_a_spike_in_a_cycle_is_found_by_the_seasonal_detector():
    values = daily_cycle(6, np.random.default_rng(4))
    values[5 * 24 + 3] *= 3  # 03:00 is quiet; tripled it is not
    assert 5 * 24 + 3 in flagged(values, "seasonal")


def test_a_spike_without_a_cycle_is_found_by_the_robust_detector():
    values = np.random.default_rng(9).normal(500, 10, 60)
    values[40] = 700
    assert flagged(values, "robust") == {40}


def test_a_level_shift_is_found_by_the_robust_detector():
    values = np.concatenate([np.random.default_rng(5).normal(100, 2, 48), np.random.default_rng(6).normal(60, 2, 6)])
    assert set(range(48, 51)) <= flagged(values, "robust")


def test_a_drop_during_the_daily_peak_is_found_only_by_seasonal():
    values = daily_cycle(6, np.random.default_rng(7))
    peak = 5 * 24 + 8
    values[peak] = values[peak - 24] * 0.55  # still above the night, far below a normal 08:00
    assert peak in flagged(values, "seasonal")


def test_the_seasonal_detector_stays_quiet_on_a_normal_cycle():
    for seed in range(5):
        assert flagged(daily_cycle(10, np.random.default_rng(seed)), "seasonal") == set()


def test_volume_awareness_tiny_samples_cannot_alarm():
    rng = np.random.default_rng(8)
    sends = np.full(24 * 6, 120_000.0)
    delivered = rng.binomial(120_000, 0.92, len(sends)).astype(float)
    delivered[-1] = 120_000 * 0.90  # 2 points down on 120,000 sends: real
    rates = delivered / sends * 100
    big = flagged(rates, "volume", numerators=delivered, denominators=sends)
    assert len(sends) - 1 in big
    small_sends = np.full(24 * 6, 12.0)
    small_delivered = rng.binomial(12, 0.92, len(small_sends)).astype(float)
    small_delivered[-1] = 9.0  # 75 % on 12 sends: within binomial noise
    small_rates = small_delivered / small_sends * 100
    assert len(small_sends) - 1 not in flagged(small_rates, "volume", numerators=small_delivered,
                                                denominators=small_sends)


def test_severity_grows_with_the_score():
    assert trends.severity_of(3.9) is None
    assert trends.severity_of(-4.2) == "low" and trends.severity_of(6) == "medium" and trends.severity_of(50) == "high"


def test_default_detector_depends_on_history():
    assert trends.pick_detector(None, 3.0) == "seasonal" and trends.pick_detector(None, 1.0) == "robust"
    with pytest.raises(ValueError):
        trends.pick_detector("magic", 5)


def test_seasonal_detector_precision_and_recall_on_the_generated_benchmark():
    from bench.anomaly_eval import evaluate

    result = evaluate("seasonal", 40, seed=3)
    assert result["precision"] >= 0.9 and result["recall"] >= 0.9, result
