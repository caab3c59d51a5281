"""Trend analysis as pure functions: numpy arrays in, plain results out, inputs untouched.

Series are equally spaced buckets; missing values are NaN (a bucket before the first event
is missing, not zero). Every function here is tested on small literal series with
hand-checked answers and on generated scenarios (`python -m bench.anomaly_eval`).

How a bucket is judged (`detect`):

1. **Baseline.** A series with a daily cycle (a Kruskal–Wallis test across the hours of the
   day, after removing each day's level) is judged against the same hour of the previous
   days, or of the previous weeks when a weekly cycle is significant too; a series without
   one against the median of the buckets before it. The previous days may lie before the
   requested range or inside it. A bucket needs three such references; where the past holds
   fewer, the following days complete them (a report looks back at a whole range), and a
   bucket with fewer than three in all is not judged. Seasonal references are scaled by the
   series' level over the last day, so a level shift is an anomaly for hours, not for weeks.
2. **Spread.** The references' MAD, never below the series' own typical residual, the noise
   the data can have (Poisson noise for counts, the measurement step for gauges) and, for
   rates and averages, the extra noise of a bucket with fewer events than its references.
3. **Score.** A count is also tested against the exact Poisson tail, a rate against the
   exact binomial tail at its own volume; the score is the less extreme of the two tests, so
   a bucket is an anomaly only when both its history and its sampling noise say so.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import signal, stats

FLAT_PERCENT = 1.0          # |change| below this is "flat", everywhere in the product
SIGNIFICANCE = 0.05
MATERIAL_SLOPE = 0.01       # a trend must move more than 1 % of the mean per period
THRESHOLD = 4.0             # |score| from which a bucket is an anomaly
MAD_TO_SIGMA = 1.4826
SEVERITIES = ((8.0, "high"), (5.5, "medium"), (THRESHOLD, "low"))

CYCLE_P_VALUE = 0.001       # a daily cycle is real when its test says so this firmly (hundreds of
WEEKLY_P_VALUE = 0.01       # hours); a weekly one has only a few days per weekday to go on …
CYCLE_MIN_EFFECT = 0.10     # … and the position must explain at least 10 % of the rank variance
MIN_REFERENCES = 3          # a seasonal expectation needs three earlier cycles
MAX_REFERENCES = {"daily": 14, "weekly": 4}
KINDS = ("count", "rate", "gauge")
BASELINES = ("seasonal", "robust")

# Buckets per cycle, and the rolling window where a series has no cycle, by granularity.
BUCKETS_PER_DAY = {"minute": 1440, "hour": 24, "day": None}
BUCKETS_PER_WEEK = {"minute": None, "hour": 168, "day": 7}
ROLLING_WINDOW = {"minute": 60, "hour": 48, "day": 14}
LEVEL_WINDOW = {"minute": 60, "hour": 24, "day": 7}


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


# ---------------------------------------------------------------- cycles

@dataclass(frozen=True)
class Cycle:
    """Whether values differ by position in a cycle (hour of day, weekday)."""
    p_value: float | None   # Kruskal–Wallis across positions, each cycle's level removed
    effect: float | None    # ε² or ω², bias-corrected: the share of variance the position explains
    significant: bool


NO_CYCLE = Cycle(None, None, False)


def cycle_test(values: np.ndarray, positions: np.ndarray, cycles: np.ndarray, size: int,
               p_value: float = CYCLE_P_VALUE, parametric: bool = False) -> Cycle:
    """Do the `size` positions of a cycle differ, once each cycle (`cycles` numbers them)
    is divided by its own median so that level changes do not pass for a pattern?
    Kruskal–Wallis, robust to an incident in one position, where there are many values per
    position (hours of the day); one-way ANOVA where there are few (weekdays over three or
    four weeks: ranks cannot reach significance there). Significant only when p < `p_value`
    and the position explains a material share of the variance."""
    x = np.asarray(values, dtype=float)
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return NO_CYCLE
    relative = np.full(x.shape, np.nan)
    positive = bool((x[ok] >= 0).all())
    for c in np.unique(cycles[ok]):
        mask = ok & (cycles == c)
        level = float(np.median(x[mask]))
        relative[mask] = x[mask] / level if positive and level > 0 else x[mask] - level
    groups = [relative[(positions == k) & ok] for k in range(size)]
    groups = [g for g in groups if len(g) >= 2]
    n = sum(len(g) for g in groups)
    if len(groups) < 3 or n <= len(groups) or len({round(float(v), 12) for g in groups for v in g}) < 2:
        return NO_CYCLE
    k = len(groups)
    if parametric:
        f, p = stats.f_oneway(*groups)
        if not np.isfinite(f):  # no spread inside any position: the pattern is exact
            return Cycle(0.0, 1.0, True)
        effect = float((k - 1) * (f - 1) / ((k - 1) * (f - 1) + n))  # ω²
    else:
        h, p = stats.kruskal(*groups)
        effect = float((h - k + 1) / (n - k))  # ε², bias-corrected
    return Cycle(float(p), effect, bool(p < p_value and effect >= CYCLE_MIN_EFFECT))


def daily_values(times: list[datetime], values: np.ndarray) -> tuple[list[datetime], np.ndarray]:
    """Mean per UTC day of sub-daily values (NaN for a day with fewer than half its buckets)."""
    x = np.asarray(values, dtype=float)
    days = np.array([t.toordinal() for t in times])
    out_days, out = [], []
    for d in np.unique(days):
        chunk = x[days == d]
        finite = chunk[np.isfinite(chunk)]
        out_days.append(datetime.fromordinal(int(d)))
        out.append(float(finite.mean()) if len(finite) * 2 >= len(chunk) and len(finite) else np.nan)
    return out_days, np.array(out, dtype=float)


def daily_cycle(times: list[datetime], values: np.ndarray) -> Cycle:
    """Do the hours of the day differ? Needs three days of data."""
    x = np.asarray(values, dtype=float)
    if np.isfinite(x).sum() < 3 * 24:
        return NO_CYCLE
    return cycle_test(x, np.array([t.hour for t in times]), np.array([t.toordinal() for t in times]), 24)


def weekly_cycle(times: list[datetime], values: np.ndarray, granularity: str) -> Cycle:
    """Do the weekdays differ? Judged on daily values; needs three weeks of data."""
    if granularity == "minute":
        return NO_CYCLE
    day_times, x = (times, np.asarray(values, float)) if granularity == "day" else daily_values(times, values)
    ok = np.isfinite(x)
    if ok.sum() < 21:
        return NO_CYCLE
    weeks = np.array([t.toordinal() // 7 for t in day_times])
    return cycle_test(x, np.array([t.weekday() for t in day_times]), weeks, 7, WEEKLY_P_VALUE, parametric=True)


@dataclass(frozen=True)
class Seasonality:
    hour_profile: list[float | None]      # mean by hour of day (UTC), 24 values
    weekday_profile: list[float | None]   # mean by weekday, Monday first
    peak_hours: list[int]                 # only when the daily cycle is significant
    peak_weekdays: list[int]              # only when the weekly cycle is significant
    daily: Cycle
    weekly: Cycle


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


def seasonality(times: list[datetime], values: np.ndarray, granularity: str = "hour") -> Seasonality:
    """Hour-of-day and weekday profiles, and their peaks where the cycle is real."""
    x = np.asarray(values, dtype=float)
    daily = daily_cycle(times, x) if granularity != "day" else NO_CYCLE
    weekly = weekly_cycle(times, x, granularity)
    hour_profile = _profile(np.array([t.hour for t in times]), x, 24)
    weekday_profile = _profile(np.array([t.weekday() for t in times]), x, 7)
    return Seasonality(hour_profile, weekday_profile,
                       circular_peaks(hour_profile)[:3] if daily.significant else [],
                       circular_peaks(weekday_profile)[:2] if weekly.significant else [], daily, weekly)


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
    """What each bucket was judged against; NaN and `judged` False where there was too
    little history to judge it."""
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    judged: np.ndarray        # a baseline existed
    baseline: str             # "daily" | "weekly" | "rolling" | "none"
    references: np.ndarray    # (buckets, k) indices of the buckets each expectation came from; -1 unused
    reason: str = ""          # why nothing (or not everything) could be judged


def severity_of(score: float) -> str | None:
    for threshold, name in SEVERITIES:
        if abs(score) >= threshold:
            return name
    return None


def _shifted(x: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, indices) of x[i + offset] for every i and offset; NaN / -1 outside."""
    n = len(x)
    index = np.arange(n)[:, None] + offsets[None, :]
    inside = (index >= 0) & (index < n)
    values = np.where(inside, x[np.clip(index, 0, max(n - 1, 0))], np.nan) if n else np.empty((0, len(offsets)))
    return values, np.where(inside, index, -1)


def _references(y: np.ndarray, before: np.ndarray, after: np.ndarray, needed: int,
                lookahead: bool) -> tuple[np.ndarray, np.ndarray]:
    """The finite values at `before` offsets, completed from `after` offsets (in order) up
    to `needed` values when the past holds fewer and `lookahead` allows it."""
    past, past_index = _shifted(y, before)
    past_ok = np.isfinite(past)
    if lookahead and len(after):
        future, future_index = _shifted(y, after)
        future_ok = np.isfinite(future)
        missing = np.clip(needed - past_ok.sum(axis=1), 0, None)
        take = future_ok & (np.cumsum(future_ok, axis=1) <= missing[:, None])
    else:
        future = future_index = np.empty((len(y), 0))
        take = np.zeros((len(y), 0), dtype=bool)
    values = np.concatenate([np.where(past_ok, past, np.nan), np.where(take, future, np.nan)], axis=1)
    index = np.concatenate([np.where(past_ok, past_index, -1), np.where(take, future_index, -1)], axis=1)
    return values, index.astype(int)


def row_median(values: np.ndarray, axis: int = 1) -> np.ndarray:
    """The median of each row, NaNs skipped (NaN for a row without values): numpy's
    nanmedian, without its slow masked-array path for small rows."""
    assert axis == 1
    a = np.sort(np.asarray(values, dtype=float), axis=1)  # NaNs sort last
    count = np.isfinite(a).sum(axis=1)
    rows = np.arange(len(a))
    low, high = np.maximum(count - 1, 0) // 2, np.maximum(count, 1) // 2
    if a.shape[1] == 0:
        return np.full(len(a), np.nan)
    median = (a[rows, np.minimum(low, a.shape[1] - 1)] + a[rows, np.minimum(high, a.shape[1] - 1)]) / 2
    return np.where(count > 0, median, np.nan)


def _median_and_spread(refs: np.ndarray, enough: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(refs)
    center, spread = np.full(n, np.nan), np.full(n, np.nan)
    if not enough.any():
        return center, spread
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = refs[enough]
        med = row_median(r, axis=1)
        dev = np.abs(r - med[:, None])
        spread[enough] = MAD_TO_SIGMA * row_median(dev, axis=1)
    center[enough] = med
    return center, spread


def _rolling_median(x: np.ndarray, window: int, minimum: int) -> np.ndarray:
    """Median of the `window` values before each position (NaN below `minimum` values)."""
    padded = np.concatenate([np.full(window, np.nan), x])
    view = np.lib.stride_tricks.sliding_window_view(padded, window)[:len(x)]
    counts = np.isfinite(view).sum(axis=1)
    out = np.full(len(x), np.nan)
    ok = counts >= minimum
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[ok] = row_median(view[ok], axis=1)
    return out


def measurement_step(values: np.ndarray) -> float:
    """The resolution a gauge moves in: the smallest gap between its distinct values."""
    distinct = np.unique(np.asarray(values, float)[np.isfinite(values)])
    gaps = np.diff(distinct)
    gaps = gaps[gaps > 1e-9 * max(1.0, float(np.abs(distinct).max()) if len(distinct) else 1.0)]
    return float(gaps.min()) if len(gaps) else 0.0


def anscombe(x: np.ndarray) -> np.ndarray:
    """Counts on a scale where Poisson noise has unit variance."""
    return 2.0 * np.sqrt(np.maximum(x, 0) + 0.375)


def inverse_anscombe(y: np.ndarray) -> np.ndarray:
    return np.maximum((np.asarray(y, float) / 2.0) ** 2 - 0.375, 0.0)


def choose_baseline(times: list[datetime], values: np.ndarray, granularity: str,
                    requested: str | None = None) -> tuple[str, str]:
    """("daily" | "weekly" | "rolling" | "none", reason) for a series. Hourly data needs three
    days to know whether it has a daily cycle, daily data three weeks for a weekly one; a
    minute series is judged against its last hour."""
    if requested is not None and requested not in BASELINES:
        raise ValueError(f"detector must be one of {', '.join(BASELINES)}")
    if requested == "robust" or granularity == "minute":
        return "rolling", ""
    x = np.asarray(values, dtype=float)
    if granularity == "day":
        weekly = weekly_cycle(times, x, "day")
        if weekly.p_value is None:
            return ("rolling", "") if requested else ("none", "daily data needs three weeks of history to "
                                                              "tell a weekly pattern from an anomaly")
        return ("weekly" if weekly.significant or requested == "seasonal" else "rolling"), ""
    daily = daily_cycle(times, x)
    if daily.p_value is None:
        return ("none", "hourly data needs three days of history to tell the daily cycle from an anomaly") \
            if requested != "seasonal" else ("daily", "")
    if not daily.significant and requested != "seasonal":
        return "rolling", ""
    return ("weekly" if weekly_cycle(times, x, "hour").significant else "daily"), ""


def detect(times: list[datetime], values: np.ndarray, kind: str, granularity: str, *,
           numerators: np.ndarray | None = None, denominators: np.ndarray | None = None,
           baseline: str | None = None, lookahead: bool = True) -> Band:
    """The band and score of every bucket (see the module docstring). `kind` is "count",
    "rate" (a percentage of `numerators` / `denominators`) or "gauge" (averages,
    percentiles, formulas; `denominators` is how many events each value stands on).
    `baseline` forces "seasonal" or "robust"; `lookahead=False` judges each bucket from its
    past only (alerts)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    x = np.asarray(values, dtype=float)
    n = len(x)
    chosen, reason = choose_baseline(times, x, granularity, baseline)
    nothing = np.full(n, np.nan)
    if chosen == "none" or n == 0:
        return Band(nothing, nothing, nothing, nothing, np.zeros(n, bool), "none", np.full((n, 0), -1), reason)
    y = anscombe(x) if kind == "count" else x
    counted = kind == "rate" and numerators is not None and denominators is not None
    num = np.asarray(numerators, float) if counted else None
    den = np.asarray(denominators, float) if counted else None
    if chosen == "rolling":
        window = ROLLING_WINDOW[granularity]
        refs, index = _references(y, -np.arange(1, window + 1), np.arange(1, window + 1), window // 2, lookahead)
        enough = np.isfinite(refs).sum(axis=1) >= window // 2
    else:
        refs, index, enough = _seasonal_references(y, granularity, chosen, lookahead)
    center, spread = _median_and_spread(refs, enough)
    if counted:  # a rate's expectation pools its references' events, so 0 % medians of small samples don't rule
        center = np.where(enough, _pooled_rate(index, num, den), np.nan)
    expected_y = center
    if chosen != "rolling":
        meaningful = None
        if counted:  # a bucket with few expected events says nothing about the level
            p = np.clip(center / 100.0, 0.0, 1.0)
            meaningful = np.minimum(p, 1 - p) * den >= 10
        level = _level(y, center, LEVEL_WINDOW[granularity], meaningful)
        multiplicative = bool((y[np.isfinite(y)] >= 0).all())
        expected_y = center * level if multiplicative else center + level
        spread = spread * level if multiplicative else spread
    sigma = _sigma(y, x, expected_y, spread, kind, index, denominators)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (y - expected_y) / sigma
    expected, lower, upper = _in_units(expected_y, sigma, kind)
    if kind == "count":
        ref_mean = _reference_mean(x, index)
        z, lower, upper = _exact(z, lower, upper, x, np.fmax(expected, ref_mean), None)
    elif counted:
        z, lower, upper = _exact(z, lower, upper, num, expected / 100.0, den)
    judged = enough & np.isfinite(expected_y)
    if kind == "rate":
        lower, upper = np.clip(lower, 0.0, 100.0), np.clip(upper, 0.0, 100.0)
    if kind != "gauge" or bool((x[np.isfinite(x)] >= 0).all()):
        lower = np.maximum(lower, 0.0)
    return Band(np.where(judged, expected, np.nan), np.where(judged, lower, np.nan),
                np.where(judged, upper, np.nan), np.where(judged, z, np.nan), judged, chosen,
                np.where(judged[:, None], index, -1), reason)


def _seasonal_references(y: np.ndarray, granularity: str, chosen: str, lookahead: bool):
    """The same position in earlier cycles: weeks where the weekly cycle is chosen and three
    weeks exist around the bucket, days otherwise."""
    def around(period: int, cycle: str):
        before = -period * np.arange(1, MAX_REFERENCES[cycle] + 1)
        refs, index = _references(y, before, period * np.arange(1, MIN_REFERENCES + 1), MIN_REFERENCES, lookahead)
        return refs, index, np.isfinite(refs).sum(axis=1) >= MIN_REFERENCES

    if chosen == "daily":
        return around(BUCKETS_PER_DAY[granularity], "daily")
    refs, index, enough = around(BUCKETS_PER_WEEK[granularity], "weekly")
    if granularity == "hour" and not enough.all():  # the first weeks: the same hour of the previous days
        d_refs, d_index, d_enough = around(BUCKETS_PER_DAY[granularity], "daily")
        width = max(refs.shape[1], d_refs.shape[1])
        pad = lambda a, fill: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)  # noqa: E731
        use_daily = ~enough & d_enough
        refs = np.where(use_daily[:, None], pad(d_refs, np.nan), pad(refs, np.nan))
        index = np.where(use_daily[:, None], pad(d_index, -1), pad(index, -1))
        enough = enough | d_enough
    return refs, index, enough


def _pooled_rate(index: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Σ events ÷ Σ sends over each bucket's references, in %, leaving out a reference whose
    own rate is implausible beside the others (a past incident) given its volume."""
    valid = index >= 0
    safe = np.clip(index, 0, None)
    ref_num = np.where(valid, num[safe], 0.0)
    ref_den = np.where(valid, den[safe], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = ref_num.sum(axis=1) / ref_den.sum(axis=1)
        rate = np.where(ref_den > 0, ref_num / ref_den, np.nan)
        median = row_median(rate, axis=1)
        mad = MAD_TO_SIGMA * row_median(np.abs(rate - median[:, None]), axis=1)
        noise = np.sqrt(np.clip(pooled * (1 - pooled), 0, None)[:, None] / ref_den)
        keep = (ref_den > 0) & (np.abs(rate - median[:, None]) <= THRESHOLD * np.fmax(mad[:, None], noise))
        trimmed = np.where(keep, ref_num, 0).sum(axis=1) / np.where(keep, ref_den, 0).sum(axis=1)
    return np.where(np.isfinite(trimmed), trimmed, pooled) * 100.0


def _level(y: np.ndarray, center: np.ndarray, window: int, meaningful: np.ndarray | None = None) -> np.ndarray:
    """How far the series runs above or below its references lately: the median ratio (or
    difference, for series with negative values) over the `window` buckets before each,
    counting only buckets where the comparison means something."""
    ok = np.isfinite(y) & np.isfinite(center)
    if meaningful is not None:
        ok &= meaningful
    if bool((y[np.isfinite(y)] >= 0).all()):
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(ok & (center > 0), y / center, np.nan)
        level = _rolling_median(ratio, window, window // 2)
        return np.where(np.isfinite(level), level, 1.0)
    level = _rolling_median(np.where(ok, y - center, np.nan), window, window // 2)
    return np.where(np.isfinite(level), level, 0.0)


def _reference_mean(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    if index.shape[1] == 0:
        return np.full(len(x), np.nan)
    values = np.where(index >= 0, x[np.clip(index, 0, None)], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)


def _sigma(y, x, expected_y, spread, kind, index, denominators) -> np.ndarray:
    """The spread each bucket is judged with: its references' spread (shrunk towards the
    series' typical residual when they are few), never below that typical residual, the
    data's own noise, or the noise of a smaller sample."""
    residual = y - expected_y
    ok = np.isfinite(residual)
    sigma = np.array(spread, dtype=float)
    typical = None
    if ok.sum() >= 10:
        if kind == "count":
            typical = count_noise(residual, inverse_anscombe(expected_y))
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                relative = residual / np.abs(expected_y)
            if np.isfinite(relative).sum() >= 10:
                # a rate's noise is its sampling noise: a recurring excursion is a recurring incident
                typical = typical_scale(relative, tails=kind == "gauge") * np.abs(expected_y)
    if typical is not None:
        # three references' MAD is itself noisy: weigh it like `count` observations against
        # SHRINK_PRIOR observations of the series-wide scale
        count = (index >= 0).sum(axis=1)
        with np.errstate(invalid="ignore"):
            shrunk = np.sqrt((count * sigma ** 2 + SHRINK_PRIOR * typical ** 2) / (count + SHRINK_PRIOR))
        sigma = np.fmax(np.where(np.isfinite(shrunk), shrunk, sigma), typical)
    if kind == "count":
        sigma = np.fmax(sigma, 1.0)  # Poisson noise
    else:
        sigma = np.fmax(sigma, measurement_step(x))
        if denominators is not None and index.shape[1]:
            den = np.asarray(denominators, float)
            ref_den = np.where(index >= 0, den[np.clip(index, 0, None)], np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                typical = row_median(ref_den, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = np.sqrt(np.where((den > 0) & (typical > den), typical / den, 1.0))
            sigma = sigma * np.where(np.isfinite(scale), scale, 1.0)
    return np.fmax(sigma, np.fmax(1e-3 * np.abs(expected_y), 1e-9))


def count_noise(residual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The ordinary spread of a count on the Anscombe scale, where pure Poisson noise has
    unit variance: variance a + φ²·expected, with a ≥ 1 (events that come in clusters, such
    as the 2–4 lifecycle events of one notification, are noisier than Poisson) and φ the
    share of the expected count that varies from bucket to bucket for reasons of its own.
    Both are read off the residuals of quiet and busy buckets; the result is widened by the
    series' tails (`typical_scale`)."""
    ok = np.isfinite(residual) & np.isfinite(expected)
    e, lam = np.abs(residual[ok]), np.maximum(expected[ok], 0.0)
    if len(e) < 10:
        return np.ones(len(residual))
    quiet = lam <= np.median(lam)
    busy = ~quiet if (~quiet).any() else quiet
    spread_quiet = (MAD_TO_SIGMA * float(np.median(e[quiet]))) ** 2
    spread_busy = (MAD_TO_SIGMA * float(np.median(e[busy]))) ** 2
    lam_quiet, lam_busy = float(np.median(lam[quiet])), float(np.median(lam[busy]))
    phi2 = max(0.0, (spread_busy - spread_quiet) / (lam_busy - lam_quiet)) if lam_busy > lam_quiet else 0.0
    a = max(1.0, spread_quiet - phi2 * lam_quiet)
    variance = a + phi2 * np.maximum(np.nan_to_num(expected), 0.0)
    standardised = np.where(ok, residual, np.nan) / np.sqrt(variance)
    return max(1.0, typical_scale(standardised)) * np.sqrt(variance)


def typical_scale(deviations: np.ndarray, tails: bool = True) -> float:
    """The scale of a series' ordinary deviations from its baseline (signed, in time order):
    their MAD as a sigma, or, for heavy tails, the scale at which the largest 1 % (5 % with
    fewer than 300 buckets) are still ordinary — an anomaly must be rarer than what the
    series does every few days. Runs of two or more large deviations of one sign are
    incidents or level shifts, not the series' noise, and are left out of the tail."""
    d = np.asarray(deviations, float)
    d = d[np.isfinite(d)]
    scale = MAD_TO_SIGMA * float(np.median(np.abs(d))) if len(d) else 0.0
    if not tails or len(d) < 100 or scale == 0:
        return scale
    large = np.sign(d) * (np.abs(d) > 3 * scale)
    in_run = np.zeros(len(d), bool)
    start = 0
    for i in range(1, len(d) + 1):
        if i == len(d) or large[i] != large[start]:
            if large[start] != 0 and i - start >= 2:
                in_run[start:i] = True
            start = i
    ordinary = np.abs(d[~in_run])
    if len(ordinary) < 100:
        return scale
    share = 0.01 if len(ordinary) >= 300 else 0.05
    return max(scale, float(np.quantile(ordinary, 1 - share)) / float(stats.norm.isf(share / 2)))


SHRINK_PRIOR = 6


def _in_units(expected_y, sigma, kind) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low_y, high_y = expected_y - THRESHOLD * sigma, expected_y + THRESHOLD * sigma
    if kind == "count":
        low = np.where(low_y > anscombe(np.zeros(1))[0], inverse_anscombe(low_y), 0.0)
        return inverse_anscombe(expected_y), low, inverse_anscombe(high_y)
    return expected_y, low_y, high_y


_TAIL = float(stats.norm.sf(THRESHOLD))


def _exact(z_history, lower, upper, observed, center, trials) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine the history's score with the exact sampling tail (Poisson with mean `center`
    when `trials` is None, else binomial with probability `center` over `trials`): the less
    extreme score wins, and the band widens to hold what sampling noise alone allows."""
    z = np.array(z_history, dtype=float)
    lo, hi = np.array(lower, float), np.array(upper, float)
    ok = np.isfinite(observed) & np.isfinite(center) & np.isfinite(z)
    if trials is not None:
        ok &= np.isfinite(trials) & (trials > 0)
    if not ok.any():
        return z, lo, hi
    obs, c = observed[ok], center[ok]
    if trials is None:
        dist = stats.poisson(np.maximum(c, 1e-9))
        scale = np.ones(ok.sum())
    else:
        t = trials[ok]
        dist = stats.binom(np.round(t).astype(np.int64), np.clip(c, 1e-9, 1 - 1e-9))
        scale = 100.0 / t
        obs = np.round(obs)
    mean = dist.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        upper_tail = dist.sf(obs - 1)
        lower_tail = dist.cdf(obs)
        exact = np.where(obs >= mean, stats.norm.isf(np.clip(upper_tail, 1e-300, 1.0)),
                         -stats.norm.isf(np.clip(lower_tail, 1e-300, 1.0)))
        exact = np.where(obs >= mean, np.maximum(exact, 0.0), np.minimum(exact, 0.0))
    zk = z[ok]
    z[ok] = np.where(np.abs(exact) < np.abs(zk), exact, zk)
    lo[ok] = np.minimum(lo[ok], dist.ppf(_TAIL) * scale)
    hi[ok] = np.maximum(hi[ok], dist.isf(_TAIL) * scale)
    return z, lo, hi


def anomalies_from(values: np.ndarray, band: Band, judged: np.ndarray | None = None,
                   threshold: float = THRESHOLD) -> list[Anomaly]:
    """Buckets whose score is past `threshold` (only where `judged` and the band judged)."""
    x = np.asarray(values, dtype=float)
    mask = band.judged & np.isfinite(x) & np.isfinite(band.score) & (np.abs(band.score) >= threshold)
    if judged is not None:
        mask &= judged
    return [Anomaly(int(i), float(x[i]), float(band.expected[i]), float(band.lower[i]), float(band.upper[i]),
                    float(band.score[i]), severity_of(float(band.score[i])) or "low")
            for i in np.flatnonzero(mask)]


def family_threshold(tests: int, alpha: float = 0.05) -> float:
    """The |score| that keeps the chance of any false alarm over `tests` buckets under
    `alpha` if scores were normal (Bonferroni); never below THRESHOLD."""
    if tests <= 0:
        return THRESHOLD
    return max(THRESHOLD, float(stats.norm.isf(alpha / (2 * tests))))


# ---------------------------------------------------------------- segments

MIN_SEGMENT_VOLUME = 20     # a rate or average on fewer events is not judged per segment


@dataclass(frozen=True)
class SegmentSeries:
    values: np.ndarray
    numerators: np.ndarray | None = None
    denominators: np.ndarray | None = None


@dataclass(frozen=True)
class SegmentSearch:
    findings: list[tuple[object, Anomaly]]   # (segment key, anomaly), strongest first
    bands: dict                              # segment key → Band
    tests: int                               # buckets judged over every segment
    threshold: float                         # the |score| a finding needed


def search_segments(times: list[datetime], segments: dict, kind: str, granularity: str, judged: np.ndarray, *,
                    baseline: str | None = None, lookahead: bool = True,
                    min_volume: float = MIN_SEGMENT_VOLUME, alpha: float = 0.05) -> SegmentSearch:
    """Judge every segment (channel × template) on its own, as `detect` judges the total,
    and keep what passes a threshold that pays for the number of buckets judged in all, so
    many quiet segments cannot add up to false alarms. A rate or average is judged only in
    buckets holding at least `min_volume` events."""
    bands, masks = {}, {}
    for key, series in segments.items():
        band = detect(times, series.values, kind, granularity, numerators=series.numerators,
                      denominators=series.denominators, baseline=baseline, lookahead=lookahead)
        mask = judged & band.judged & np.isfinite(np.asarray(series.values, float))
        if kind != "count" and series.denominators is not None:
            mask &= np.asarray(series.denominators, float) >= min_volume
        bands[key], masks[key] = band, mask
    tests = int(sum(int(m.sum()) for m in masks.values()))
    threshold = family_threshold(tests, alpha)
    findings = [(key, a) for key, band in bands.items()
                for a in anomalies_from(segments[key].values, band, masks[key], threshold)]
    findings.sort(key=lambda item: -abs(item[1].score))
    return SegmentSearch(findings, bands, tests, threshold)
