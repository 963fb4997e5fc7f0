"""The engine's memory of the keys seen in earlier slices (:class:`SortedRuns`): whatever the
order in which slices arrive and their runs merge, it finds exactly the keys added, each with
the row and id it was added with."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dncguard.engine.run import SortedRuns


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=60), max_size=12),
       st.lists(st.integers(0, 2**64 - 1), max_size=40))
def test_runs_find_what_was_added(slices: list[list[int]], probes: list[int]) -> None:
    runs = SortedRuns()
    seen: dict[int, tuple[int, int]] = {}
    row = 0
    for part in slices:
        fresh = sorted({k for k in part if k not in seen})
        keys = np.array(fresh, dtype=np.uint64)
        rows = np.arange(row, row + len(fresh), dtype=np.int64) * 3 + 1
        ids = np.arange(row, row + len(fresh), dtype=np.int64)
        row += len(fresh)
        runs.add(keys, rows, ids)
        for k, r, i in zip(fresh, rows.tolist(), ids.tolist(), strict=True):
            seen[k] = (r, i)
        for values, _, _ in runs.runs:  # every run stays sorted
            assert np.all(values[1:] > values[:-1])
    asked = sorted(set(probes) | set(seen))
    found, rows_found, ids_found = runs.find(np.array(asked, dtype=np.uint64))
    for k, f, r, i in zip(asked, found.tolist(), rows_found.tolist(), ids_found.tolist(),
                          strict=True):
        assert f == (k in seen)
        if f:
            assert (r, i) == seen[k]
