"""The two gzip bodies of a chart answer kept whole (the one it sends, the one a hit will
send), made with one compression of their shared head: each decompresses to its own text."""
from __future__ import annotations

import gzip

from hypothesis import given
from hypothesis import strategies as st

from dashapp.caching import _gzipped_pair


@given(head=st.binary(max_size=200_000), tail=st.binary(max_size=300), other=st.binary(max_size=300),
       level=st.integers(1, 9))
def test_each_body_decompresses_to_the_head_and_its_own_tail(head, tail, other, level):
    mine, theirs = _gzipped_pair(head, tail, other, level)
    assert gzip.decompress(mine) == head + tail
    assert gzip.decompress(theirs) == head + other

