"""Precision, recall and false alarms of the anomaly detectors on generated scenarios that no
detector was tuned on: history that starts at the range start, daily and weekly cycles, a
level shift, a drop inside a peak, a template spike diluted twenty times at the channel
level, a low-volume template with noisy rates, missing hours, a gradual ramp, mostly-zero
counts, step-valued gauges, heavy-tailed noise and flat series without any anomaly.

    .venv/bin/python -m bench.anomaly_eval [--series 30] [--seed 1] [--json out.json]

Every scenario is generated from the seed, judged the way the trend report judges (history
before the range when there is any, only the range judged), and scored by incident: an
incident counts as found when a flagged bucket falls inside its window; a flag outside
every window is a false alarm. Precision is flagged buckets inside windows over all flagged
buckets; false alarms are counted per 1,000 judged buckets.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from services.analysis import trends

START = datetime(2026, 10, 5, tzinfo=timezone.utc)  # a Monday
DETECTORS = {"auto": None, "seasonal": "seasonal", "robust": "robust"}


@dataclass
class Case:
    times: list[datetime]
    values: np.ndarray
    kind: str
    judged: np.ndarray                      # the requested range
    windows: list[set[int]]                 # incidents (bucket indices)
    numerators: np.ndarray | None = None
    denominators: np.ndarray | None = None
    segments: dict = field(default_factory=dict)              # key → trends.SegmentSeries
    optional: list[set[int]] = field(default_factory=list)    # real but not required at this level (diluted)
    segment_windows: list[tuple[object, set[int]]] = field(default_factory=list)


def hours(days: int) -> list[datetime]:
    return [START + timedelta(hours=h) for h in range(days * 24)]


def daily_shape(times: list[datetime]) -> np.ndarray:
    """Relative volume by hour (mean about 1): quiet nights, peaks at 08:00 and 18:00."""
    h = np.array([t.hour for t in times], dtype=float)
    shape = 0.25 + 1.2 * np.exp(-((h - 8) ** 2) / 5) + 1.0 * np.exp(-((h - 18) ** 2) / 7)
    return shape / 0.62


def weekly_shape(times: list[datetime], weekend: float) -> np.ndarray:
    return np.array([weekend if t.weekday() >= 5 else 1.0 for t in times])


def poisson_counts(rng, mean: np.ndarray, overdispersion: float = 0.04) -> np.ndarray:
    return rng.poisson(mean * np.exp(rng.normal(0, overdispersion, len(mean)))).astype(float)


def range_mask(n: int, range_days: int) -> np.ndarray:
    return np.arange(n) >= n - range_days * 24


def visible_factor(rng, mean: float, up: bool) -> float:
    """A change a person would call an anomaly: at least 6 Poisson standard deviations and
    40 % of the expected value."""
    size = max(0.4, 6 / np.sqrt(max(mean, 1e-9)))
    return 1 + size * rng.uniform(1.0, 1.6) if up else max(0.0, 1 - size * rng.uniform(1.0, 1.3))


def plant_points(rng, values: np.ndarray, mean: np.ndarray, candidates: np.ndarray, count: int) -> list[set[int]]:
    windows = []
    for i in rng.choice(candidates, size=count, replace=False):
        up = mean[i] < 60 or rng.random() < 0.5  # a drop is visible only where volume allows it
        values[i] = np.round(mean[i] * visible_factor(rng, mean[i], up))
        windows.append({int(i)})
    return windows


# ---------------------------------------------------------------- scenarios

def history_at_range_start(rng) -> Case:
    times = hours(14)
    mean = rng.uniform(60, 2000) * daily_shape(times)
    values = poisson_counts(rng, mean)
    windows = plant_points(rng, values, mean, np.arange(len(times)), 3)
    return Case(times, values, "count", np.ones(len(times), bool), windows)


def daily_and_weekly_cycles(rng) -> Case:
    times = hours(28)
    mean = rng.uniform(60, 2000) * daily_shape(times) * weekly_shape(times, rng.uniform(0.5, 0.8))
    values = poisson_counts(rng, mean)
    judged = range_mask(len(times), 7)
    windows = plant_points(rng, values, mean, np.flatnonzero(judged), 2)
    return Case(times, values, "count", judged, windows)


def level_shift(rng) -> Case:
    times = hours(28)
    mean = rng.uniform(100, 2000) * daily_shape(times)
    judged = range_mask(len(times), 7)
    at = int(rng.integers(len(times) - 7 * 24, len(times) - 2 * 24))
    mean[at:] *= rng.choice([0.45, 1.8])
    values = poisson_counts(rng, mean)
    return Case(times, values, "count", judged, [set(range(at, at + 24))])


def drop_inside_a_peak(rng) -> Case:
    times = hours(21)
    mean = rng.uniform(100, 2000) * daily_shape(times)
    values = poisson_counts(rng, mean)
    judged = range_mask(len(times), 7)
    peaks = [i for i in np.flatnonzero(judged) if times[i].hour in (8, 18)]
    i = int(rng.choice(peaks))
    values[i] = np.round(mean[i] * rng.uniform(0.35, 0.55))
    return Case(times, values, "count", judged, [{i}])


def rate_segments(rng, times, templates: int, sends_per_hour: float, shares: np.ndarray, base: np.ndarray):
    """Sends and events by template for a rate (numerator events ÷ sends × 100)."""
    mean = sends_per_hour * daily_shape(times)
    sends = np.array([rng.poisson(mean * s) for s in shares], dtype=float)
    hits = np.array([rng.binomial(sends[k].astype(int), base[k]) for k in range(templates)], dtype=float)
    return sends, hits


def as_rate_case(times, sends, hits, judged, windows, segment_windows, optional=()) -> Case:
    total_sends, total_hits = sends.sum(axis=0), hits.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(total_sends > 0, total_hits / total_sends * 100, np.nan)
        segments = {k: trends.SegmentSeries(np.where(sends[k] > 0, hits[k] / sends[k] * 100, np.nan), hits[k], sends[k])
                    for k in range(len(sends))}
    return Case(times, rate, "rate", judged, windows, total_hits, total_sends, segments=segments,
                segment_windows=segment_windows, optional=list(optional))


def diluted_template_spike(rng) -> Case:
    """One template (5 % of the channel) goes from a 2 % to a 40 % bounce rate for two
    hours: about +1.9 points at the channel level, twenty times less than in the template."""
    times = hours(21)
    templates = 20
    shares = rng.dirichlet(np.ones(templates - 1)) * 0.95
    shares = np.concatenate([[0.05], shares])
    base = rng.uniform(0.01, 0.04, templates)
    base[0] = 0.02
    sends, hits = rate_segments(rng, times, templates, rng.uniform(1500, 4000), shares, base)
    judged = range_mask(len(times), 7)
    day_hours = [i for i in np.flatnonzero(judged) if 9 <= times[i].hour <= 17 and i + 1 < len(times)]
    at = int(rng.choice(day_hours))
    for i in (at, at + 1):
        hits[0, i] = rng.binomial(int(sends[0, i]), 0.40)
    return as_rate_case(times, sends, hits, judged, [], [(0, {at, at + 1})], [{at, at + 1}])


def low_volume_template(rng) -> Case:
    """Templates of about 12 sends an hour with a 2 % bounce rate: noise, nothing else."""
    times = hours(21)
    templates = 5
    sends, hits = rate_segments(rng, times, templates, 12 * templates, np.full(templates, 1 / templates),
                                np.full(templates, 0.02))
    return as_rate_case(times, sends, hits, range_mask(len(times), 7), [], [])


def rate_with_volume_cycle(rng) -> Case:
    """A delivery rate of ~92 % whose volume follows the day, with a three-hour drop to ~60 %."""
    times = hours(21)
    sends, hits = rate_segments(rng, times, 1, rng.uniform(100, 1500), np.ones(1), np.array([0.92]))
    judged = range_mask(len(times), 7)
    day_hours = [i for i in np.flatnonzero(judged) if 9 <= times[i].hour <= 16]
    at = int(rng.choice(day_hours))
    for i in range(at, at + 3):
        hits[0, i] = rng.binomial(int(sends[0, i]), 0.60)
    case = as_rate_case(times, sends, hits, judged, [set(range(at, at + 3))], [])
    case.segments = {}
    return case


def missing_hours(rng) -> Case:
    """A delivery rate with a tenth of its hours missing (runs of 1–6 hours with no events)
    and two drops."""
    times = hours(21)
    sends, hits = rate_segments(rng, times, 1, rng.uniform(300, 1500), np.ones(1), np.array([0.95]))
    judged = range_mask(len(times), 7)
    n = len(times)
    gone = np.zeros(n, bool)
    while gone.mean() < 0.1:
        at = int(rng.integers(0, n))
        gone[at:at + int(rng.integers(1, 7))] = True
    sends[0, gone], hits[0, gone] = 0, 0
    candidates = [i for i in np.flatnonzero(judged & ~gone) if sends[0, i] >= 100]
    windows = []
    for i in rng.choice(candidates, size=2, replace=False):
        hits[0, i] = rng.binomial(int(sends[0, i]), 0.80)
        windows.append({int(i)})
    case = as_rate_case(times, sends, hits, judged, windows, [])
    case.segments = {}
    return case


def gradual_ramp(rng) -> Case:
    """Volume growing by 60 % over the week in view: a trend, not an anomaly."""
    times = hours(28)
    ramp = np.ones(len(times))
    ramp[-7 * 24:] = np.linspace(1.0, 1.6, 7 * 24)
    mean = rng.uniform(100, 2000) * daily_shape(times) * ramp
    return Case(times, poisson_counts(rng, mean), "count", range_mask(len(times), 7), [])


def mostly_zero_counts(rng) -> Case:
    """A rare event: about one every few hours, bursty, mostly zero, no cycle."""
    times = hours(28)
    mean = rng.gamma(0.5, rng.uniform(0.1, 0.6) / 0.5, len(times))
    return Case(times, rng.poisson(mean).astype(float), "count", range_mask(len(times), 7), [])


def step_gauge(rng) -> Case:
    """An average processing time reported in 10 ms steps that sits still for hours and
    moves a step now and then."""
    times = hours(28)
    level, values = 120.0, []
    for _ in times:
        if rng.random() < 0.06:
            level += 10 * rng.choice([-1, 1]) if abs(level - 120) < 30 else 10 * np.sign(120 - level)
        values.append(level)
    return Case(times, np.array(values), "gauge", range_mask(len(times), 7), [])


def heavy_tailed_noise(rng) -> Case:
    """A gauge without cycle or anomaly whose noise has heavy tails (Student t, 3 df)."""
    times = hours(28)
    values = 200 + 8 * rng.standard_t(3, len(times))
    return Case(times, values, "gauge", range_mask(len(times), 7), [])


def flat_series(rng) -> Case:
    """Counts with neither a cycle nor an anomaly."""
    times = hours(28)
    return Case(times, poisson_counts(rng, np.full(len(times), rng.uniform(5, 3000))), "count",
                range_mask(len(times), 7), [])


SCENARIOS: dict[str, Callable] = {
    "history_at_range_start": history_at_range_start,
    "daily_and_weekly_cycles": daily_and_weekly_cycles,
    "level_shift": level_shift,
    "drop_inside_a_peak": drop_inside_a_peak,
    "rate_with_volume_cycle": rate_with_volume_cycle,
    "diluted_template_spike": diluted_template_spike,
    "low_volume_template": low_volume_template,
    "missing_hours": missing_hours,
    "gradual_ramp": gradual_ramp,
    "mostly_zero_counts": mostly_zero_counts,
    "step_gauge": step_gauge,
    "heavy_tailed_noise": heavy_tailed_noise,
    "flat_series": flat_series,
}


# ---------------------------------------------------------------- scoring

@dataclass
class Tally:
    incidents: int = 0
    found: int = 0
    flags: int = 0
    flags_inside: int = 0
    judged: int = 0
    in_range: int = 0

    def add(self, windows: list[set], flags: set, judged: int, in_range: int, optional: list[set] = ()) -> None:
        self.incidents += len(windows)
        self.found += sum(1 for w in windows if w & flags)
        flags = {f for f in flags if not any(f in w for w in optional)}  # neither required nor false
        inside = {f for f in flags if any(f in w for w in windows)}
        self.flags += len(flags)
        self.flags_inside += len(inside)
        self.judged += judged
        self.in_range += in_range

    def as_dict(self) -> dict:
        false_alarms = self.flags - self.flags_inside
        return {"incidents": self.incidents, "found": self.found, "flags": self.flags,
                "precision": round(self.flags_inside / self.flags, 3) if self.flags else None,
                "recall": round(self.found / self.incidents, 3) if self.incidents else None,
                "false_alarms_per_1000": round(false_alarms / self.judged * 1000, 2) if self.judged else None,
                "judged_share": round(self.judged / self.in_range, 3) if self.in_range else None}


def judge_case(case: Case, detector: str | None) -> tuple[Tally, Tally | None]:
    total = Tally()
    band = trends.detect(case.times, case.values, case.kind, "hour", numerators=case.numerators,
                         denominators=case.denominators, baseline=detector)
    flags = {a.index for a in trends.anomalies_from(case.values, band, case.judged)}
    total.add(case.windows, flags, int((band.judged & case.judged & np.isfinite(case.values)).sum()),
              int((case.judged & np.isfinite(case.values)).sum()), case.optional)
    if not case.segments:
        return total, None
    search = trends.search_segments(case.times, case.segments, case.kind, "hour", case.judged, baseline=detector)
    segment = Tally()
    found = {(key, a.index) for key, a in search.findings}
    windows = [{(key, i) for i in w} for key, w in case.segment_windows]
    segment.add(windows, found, search.tests, int(case.judged.sum()) * len(case.segments))
    return total, segment


def evaluate(scenario: str, detector: str | None, series: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, list(SCENARIOS).index(scenario)])
    total, segment = Tally(), Tally()
    has_segments = False
    for _ in range(series):
        case = SCENARIOS[scenario](rng)
        t, s = judge_case(case, detector)
        for name in ("incidents", "found", "flags", "flags_inside", "judged", "in_range"):
            setattr(total, name, getattr(total, name) + getattr(t, name))
            if s is not None:
                has_segments = True
                setattr(segment, name, getattr(segment, name) + getattr(s, name))
    out = {"scenario": scenario, "detector": detector or "auto", "series": series, **total.as_dict()}
    if has_segments:
        out["segments"] = segment.as_dict()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", choices=list(SCENARIOS), action="append")
    parser.add_argument("--detector", choices=list(DETECTORS), action="append")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = []
    for scenario in args.scenario or list(SCENARIOS):
        for name in args.detector or list(DETECTORS):
            result = evaluate(scenario, DETECTORS[name], args.series, args.seed)
            results.append(result)
            print(json.dumps(result), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
