"""The correlation answer for a set of metrics: every pair measured (detrended by default),
q-values over the whole matrix, lags, and a sentence per pair."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import numpy as np
from sqlalchemy import Connection

from services import correlation
from services.custom_metrics import resolve_metric
from services.query import build_query, get_metric, query_long
from services.schema import CHANNELS, channel_label
from services.timerange import STEP, QueryError

MAX_METRICS = 10
MAX_LAG = 48
LAG_UNITS = {"minute": "minute", "hour": "hour", "day": "day"}


def parse_metrics(text: str | Sequence[str] | None, channels: Sequence[str],
                  conn: Connection | None = None) -> list[tuple[str, str, str | None]]:
    """"email:bounce_rate,sms:delivery_rate" → [(as spelled, metric, channel)]."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text or [])
    parts = [p for p in parts if p]
    if len(set(parts)) < 2:
        raise QueryError("name at least two metrics, e.g. metrics=email:bounce_rate,sms:delivery_rate", "metrics")
    if len(parts) > MAX_METRICS:
        raise QueryError(f"at most {MAX_METRICS} metrics at once", "metrics")
    out = []
    for part in dict.fromkeys(parts):
        channel, _, name = part.rpartition(":")
        if channel and channel not in channels:
            raise QueryError(f"channel {channel[:40]!r} in {part[:60]!r} is not one of {', '.join(channels)}",
                             "metrics")
        try:
            resolve_metric(conn, name) if conn is not None else get_metric(name)
        except QueryError as exc:
            raise QueryError(exc.message, "metrics") from None
        out.append((part, name, channel or None))
    return out


def label_of(conn: Connection, metric: str, channel: str | None) -> str:
    label = resolve_metric(conn, metric).label.lower()
    return f"{channel_label(channel)} {label}" if channel else label


def correlation_report(conn: Connection, metrics, start=None, end=None, granularity: str | None = None,
                       lag_max: int = 0, detrend: bool = True, *, now: datetime | None = None,
                       channels: Sequence[str] = CHANNELS, **settings) -> dict:
    now = now or datetime.now(timezone.utc)
    specs = parse_metrics(metrics, channels, conn)
    if not isinstance(lag_max, int) or not 0 <= lag_max <= MAX_LAG:
        raise QueryError(f"lag_max must be a whole number of buckets from 0 to {MAX_LAG}", "lag_max")
    window = build_query(resolve_metric(conn, specs[0][1]), ("time",), start, end, {}, granularity, now,
                         channels).window
    gran = window.granularity
    series: dict[str, np.ndarray] = {}
    times: list[datetime] = []
    for spelled, name, channel in specs:
        points = query_long(conn, name, ("time",), window.start, window.end,
                            {"channel": [channel]} if channel else {}, gran, now=now, channels=channels, **settings)
        times = [p.time for p in points]
        # a bucket still filling would look like a shared drop in every count
        series[spelled] = np.array([np.nan if p.value is None or p.time + STEP[gran] > now else p.value
                                    for p in points], dtype=float)
    residuals = {k: correlation.detrend(times, v, gran) if detrend else v for k, v in series.items()}
    labels = {spelled: label_of(conn, name, channel) for spelled, name, channel in specs}
    keys = [s for s, _, _ in specs]
    pairs, measured = [], []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            try:
                result = correlation.correlate(residuals[a], residuals[b], (labels[a], labels[b]), lag_max,
                                               series[a], series[b])
            except correlation.SeriesProblem as exc:
                pairs.append({"a": a, "b": b, "r": None, "rho": None, "p_value": None, "q_value": None, "n": None,
                              "best_lag": None, "lag_r": None, "elasticity": None, "sentence": str(exc)})
                continue
            measured.append((len(pairs), result))
            pairs.append({"a": a, "b": b, "r": result.r, "rho": result.rho, "p_value": result.p_value,
                          "n": result.n, "best_lag": result.best_lag, "lag_r": result.lag_r,
                          "elasticity": None if result.elasticity is None else {
                              "slope": result.elasticity, "ci_low": result.elasticity_low,
                              "ci_high": result.elasticity_high}})
    q_values = correlation.benjamini_hochberg([r.p_value for _, r in measured])
    for (index, result), q in zip(measured, q_values):
        pair = pairs[index]
        pair["q_value"] = q
        pair["significant"] = q < 0.05
        pair["sentence"] = correlation.sentence(labels[pair["a"]], labels[pair["b"]], result, q, detrend,
                                                LAG_UNITS[gran])
    # the matrix shows each pair at its strongest lag (0 unless lag_max > 0), as the q-value judges it
    matrix_r = [[1.0 if a == b else None for b in keys] for a in keys]
    matrix_q = [[0.0 if a == b else None for b in keys] for a in keys]
    matrix_lag = [[0 for _ in keys] for _ in keys]
    for pair in pairs:
        i, j = keys.index(pair["a"]), keys.index(pair["b"])
        matrix_r[i][j] = matrix_r[j][i] = pair["lag_r"]
        matrix_q[i][j] = matrix_q[j][i] = pair["q_value"]
        lag = pair["best_lag"] or 0
        matrix_lag[i][j], matrix_lag[j][i] = lag, -lag
    method = ("pearson on residuals after removing each series' seasonal profile (hour of day, or hour of week "
              "with three weeks of data) and linear trend" if detrend else "pearson on the raw series")
    return {"method": method, "detrended": detrend, "granularity": gran,
            "time_range": {"start": window.start.isoformat().replace("+00:00", "Z"),
                           "end": window.end.isoformat().replace("+00:00", "Z")},
            "pairs": pairs, "matrix": {"metrics": keys, "labels": [labels[k] for k in keys], "r": matrix_r,
                                       "q": matrix_q, "lag": matrix_lag},
            "series": {k: {"times": [t.isoformat().replace("+00:00", "Z") for t in times],
                           "values": [None if not np.isfinite(v) else float(v) for v in series[k]],
                           "residuals": [None if not np.isfinite(v) else float(v) for v in residuals[k]]}
                       for k in keys}}
