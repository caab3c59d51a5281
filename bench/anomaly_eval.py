"""Precision and recall of the anomaly detectors on a generated benchmark set: hourly
series with a daily cycle and noise, into which known anomalies (spikes, drops during the
daily peak, level shifts) are injected at random hours; half the series get none.

    .venv/bin/python -m bench.anomaly_eval [--series 200] [--seed 1]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from services import trends


def make_series(rng, days=10, level=800.0, noise=0.04):
    h = np.arange(days * 24) % 24
    shape = 0.35 + np.exp(-((h - 8) ** 2) / 4) + 0.9 * np.exp(-((h - 18) ** 2) / 6)
    return level * shape * (1 + rng.normal(0, noise, len(h)))


def inject(rng, values):
    """One anomaly in the last four days: a spike, a drop during a peak, or a level shift."""
    x = values.copy()
    kind = rng.choice(["spike", "peak_drop", "shift"])
    start = len(x) - 4 * 24
    if kind == "spike":
        i = int(rng.integers(start, len(x)))
        x[i] *= rng.uniform(1.6, 2.5)
        return x, {i}
    if kind == "peak_drop":
        day = int(rng.integers(6, 10))
        i = day * 24 + int(rng.choice([8, 18]))
        x[i] *= rng.uniform(0.4, 0.65)
        return x, {i}
    i = int(rng.integers(start, len(x) - 3))
    x[i:i + 3] *= rng.uniform(0.3, 0.6)
    return x, set(range(i, i + 3))


def evaluate(detector: str, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    tp = fp = fn = 0
    for k in range(n):
        values = make_series(rng)
        truth: set[int] = set()
        if k % 2 == 0:
            values, truth = inject(rng, values)
        judged = np.arange(len(values)) >= 6 * 24  # judge the last four days, as the API judges its range
        band = trends.detect(values, detector, 24, 168)
        found = {a.index for a in trends.anomalies_from(values, band, judged=judged)}
        tp += len(found & truth)
        fp += len(found - truth)
        fn += len(truth - found)
    return {"detector": detector, "series": n, "true_positives": tp, "false_positives": fp, "false_negatives": fn,
            "precision": round(tp / (tp + fp), 3) if tp + fp else None,
            "recall": round(tp / (tp + fn), 3) if tp + fn else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for detector in ("seasonal", "robust"):
        print(json.dumps(evaluate(detector, args.series, args.seed)))


if __name__ == "__main__":
    main()
