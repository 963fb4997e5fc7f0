"""Contact files read as written or refused, and verdict files written whole or not at all.

* an Excel header that repeats a name is read as written (fastexcel would read the second
  ``timezone`` as ``timezone_1``, a column no reader knows, and its rows as if it were not
  there): refused or read as the same CSV file is;
* a workbook is read from its first sheet only when that sheet is visible and no other
  visible sheet holds data (the rows on another sheet were never read, exit 0);
* an ``.xlsx`` verdict file wider than a sheet, or with a cell longer than a cell holds, is
  refused before it is written (xlsxwriter left out the columns, cut the cell, and said so
  only in a return code);
* a Parquet binary column is read as UTF-8 text, not as Python's ``b'...'``; a value that is
  not UTF-8 flags its row, naming the column, as in a CSV file;
* an empty ``--phone-column`` among several is refused as a single one is, not dropped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fastexcel
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import InputError
from dncguard.io import verdict_file
from dncguard.lists.store import ListStore

from .conftest import AT, cli, read_csv

LISTED = "2025550100"  # on the internal list in every test here (block)
OTHER = "2025550123"  # on none
EXCEL_MAX_COLUMNS = 16_384  # A to XFD
EXCEL_MAX_CELL = 32_767  # characters (UTF-16 code units)


@pytest.fixture(autouse=True)
def _listed(store: ListStore) -> None:
    store.add_number(LISTED)


def _scrub(settings: Settings, src: Path, out: Path, *, columnar: bool = True,
           **kw: Any) -> None:
    Scrubber(settings, clock=lambda: AT, columnar=columnar, audit=False).scrub_file(
        src, out, at=AT, **kw)


def _refusal(settings: Settings, src: Path, tmp_path: Path, suffix: str = ".csv",
             **kw: Any) -> str:
    """The refusal of a scrub of ``src`` (the same as a table and row by row); no output is
    left."""
    got = []
    for columnar in (True, False):
        out = tmp_path / f"refused-{columnar}{suffix}"
        with pytest.raises(InputError) as err:
            _scrub(settings, src, out, columnar=columnar, **kw)
        assert not out.exists()
        got.append(str(err.value))
    assert got[0] == got[1]
    return got[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def _workbook(path: Path, sheets: dict[str, list[list[str]]], *,
              hidden: tuple[str, ...] = ()) -> Path:
    book = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                sheet.write_string(r, c, value)
    # a hidden sheet cannot be the active one
    book.get_worksheet_by_name(next(n for n in sheets if n not in hidden)).activate()
    for name in hidden:
        book.get_worksheet_by_name(name).hide()
    book.close()
    return path


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


# -- 1. a repeated name in an Excel header --------------------------------------------------

def test_an_excel_header_repeating_a_context_column_is_refused_as_csv_is(
        settings: Settings, tmp_path: Path) -> None:
    """``phone,timezone,timezone``: the second time zone (05:30 in Los Angeles) was read as a
    column ``timezone_1`` and ignored, so the row was judged by the first; CSV refuses it."""
    rows = [["phone", "timezone", "timezone"], [OTHER, "America/New_York",
                                                 "America/Los_Angeles"]]
    excel = _refusal(settings, _workbook(tmp_path / "in.xlsx", {"contacts": rows}), tmp_path)
    assert excel == "columns 'timezone' and 'timezone' both give the rows' timezone; keep " \
                    "one of them"
    assert excel == _refusal(settings, _write_csv(tmp_path / "in.csv", rows), tmp_path)


@pytest.mark.parametrize("columnar", [True, False], ids=["array-path", "row-path"])
def test_an_excel_header_repeating_another_name_is_kept_as_written(
        settings: Settings, tmp_path: Path, columnar: bool) -> None:
    """Two ``note`` columns are two columns named ``note`` (as in CSV), not ``note_1``; a
    header cell named like fastexcel's renaming stays as written too."""
    src = _workbook(tmp_path / "in.xlsx", {"contacts": [
        ["phone", "note", "note", "note_1"], [LISTED, "a", "b", "c"], [OTHER, "d", "e", "f"]]})
    out = tmp_path / "out.csv"
    _scrub(settings, src, out, columnar=columnar)
    import csv

    with out.open(encoding="utf-8", newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0][:4] == ["phone", "note", "note", "note_1"]
    assert [r[:4] for r in got[1:]] == [[LISTED, "a", "b", "c"], [OTHER, "d", "e", "f"]]
    assert [r[got[0].index("decision")] for r in got[1:]] == ["block", "allow"]


def test_an_excel_header_repeating_the_phone_column_is_refused(
        settings: Settings, tmp_path: Path) -> None:
    src = _workbook(tmp_path / "in.xlsx", {"contacts": [
        ["phone", "phone"], [OTHER, LISTED]]})
    assert "several columns look like phone numbers: phone, phone;" in _refusal(
        settings, src, tmp_path)


# -- 2. which sheet of a workbook -----------------------------------------------------------

def test_a_hidden_first_sheet_is_refused_naming_the_sheets(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> None:
    """A hidden ``lookup`` sheet was scrubbed and the visible ``contacts`` ignored, exit 0."""
    src = _workbook(tmp_path / "in.xlsx", {
        "lookup": [["phone", "code"], [OTHER, "x"]],
        "contacts": [["phone", "name"], [LISTED, "a"]]}, hidden=("lookup",))
    why = _refusal(settings, src, tmp_path)
    assert "its first sheet, 'lookup', is hidden" in why
    assert "'lookup' (hidden, data), 'contacts' (data)" in why
    out = tmp_path / "cli.csv"
    code, _, err = cli(capsys, "scrub", str(src), "-o", str(out), "-q")
    assert code == 2 and not out.exists()
    assert "'lookup', is hidden" in err


def test_another_visible_sheet_holding_data_is_refused_naming_it(
        settings: Settings, tmp_path: Path) -> None:
    src = _workbook(tmp_path / "in.xlsx", {
        "east": [["phone"], [OTHER]], "notes": [], "west": [["phone"], [LISTED]]})
    why = _refusal(settings, src, tmp_path)
    assert "another visible sheet holds data too: 'west'" in why
    assert "'east' (data), 'notes' (empty), 'west' (data)" in why


def test_a_hidden_sheet_after_the_contacts_is_not_read(settings: Settings,
                                                       tmp_path: Path) -> None:
    """A lookup table on a hidden sheet is no contact list: the first sheet is scrubbed."""
    src = _workbook(tmp_path / "in.xlsx", {
        "contacts": [["phone"], [LISTED], [OTHER]], "lookup": [["code"], ["x"]]},
        hidden=("lookup",))
    out = tmp_path / "out.csv"
    _scrub(settings, src, out)
    assert [r["decision"] for r in read_csv(out)] == ["block", "allow"]


# -- 3. an .xlsx verdict file that cannot hold the verdicts ---------------------------------

def test_an_xlsx_output_wider_than_a_sheet_is_refused_before_writing(
        settings: Settings, tmp_path: Path) -> None:
    """16,380 input columns and the 5 added ones: the verdict's last column fell outside the
    sheet, and the audit read ``detail`` as the decision."""
    width = EXCEL_MAX_COLUMNS - len(verdict_file.ADDED_COLUMNS) + 1
    header = ["phone", *(f"c{k}" for k in range(1, width))]
    src = _write_csv(tmp_path / "wide.csv", [header, [LISTED, *([""] * (width - 1))]])
    why = _refusal(settings, src, tmp_path, suffix=".xlsx")
    assert why.startswith(f"{EXCEL_MAX_COLUMNS + 1:,} columns (the input's and the verdict's) "
                          f"do not fit in an Excel sheet ({EXCEL_MAX_COLUMNS:,} at most)")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("cell", ["x" * (EXCEL_MAX_CELL + 1), "\U0001f600" * 16_384],
                         ids=["ascii", "astral"])
@pytest.mark.parametrize("columnar", [True, False], ids=["array-path", "row-path"])
def test_a_cell_longer_than_an_excel_cell_is_refused_naming_row_and_column(
        settings: Settings, tmp_path: Path, cell: str, columnar: bool) -> None:
    """xlsxwriter cut the cell to 32,767 characters and answered -2, which was ignored: an
    altered cell in a file that looked complete. A character beyond U+FFFF counts twice."""
    src = _write_csv(tmp_path / "in.csv", [["phone", "note"], [LISTED, "a"], [OTHER, cell]])
    out = tmp_path / "out.xlsx"
    with pytest.raises(InputError) as err:
        _scrub(settings, src, out, columnar=columnar)
    assert str(err.value).startswith(
        "row 2, column 'note': a cell of 32,768 characters does not fit in an Excel cell")
    assert not out.exists() and _leftovers(tmp_path) == []


def test_a_cell_as_long_as_an_excel_cell_is_written_whole(settings: Settings,
                                                          tmp_path: Path) -> None:
    cell = "y" * (EXCEL_MAX_CELL - 1) + "z"
    src = _write_csv(tmp_path / "in.csv", [["phone", "note"], [OTHER, cell]])
    out = tmp_path / "out.xlsx"
    _scrub(settings, src, out)
    table = fastexcel.read_excel(str(out)).load_sheet(0, dtypes="string").to_arrow()
    assert table.column("note").to_pylist() == [cell]


def test_a_cell_xlsxwriter_cuts_raises_and_leaves_no_workbook(tmp_path: Path) -> None:
    """The Parquet-to-Excel copy itself treats xlsxwriter's -2 as an error, naming the row
    and column (the caller removes the workbook)."""
    source = tmp_path / "verdicts.parquet"
    pq.write_table(pa.table({"phone": [LISTED, OTHER], "note": ["a", "x" * 40_000]}), source)
    with pytest.raises(InputError, match=r"^row 2, column 'note': a cell of 40,000 "):
        verdict_file._parquet_to_xlsx(source, tmp_path / "out.xlsx", ["phone", "note"])


# -- 4. Parquet binary columns ------------------------------------------------------------

def _binary_parquet(path: Path, note: list[bytes | None]) -> Path:
    pq.write_table(pa.table({
        "phone": pa.array([LISTED.encode(), f"+1{OTHER}".encode()], pa.binary()),
        "timezone": pa.array([b"America/New_York", None], pa.binary()),
        "note": pa.array(note, pa.large_binary())}), path)
    return path


@pytest.mark.parametrize("columnar", [True, False], ids=["array-path", "row-path"])
def test_parquet_binary_columns_are_read_as_utf8_text(settings: Settings, tmp_path: Path,
                                                      columnar: bool) -> None:
    """``b'2025550100'`` was the cell written back, and the row's time zone was not
    understood (``b'America/New_York'``)."""
    src = _binary_parquet(tmp_path / "in.parquet", [b"caf\xc3\xa9", b""])
    out = tmp_path / "out.csv"
    _scrub(settings, src, out, columnar=columnar)
    rows = read_csv(out)
    assert [(r["phone"], r["timezone"], r["note"]) for r in rows] == [
        (LISTED, "America/New_York", "caf\u00e9"), (f"+1{OTHER}", "", "")]
    assert [(r["e164"], r["decision"]) for r in rows] == [
        (f"+1{LISTED}", "block"), (f"+1{OTHER}", "allow")]


@pytest.mark.parametrize("columnar", [True, False], ids=["array-path", "row-path"])
def test_a_parquet_binary_value_that_is_not_utf8_flags_its_row(
        settings: Settings, tmp_path: Path, columnar: bool) -> None:
    src = _binary_parquet(tmp_path / "in.parquet", [b"ok", b"pr\xe9nom"])
    out = tmp_path / "out.csv"
    _scrub(settings, src, out, columnar=columnar)
    rows = read_csv(out)
    assert rows[0]["decision"] == "block"
    assert (rows[1]["decision"], rows[1]["reason_codes"]) == ("invalid", "MALFORMED_ROW")
    assert "row 2: field 'note' is not valid UTF-8" in rows[1]["detail"]
    assert rows[1]["note"] == "pr\ufffdnom"


def test_a_csv_cell_holding_u_fffd_says_so(settings: Settings, tmp_path: Path) -> None:
    """A U+FFFD written as such (valid UTF-8) cannot be told from bytes read with it in
    their place: the row is flagged either way, and the detail says both (it said only "not
    valid UTF-8", which the file is)."""
    src = tmp_path / "in.csv"
    src.write_bytes(f"phone,note\n{LISTED},ok\n{OTHER},\ufffd\n".encode())
    out = tmp_path / "out.csv"
    _scrub(settings, src, out)
    rows = read_csv(out)
    assert (rows[1]["decision"], rows[1]["reason_codes"]) == ("invalid", "MALFORMED_ROW")
    assert "field 'note' is not valid UTF-8 (or holds U+FFFD" in rows[1]["detail"]


# -- 5. an empty --phone-column among several -----------------------------------------------

def test_an_empty_phone_column_among_several_is_refused(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> None:
    """``--phone-column "" --phone-column mobile`` scrubbed ``mobile`` alone, exit 0."""
    src = _write_csv(tmp_path / "in.csv", [["phone", "mobile"], [LISTED, OTHER]])
    single = _refusal(settings, src, tmp_path, phone_column="")
    assert single == "no column named ''; columns: phone, mobile"
    assert _refusal(settings, src, tmp_path, phone_column=["", "mobile"]) == single
    out = tmp_path / "cli.csv"
    code, _, err = cli(capsys, "scrub", str(src), "-o", str(out), "-q", "--phone-column", "",
                       "--phone-column", "mobile")
    assert code == 2 and not out.exists()
    assert "no column named ''" in err
    assert not (tmp_path / "cli.columns").exists()
