"""The package's public surface is exactly what __all__ names."""

from __future__ import annotations

import dncguard


def test_all_names_exist_and_are_sorted() -> None:
    assert dncguard.__all__ == sorted(dncguard.__all__)
    for name in dncguard.__all__:
        assert hasattr(dncguard, name), name


def test_public_names_are_exported() -> None:
    for name in dncguard.__all__:  # the package loads its names on first use
        getattr(dncguard, name)
    public = {n for n in vars(dncguard) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(dncguard, n)).__name__ == "module"}
    assert public - modules == set(dncguard.__all__) - {"__version__"}


def test_a_batch_is_built_and_read_as_before() -> None:
    """A custom check's author builds batches by keyword or with ``Batch.shared`` and reads
    every list, whichever form the engine gives (integers and codes, lists made on use)."""
    import numpy as np

    from dncguard import Batch

    digits = np.array([12025550123, 13055550100], dtype=np.uint64)
    by_keyword = Batch(e164=["+12025550123", "+13055550100"], digits=digits,
                       region=["US", "US"], state=["DC", None], extra=[{}, {"zip": "33101"}])
    shared = Batch.shared(None, digits, ["US", "US"], ["DC", None], [{}, {"zip": "33101"}],
                          np.array([0, 1]))
    coded = Batch.coded(digits, (np.array([1, 1]), ["", "US"]), (np.array([0, 1]), ["DC", None]),
                        [{}, {"zip": "33101"}], np.array([0, 1]))
    for batch in (by_keyword, shared, coded):
        assert len(batch) == 2
        assert batch.e164 == ["+12025550123", "+13055550100"]
        assert (batch.region, batch.state) == (["US", "US"], ["DC", None])
        assert batch.extra == [{}, {"zip": "33101"}]
        assert [batch.number(1), batch.value("state", 0)] == ["+13055550100", "DC"]
        table, ids = batch.distinct("state")
        assert [table[i] for i in ids.tolist()] == ["DC", None]
