"""Correlation between metric series, honestly measured. Pure functions: arrays in, numbers
out, inputs untouched.

Two series that both follow the daily cycle look related only because of it, so the
default is to correlate residuals: each series minus its seasonal profile (hour of day, or
hour of week once three weeks exist) and its linear trend. A matrix of pairs gets
Benjamini–Hochberg q-values, so noise does not come out "significant".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy import stats

MIN_POINTS = 12


class SeriesProblem(ValueError):
    """A pair cannot be measured (too few points, a constant series); the message says why."""


def detrend(times: list[datetime], values: np.ndarray, granularity: str) -> np.ndarray:
    """Residuals after removing the seasonal profile and the slow level of the series.

    The profile is the mean per hour of day (per hour of week with three weeks of data; per
    weekday for daily data). The level is each day's mean for sub-daily data (which also
    takes out weekday effects before three weeks exist), or a linear trend for daily data.
    Positive series (counts, rates) are decomposed multiplicatively, as volume seasonality
    is; others additively."""
    x = np.asarray(values, dtype=float).copy()
    ok = np.isfinite(x)
    if ok.sum() < 3:
        return x
    multiplicative = bool((x[ok] > 0).all())
    y = np.where(ok, np.log(np.where(ok & (x > 0), x, 1.0)), np.nan) if multiplicative else x
    if granularity == "day":
        season = np.array([t.weekday() for t in times])
        level = None
    else:
        three_weeks = len(times) > 1 and (times[-1] - times[0]).days >= 21
        season = np.array([t.weekday() * 24 + t.hour if three_weeks else t.hour for t in times])
        level = np.array([t.toordinal() for t in times])
    for _ in range(3):  # backfitting: alternate the two effects until they settle
        for keys in (season, level):
            if keys is None:
                continue
            for key in np.unique(keys):
                mask = (keys == key) & ok
                if mask.any():
                    y[mask] -= y[mask].mean()
    if level is None:
        index = np.arange(len(y), dtype=float)
        fit = np.polyfit(index[ok], y[ok], 1)
        y[ok] -= np.polyval(fit, index[ok])
    return y


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def _check(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    if len(a) < MIN_POINTS:
        raise SeriesProblem(f"only {len(a)} buckets where both {names[0]} and {names[1]} have a value; "
                            f"at least {MIN_POINTS} are needed")
    for series, name in ((a, names[0]), (b, names[1])):
        if np.ptp(series) == 0:
            raise SeriesProblem(f"{name} is constant over the range, so it cannot correlate with anything")


@dataclass(frozen=True)
class LagResult:
    lag: int
    r: float
    p_value: float      # at this lag; for the strongest lag, multiplied by the lags tried
    n: int


@dataclass(frozen=True)
class PairResult:
    lag0: LagResult     # Pearson r and its own p-value with no lag
    best: LagResult     # the strongest lag (lag 0 when no lag was tried), its p paying for the search
    lags_tried: int
    rho: float          # Spearman at lag 0
    elasticity: float | None   # at the strongest lag
    elasticity_low: float | None
    elasticity_high: float | None


def lagged_correlation(a: np.ndarray, b: np.ndarray, lag_max: int) -> list[tuple[int, float, int]]:
    """(lag, r, n) for lag in −lag_max..lag_max; a positive lag means `a` leads `b`
    (a[t] against b[t + lag])."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    out = []
    for lag in range(-lag_max, lag_max + 1):
        x, y = (a[:len(a) - lag], b[lag:]) if lag >= 0 else (a[-lag:], b[:len(b) + lag])
        x, y = _paired(x, y)
        if len(x) >= MIN_POINTS and np.ptp(x) > 0 and np.ptp(y) > 0:
            out.append((lag, float(stats.pearsonr(x, y).statistic), len(x)))
    return out


def elasticity(a: np.ndarray, b: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Slope of b's percent changes on a's, with its 95 % interval: "when a rises 10 %, b
    tends to move slope × 10 %"."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        da, db = np.diff(a) / np.abs(a[:-1]), np.diff(b) / np.abs(b[:-1])
    x, y = _paired(da, db)
    if len(x) < MIN_POINTS or np.ptp(x) == 0:
        return None, None, None
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def correlate(a: np.ndarray, b: np.ndarray, names: tuple[str, str], lag_max: int = 0,
              raw_a: np.ndarray | None = None, raw_b: np.ndarray | None = None) -> PairResult:
    """Pearson r with its p-value at lag 0 and at the strongest lag, Spearman rho, and the
    elasticity (from the raw levels `raw_a`/`raw_b` when the correlated series are
    residuals) at the strongest lag."""
    x, y = _paired(a, b)
    _check(x, y, names)
    pearson = stats.pearsonr(x, y)
    rho = stats.spearmanr(x, y).statistic
    lag0 = LagResult(0, float(pearson.statistic), float(pearson.pvalue), len(x))
    lags = lagged_correlation(a, b, lag_max) if lag_max else [(0, lag0.r, lag0.n)]
    lag, r, n = max(lags, key=lambda item: (abs(item[1]), -abs(item[0])))
    # the best of several lags is chosen after looking, so its p-value pays for every lag tried
    p_best = lag0.p_value if lag == 0 else _p_of_r(r, n)
    best = LagResult(lag, r, min(1.0, p_best * len(lags)), n)
    ra, rb = (raw_a if raw_a is not None else a), (raw_b if raw_b is not None else b)
    slope, low, high = elasticity(*_shift(ra, rb, lag))
    return PairResult(lag0, best, len(lags), float(rho), slope, low, high)


def _p_of_r(r: float, n: int) -> float:
    """Two-sided p-value of a Pearson r from n pairs (the t distribution with n − 2 df)."""
    if abs(r) >= 1:
        return 0.0
    t = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * stats.t.sf(abs(t), n - 2))


def _shift(a: np.ndarray, b: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if lag > 0:
        return a[:len(a) - lag], b[lag:]
    if lag < 0:
        return a[-lag:], b[:len(b) + lag]
    return a, b


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """q-values controlling the false discovery rate over a family of tests."""
    if not p_values:
        return []
    return [float(q) for q in stats.false_discovery_control(np.asarray(p_values, float), method="bh")]


def sentence(a: str, b: str, result: PairResult, q_value: float, detrended: bool, unit: str) -> str:
    """"When email bounce rate rises 10%, SMS delivery rate tends to fall 3% …" or a plain
    "no reliable relationship", in the numbers of the strongest lag."""
    basis = "after removing the daily cycle and trend" if detrended else "on the raw series"
    q_text = "q < 0.001" if q_value < 0.001 else f"q = {q_value:.3f}"
    best = result.best
    at = f" at a lag of {abs(best.lag)} {unit}{'s' if abs(best.lag) > 1 else ''}" if best.lag else ""
    if q_value >= 0.05:
        return (f"No reliable relationship between {a} and {b} {basis} (strongest r = {best.r:.2f}{at}, {q_text}, "
                f"n = {best.n}).")
    text = f"{a[0].upper()}{a[1:]} and {b} move {'together' if best.r > 0 else 'in opposite directions'}"
    if result.elasticity is not None and math.isfinite(result.elasticity) and result.elasticity_low is not None \
            and (result.elasticity_low > 0 or result.elasticity_high < 0):
        move = result.elasticity * 10
        text = f"When {a} rises 10%, {b} tends to {'rise' if move > 0 else 'fall'} {abs(move):.1f}%"
    text += f" (r = {best.r:.2f}, {q_text}, n = {best.n}, {basis})"
    if best.lag:
        leader, follower = (a, b) if best.lag > 0 else (b, a)
        text += f"; {leader} leads {follower} by {abs(best.lag)} {unit}{'s' if abs(best.lag) > 1 else ''}"
    return text + "."
