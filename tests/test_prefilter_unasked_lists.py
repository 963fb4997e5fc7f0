"""A source's answer naming a list the pre-filter did not ask about is not understood as a
re-verification: the sampled hit is no false positive and is not vetoed (it stands, returned
as a failed re-verification), as for an error. Only the lists asked are ever recorded."""

from __future__ import annotations

import random
from pathlib import Path

from dncguard.sources.remote.prefilter import Prefilter, PrefilterSettings, PrefilterStore

NUMBERS = ["+12025550110", "+12025550111"]


def gate(tmp_path: Path) -> Prefilter:
    pf = PrefilterSettings(flush_seconds=0.0, sample_rate=1.0, capacity=10_000)
    store = PrefilterStore(tmp_path / "t.npz", pf, b"test-salt", source="test")
    return Prefilter("test", store, namespace="ns", rng=random.Random(1))


def test_an_answer_on_a_list_not_asked_is_no_false_positive_and_vetoes_nothing(
        tmp_path: Path) -> None:
    pf = gate(tmp_path)
    first = pf.plan(NUMBERS, ["l1"])
    assert first.remote == [0, 1] and not first.sampled
    # 0 listed on the list asked; 1 "listed" on another, which says nothing about l1
    assert pf.settle(first, {0: ["l1"], 1: ["elsewhere"]}) == {}
    plan = pf.plan(NUMBERS, ["l1"])
    assert sorted(plan.sampled) == [0] and plan.remote == [0, 1]
    failed = pf.settle(plan, {0: ["elsewhere"], 1: ["l1", "elsewhere"]})
    assert list(failed) == [0]  # the hit stands
    stats = pf.stats()
    assert (stats["reverified"], stats["falsePositives"]) == (0, 0)
    again = pf.plan(NUMBERS, ["l1"])
    # 0 not vetoed; 1 recorded on l1, the list asked that its answer names
    assert sorted(again.sampled) == [0, 1]
    assert again.sampled[1].lists == ["l1"]

