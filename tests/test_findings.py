"""Findings are renumbered by a table when their ids are few, by a sort otherwise: both roads
must give what the sort gives (the distinct sets in the same order, the same index)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dncguard.engine import findings as fmod
from dncguard.engine.findings import Findings, combine, compact, renumber
from dncguard.models import Decision, Reason

REASONS = [Reason(code=f"C{j}", decision=Decision.BLOCK, list=f"l{j}") for j in range(70)]
RULES = [Reason(code=f"R{j}", decision=Decision.DEFER, rule=f"r{j}") for j in range(3)]


@given(st.lists(st.integers(0, 99), max_size=200), st.integers(100, 300))
def test_compact_is_unique_with_inverse(ids: list[int], bound: int) -> None:
    a = np.array(ids, dtype=np.int64)
    used, pos = compact(a, bound)
    want_used, want_pos = np.unique(a, return_inverse=True)
    assert used.tolist() == want_used.tolist() and pos.tolist() == want_pos.reshape(-1).tolist()


@given(st.lists(st.integers(0, 99), max_size=200), st.sampled_from([100, 10**12]))
def test_renumber_is_unique_with_inverse_by_either_road(ids: list[int], bound: int) -> None:
    """A bound small beside the ids takes the table, a huge one the sort: the same answer."""
    a = np.array(ids, dtype=np.int64)
    used, pos = renumber(a, bound)
    want_used, want_pos = np.unique(a, return_inverse=True)
    assert used.tolist() == want_used.tolist() and pos.tolist() == want_pos.reshape(-1).tolist()
    assert pos.dtype == np.int64 and pos.ndim == 1


def _sorted_reference(masks: list[np.ndarray], n: int) -> list[tuple[str, ...]]:
    """Each number's reason codes, by the masks themselves."""
    return [tuple(REASONS[j].code for j, m in enumerate(masks) if m[i]) for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.integers(0, 70), st.integers(0, 2**32 - 1),
       st.sampled_from([0, 8, 4096]))
def test_masks_and_combinations_by_either_road(n: int, lists: int, seed: int, table: int
                                              ) -> None:
    """With the table off (a limit of 0 ids per number sorts every time), at its default and
    wide (a table of up to 4,096 entries per id: never the 2**32 entries 32 lists would ask of
    an unbounded limit), the same numbers get the same reasons, and each road's sets are
    distinct."""
    rng = np.random.default_rng(seed)
    masks = [rng.random(n) < 0.3 for _ in range(lists)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fmod, "_TABLE_PER_NUMBER", table)
        found = Findings.from_masks(masks, REASONS[:lists], n)
        rules = Findings.from_lists([[RULES[int(k)]] if k < 3 else []
                                     for k in rng.integers(0, 5, n)])
        both = combine([found, rules], n)
    want = _sorted_reference(masks, n)
    assert [tuple(r.code for r in found.sets[k]) for k in found.index.tolist()] == want
    got = [tuple(r.code for r in both.sets[k]) for k in both.index.tolist()]
    assert got == [w + tuple(r.code for r in rules.sets[k])
                   for w, k in zip(want, rules.index.tolist(), strict=True)]
    assert len({tuple(map(id, s)) for s in both.sets}) == len(both.sets)  # none repeated
