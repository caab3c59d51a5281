from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from scipy import stats

from services.analysis import compare
from services.query.timerange import QueryError
from services.store import latency

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)


def test_wilson_interval_by_hand():
    low, high = compare.wilson_interval(50, 100)
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    assert compare.wilson_interval(0, 0) == (None, None)
    assert compare.wilson_interval(0, 12)[0] == pytest.approx(0.0, abs=1e-12)


def test_exact_poisson_interval():
    low, high = compare.poisson_interval(10)
    assert (round(low, 3), round(high, 3)) == (4.795, 18.39)
    assert compare.poisson_interval(0)[0] == 0.0


def histogram(values):
    return latency.merge([{latency.bucket_index(int(v)): 1} for v in values])


def test_mann_whitney_from_histograms_matches_scipy_on_the_bucketed_samples():
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(5, 0.5, 400).astype(int), rng.lognormal(5.2, 0.5, 300).astype(int)
    ha, hb = histogram(a), histogram(b)
    bucketed_a = [latency.bucket_index(int(v)) for v in a]
    bucketed_b = [latency.bucket_index(int(v)) for v in b]
    expected = stats.mannwhitneyu(bucketed_a, bucketed_b, use_continuity=False, method="asymptotic").pvalue
    assert compare.mann_whitney_from_histograms(ha, hb) == pytest.approx(expected, rel=1e-9)
    assert compare.mann_whitney_from_histograms(ha, hb) < 0.05
    same = compare.mann_whitney_from_histograms(histogram(rng.lognormal(5, 0.5, 400)),
                                                histogram(rng.lognormal(5, 0.5, 400)))
    assert same > 0.05
    assert compare.mann_whitney_from_histograms({}, hb) is None


def test_two_proportion_and_poisson_tests():
    assert compare.two_proportion_p(90, 100, 50, 100) < 1e-6
    assert compare.two_proportion_p(45, 100, 45, 100) == pytest.approx(1.0)
    assert compare.two_proportion_p(1, 0, 1, 10) is None
    assert compare.poisson_counts_p(100, 100) == pytest.approx(1.0)
    assert compare.poisson_counts_p(100, 160) < 0.001


def test_quantile_interval_brackets_the_quantile():
    values = np.random.default_rng(2).lognormal(6, 1, 2000).astype(int)
    h = histogram(values)
    low, high = compare.quantile_interval(h, 0.95)
    assert low <= latency.quantile(h, 0.95) <= high and low < high


@pytest.mark.parametrize("text, message", [
    ("channel:email", "at least two values"), ("channel:email,channel:email", "at least two values"),
    ("email,sms", "not a dimension:value pair"), ("colour:red,colour:blue", "unknown dimension 'colour'"),
    ("channel:email,channel:fax", "channel 'fax' is not one of"),
    ("template_id:x,template_id:2", "whole numbers"),
])
def test_bad_dimensions(text, message):
    with pytest.raises(QueryError, match=message):
        compare.parse_dimensions(text, ("email", "sms", "push"))


def test_dimensions_forms():
    assert compare.parse_dimensions(None, ("email",)) == ("channel", None)
    assert compare.parse_dimensions("template_id", ("email",)) == ("template_id", None)
    assert compare.parse_dimensions("channel:email,template_id:3", ("email",)) == (
        "channel", [("channel", "email"), ("template_id", 3)])


def test_shifted_periods_across_a_month_boundary_a_leap_day_and_daylight_saving():
    start, end = datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 8, tzinfo=timezone.utc)
    assert compare.shifted_start("previous_week", start, end, NOW) == datetime(2026, 10, 25, tzinfo=timezone.utc)
    assert compare.shifted_start("previous_period", start, end, NOW) == datetime(2026, 10, 25, tzinfo=timezone.utc)
    leap = datetime(2028, 2, 29, tzinfo=timezone.utc)
    assert compare.shifted_start("previous_year", leap, leap + timedelta(days=1), NOW) == \
        datetime(2027, 2, 28, tzinfo=timezone.utc)
    # Europe changes clocks on 2026-03-29; in UTC a week is still 168 hours, so buckets align
    dst_start = datetime(2026, 3, 30, tzinfo=timezone.utc)
    shifted = compare.shifted_start("previous_week", dst_start, dst_start + timedelta(days=7), NOW)
    assert (dst_start - shifted) == timedelta(hours=168)
    with pytest.raises(QueryError, match="before the compared range"):
        compare.shifted_start("2026-12-01", start, end, NOW)


def test_the_period_sentence_never_calls_a_change_flat_and_significant():
    from callbacks.compare import period_sentence
    from services.analysis.compare import PeriodComparison, PeriodTotal

    def said(now, then, significant, unit="%"):
        total = PeriodTotal(now, then, None, None, significant, None)
        return period_sentence(PeriodComparison("previous_period", None, None, (), total), unit, "previous_period")

    assert said(95.1, 94.2, True) == ("Against the previous period: 95.1 % now, 94.2 % then — up 0.9 percentage "
                                      "points: small, but significant.")
    assert said(80.0, 90.0, True).endswith("down 10.0 percentage points, significant.")
    assert said(90.4, 90.0, False).endswith("up 0.4 percentage points, not significant (within the noise).")
    assert said(1200, 1000, True, "count") == ("Against the previous period: 1,200 now, 1,000 then — up 20.0 %, "
                                               "significant.")
    assert said(90.0, 90.0, True).endswith("unchanged.")
    assert said(90.01, 90.0, True).endswith("about the same.")
    assert said(5, 0, False, "count").endswith("up from none, not significant (within the noise).")
    assert said(None, 90.0, True) == "The compared period has no data."
    assert period_sentence(None, "%", "previous_period") == "The compared period has no data."
    for now, then, significant in ((95.1, 94.2, True), (80, 90, True), (90.4, 90, False)):
        assert "flat" not in said(now, then, significant)


def test_a_metric_without_a_good_direction_is_ranked_highest_and_lowest_not_best_and_worst():
    from callbacks.compare import summary_sentence
    from services.analysis.compare import ComparedValue, Comparison, Summary

    def answer(better):
        values = {"sms": 9.96, "push": 3.07}
        entries = {k: ComparedValue(k.upper(), "channel", k, v, v, v, 3, 1000, None, 1000, None, None, ())
                   for k, v in values.items()}
        return Comparison("undelivered_pct", "%", "formula", better, "hour", None, entries,
                          Summary("sms", "push", 6.89, 224.4, False, None, ("sms", "push")), ())

    assert summary_sentence(answer("neutral"), "%") == ("SMS is highest (10.0 %), PUSH lowest (3.1 %): 6.9 points "
                                                        "apart, no significance test for a formula.")
    assert summary_sentence(answer("lower"), "%").startswith("SMS is best (10.0 %), PUSH worst")


def test_the_summary_gives_the_test_it_made():
    from callbacks.compare import summary_sentence
    from services.analysis.compare import ComparedValue, Comparison, Summary

    entries = {k: ComparedValue(k, "channel", k, v, v, v, 3, 1000, None, 1000, None, None, ())
               for k, v in {"Email": 97.0, "SMS": 91.5}.items()}
    tested = Comparison("delivery_rate", "%", "rate", "higher", "hour", None, entries,
                        Summary("Email", "SMS", 5.5, 6.0, True, 0.012, ("Email", "SMS")), ())
    assert summary_sentence(tested, "%") == ("Email is best (97.0 %), SMS worst (91.5 %): 5.5 points apart, "
                                             "a significant difference (p = 0.012).")
    untested = Comparison("delivery_rate", "%", "rate", "higher", "hour", None, entries,
                          Summary("Email", "SMS", 5.5, 6.0, False, None, ("Email", "SMS")), ())
    assert summary_sentence(untested, "%").endswith("apart, no significance test: a rate above 100 % is no proportion.")


def test_an_axis_names_its_unit_once():
    from layouts.figures import axis_title

    assert [axis_title(*a) for a in [("Delivery rate", "%"), ("Undelivered %", "%"), ("Events", "count"),
                                     ("Sent", "count"), ("p95 processing time", "ms"), ("Score", "none")]] == \
        ["Delivery rate (%)", "Undelivered %", "Events", "Sent (events)", "p95 processing time (ms)", "Score"]


def test_a_rate_above_100_percent_has_no_interval_and_no_test():
    """A range can hold deliveries whose sends fell before it: 104 delivered of 100 sent is a
    rate, but no proportion, so neither a Wilson interval nor a two-proportion test exists."""
    from services.analysis.compare import two_proportion_p, wilson_interval

    assert wilson_interval(104, 100) == (None, None)
    assert wilson_interval(-1, 100) == (None, None)
    assert two_proportion_p(104, 100, 50, 100) is None and two_proportion_p(50, 100, 104, 100) is None
    low, high = wilson_interval(100, 100)
    assert 0.96 < low < 1.0 and high == 1.0
    assert two_proportion_p(90, 100, 45, 100) < 1e-9
