"""Snapshot files at rest are verified before they are trusted: seals, damaged files,
snapshots written before seals, and the verdicts a damaged list gives (never ``allow``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from dncguard.cli import run
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import ListError
from dncguard.lists import snapshots as S
from dncguard.lists.integrity import SEAL_SUFFIX, SnapshotIntegrityError, seal_path
from dncguard.lists.store import ListStore

from .conftest import AT

D = date(2026, 11, 1)
BASE = 10_000_000_000
LISTED = "+12025550042"
UNLISTED = "+12025559999"


# -- damage, as an operator, a full disk or a bad copy would do it ---------------------------
def _touch_later(path: Path, before: os.stat_result) -> None:
    """A write moves the mtime; make sure it moved even within one timestamp tick."""
    after = os.stat(path)
    if after.st_mtime_ns == before.st_mtime_ns:
        os.utime(path, ns=(after.st_atime_ns, before.st_mtime_ns + 1_000_000))


def truncate(path: Path) -> None:
    os.truncate(path, 1000)


def shorten(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 8)  # the last value is gone


def extend(path: Path) -> None:
    with path.open("ab") as fh:
        fh.write(b"\0" * 8)


def flip(path: Path) -> None:
    """Same length, some bytes inverted in the middle of the data."""
    before = os.stat(path)
    with path.open("r+b") as fh:
        fh.seek(before.st_size // 2)
        chunk = fh.read(16)
        fh.seek(before.st_size // 2)
        fh.write(bytes(b ^ 0xFF for b in chunk))
    _touch_later(path, before)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": truncate, "shortened": shorten, "extended": extend, "corrupted": flip}
EXPECTED = {"truncated": "truncated or extended", "shortened": "truncated or extended",
            "extended": "truncated or extended", "corrupted": "checksum mismatch"}


def values(n: int = 2500) -> np.ndarray:
    return np.arange(BASE + 2025550000, BASE + 2025550000 + n, dtype=np.uint64)


def dense_values() -> np.ndarray:
    """Enough numbers in one area code for the NANP bitmap layout."""
    return np.arange(BASE + 2020000000, BASE + 2020000000 + 170_000 * 7, 7, dtype=np.uint64)


# -- the seal ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["sorted", "bitmap"])
def test_every_snapshot_is_published_with_its_seal(tmp_path: Path, layout: str) -> None:
    data = values() if layout == "sorted" else dense_values()
    name = S.write_snapshot(tmp_path, data, layout="auto")
    path = tmp_path / name
    seal = json.loads(seal_path(path).read_text("utf-8"))
    assert seal["file"] == name and seal["size"] == path.stat().st_size
    assert seal["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert S.is_bitmap(S.open_snapshot(path)) is (layout == "bitmap")
    # a change list publishes a new file with its own seal; no temporary file is left behind
    new, snap = S.apply_changes(tmp_path, path, data[:1] + np.uint64(1), data[:1])
    assert json.loads(seal_path(tmp_path / new).read_text("utf-8"))["sha256"] == \
        hashlib.sha256((tmp_path / new).read_bytes()).hexdigest()
    assert S.contains_one(snap, int(data[0]) + 1) and not S.contains_one(snap, int(data[0]))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("layout", ["sorted", "bitmap"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_fails_when_opened(tmp_path: Path, damage: str, layout: str) -> None:
    data = values() if layout == "sorted" else dense_values()
    path = tmp_path / S.write_snapshot(tmp_path, data, layout="auto")
    DAMAGE[damage](path)
    with pytest.raises(SnapshotIntegrityError, match=EXPECTED[damage]) as err:
        S.open_snapshot(path)
    assert f"{tmp_path.name}/{path.name}" in str(err.value)  # names the file, not the home
    # the failure is remembered, and still reported, while the file stays as it is
    with pytest.raises(SnapshotIntegrityError, match=EXPECTED[damage]):
        S.open_snapshot(path)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_after_opening_fails_before_the_next_use(tmp_path: Path, damage: str) -> None:
    """The size is re-checked before every use, so a truncated file is never read through
    its mapping (which would be SIGBUS); a same-size change is verified again."""
    path = tmp_path / S.write_snapshot(tmp_path, values())
    good = path.read_bytes()
    opened = S.open_file(path)
    assert S.contains_one(opened.current(), BASE + 2025550042)
    DAMAGE[damage](path)
    for _ in range(2):
        with pytest.raises(SnapshotIntegrityError, match=EXPECTED[damage]):
            opened.current()
    # the file restored (a new write: the identity changes again) is verified and used again
    before = os.stat(path)
    path.write_bytes(good)
    _touch_later(path, before)
    assert S.contains_one(opened.current(), BASE + 2025550042)
    assert not S.contains_one(opened.current(), BASE + 2025559999)


def test_a_missing_file_or_a_damaged_seal_fails(tmp_path: Path) -> None:
    path = tmp_path / S.write_snapshot(tmp_path, values())
    seal_path(path).write_text("{not json", encoding="utf-8")
    with pytest.raises(SnapshotIntegrityError, match="seal damaged"):
        S.open_snapshot(path)
    path.unlink()
    with pytest.raises(SnapshotIntegrityError, match="missing"):
        S.open_snapshot(path)


# -- snapshots written before seals ---------------------------------------------------------
def _legacy(folder: Path, data: np.ndarray, name: str = "legacy.npy") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    np.save(path, data, allow_pickle=False)
    return path


def test_a_legacy_snapshot_is_adopted_once(tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    path = _legacy(tmp_path, values())
    with caplog.at_level(logging.WARNING, logger="dncguard.lists.snapshots"):
        assert S.contains_one(S.open_snapshot(path), BASE + 2025550042)
    assert "had no seal" in caplog.text and "seal recorded" in caplog.text
    seal = json.loads(seal_path(path).read_text("utf-8"))
    assert seal["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dncguard.lists.snapshots"):
        S.open_snapshot(path)
    assert caplog.text == ""
    flip(path)  # from now on it is verified like any other snapshot
    with pytest.raises(SnapshotIntegrityError, match="checksum mismatch"):
        S.open_snapshot(path)


def test_a_legacy_bitmap_is_adopted(tmp_path: Path) -> None:
    name = S.write_snapshot(tmp_path, dense_values(), layout="bitmap")
    seal_path(tmp_path / name).unlink()
    snap = S.open_snapshot(tmp_path / name)
    assert S.snapshot_count(snap) == 170_000 and seal_path(tmp_path / name).exists()


@pytest.mark.parametrize("problem", ["truncated", "unsorted", "bitmap-count"])
def test_a_damaged_legacy_snapshot_is_not_adopted(tmp_path: Path, problem: str) -> None:
    if problem == "bitmap-count":
        path = tmp_path / S.write_snapshot(tmp_path, dense_values(), layout="bitmap")
        seal_path(path).unlink()
        flip(path)  # bits flipped in the body: the header's count no longer matches
        expected = "count does not match"
    else:
        data = values()
        if problem == "unsorted":
            data = data.copy()
            data[[10, 20]] = data[[20, 10]]
        path = _legacy(tmp_path, data)
        if problem == "truncated":
            shorten(path)
        expected = {"truncated": "header needs", "unsorted": "not sorted"}[problem]
    with pytest.raises(SnapshotIntegrityError, match=expected):
        S.open_snapshot(path)
    assert not seal_path(path).exists()


# -- lists: the database's record of the seal ------------------------------------------------
@pytest.fixture
def ftc(store: ListStore, write_lines: Callable[..., Path]) -> Path:
    """us-ftc with 202-555-0000..2499 (2,500 numbers); returns its snapshot file."""
    path = write_lines([f"202,555{i:04d}" for i in range(2500)], "ftc.txt")
    info = store.import_file(path, kind="national", name="us-ftc", jurisdiction="US",
                             snapshot_date=D).info
    assert info.seal is not None and info.seal.file == info.current_file
    snap = store.snapshot_path(info)
    assert snap is not None
    return snap


def test_a_lost_seal_is_restored_from_the_database(store: ListStore, ftc: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    seal_path(ftc).unlink()
    with caplog.at_level(logging.WARNING, logger="dncguard.lists.snapshots"):
        assert hits(store, [LISTED]) == [True]
    assert "restored from the database record" in caplog.text
    assert seal_path(ftc).exists()


def test_a_lost_seal_does_not_hide_damage(store: ListStore, ftc: Path) -> None:
    seal_path(ftc).unlink()
    flip(ftc)
    with pytest.raises(SnapshotIntegrityError, match="checksum mismatch"):
        hits(store, [LISTED])
    assert store.snapshot_problem(store.get("us-ftc")) is not None


def test_a_replaced_seal_must_agree_with_the_database(store: ListStore, ftc: Path) -> None:
    seal = json.loads(seal_path(ftc).read_text("utf-8"))
    seal["sha256"] = "0" * 64
    seal_path(ftc).write_text(json.dumps(seal), encoding="utf-8")
    problem = store.snapshot_problem(store.get("us-ftc"))
    assert problem is not None and "disagrees with the database" in problem


def test_change_lists_are_never_applied_to_a_damaged_snapshot(
        store: ListStore, ftc: Path, write_lines: Callable[..., Path]) -> None:
    flip(ftc)
    changes = write_lines(["202,5559999,A"], "changes.txt")
    with pytest.raises(ListError, match="checksum mismatch"):
        store.import_file(changes, kind="national", name="us-ftc", jurisdiction="US",
                          snapshot_date=D, changes=True)
    assert len(store.versions("us-ftc")) == 1
    assert sorted(p.name for p in ftc.parent.iterdir()) == sorted([ftc.name,
                                                                    ftc.name + SEAL_SUFFIX])


def hits(store: ListStore, numbers: list[str]) -> list[bool]:
    index = store.index(store.get("us-ftc"))
    return [bool(x) for x in index.contains_numbers(numbers, at=AT)]


# -- verdicts: that list answers error, the others keep working, a re-import recovers -------
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_list_answers_error_for_every_number_it_covers(
        settings: Settings, store: ListStore, ftc: Path, write_lines: Callable[..., Path],
        damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    gb = write_lines(["+442079460123"], "tps.txt")
    store.import_file(gb, kind="national", name="tps", jurisdiction="GB", snapshot_date=D)
    store.add_number("+12025550188", reason="asked")
    scrubber = Scrubber(settings, clock=lambda: AT)
    assert scrubber.check(LISTED).decision.value == "block"
    DAMAGE[damage](ftc)
    for phone in (LISTED, UNLISTED, "+12025550188"):
        verdict = scrubber.check(phone)
        errors = [r for r in verdict.reasons if r.code == "SOURCE_ERROR"]
        assert [r.list for r in errors] == ["us-ftc"], verdict.reasons
        assert EXPECTED[damage] in errors[0].detail
        assert verdict.decision.value == ("block" if phone.endswith("0188") else "error")
    # the internal opt-out is still found, and the GB registry still answers on its own
    assert "DNC_INTERNAL" in Scrubber(settings, clock=lambda: AT).check(
        "+12025550188").reason_codes
    gb_verdict = Scrubber(settings, clock=lambda: AT).check("+442079460123")
    assert gb_verdict.decision.value == "block" and gb_verdict.reason_codes == ["DNC_NATIONAL"]
    assert store.snapshot_problem(store.get("us-ftc")) is not None
    assert store.snapshot_problem(store.get("tps")) is None
    assert run(["lists", "stats", "us-ftc"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "snapshot file: not usable" in shown and "re-import the list" in shown
    # a file scrub (the array path) fails closed the same way
    contacts = write_lines(["phone", LISTED, UNLISTED], "contacts.csv")
    summary = Scrubber(settings, clock=lambda: AT).scrub_file(
        contacts, contacts.with_name("out.csv"), at=AT)
    assert {k: v for k, v in summary.by_decision.items() if v} == {"error": 2}
    # re-importing the list publishes a new, sealed snapshot: checks recover
    source = write_lines([f"202,555{i:04d}" for i in range(2500)], "ftc2.txt")
    store.import_file(source, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=D)
    assert store.snapshot_problem(store.get("us-ftc")) is None
    assert run(["lists", "stats", "us-ftc"]) == 0
    assert "snapshot file: verified" in capsys.readouterr().out
    fresh = Scrubber(settings, clock=lambda: AT)
    assert fresh.check(LISTED).decision.value == "block"
    assert fresh.check(UNLISTED).decision.value == "allow"


def test_pruned_snapshots_take_their_seals_along(store: ListStore, settings: Settings,
                                                 write_lines: Callable[..., Path]) -> None:
    for i in range(settings.keep_snapshots + 2):
        path = write_lines([f"202,555{i:04d}"], f"v{i}.txt")
        store.import_file(path, kind="internal", name="dnc")
    folder = store.folder("dnc")
    files = sorted(p.name for p in folder.iterdir())
    data = [f for f in files if f.endswith(".npy")]
    assert len(data) == settings.keep_snapshots
    assert sorted(f for f in files if f.endswith(SEAL_SUFFIX)) == sorted(
        f + SEAL_SUFFIX for f in data)
