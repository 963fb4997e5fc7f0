"""Snapshot layouts: the NANP bitmap answers exactly like the sorted array; building from
chunks, change lists and atomic replacement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dncguard.lists import snapshots as S

BASE = 10_000_000_000


def sample(n: int, seed: int = 0, areas: tuple[int, ...] = (202, 305, 415, 613)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    area = np.array(areas)[rng.integers(0, len(areas), n)]
    return np.unique(BASE + area * 10_000_000 + rng.integers(0, 10_000_000, n)).astype(np.uint64)


def probes(values: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    others = BASE + rng.integers(0, BASE, 2000)
    edges = [0, 1, BASE - 1, BASE, 2 * BASE - 1, 2 * BASE, 442079460123, 2**64 - 1]
    near = np.concatenate([values[:50] - 1, values[:50] + 1, values[-5:]])
    return np.concatenate([values[::7], others.astype(np.uint64), np.array(edges, np.uint64),
                           near]).astype(np.uint64)


def test_bitmap_and_sorted_layouts_agree(tmp_path: Path) -> None:
    values = sample(20_000)
    chunks = [values[::-1][:7000], values[5000:], values[1:5000:2], values[:5000:2], values[:100]]
    name, count = S.build_nanp_bitmap(tmp_path, chunks)
    bitmap = S.open_snapshot(tmp_path / name)
    plain = S.open_snapshot(tmp_path / S.write_snapshot(tmp_path, values))
    assert S.is_bitmap(bitmap) and not S.is_bitmap(plain)
    assert count == S.snapshot_count(bitmap) == values.size == S.snapshot_count(plain)
    assert np.array_equal(S.snapshot_values(bitmap), values)
    needles = probes(values)
    want = np.isin(needles, values)
    assert np.array_equal(S.sorted_contains(bitmap, needles), want)
    assert np.array_equal(S.sorted_contains(plain, needles), want)
    assert np.array_equal(S.sorted_contains(plain, needles[:10]), want[:10])
    one_bitmap, one_plain = S.single_lookup(bitmap), S.single_lookup(plain)
    for x, w in zip(needles[::11].tolist(), want[::11].tolist(), strict=True):
        assert S.contains_one(bitmap, x) is w
        assert S.contains_one(plain, x) is w
        assert one_bitmap(x) is w
        assert one_plain(x) is w
    # only the area codes present are stored
    assert (tmp_path / name).stat().st_size < S.HEADER_BYTES + 4 * S.AREA_BYTES + 1024


def test_auto_layout_keeps_small_lists_sorted(tmp_path: Path) -> None:
    small = sample(1000)
    assert S.choose_layout(small) == "sorted"
    dense = np.arange(BASE + 2025550000, BASE + 2025550000 + 200_000, dtype=np.uint64)
    assert S.choose_layout(dense) == "bitmap"
    assert S.choose_layout(np.array([442079460123], dtype=np.uint64)) == "sorted"
    assert S.choose_layout(np.array([b"x" * 32], dtype="S32")) == "sorted"
    name = S.write_snapshot(tmp_path, dense, layout="auto")
    snap = S.open_snapshot(tmp_path / name)
    assert S.is_bitmap(snap)
    assert np.array_equal(S.snapshot_values(snap), dense)


@pytest.mark.parametrize("layout", ["sorted", "bitmap"])
def test_change_lists_without_rebuild(tmp_path: Path, layout: str) -> None:
    values = sample(5000)
    name = S.write_snapshot(tmp_path, values, layout=layout)  # type: ignore[arg-type]
    old = tmp_path / name
    before = old.read_bytes()
    adds = np.array([BASE + 2025550100, BASE + 3055550100, values[0]], dtype=np.uint64)
    dels = values[10:20]
    new_name, snap = S.apply_changes(tmp_path, old, adds, dels)
    want = np.setdiff1d(np.union1d(values, adds), dels)
    assert np.array_equal(S.snapshot_values(snap), want)
    assert S.snapshot_count(snap) == want.size
    assert S.is_bitmap(snap) is (layout == "bitmap")
    assert old.read_bytes() == before  # readers of the old snapshot are undisturbed
    # a new area code in a bitmap: merged and rewritten, still exact
    more = np.array([BASE + 9175550100], dtype=np.uint64)
    _, again = S.apply_changes(tmp_path, tmp_path / new_name, more, np.zeros(0, np.uint64))
    assert np.array_equal(S.snapshot_values(again), np.union1d(want, more))
    assert not list(tmp_path.glob(".*.tmp"))  # no half-written files left behind


def test_empty_and_foreign_values(tmp_path: Path) -> None:
    empty = S.open_snapshot(tmp_path / S.write_snapshot(tmp_path, np.zeros(0, np.uint64)))
    assert S.sorted_contains(empty, np.array([BASE + 1], np.uint64)).tolist() == [False]
    assert S.contains_one(empty, BASE + 1) is False
    name, count = S.build_nanp_bitmap(tmp_path, [np.array([442079460123, 5], np.uint64)])
    assert count == 0
    snap = S.open_snapshot(tmp_path / name)
    assert S.sorted_contains(snap, np.array([442079460123], np.uint64)).tolist() == [False]
