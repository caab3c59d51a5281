import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.store import latency


def test_buckets_of_literal_values():
    assert latency.bucket_index(0) == 0
    assert latency.bucket_index(1) == 1
    assert latency.bucket_value(0) == 0.0
    for value in (1, 2, 3, 50, 99, 100, 101, 1000, 86_400_000):
        estimate = latency.bucket_value(latency.bucket_index(value))
        assert abs(estimate - value) / value <= latency.RELATIVE_ACCURACY


def test_vectorised_index_matches_scalar():
    values = np.array([0, 1, 2, 7, 100, 12345, 86_400_000])
    assert latency.bucket_indexes(values).tolist() == [latency.bucket_index(int(v)) for v in values]


def test_encode_decode_merge():
    a, b = {3: 5, 900: 2}, {3: 1, 10: 4}
    assert latency.decode(latency.encode(a)) == a
    assert latency.decode(latency.encode({})) == {} and latency.decode(None) == {}
    assert latency.merge([a, b]) == {3: 6, 900: 2, 10: 4}


histograms = st.dictionaries(st.integers(0, latency.bucket_index(latency.MAX_MS)), st.integers(1, 2 ** 40), max_size=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.one_of(st.none(), histograms)), max_size=40))
def test_merging_encoded_histograms_by_owner_equals_decoding_and_merging_them(rows):
    expected: dict = {}
    for owner, histogram in rows:
        if histogram:
            expected[owner] = latency.merge([expected.get(owner, {}), histogram])
    blobs = [None if h is None else latency.encode(h) for _, h in rows]
    assert latency.merge_encoded(blobs, [owner for owner, _ in rows]) == expected


def test_quantile_of_empty_is_none():
    assert latency.quantile({}, 0.5) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 100_000), min_size=1, max_size=300), st.sampled_from([0.5, 0.95, 0.99]))
def test_quantile_within_two_percent_of_nearest_rank(values, q):
    histogram = latency.merge([{latency.bucket_index(v): 1} for v in values])
    exact = float(np.quantile(np.array(values), q, method="inverted_cdf"))
    estimate = latency.quantile(histogram, q)
    assert abs(estimate - exact) <= 0.02 * exact
