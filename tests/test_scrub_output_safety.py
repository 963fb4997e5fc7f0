"""``dncguard scrub`` fails closed and loses nothing: every row of every phone column gets its
own verdict, an input column is never read as this scrub's verdict, the input is never written
over, and what cannot be written is refused in one line, leaving no file without its audit
record."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from dncguard.audit import audit_log
from dncguard.cli import run
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import InputError
from dncguard.io._excel import read_excel
from dncguard.lists.store import ListStore

from .conftest import error_line, read_csv, scrub_cli

AT = "2026-11-19T15:00:00Z"
LISTED = "2025550123"
ADDED = ("e164", "decision", "reason_codes", "detail", "next_allowed_at")


_scrub = partial(scrub_cli, at=AT)
_error = error_line


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


def _jobs(settings: Settings) -> int:
    return len(list(audit_log(settings).records(kind="job")))


@pytest.fixture
def listed(store: ListStore) -> ListStore:
    store.add_number(LISTED)
    return store


# -- 1. each phone column's own verdict file ------------------------------------------------

def test_columns_with_alike_file_names_keep_their_own_verdicts(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore, settings: Settings) -> None:
    """``home phone`` and ``home_phone`` once both wrote ``home_phone.csv``: the second
    replaced the first, and the listed number of ``home phone`` came out ``allow``."""
    src = write_csv([["home phone", "home_phone"], [LISTED, "3125550199"],
                     ["3125550199", "3125550199"]])
    out = tmp_path / "out.csv"
    code, _ = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home phone",
                     "--phone-column", "home_phone")
    assert code == 0
    rows = read_csv(out)
    assert [(r["home phone_e164"], r["home phone_decision"]) for r in rows] == [
        ("+12025550123", "block"), ("+13125550199", "allow")]
    assert [(r["home_phone_e164"], r["home_phone_decision"]) for r in rows] == [
        ("+13125550199", "allow"), ("+13125550199", "allow")]
    parts = sorted(p for p in (tmp_path / "out.columns").iterdir() if p.suffix == ".csv")
    assert len(parts) == 2 and len({p.name.casefold() for p in parts}) == 2
    assert {p.name for p in parts} == {"1-home_phone.csv", "2-home_phone.csv"}
    for part in parts:  # each column's own file holds that column's verdicts
        column = "home phone" if part.name.startswith("1-") else "home_phone"
        assert [r["e164"] for r in read_csv(part)] == [r[f"{column}_e164"] for r in rows]
    assert _jobs(settings) == 2


def test_columns_alike_but_for_case_get_files_apart_on_any_file_system(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    src = write_csv([["Cell", "cell"], [LISTED, "3125550199"]])
    out = tmp_path / "out.csv"
    code, _ = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "Cell",
                     "--phone-column", "cell")
    assert code == 0
    names = [p.name for p in (tmp_path / "out.columns").iterdir()]
    assert len(names) == 4 and len({n.casefold() for n in names}) == 4
    row = read_csv(out)[0]
    assert (row["Cell_decision"], row["cell_decision"]) == ("block", "allow")


# -- 2. no input column read as this scrub's verdict ----------------------------------------

def test_an_incomplete_earlier_verdict_is_refused(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    """An earlier verdict file without its ``detail`` column kept its stale ``decision``
    (``allow``) beside the new one, written as ``dncguard_decision`` (``block``)."""
    src = write_csv([["phone", "name", "e164", "decision", "reason_codes", "next_allowed_at"],
                     [LISTED, "a", "+12025550123", "allow", "", ""]])
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out))
    assert code == 2
    assert "the input has columns named e164, decision, reason_codes, next_allowed_at that " \
           "are not a complete earlier verdict: rename or remove them" in _error(err)
    assert not out.exists() and not (tmp_path / "out.summary.json").exists()


@pytest.mark.parametrize("name", ["decision", "Decision", "reason_codes", "next_allowed_at",
                                  "dncguard_decision"])
def test_a_column_named_like_a_verdict_column_is_refused(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore, settings: Settings, name: str) -> None:
    src = write_csv([["phone", name], [LISTED, "allow"]])
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out))
    assert code == 2
    assert _error(err) == (f"error: the input has a column named {name} that is not a "
                           "complete earlier verdict: rename or remove it")
    assert not out.exists()
    for columnar in (True, False):  # the array path and the row path
        with pytest.raises(InputError, match="complete earlier verdict"):
            Scrubber(settings, audit=False, columnar=columnar).scrub_file(src, out)
    assert not out.exists()


def test_an_e164_column_that_is_not_the_number_checked_is_refused(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    """``e164`` beside ``decision`` is the number a dialer dials: here the listed number stood
    there, with the ``allow`` of the unlisted ``phone``."""
    src = write_csv([["phone", "e164"], ["3125550199", "+12025550123"]])
    code, err = _scrub(capsys, str(src), "-o", str(tmp_path / "out.csv"))
    assert code == 2 and "a column named e164 that is not a complete earlier" in _error(err)
    assert not (tmp_path / "out.csv").exists()


def test_e164_as_the_phone_column_and_an_input_detail_stay(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    """The documented ``dncguard_<name>`` stays for these: ``e164`` is then the number the
    verdict is about, and ``detail`` is free text no dialer acts on."""
    src = write_csv([["e164", "detail"], ["2025550123", "call after 5"], ["3125550199", ""]])
    out = tmp_path / "out.csv"
    code, _ = _scrub(capsys, str(src), "-o", str(out))
    assert code == 0
    rows = read_csv(out)
    assert list(rows[0]) == ["e164", "detail", "dncguard_e164", "decision", "reason_codes",
                             "dncguard_detail", "next_allowed_at"]
    assert [(r["e164"], r["dncguard_e164"], r["decision"]) for r in rows] == [
        ("2025550123", "+12025550123", "block"), ("3125550199", "+13125550199", "allow")]
    assert rows[0]["detail"] == "call after 5"


def test_a_stale_column_verdict_is_refused_for_several_columns(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    src = write_csv([["home_phone", "cell", "home_phone_decision"],
                     [LISTED, "3125550199", "allow"]])
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home_phone",
                       "--phone-column", "cell")
    assert code == 2 and "a column named home_phone_decision that is not" in _error(err)
    assert not out.exists() and not (tmp_path / "out.columns").exists()


# -- 3. never the input, and an output name understood before anything is read -------------

@pytest.mark.parametrize("spelling", ["same", "dotted", "link"])
def test_the_input_is_never_the_output(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                       listed: ListStore, spelling: str) -> None:
    src = tmp_path / "in.csv"
    data = "phone,name\r\n2025550123,Jos\xe9\r\n".encode("latin-1")
    src.write_bytes(data)
    out = {"same": src, "dotted": tmp_path / "sub" / ".." / "in.csv",
           "link": tmp_path / "link.csv"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "link":
        out.symlink_to(src)
    code, err = _scrub(capsys, str(src), "-o", str(out))
    assert code == 2
    assert err.strip().splitlines() == [_error(err)] and "is the input file" in err
    assert src.read_bytes() == data  # not replaced, its Latin-1 byte kept
    assert not (tmp_path / "in.summary.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_an_unknown_output_format_is_refused_before_the_input_is_read(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, settings: Settings,
        monkeypatch: pytest.MonkeyPatch, write_csv: Callable[..., Path]) -> None:
    import dncguard.engine.scrubber as scrubber

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the input was read")

    src = write_csv([["phone"], [LISTED]])
    for name in ("read_table", "open_table", "read_header", "count_rows"):
        monkeypatch.setattr(scrubber, name, no_reading)
    out = tmp_path / "o.xls"
    code, err = run(["scrub", str(src), "-o", str(out)]), capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: cannot tell the output format from {str(out)!r}: name it .csv, .parquet or "
        ".xlsx"]
    with pytest.raises(InputError, match="o.xls"):
        Scrubber(settings).scrub_file(src, out)
    assert not [p for p in tmp_path.iterdir() if "unrecorded" in p.name or p == out]


# -- 4. several columns in every format; what cannot be written leaves nothing -------------

def test_several_columns_to_excel(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                  write_csv: Callable[..., Path], listed: ListStore,
                                  settings: Settings) -> None:
    src = write_csv([["home_phone", "cell"], [LISTED, "3125550199"], ["junk", LISTED]])
    out = tmp_path / "out.xlsx"
    code, _ = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home_phone",
                     "--phone-column", "cell")
    assert code == 0
    rows = read_excel(out).to_pylist()
    assert [(r["home_phone_decision"], r["cell_decision"]) for r in rows] == [
        ("block", "allow"), ("invalid", "block")]
    assert [r["cell_e164"] for r in rows] == ["+13125550199", "+12025550123"]
    assert sorted(p.name for p in (tmp_path / "out.columns").iterdir()) == [
        "cell.summary.json", "cell.xlsx", "home_phone.summary.json", "home_phone.xlsx"]
    assert _jobs(settings) == 2


@pytest.mark.parametrize("columns", [["phone", "cell"], ["phone"]])
def test_repeated_names_are_refused_for_parquet(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, write_csv: Callable[..., Path],
        listed: ListStore, settings: Settings, columns: list[str]) -> None:
    src = write_csv([["phone", "cell", "name", "name"], [LISTED, "3125550199", "a", "b"]])
    before = _files(tmp_path)
    flags = [f for c in columns for f in ("--phone-column", c)]
    code, err = _scrub(capsys, str(src), "-o", str(tmp_path / "x.parquet"), *flags)
    assert code == 2 and "several input columns are named 'name'" in _error(err)
    assert _files(tmp_path) == before and _jobs(settings) == 0
    code, _ = _scrub(capsys, str(src), "-o", str(tmp_path / "x.xlsx"), *flags)
    assert code == 0  # an Excel sheet holds them
    row = read_excel(tmp_path / "x.xlsx").to_pylist()[0]
    assert row["phone_decision" if len(columns) > 1 else "decision"] == "block"


def test_a_failure_after_the_columns_leaves_no_file(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, write_csv: Callable[..., Path],
        listed: ListStore, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import dncguard.engine.scrubber as scrubber

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    src = write_csv([["home_phone", "cell"], [LISTED, "3125550199"]])
    before = _files(tmp_path)
    monkeypatch.setattr(scrubber, "write_column_verdicts", full)
    code, err = _scrub(capsys, str(src), "-o", str(tmp_path / "out.csv"), "--phone-column",
                       "home_phone", "--phone-column", "cell")
    assert code == 2 and "No space left" in err
    assert _files(tmp_path) == before and _jobs(settings) == 0


def test_a_long_cell_in_a_column_file_is_read_back(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, listed: ListStore) -> None:
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["home_phone", "cell", "note"],
                                  [LISTED, "3125550199", "x" * (5 << 20)]])
    out = tmp_path / "out.csv"
    code, _ = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home_phone",
                     "--phone-column", "cell")
    assert code == 0
    row = read_csv(out)[0]
    assert (row["home_phone_decision"], row["cell_decision"]) == ("block", "allow")
    assert len(row["note"]) == 5 << 20
    summary = json.loads((tmp_path / "out.summary.json").read_text("utf-8"))
    assert summary["totalRows"] == 1


def test_a_line_break_in_a_column_name_adds_no_row(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, listed: ListStore) -> None:
    """Each column's verdict file is read back with its header as one row, whatever it holds
    (the header's second line once came out as a row of its own)."""
    src = tmp_path / "in.csv"
    src.write_text('"home\nphone","x,y",cell\r\n2025550123,"a\nb",3125550199\r\n', "utf-8")
    out = tmp_path / "out.csv"
    code, _ = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home\nphone",
                     "--phone-column", "cell")
    assert code == 0
    rows = read_csv(out)
    assert [(r["home\nphone_decision"], r["cell_decision"], r["x,y"]) for r in rows] == [
        ("block", "allow", "a\nb")]
