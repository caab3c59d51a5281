"""A mergeable latency histogram with 1 % relative accuracy (the DDSketch layout).

Bucket 0 holds 0 ms; bucket i ≥ 1 holds values v with gamma^(i-2) < v ≤ gamma^(i-1), so any
percentile read back from merged counts is within 1 % of the exact (nearest-rank) value.
Histograms are sparse {index: count} maps serialised as a count and two big-endian arrays
(network order, which Postgres writes with int4send/int2send/int8send, so a rollup can
build them in SQL), so rollup rows stay small and merging is a sum.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
MAX_MS = 86_400_000  # one day; larger processing times are refused at ingest


def bucket_index(ms: int) -> int:
    if ms <= 0:
        return 0
    return int(math.ceil(math.log(ms) / _LOG_GAMMA - 1e-9)) + 1


def bucket_indexes(ms: np.ndarray) -> np.ndarray:
    """Vectorised `bucket_index` for an integer array (no nulls)."""
    ms = np.asarray(ms, dtype=np.float64)
    out = np.zeros(ms.shape, dtype=np.int16)
    positive = ms > 0
    out[positive] = (np.ceil(np.log(ms[positive]) / _LOG_GAMMA - 1e-9) + 1).astype(np.int16)
    return out


def bucket_value(index: int) -> float:
    """The representative value of a bucket: within 1 % of anything stored in it."""
    if index <= 0:
        return 0.0
    return 2 * GAMMA ** (index - 1) / (GAMMA + 1)


def encode(histogram: Mapping[int, int]) -> bytes:
    items = sorted((i, c) for i, c in histogram.items() if c)
    return encode_lists([i for i, _ in items], [c for _, c in items])


def encode_lists(indexes: list[int], counts: list[int]) -> bytes:
    """`encode` for indexes already ascending and their counts, without building a dict."""
    return (len(indexes).to_bytes(4, "big") + np.array(indexes, dtype=">i2").tobytes()
            + np.array(counts, dtype=">i8").tobytes())


def _arrays(blob: bytes | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The bucket indexes and counts of an encoded histogram (views, no copy); None when empty."""
    n = int.from_bytes(blob[:4], "big") if blob else 0
    if not n:
        return None
    indexes = np.frombuffer(blob, dtype=">i2", count=n, offset=4)
    return indexes, np.frombuffer(blob, dtype=">i8", count=n, offset=4 + 2 * n)


def decode(blob: bytes | None) -> dict[int, int]:
    arrays = _arrays(blob)
    return {} if arrays is None else dict(zip(arrays[0].tolist(), arrays[1].tolist()))


def merge_encoded(blobs: Sequence[bytes | None], owners: Sequence[int]) -> dict[int, dict[int, int]]:
    """Merge encoded histograms by owner in one pass of array arithmetic (a chart merges
    thousands of them): {owner: {index: count}} where blobs[i] belongs to owners[i]."""
    indexes, counts, lengths, kept = [], [], [], []
    for blob, owner in zip(blobs, owners):
        arrays = _arrays(blob)
        if arrays is not None:
            indexes.append(arrays[0])
            counts.append(arrays[1])
            lengths.append(len(arrays[0]))
            kept.append(owner)
    if not kept:
        return {}
    # one sortable key per (owner, bucket index); equal keys are summed (exactly, in int64)
    key = np.repeat(np.asarray(kept, dtype=np.int64) << 16, lengths) + np.concatenate(indexes).astype(np.int64)
    count = np.concatenate(counts).astype(np.int64)
    order = np.argsort(key, kind="stable")
    key, count = key[order], count[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    key, total = key[starts], np.add.reduceat(count, starts)
    owner = key >> 16
    bounds = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1], True]).tolist()
    index_list, total_list, owner_list = (key & 0xFFFF).tolist(), total.tolist(), owner.tolist()
    return {owner_list[a]: dict(zip(index_list[a:b], total_list[a:b])) for a, b in zip(bounds, bounds[1:])}


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for histogram in histograms:
        for index, count in histogram.items():
            total[index] = total.get(index, 0) + count
    return total


def quantile(histogram: Mapping[int, int], q: float) -> float | None:
    """Nearest-rank quantile (the value at rank ceil(q·n)); None for an empty histogram."""
    n = sum(histogram.values())
    if n == 0:
        return None
    rank = max(1, math.ceil(q * n))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_value(index)
    return bucket_value(max(histogram))
