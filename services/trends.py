"""Trend analysis as pure functions: numpy arrays in, plain results out, inputs untouched.

Series are equally spaced buckets; missing values are NaN. Every function here is tested on
small literal series with hand-checked answers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import signal, stats

FLAT_PERCENT = 1.0          # |change| below this is "flat"
SIGNIFICANCE = 0.05
MATERIAL_SLOPE = 0.01       # a trend must move more than 1 % of the mean per period
THRESHOLD = 4.0             # robust z beyond which a point is an anomaly
MAD_TO_SIGMA = 1.4826
SEVERITIES = ((8.0, "high"), (5.5, "medium"), (THRESHOLD, "low"))


# ---------------------------------------------------------------- change and smoothing

@dataclass(frozen=True)
class Change:
    percent: float | None
    direction: str  # "up" | "down" | "flat"


def percent_change(current: float | None, previous: float | None) -> Change:
    """Change of `current` against `previous`, in percent of `previous`."""
    if current is None or previous is None or not math.isfinite(current) or not math.isfinite(previous) \
            or previous == 0:
        return Change(None, "flat")
    pct = (current - previous) / abs(previous) * 100
    return Change(pct, "flat" if abs(pct) < FLAT_PERCENT else ("up" if pct > 0 else "down"))


def simple_moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values (NaNs skipped); NaN until `window` values exist."""
    if window < 1:
        raise ValueError("window must be at least 1")
    x = np.asarray(values, dtype=float)
    out = np.full(x.shape, np.nan)
    for i in range(window - 1, len(x)):
        chunk = x[i - window + 1:i + 1]
        if np.isfinite(chunk).any():
            out[i] = np.nanmean(chunk)
    return out


def exponential_moving_average(values: np.ndarray, span: int) -> np.ndarray:
    """EWMA with alpha = 2 / (span + 1); a NaN carries the previous average forward."""
    if span < 1:
        raise ValueError("span must be at least 1")
    alpha = 2.0 / (span + 1)
    x = np.asarray(values, dtype=float)
    out = np.full(x.shape, np.nan)
    level = np.nan
    for i, v in enumerate(x):
        if math.isfinite(v):
            level = v if not math.isfinite(level) else alpha * v + (1 - alpha) * level
        out[i] = level
    return out


# ---------------------------------------------------------------- trend

@dataclass(frozen=True)
class Trend:
    slope: float | None     # per bucket
    p_value: float | None
    direction: str          # "increasing" | "decreasing" | "stable"


def linear_trend(values: np.ndarray) -> Trend:
    """Least-squares slope; a direction only when significant and material."""
    y = np.asarray(values, dtype=float)
    x = np.arange(len(y), dtype=float)
    ok = np.isfinite(y)
    if ok.sum() < 3 or np.ptp(y[ok]) == 0:
        return Trend(0.0 if ok.sum() >= 3 else None, None if ok.sum() < 3 else 1.0, "stable")
    fit = stats.linregress(x[ok], y[ok])
    mean = abs(float(np.mean(y[ok])))
    material = abs(fit.slope) > MATERIAL_SLOPE * mean if mean > 0 else fit.slope != 0
    if fit.pvalue < SIGNIFICANCE and material:
        direction = "increasing" if fit.slope > 0 else "decreasing"
    else:
        direction = "stable"
    return Trend(float(fit.slope), float(fit.pvalue), direction)


# ---------------------------------------------------------------- seasonality

@dataclass(frozen=True)
class Seasonality:
    hour_profile: list[float | None]      # mean by hour of day (UTC), 24 values
    weekday_profile: list[float | None]   # mean by weekday, Monday first
    peak_hours: list[int]
    peak_weekdays: list[int]
    daily_cycle_significant: bool
    daily_p_value: float | None


def _profile(keys: np.ndarray, values: np.ndarray, size: int) -> list[float | None]:
    out: list[float | None] = []
    for k in range(size):
        chunk = values[(keys == k) & np.isfinite(values)]
        out.append(float(chunk.mean()) if len(chunk) else None)
    return out


def circular_peaks(profile: list[float | None], min_prominence: float = 0.1) -> list[int]:
    """Positions of local maxima of a cyclic profile standing out by at least
    `min_prominence` of its range, highest first."""
    y = np.array([np.nan if v is None else v for v in profile], dtype=float)
    if not np.isfinite(y).any() or np.nanmax(y) == np.nanmin(y):
        return []
    y = np.where(np.isfinite(y), y, np.nanmin(y))
    n = len(y)
    padded = np.concatenate([y, y, y])
    found, props = signal.find_peaks(padded, prominence=min_prominence * (y.max() - y.min()))
    peaks = {int(p - n): float(prom) for p, prom in zip(found, props["prominences"]) if n <= p < 2 * n}
    return sorted(peaks, key=lambda p: -y[p])


def seasonality(times: list[datetime], values: np.ndarray) -> Seasonality:
    """Hour-of-day and weekday profiles, their peaks, and whether the daily cycle is real
    (Kruskal–Wallis across hours of the day, p < 0.05)."""
    x = np.asarray(values, dtype=float)
    hours = np.array([t.hour for t in times])
    weekdays = np.array([t.weekday() for t in times])
    hour_profile = _profile(hours, x, 24)
    weekday_profile = _profile(weekdays, x, 7)
    p_value = _cycle_p_value(hours, x, 24)
    weekly_p = _cycle_p_value(weekdays, x, 7) if len(set(weekdays.tolist())) == 7 else None
    significant = p_value is not None and p_value < SIGNIFICANCE
    weekly = weekly_p is not None and weekly_p < SIGNIFICANCE
    return Seasonality(hour_profile, weekday_profile, circular_peaks(hour_profile)[:3] if significant else [],
                       circular_peaks(weekday_profile)[:2] if weekly else [], significant, p_value)


def _cycle_p_value(keys: np.ndarray, x: np.ndarray, size: int) -> float | None:
    """Kruskal–Wallis: do the positions of the cycle (hours, weekdays) differ?"""
    groups = [x[(keys == k) & np.isfinite(x)] for k in range(size)]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 3 or len({round(float(v), 12) for g in groups for v in g}) < 2:
        return None
    return float(stats.kruskal(*groups).pvalue)


# ---------------------------------------------------------------- anomalies

@dataclass(frozen=True)
class Anomaly:
    index: int
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    severity: str


@dataclass(frozen=True)
class Band:
    """What each point was judged against: NaN where there was not enough to judge."""
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray


def severity_of(score: float) -> str | None:
    for threshold, name in SEVERITIES:
        if abs(score) >= threshold:
            return name
    return None


def _band(x: np.ndarray, expected: np.ndarray, sigma: np.ndarray) -> Band:
    with np.errstate(invalid="ignore", divide="ignore"):
        score = (x - expected) / sigma
    return Band(expected, expected - THRESHOLD * sigma, expected + THRESHOLD * sigma, score)


def _sigma_floor(x: np.ndarray, center: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """A local MAD from a handful of values is itself noisy (and 0 on a flat history), so
    each point's scale is at least the series' typical relative residual at its level
    (robustly, so anomalies do not inflate it), and at least 0.1 % of that level."""
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.abs(x - center) / np.abs(center)
    ok = np.isfinite(relative)
    typical = MAD_TO_SIGMA * float(np.median(relative[ok])) if ok.sum() >= 10 else 0.0
    return np.maximum(spread, np.maximum(np.maximum(typical, 0.001) * np.abs(center), 1e-6))


def robust_band(values: np.ndarray, window: int = 24, min_points: int = 6) -> Band:
    """Each point against the median and MAD of the `window` points before it."""
    x = np.asarray(values, dtype=float)
    expected, sigma = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    for i in range(len(x)):
        history = x[max(0, i - window):i]
        history = history[np.isfinite(history)]
        if len(history) >= min_points:
            med = np.median(history)
            expected[i] = med
            sigma[i] = MAD_TO_SIGMA * np.median(np.abs(history - med))
    return _band(x, expected, _sigma_floor(x, expected, sigma))


def seasonal_band(values: np.ndarray, period: int, min_cycles: int = 3, max_cycles: int = 14) -> Band:
    """Each point against the same position in the previous cycles (the same hour of the
    previous days, or of the previous weeks): the daily peak is expected, not an anomaly."""
    x = np.asarray(values, dtype=float)
    expected, sigma = np.full(x.shape, np.nan), np.full(x.shape, np.nan)
    for i in range(len(x)):
        history = np.array([x[i - k * period] for k in range(1, max_cycles + 1) if i - k * period >= 0])
        history = history[np.isfinite(history)] if len(history) else history
        if len(history) >= min_cycles:
            med = np.median(history)
            expected[i] = med
            sigma[i] = MAD_TO_SIGMA * np.median(np.abs(history - med))
    return _band(x, expected, _sigma_floor(x, expected, sigma))


def volume_band(numerators: np.ndarray, denominators: np.ndarray, baseline: Band, scale: float = 100.0) -> Band:
    """A rate judged with its binomial uncertainty: the expected rate comes from `baseline`;
    the scale is the larger of the score-test (Wilson) width at the point's own volume and
    the historical spread (which already holds the binomial noise of typical volumes), so
    12 sends cannot alarm where 120,000 would."""
    num, den = np.asarray(numerators, float), np.asarray(denominators, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(den > 0, num / den * scale, np.nan)
        p0 = np.clip(baseline.expected / scale, 1e-9, 1 - 1e-9)
        binomial = np.where(den > 0, np.sqrt(p0 * (1 - p0) / den) * scale, np.nan)
    historical = (baseline.upper - baseline.expected) / THRESHOLD
    sigma = np.fmax(binomial, historical)
    return _band(rate, baseline.expected, sigma)


def anomalies_from(values: np.ndarray, band: Band, judged: np.ndarray | None = None) -> list[Anomaly]:
    """Points whose score is past the threshold (only where `judged`)."""
    x = np.asarray(values, dtype=float)
    out = []
    for i in range(len(x)):
        if judged is not None and not judged[i]:
            continue
        score = band.score[i]
        if not (math.isfinite(x[i]) and math.isfinite(score)):
            continue
        severity = severity_of(float(score))
        if severity:
            out.append(Anomaly(i, float(x[i]), float(band.expected[i]), float(band.lower[i]), float(band.upper[i]),
                               float(score), severity))
    return out


DETECTORS = ("seasonal", "robust", "volume")


def pick_detector(requested: str | None, history_days: float) -> str:
    """Seasonal where there are at least three days of history, robust otherwise."""
    if requested:
        if requested not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}")
        return requested
    return "seasonal" if history_days >= 3 else "robust"


def detect(values: np.ndarray, detector: str, day: int | None, week: int | None,
           numerators: np.ndarray | None = None, denominators: np.ndarray | None = None) -> Band:
    """The band of one detector. `day` and `week` are the number of buckets per day and per
    week (None when a bucket is that long or longer). "robust": rolling median/MAD.
    "seasonal": the same position in previous days, or previous weeks once three weeks exist
    (robust when neither has three cycles). "volume": a rate against its binomial uncertainty
    around the seasonal (or robust) baseline."""
    x = np.asarray(values, dtype=float)

    def seasonal() -> Band:
        if week and len(x) >= 3 * week + 1:
            return seasonal_band(x, week, max_cycles=4)
        if day and len(x) >= 3 * day + 1:
            return seasonal_band(x, day)
        return robust_band(x)

    if detector == "robust":
        return robust_band(x)
    if detector == "seasonal":
        return seasonal()
    if numerators is None or denominators is None:
        raise ValueError("the volume detector needs the counts behind the rate")
    return volume_band(numerators, denominators, seasonal())
