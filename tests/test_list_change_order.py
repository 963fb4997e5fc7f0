"""Change lists: a number's last record decides, in both snapshot layouts, with truthful
counts; and a damaged zip list file is refused with one line naming the member."""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from dncguard.cli import run
from dncguard.errors import ListError
from dncguard.lists import _files as listfiles
from dncguard.lists import snapshots as S
from dncguard.lists import store as L
from dncguard.lists.store import ListStore

D = date(2026, 11, 20)
LISTED = ["2025550100", "2025550101"]  # the registry before the change list
NEW = "+12025550102"  # not in the registry
OLD = "+12025550100"  # in it

LAYOUTS = ["sorted", "bitmap"]


def _import_base(store: ListStore, tmp_path: Path, layout: str,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry in the given layout: the national-scale path builds a NANP bitmap, which
    change lists inside its area codes patch in place; a small list is a sorted array."""
    if layout == "bitmap":
        monkeypatch.setattr(L, "NATIONAL_SCALE_BYTES", 0)
    base = tmp_path / "ftc.txt"
    base.write_text("\n".join(LISTED) + "\n")
    store.import_file(base, kind="national", name="us-ftc", jurisdiction="US", snapshot_date=D)
    assert _layout(store) == layout


def _layout(store: ListStore) -> str:
    path = store.snapshot_path(store.get("us-ftc"))
    assert path is not None
    return "bitmap" if S.is_bitmap(S.open_snapshot(path)) else "sorted"


def _apply(store: ListStore, tmp_path: Path, lines: list[str], name: str = "chg.txt"
           ) -> L.ImportResult:
    changes = tmp_path / name
    changes.write_text("\n".join(lines) + "\n")
    return store.import_file(changes, kind="national", name="us-ftc", jurisdiction="US",
                             snapshot_date=date(2026, 11, 25), changes=True)


def _listed(store: ListStore, *numbers: str) -> list[bool]:
    found = store.index(store.get("us-ftc")).contains_numbers(list(numbers))
    return [bool(x) for x in found]


def _record(number: str, flag: str, day: int | None) -> str:
    npa, rest = number[2:5], number[5:]
    return f"{npa},{rest},{flag}" + ("" if day is None else f",2026-11-{day:02d}")


# (the flags of one number's records in file order, listed at the end)
SEQUENCES = [
    pytest.param("DA", True, id="delete-then-add"),
    pytest.param("AD", False, id="add-then-delete"),
    pytest.param("ADA", True, id="add-delete-add"),
    pytest.param("DAD", False, id="delete-add-delete"),
]


@pytest.mark.parametrize("dated", [True, False], ids=["dated", "undated"])
@pytest.mark.parametrize(("flags", "listed"), SEQUENCES)
@pytest.mark.parametrize("number", [NEW, OLD], ids=["new-number", "listed-number"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_last_record_wins_in_both_layouts(
        store: ListStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str,
        number: str, flags: str, listed: bool, dated: bool) -> None:
    _import_base(store, tmp_path, layout, monkeypatch)
    was = number == OLD
    lines = [_record(number, f, 21 + i if dated else None) for i, f in enumerate(flags)]
    result = _apply(store, tmp_path, lines)
    assert _listed(store, number, "+12025550101") == [listed, True]
    # the counts are the net effect on the list, whatever the records in between did
    assert (result.added, result.deleted) == (int(listed and not was), int(was and not listed))
    assert store.get("us-ftc").count == 2 + result.added - result.deleted
    assert _layout(store) == layout  # patched in place, not rebuilt in the other layout


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_reproduced_case(store: ListStore, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch, layout: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """Deleted on the 21st, registered again on the 22nd: blocked, +1 added, -0 deleted."""
    _import_base(store, tmp_path, layout, monkeypatch)
    changes = tmp_path / "chg.txt"
    changes.write_text("202,5550102,D,2026-11-21\n202,5550102,A,2026-11-22\n")
    code = run(["lists", "import", str(changes), "--changes", "--kind", "national",
                "--jurisdiction", "US", "--snapshot-date", "2026-11-22", "--name", "us-ftc"])
    out = capsys.readouterr().out
    assert code == 0 and "+1 added, -0 deleted, now 3 entries" in out
    assert _listed(store, NEW) == [True]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_new_area_code_in_a_bitmap_merges_with_the_same_result(
        store: ListStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """Additions outside the bitmap's area codes take the merge path: same rule."""
    _import_base(store, tmp_path, layout, monkeypatch)
    result = _apply(store, tmp_path, ["3055550100,D", "3055550100,A",
                                      "2025550101,A", "2025550101,D",
                                      "2025550102,D", "2025550102,A"])
    assert _listed(store, "+13055550100", "+12025550101", NEW) == [True, False, True]
    assert (result.added, result.deleted) == (2, 1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dates_order_the_records_and_file_order_breaks_ties(
        store: ListStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    _import_base(store, tmp_path, layout, monkeypatch)
    _apply(store, tmp_path, [
        "202,5550102,A,2026-11-22", "202,5550102,D,2026-11-21",  # later date wins: listed
        "202,5550101,D,2026-11-22", "202,5550101,A,2026-11-21",  # later date wins: deleted
        "202,5550103,D,2026-11-21", "202,5550103,A,2026-11-21",  # same day: file order
        "202,5550104,A", "202,5550104,D,2026-11-21",  # one undated: file order
        "202,5550105,A,2026-11-21T18:00:00", "202,5550105,D,2026-11-21T09:00:00",  # by time
        "202,5550106,A,11/22/2026", "202,5550106,D,11/21/2026",  # US month/day/year
    ])
    assert _listed(store, NEW, "+12025550101", "+12025550103", "+12025550104",
                   "+12025550105", "+12025550106") == [True, False, True, False, True, True]


def test_zip_members_out_of_date_order(store: ListStore, tmp_path: Path) -> None:
    """Members are read in name order ('nov-10' before 'nov-9'); the dates still decide."""
    base = tmp_path / "ftc.txt"
    base.write_text("2025550100\n")
    # the base predates the records (a record dated before the snapshot is already in it)
    store.import_file(base, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date(2026, 11, 1))
    archive = tmp_path / "changes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("nov-10.txt", "202,5550102,A,2026-11-10\n202,5550100,D,2026-11-10\n")
        zf.writestr("nov-9.txt", "202,5550102,D,2026-11-09\n202,5550100,A,2026-11-09\n")
    result = store.import_file(archive, kind="national", name="us-ftc", jurisdiction="US",
                               snapshot_date=D, changes=True)
    assert _listed(store, NEW, OLD) == [True, False]
    assert (result.added, result.deleted) == (1, 1)


def test_a_date_not_understood_rejects_the_record(store: ListStore, tmp_path: Path) -> None:
    base = tmp_path / "ftc.txt"
    base.write_text("2025550100\n")
    store.import_file(base, kind="national", name="us-ftc", jurisdiction="US", snapshot_date=D)
    result = _apply(store, tmp_path, ["202,5550102,A,2026-11-31", "202,5550103,A,22.11.2026",
                                      "202,5550104,A,2026-11-22"])
    assert result.report.rejected == 2
    assert result.report.reject_samples == [
        "chg.txt:1: the change date is not a date (YYYY-MM-DD)",
        "chg.txt:2: the change date is not a date (YYYY-MM-DD)"]
    assert _listed(store, NEW, "+12025550103", "+12025550104") == [False, False, True]


def test_read_changes_gives_disjoint_net_changes(write_lines: Callable[..., Path]) -> None:
    path = write_lines(["flag,number", "2025550102,D", "2025550102,A", "2025550100,A",
                        "2025550100,D", "2025550101,A", "2025550101,A", "2025550109,D"])
    adds, dels, report = listfiles.read_changes(path, jurisdiction="US", default_region="US")
    assert adds.tolist() == [12025550101, 12025550102]
    assert dels.tolist() == [12025550100, 12025550109]
    assert report.lines == 8 and report.rejected == 0 and report.accepted == 4


@pytest.mark.parametrize("layout", LAYOUTS)
def test_apply_changes_refuses_an_add_and_a_delete_of_one_number(tmp_path: Path,
                                                                 layout: str) -> None:
    values = np.array([12025550100, 12025550101], dtype=np.uint64)
    name = S.write_snapshot(tmp_path, values, layout=layout)  # type: ignore[arg-type]
    before = sorted(p.name for p in tmp_path.iterdir())
    both = np.array([12025550102], dtype=np.uint64)
    with pytest.raises(ValueError, match="adds and deletes the same number"):
        S.apply_changes(tmp_path, tmp_path / name, both, both)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# -- damaged zip files -------------------------------------------------------------------------
NUMBERS = "".join(f"20255501{i:02d}\n" for i in range(60))


def _zip(path: Path, method: int, damage: Callable[[bytearray], None]) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        zf.writestr("a.txt", NUMBERS)
    data = bytearray(buf.getvalue())
    damage(data)
    path.write_bytes(bytes(data))
    return path


def _flip_a_digit(data: bytearray) -> None:
    at = data.index(b"2025550105") + 9
    data[at] ^= 0x01  # '5' -> '4': still a number, only the CRC tells


def _break_the_deflate_stream(data: bytearray) -> None:
    start = 30 + len("a.txt")  # the local header, then the compressed data
    for at in range(start + 2, start + 8):
        data[at] ^= 0xFF


DAMAGED = [
    pytest.param(zipfile.ZIP_STORED, _flip_a_digit, zipfile.BadZipFile,
                 "damaged zip member (Bad CRC-32 for file 'a.txt')", id="stored-bad-crc"),
    pytest.param(zipfile.ZIP_DEFLATED, _break_the_deflate_stream, zlib.error,
                 "damaged zip member (Error -3 while decompressing data", id="deflate-damaged"),
]


@pytest.mark.parametrize(("method", "damage", "cause", "why"), DAMAGED)
def test_a_damaged_zip_is_refused_with_one_line(
        store: ListStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], method: int,
        damage: Callable[[bytearray], None], cause: type[Exception], why: str) -> None:
    archive = _zip(tmp_path / "st_bad.zip", method, damage)
    code = run(["lists", "import", str(archive), "--kind", "national", "--jurisdiction", "US",
                "--snapshot-date", "2026-11-20", "--name", "us-st"])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: st_bad.zip!a.txt: {why}")
    assert "Traceback" not in err + out
    assert store.all() == []  # nothing imported
    with pytest.raises(ListError, match="st_bad.zip!a.txt: damaged zip member") as info:
        store.import_file(archive, kind="national", name="us-st", jurisdiction="US",
                          snapshot_date=D)
    assert isinstance(info.value.__cause__, cause)


@pytest.mark.parametrize(("method", "damage", "cause", "why"), DAMAGED)
@pytest.mark.parametrize("path", ["change-list", "national-scale-bitmap", "hashes"])
def test_every_reader_refuses_a_damaged_zip(
        store: ListStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str,
        method: int, damage: Callable[[bytearray], None], cause: type[Exception],
        why: str) -> None:
    base = tmp_path / "ftc.txt"
    base.write_text("2025550199\n")
    store.import_file(base, kind="national", name="us-ftc", jurisdiction="US", snapshot_date=D)
    before = store.get("us-ftc")
    archive = _zip(tmp_path / "bad.zip", method, damage)
    with pytest.raises(ListError, match="bad.zip!a.txt: damaged zip member") as info:
        if path == "change-list":
            store.import_file(archive, kind="national", name="us-ftc", jurisdiction="US",
                              snapshot_date=D, changes=True)
        elif path == "national-scale-bitmap":
            monkeypatch.setattr(L, "NATIONAL_SCALE_BYTES", 0)
            store.import_file(archive, kind="national", name="us-ftc", jurisdiction="US",
                              snapshot_date=D)
        else:
            listfiles.read_hashes(archive)
    assert isinstance(info.value.__cause__, cause)
    after = store.get("us-ftc")
    assert (after.current_file, after.count) == (before.current_file, before.count)


def test_a_damaged_archive_directory_is_refused(store: ListStore, tmp_path: Path) -> None:
    def bad_header(data: bytearray) -> None:
        data[0:4] = b"PK\x00\x00"  # the local header's signature; the directory still points at it

    archive = _zip(tmp_path / "hdr.zip", zipfile.ZIP_STORED, bad_header)
    with pytest.raises(ListError, match=r"hdr.zip!a.txt: damaged zip member \(Bad magic"):
        store.import_file(archive, kind="national", name="us", jurisdiction="US",
                          snapshot_date=D)
    assert store.all() == []
