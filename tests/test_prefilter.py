"""The hash pre-filter of remote sources: no false negatives, TTL expiry and adjustment, the
structural false-positive rate at 1M entries, persistence and concurrent writers."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import random
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from dncguard.config import Settings, all_sections, load_section
from dncguard.engine.summary import merge_stats, overall_false_positive_rate
from dncguard.engine.tally import tally
from dncguard.errors import ConfigError
from dncguard.sources.remote import prefilter as pfm
from dncguard.sources.remote.prefilter import (
    Prefilter,
    PrefilterSettings,
    PrefilterStore,
    installation_salt,
    key_part,
)

T0 = 1_800_000_000.0  # a fixed wall-clock instant (2027-01-15)
DAY = 86_400.0


class Clock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pf_settings(**over: Any) -> PrefilterSettings:
    values: dict[str, Any] = {"flush_seconds": 0.0, "sample_rate": 0.0, "capacity": 10_000,
                              "target_fp_rate": 1e-6}
    values.update(over)
    return PrefilterSettings(**values)


def make_store(path: Path, clock: Clock, **over: Any) -> PrefilterStore:
    return PrefilterStore(path, pf_settings(**over), b"test-salt", source="test", clock=clock)


def keys_of(store: PrefilterStore, numbers: list[str], lst: str = "l1") -> np.ndarray[Any, Any]:
    return store.hasher.keys(key_part("ns", lst, n) for n in numbers)


def hits(store: PrefilterStore, numbers: list[str], lst: str = "l1") -> list[bool]:
    found, _ = store.lookup(keys_of(store, numbers, lst))
    return [bool(x >= 0) for x in found]


def numbers(n: int, start: int = 0) -> list[str]:
    return [f"+1312555{i:04d}" if i < 10_000 else f"+1{2_000_000_000 + i}"
            for i in range(start, start + n)]


class TestNoFalseNegatives:
    @hsettings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=st.lists(st.tuples(st.integers(0, 400), st.floats(0, 0.4 * DAY),
                                  st.booleans()), min_size=1, max_size=40),
           capacity=st.sampled_from([20, 200, 5_000]),
           generations=st.integers(1, 8))
    def test_every_inserted_unexpired_key_hits(self, tmp_path_factory: pytest.TempPathFactory,
                                               ops: list[tuple[int, float, bool]],
                                               capacity: int, generations: int) -> None:
        """Whatever the insert times, rollovers, growth and reloads from disk: a key inserted
        less than ttl - ttl/generations ago always hits (its guaranteed lifetime)."""
        path = tmp_path_factory.mktemp("pf") / "test.npz"
        clock = Clock()
        ttl = DAY
        store = make_store(path, clock, capacity=capacity, generations=generations,
                           target_fp_rate=0.01, ttl_seconds=ttl)
        inserted: dict[str, float] = {}
        for start, advance, reopen in ops:
            clock.now += advance
            batch = numbers(25, start)
            store.add(keys_of(store, batch))
            for n in batch:
                inserted[n] = clock.now
            if reopen:  # another process (a fresh instance) reads what was written
                store.flush()
                store = make_store(path, clock, capacity=capacity, generations=generations,
                                   target_fp_rate=0.01, ttl_seconds=ttl)
            live = [n for n, at in inserted.items() if clock.now - at < ttl - ttl / generations]
            assert all(hits(store, live)), "a recently reported number was missed"

    def test_a_hit_never_outlives_the_ttl(self, tmp_path: Path) -> None:
        """An entry is kept for ttl - ttl/generations at least and never for ttl or more."""
        clock = Clock()
        store = make_store(tmp_path / "t.npz", clock, ttl_seconds=DAY, generations=4)
        store.add(keys_of(store, ["+13125550001"]))
        clock.now += DAY * 0.75 - 1
        assert hits(store, ["+13125550001"]) == [True]
        clock.now += 1
        store.add(keys_of(store, ["+13125550002"]))  # a later insert, a new generation
        clock.now = T0 + DAY
        assert hits(store, ["+13125550001", "+13125550002"]) == [False, True]
        clock.now = T0 + DAY * 0.75 + DAY
        assert hits(store, ["+13125550002"]) == [False]


def test_misses_and_errors_are_never_recorded(tmp_path: Path) -> None:
    """Only the source's positive answers are inserted: a miss or an error leaves no trace."""
    clock = Clock()
    gate = Prefilter("test", make_store(tmp_path / "t.npz", clock), namespace="ns")
    batch = ["+13125550001", "+13125550002", "+13125550003"]
    plan = gate.plan(batch, ["l1", "l2"])
    assert plan.remote == [0, 1, 2] and not plan.local
    gate.settle(plan, {0: [], 1: None, 2: ["l2", "not-configured"]})  # clear, error, listed
    again = gate.plan(batch, ["l1", "l2"])
    assert again.remote == [0, 1] and list(again.local) == [2]
    assert again.local[2].lists == ["l2"]
    assert gate.stats()["entries"] == 1


def test_structural_false_positive_rate_at_one_million_entries(tmp_path: Path) -> None:
    """1,000,000 salted SHA-256 keys; 1,000,000 other numbers: the measured false-positive
    rate is within 2x of the target (deterministic salt and numbers)."""
    target = 1e-3
    clock = Clock()
    store = PrefilterStore(tmp_path / "big.npz", PrefilterSettings(
        capacity=1_000_000, target_fp_rate=target, flush_seconds=0), b"fixed-salt",
        source="big", clock=clock)
    members = store.hasher.keys(f"+1{2_000_000_000 + i}" for i in range(1_000_000))
    store.add(members)
    found, gens = store.lookup(members)
    assert (found >= 0).all()  # no false negative among a million
    others = store.hasher.keys(f"+1{4_000_000_000 + i}" for i in range(1_000_000))
    rate = float((store.lookup(others)[0] >= 0).mean())
    assert target / 2 <= rate <= target * 2, rate
    assert store.entries() == pytest.approx(1_000_000, rel=0.02)
    assert store.structural_fp() == pytest.approx(target, rel=0.5)
    assert len(gens) == 8  # capacity split over the generations, none over its share


def test_growth_past_capacity_keeps_every_key_and_bounds_the_rate(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture
                                                                  ) -> None:
    """Over capacity the filter grows (logged); nothing inserted is lost and the estimated
    structural rate stays within 2x of the target."""
    clock = Clock()
    store = make_store(tmp_path / "g.npz", clock, capacity=1_000, target_fp_rate=0.01)
    caplog.set_level(logging.INFO, "dncguard.prefilter")
    batch = numbers(3_000)
    store.add(keys_of(store, batch))
    assert all(hits(store, batch))
    assert store.capacity >= 2_000
    assert "reached the capacity" in caplog.text
    assert store.structural_fp() <= 0.02


class TestTtlAdjustment:
    def gate(self, tmp_path: Path, clock: Clock, **over: Any) -> Prefilter:
        values: dict[str, Any] = {"sample_rate": 1.0, "min_sample": 20, "fp_threshold": 0.1,
                                  "ttl_seconds": DAY, "min_ttl_seconds": DAY / 8,
                                  "max_ttl_seconds": 2 * DAY}
        values.update(over)
        return Prefilter("test", make_store(tmp_path / "t.npz", clock, **values),
                         namespace="ns", rng=random.Random(3))

    @staticmethod
    def record(gate: Prefilter, batch: list[str]) -> None:
        plan = gate.plan(batch, ["l1"])
        gate.settle(plan, {i: ["l1"] for i in plan.remote})

    def test_false_positives_over_the_threshold_shorten_the_ttl_and_drop_old_entries(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        clock = Clock()
        gate = self.gate(tmp_path, clock)
        old, new = numbers(10), numbers(20, 100)
        self.record(gate, old)
        clock.now += 0.6 * DAY
        self.record(gate, new)
        assert all(hits(gate.store, old + new))
        caplog.set_level(logging.INFO, "dncguard.prefilter")
        plan = gate.plan(new, ["l1"])  # sample rate 1: every hit is re-verified
        assert len(plan.sampled) == 20 and not plan.local
        # the source no longer reports 5 of them: 25 % > 10 %
        gate.settle(plan, {i: ([] if i < 5 else ["l1"]) for i in plan.remote})
        assert gate.store.ttl == DAY / 2
        assert any(r.levelno == logging.WARNING and "TTL shortened 86400s -> 43200s"
                   in r.getMessage() for r in caplog.records)
        assert not any(hits(gate.store, old))  # older than the new TTL: dropped
        assert hits(gate.store, new[5:]) == [True] * 15  # re-confirmed: kept
        assert not any(hits(gate.store, new[:5]))  # no longer listed: they go to the source
        self.record(gate, new[:5])  # ... until the source reports them again
        assert all(hits(gate.store, new[:5]))
        stats = gate.stats()
        assert stats["reverified"] == 20 and stats["falsePositives"] == 5
        assert stats["falsePositiveRate"] == 0.25 and stats["ttlSeconds"] == DAY / 2
        # shortening stops at the minimum
        for _ in range(5):
            plan = gate.plan(new[5:], ["l1"])
            gate.settle(plan, dict.fromkeys(plan.remote, []))
            self.record(gate, new[5:] + numbers(5, 200))
        assert gate.store.ttl == DAY / 8

    def test_a_rate_well_below_the_threshold_lengthens_the_ttl(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        clock = Clock()
        gate = self.gate(tmp_path, clock)
        batch = numbers(20)
        self.record(gate, batch)
        caplog.set_level(logging.INFO, "dncguard.prefilter")
        plan = gate.plan(batch[:19], ["l1"])
        gate.settle(plan, {i: ["l1"] for i in plan.remote})
        assert gate.store.ttl == DAY  # 19 re-verified: not enough to judge
        plan = gate.plan(batch[19:], ["l1"])
        gate.settle(plan, {i: ["l1"] for i in plan.remote})
        assert gate.store.ttl == 1.5 * DAY
        assert "TTL lengthened 86400s -> 129600s" in caplog.text
        for _ in range(3):
            plan = gate.plan(batch, ["l1"])
            gate.settle(plan, {i: ["l1"] for i in plan.remote})
        assert gate.store.ttl == 2 * DAY  # the maximum

    def test_between_the_marks_the_ttl_stays(self, tmp_path: Path) -> None:
        clock = Clock()
        gate = self.gate(tmp_path, clock)
        batch = numbers(20)
        self.record(gate, batch)
        plan = gate.plan(batch, ["l1"])
        gate.settle(plan, {i: ([] if i == 0 else ["l1"]) for i in plan.remote})  # 5 %
        assert gate.store.ttl == DAY
        assert gate.store.window() == (0, 0)  # the window was judged and restarted


class TestPersistence:
    def test_flush_writes_atomically_and_a_new_instance_reads_it(self, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
        clock = Clock()
        path = tmp_path / "pf" / "test.npz"
        store = make_store(path, clock)
        batch = numbers(50)
        store.add(keys_of(store, batch))
        store.flush()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert all(hits(make_store(path, clock), batch))
        raw = path.read_bytes()
        assert b"3125550001" not in raw and b"+1312555" not in raw  # no raw numbers
        # a failing rename leaves the previous file whole and no temporary behind
        store.add(keys_of(store, numbers(5, 500)))
        before = path.read_bytes()

        def broken(src: Any, dst: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", broken)
        with pytest.raises(OSError):
            store.flush()
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert sorted(p.name for p in path.parent.iterdir()) == ["test.lock", "test.npz"]
        store.flush()  # the pending keys were kept and are written now
        assert all(hits(make_store(path, clock), numbers(5, 500)))

    def test_another_salt_or_a_damaged_file_starts_empty(self, tmp_path: Path) -> None:
        clock = Clock()
        path = tmp_path / "test.npz"
        store = make_store(path, clock)
        store.add(keys_of(store, numbers(3)))
        store.flush()
        other = PrefilterStore(path, pf_settings(), b"other-salt", source="test", clock=clock)
        assert other.lookup(other.hasher.keys(key_part("ns", "l1", n)
                                              for n in numbers(3)))[0].tolist() == [-1] * 3
        path.write_bytes(b"not a filter")
        assert hits(make_store(path, clock), numbers(3)) == [False] * 3

    def test_installation_salt_is_created_once_with_mode_0600(self, tmp_path: Path) -> None:
        first = installation_salt(tmp_path / "pf")
        assert len(first) == 64 and installation_salt(tmp_path / "pf") == first
        assert stat.S_IMODE((tmp_path / "pf" / "salt").stat().st_mode) == 0o600
        assert installation_salt(tmp_path / "other") != first

    def test_expired_generations_are_not_written(self, tmp_path: Path) -> None:
        clock = Clock()
        path = tmp_path / "test.npz"
        store = make_store(path, clock, ttl_seconds=DAY, generations=2)
        store.add(keys_of(store, numbers(3)))
        store.flush()
        size = path.stat().st_size
        clock.now += DAY
        store.add(keys_of(store, numbers(3, 10)))
        store.flush()
        assert len(store.live()) == 1 and path.stat().st_size == size


def _writer(path: str, start: int, rounds: int, per_round: int, barrier: Any) -> None:
    store = PrefilterStore(Path(path), pf_settings(capacity=50_000), b"test-salt",
                           source="test")
    barrier.wait()
    for r in range(rounds):
        batch = numbers(per_round, start + r * per_round)
        store.add(keys_of(store, batch))
        store.flush()


def test_two_processes_never_lose_each_others_inserts(tmp_path: Path) -> None:
    """Two processes insert and flush in a tight loop: every key of both is in the file."""
    path = tmp_path / "test.npz"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    rounds, per_round = 30, 100
    procs = [ctx.Process(target=_writer, args=(str(path), start, rounds, per_round, barrier))
             for start in (0, 20_000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = PrefilterStore(path, pf_settings(capacity=50_000), b"test-salt", source="test")
    all_keys = numbers(rounds * per_round) + numbers(rounds * per_round, 20_000)
    assert all(hits(store, all_keys))


def test_settings_section_env_and_config_show(settings: Settings,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_PREFILTER_TTL_SECONDS", "7200")
    monkeypatch.setenv("DNCGUARD_PREFILTER_SALT", "pepper")
    pf = load_section(PrefilterSettings, settings)
    assert pf.ttl_seconds == 7200 and pf.enabled and pf.salt is not None
    shown = all_sections(settings)["prefilter"]
    assert isinstance(shown, PrefilterSettings) and "pepper" not in repr(shown)
    monkeypatch.setenv("DNCGUARD_PREFILTER_TTL_SECONDS", "60")  # under the minimum
    assert load_section(PrefilterSettings, settings) is pf  # read once, by these settings
    fresh = Settings(home=settings.home)
    with pytest.raises(ConfigError, match="prefilter"):
        load_section(PrefilterSettings, fresh)
    monkeypatch.setenv("DNCGUARD_PREFILTER_TTL_SECONDS", "7200")
    monkeypatch.setenv("DNCGUARD_PREFILTER_ENABLED", "false")
    assert Prefilter.open(Settings(home=settings.home), "x", namespace="ns") is None


def test_stats_merge_and_tally_follow_tasks_and_threads(tmp_path: Path) -> None:
    """A tally sees the work of tasks and threads started inside it, and only that work."""
    clock = Clock()
    gate = Prefilter("test", make_store(tmp_path / "t.npz", clock), namespace="ns",
                     per_call=2)
    batch = numbers(6)

    def work() -> None:
        plan = gate.plan(batch, ["l1"])
        gate.settle(plan, {i: (["l1"] if i % 2 == 0 else []) for i in plan.remote})

    work()  # outside any tally

    async def inside() -> None:
        await asyncio.gather(asyncio.to_thread(work), asyncio.to_thread(work))

    with tally() as t:
        asyncio.run(inside())
    got = t.stats()["test"]
    assert got["checked"] == 12 and got["hits"] == 6 and got["localSuppressions"] == 6
    assert got["remoteCallsSaved"] == 2  # 3 calls of 2 numbers each, 2 needed: 1 saved, x2
    assert gate.stats()["checked"] == 18
    merged = merge_stats([{"test": got}, {"test": {**got, "reverified": 4, "falsePositives": 1,
                                                   "ttlSeconds": 5.0}}])
    assert merged["test"]["checked"] == 24 and merged["test"]["ttlSeconds"] == 5.0
    assert merged["test"]["falsePositiveRate"] == 0.25
    assert overall_false_positive_rate({"a": {"reverified": 3, "falsePositives": 1},
                                        "b": {"reverified": 1, "falsePositives": 0}}) == 0.25
    assert overall_false_positive_rate({}) is None


def test_prometheus_series(tmp_path: Path, settings: Settings) -> None:
    from dncguard.server._metrics import Metrics

    gate = Prefilter.open(settings, "metrics-test", namespace="ns",
                          pf=pf_settings(sample_rate=1.0))
    assert gate is not None
    plan = gate.plan(["+13125550001"], ["l1"])
    gate.settle(plan, {0: ["l1"]})
    plan = gate.plan(["+13125550001"], ["l1"])
    gate.settle(plan, {0: []})
    text = generate_latest(Metrics(lambda: []).registry).decode()
    assert 'dncguard_prefilter_hits_total{source="metrics-test"}' in text
    assert 'dncguard_prefilter_false_positives_total{source="metrics-test"}' in text
    assert 'dncguard_prefilter_false_positive_rate{source="metrics-test"} 1.0' in text
    assert 'dncguard_prefilter_ttl_seconds{source="metrics-test"} 86400.0' in text
    assert 'dncguard_prefilter_remote_calls_saved_total{source="metrics-test"}' in text
    assert pfm.PREFILTER_TOTALS[("metrics-test", "reverified")] == 1


def test_a_listing_that_is_not_cacheable_is_no_false_positive(tmp_path: Path) -> None:
    """A re-verified number still listed, but on a record that may not be cached (a CXone
    record with an expiry date), is not a false positive and is not inserted again."""
    clock = Clock()
    store = make_store(tmp_path / "t.npz", clock, sample_rate=1.0)
    gate = Prefilter("test", store, namespace="ns")
    batch = numbers(3)
    first = gate.plan(batch, ["l1"])
    gate.settle(first, {i: ["l1"] for i in first.remote})
    plan = gate.plan(batch, ["l1"])
    assert sorted(plan.sampled) == [0, 1, 2]
    gate.settle(plan, {i: ["l1"] for i in plan.remote}, cacheable={0: ["l1"]})
    stats = gate.stats()
    assert stats["reverified"] == 3 and stats["falsePositives"] == 0


def test_a_failed_save_costs_remote_calls_not_verdicts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A full disk or a read-only home: settle still returns; the keys stay in memory."""
    clock = Clock()
    store = make_store(tmp_path / "t.npz", clock)
    gate = Prefilter("test", store, namespace="ns")

    def full(*_a: Any, **_k: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "flush", full)
    caplog.set_level(logging.WARNING, "dncguard.prefilter")
    plan = gate.plan(numbers(2), ["l1"])
    assert gate.settle(plan, {0: ["l1"], 1: []}) == {}
    assert "could not be saved" in caplog.text
    assert hits(store, numbers(2)) == [True, False]  # still answered from memory
    assert not (tmp_path / "t.npz").exists()


def test_an_unwritable_home_means_no_prefilter(settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pfm, "open_store", refuse)
    assert Prefilter.open(settings, "http-batch", namespace="x") is None
