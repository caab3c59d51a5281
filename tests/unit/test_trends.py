"""Trend functions on small literal series with hand-checked answers, and the detectors on
generated scenarios no detector was tuned on (bench.anomaly_eval): history that starts
at the range start, weekly cycles, level shifts, diluted template spikes, low volume,
mostly-zero counts, step-valued gauges and flat series."""
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from bench import anomaly_eval
from services.analysis import trends

NAN = float("nan")
START = datetime(2026, 11, 2, tzinfo=timezone.utc)  # a Monday


def hours(n, start=START):
    return [start + timedelta(hours=i) for i in range(n)]


def daily_cycle(n_days, rng, level=1000.0, noise=0.03):
    h = np.arange(n_days * 24) % 24
    shape = 0.4 + np.exp(-((h - 8) ** 2) / 4) + 0.9 * np.exp(-((h - 18) ** 2) / 6)
    return np.round(level * shape * (1 + rng.normal(0, noise, len(h))))


def flagged(values, kind="count", **kwargs):
    values = np.asarray(values, dtype=float)
    band = trends.detect(hours(len(values)), values, kind, "hour", **kwargs)
    return {a.index for a in trends.anomalies_from(values, band)}


# ---------------------------------------------------------------- change, smoothing, trend

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


def test_trend_needs_significance_and_material_size():
    rising = trends.linear_trend(np.arange(20, dtype=float) * 2 + 100)
    assert rising.direction == "increasing" and rising.slope == pytest.approx(2.0) and rising.p_value < 1e-6
    tiny = trends.linear_trend(np.arange(20, dtype=float) * 0.001 + 100)  # significant but immaterial
    assert tiny.direction == "stable"
    noise = trends.linear_trend(np.random.default_rng(1).normal(100, 5, 30))
    assert noise.direction == "stable"
    assert trends.linear_trend(np.array([1.0, NAN])).slope is None


def test_inputs_are_left_untouched():
    values = daily_cycle(5, np.random.default_rng(0))
    values[3] = NAN
    before = values.copy()
    trends.simple_moving_average(values, 2)
    trends.exponential_moving_average(values, 2)
    trends.linear_trend(values)
    trends.seasonality(hours(len(values)), values)
    for kind in trends.KINDS:
        trends.detect(hours(len(values)), values, kind, "hour", denominators=np.full(len(values), 50.0))
    assert np.array_equal(values, before, equal_nan=True)


# ---------------------------------------------------------------- cycles

def test_a_daily_cycle_is_significant_and_its_peaks_are_named():
    values = daily_cycle(14, np.random.default_rng(2))
    result = trends.seasonality(hours(len(values)), values)
    assert result.daily.significant and result.daily.p_value < 1e-6 and result.daily.effect > 0.5
    assert set(result.peak_hours[:2]) == {8, 18}


def test_flat_noise_has_no_daily_pattern_even_with_an_incident_at_one_hour():
    rng = np.random.default_rng(3)
    rate = rng.normal(92, 2, 14 * 24)
    rate[5 * 24 + 14:5 * 24 + 17] = 45  # a three-hour outage at 14:00 one day
    result = trends.seasonality(hours(len(rate)), rate)
    assert not result.daily.significant and result.peak_hours == []
    assert result.daily.p_value is not None


def test_three_days_are_needed_to_test_a_daily_cycle():
    values = daily_cycle(2, np.random.default_rng(4))
    assert trends.daily_cycle(hours(len(values)), values) == trends.NO_CYCLE


def test_a_weekend_dip_is_a_weekly_cycle_over_four_weeks():
    rng = np.random.default_rng(5)
    values = daily_cycle(28, rng) * np.array([0.7 if t.weekday() >= 5 else 1.0 for t in hours(28 * 24)])
    assert trends.weekly_cycle(hours(len(values)), values, "hour").significant
    assert not trends.weekly_cycle(hours(28 * 24), daily_cycle(28, rng), "hour").significant


def test_circular_peaks_wrap_around_midnight():
    profile = [5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4]
    assert trends.circular_peaks(profile) == [0]


# ---------------------------------------------------------------- the baseline

def test_the_baseline_follows_the_data():
    rng = np.random.default_rng(6)
    cycle = daily_cycle(6, rng)
    assert trends.choose_baseline(hours(len(cycle)), cycle, "hour") == ("daily", "")
    flat = rng.normal(500, 10, 6 * 24)
    assert trends.choose_baseline(hours(len(flat)), flat, "hour") == ("rolling", "")
    short = daily_cycle(2, rng)
    baseline, reason = trends.choose_baseline(hours(len(short)), short, "hour")
    assert baseline == "none" and "three days" in reason
    assert trends.choose_baseline(hours(len(short)), short, "hour", "robust") == ("rolling", "")
    assert trends.choose_baseline(hours(60), np.ones(60), "minute") == ("rolling", "")
    with pytest.raises(ValueError, match="seasonal, robust"):
        trends.choose_baseline(hours(60), np.ones(60), "hour", "volume")


def test_history_inside_the_range_is_history_daily_peaks_are_not_anomalies():
    """14 days of hourly sends with 08:00 and 18:00 peaks, the data starting at the range
    start: the peaks are the cycle, not anomalies, from the first day on."""
    values = daily_cycle(14, np.random.default_rng(7))
    band = trends.detect(hours(len(values)), values, "count", "hour")
    assert band.baseline == "daily" and band.judged.all()
    assert trends.anomalies_from(values, band) == []


def test_the_first_days_are_judged_against_the_following_days_unless_only_the_past_may_be_used():
    values = daily_cycle(10, np.random.default_rng(8))
    values[30] *= 2.5  # day 2, 06:00
    assert flagged(values) == {30}
    causal = trends.detect(hours(len(values)), values, "count", "hour", lookahead=False)
    assert not causal.judged[:3 * 24].any() and causal.judged[3 * 24:].all()


def test_a_level_shift_is_an_anomaly_for_hours_not_for_days():
    rng = np.random.default_rng(9)
    values = daily_cycle(21, rng)
    values[16 * 24:] = np.round(values[16 * 24:] * 0.5)
    found = flagged(values)
    assert 16 * 24 in found or 16 * 24 + 1 in found
    assert max(found) < 17 * 24  # after a day the new level is the normal one


def test_a_drop_inside_the_daily_peak_is_found():
    values = daily_cycle(8, np.random.default_rng(10))
    peak = 7 * 24 + 8
    values[peak] = values[peak - 24] * 0.55  # still above the night, far below a normal 08:00
    assert flagged(values) == {peak}


# ---------------------------------------------------------------- noise floors

def test_a_mostly_zero_count_does_not_alarm_on_ones_and_twos():
    rng = np.random.default_rng(11)
    values = rng.poisson(0.2, 10 * 24).astype(float)
    values[-5:] = [1, 2, 0, 2, 1]
    band = trends.detect(hours(len(values)), values, "count", "hour")
    assert trends.anomalies_from(values, band) == []
    assert np.nanmax(np.abs(band.score)) < 4  # no 10⁶ scores from a MAD of 0


def test_a_gauge_in_fixed_steps_does_not_alarm_on_one_step():
    values = np.full(10 * 24, 120.0)
    values[::17] = 130.0
    values[-1] = 110.0
    assert trends.measurement_step(values) == 10.0
    assert flagged(values, "gauge") == set()
    values[-1] = 400.0
    assert flagged(values, "gauge") == {len(values) - 1}


def test_a_tiny_sample_cannot_alarm_a_large_one_does():
    rng = np.random.default_rng(12)
    sends = np.full(24 * 6, 120_000.0)
    delivered = rng.binomial(120_000, 0.92, len(sends)).astype(float)
    delivered[-1] = 120_000 * 0.90  # 2 points down on 120,000 sends: real
    assert len(sends) - 1 in flagged(delivered / sends * 100, "rate", numerators=delivered, denominators=sends)
    small = np.full(24 * 6, 12.0)
    small_delivered = rng.binomial(12, 0.92, len(small)).astype(float)
    small_delivered[-1] = 9.0  # 75 % on 12 sends: within binomial noise
    assert len(small) - 1 not in flagged(small_delivered / small * 100, "rate", numerators=small_delivered,
                                         denominators=small)


def test_a_rare_rate_expects_its_pooled_rate_not_the_zero_median():
    rng = np.random.default_rng(13)
    sends = np.full(10 * 24, 12.0)
    bounced = rng.binomial(12, 0.03, len(sends)).astype(float)
    band = trends.detect(hours(len(sends)), bounced / sends * 100, "rate", "hour", numerators=bounced,
                         denominators=sends)
    judged = band.expected[band.judged]
    assert np.median(judged) > 1.0  # ~3 %, although most hours have no bounce at all
    assert trends.anomalies_from(bounced / sends * 100, band) == []


def test_flags_agree_with_the_band_drawn():
    """A bucket is flagged exactly when its value lies outside the band the chart shows."""
    rng = np.random.default_rng(14)
    for make in (anomaly_eval.history_at_range_start, anomaly_eval.rate_with_volume_cycle,
                 anomaly_eval.step_gauge, anomaly_eval.mostly_zero_counts):
        case = make(rng)
        band = trends.detect(case.times, case.values, case.kind, "hour", numerators=case.numerators,
                             denominators=case.denominators)
        ok = band.judged & np.isfinite(case.values)
        outside = (case.values < band.lower - 1e-9) | (case.values > band.upper + 1e-9)
        inside_flag = np.abs(band.score) >= trends.THRESHOLD
        assert (outside[ok] == inside_flag[ok]).mean() > 0.995, make.__name__


def test_severity_grows_with_the_score():
    assert trends.severity_of(3.9) is None
    assert trends.severity_of(-4.2) == "low" and trends.severity_of(6) == "medium" and trends.severity_of(50) == "high"


def test_the_family_threshold_pays_for_the_number_of_tests():
    assert trends.family_threshold(0) == trends.THRESHOLD
    assert trends.family_threshold(10) == trends.THRESHOLD
    assert 4.5 < trends.family_threshold(10_000) < 5.0


# ---------------------------------------------------------------- segments and scenarios

def test_a_template_spike_diluted_at_the_channel_level_is_found_in_its_segment():
    case = anomaly_eval.diluted_template_spike(np.random.default_rng(15))
    search = trends.search_segments(case.times, case.segments, "rate", "hour", case.judged)
    (key, window), = case.segment_windows
    found = {(k, a.index) for k, a in search.findings}
    assert found and found <= {(key, i) for i in window}
    assert search.threshold > trends.THRESHOLD and search.tests > 1000


@pytest.mark.parametrize("scenario", list(anomaly_eval.SCENARIOS))
def test_the_default_detector_on_every_scenario(scenario):
    result = anomaly_eval.evaluate(scenario, None, series=8, seed=3)
    for level in (result, result.get("segments")):
        if not level:
            continue
        if level["incidents"]:
            assert level["recall"] >= 0.9 and level["precision"] >= 0.95, result
        if scenario != "heavy_tailed_noise":
            assert level["false_alarms_per_1000"] <= 1.5, result
        else:  # Student t with 3 degrees of freedom: extremes are part of the series
            assert level["false_alarms_per_1000"] <= 5, result


def test_row_median_skips_missing_values():
    rows = np.array([[3.0, 1.0, 2.0, NAN], [NAN, NAN, NAN, NAN], [4.0, 1.0, NAN, 2.0], [5.0, NAN, NAN, NAN]])
    assert np.array_equal(trends.row_median(rows), [2.0, NAN, 2.0, 5.0], equal_nan=True)
