"""``sorted_contains`` searches a small list for its values among many ascending numbers
(``snapshots._reverse_contains``) instead of each number in the list: the answer must be the
same as the plain search's, with repeated numbers, values past either end, and none found."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dncguard.lists import snapshots as S

BASE = 12_000_000_000


def _plain(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    return np.isin(needles, haystack)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 120), st.integers(1100, 6000),
       st.integers(1, 4000))
def test_reverse_search_answers_as_the_plain_one(seed: int, hay_size: int, n: int,
                                                 span: int) -> None:
    rng = np.random.default_rng(seed)
    needles = np.sort(rng.integers(0, span, n).astype(np.uint64) + np.uint64(BASE))
    haystack = np.unique(rng.integers(0, span + 50, hay_size).astype(np.uint64)
                         + np.uint64(BASE - 25))
    assert haystack.size * S.SEARCH_THE_NEEDLES < needles.size  # the reverse search runs
    assert np.array_equal(S.sorted_contains(haystack, needles), _plain(haystack, needles))
    unsorted = rng.permutation(needles)  # not ascending: the plain search
    assert np.array_equal(S.sorted_contains(haystack, unsorted), _plain(haystack, unsorted))


def test_unique_repeated_and_missing() -> None:
    needles = np.arange(BASE, BASE + 2000, dtype=np.uint64)
    hay = np.array([BASE - 1, BASE, BASE + 7, BASE + 1999, BASE + 5000], dtype=np.uint64)
    got = S.sorted_contains(hay, needles)
    assert np.flatnonzero(got).tolist() == [0, 7, 1999]
    repeated = np.repeat(needles, 2)
    assert np.flatnonzero(S.sorted_contains(hay, repeated)).tolist() == [0, 1, 14, 15, 3998,
                                                                          3999]
    assert not S.sorted_contains(np.array([BASE - 5], np.uint64), needles).any()
