"""The verdict file's header and cells, and the refusals of the readers, from the scrub
review: the combined file of several phone columns defuses its header as every verdict file
does; a requested column whose name repeats is refused; added columns never differ from input
columns only by case (and a verdict file read again drops its own); ``next_allowed_at`` is
written in whole seconds, rounded up; an empty input is refused as one of blank lines is."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dncguard.config import Settings, load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import InputError
from dncguard.io.tables import old_verdict_columns
from dncguard.io.verdict_file import (
    ADDED_COLUMNS,
    column_header,
    defuse,
    iso_utc,
    output_header,
    verdict_cells,
    write_column_verdicts,
)
from dncguard.lists.store import ListStore
from dncguard.sources.rules import AttemptStore

from .conftest import error_line, read_csv, scrub_cli

AT = "2026-12-02T19:30:00Z"
LISTED = "2025550123"
FORMULA = '=HYPERLINK("http://evil.invalid","x")'


_scrub = partial(scrub_cli, at=AT)
_error = error_line


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh))


@pytest.fixture
def listed(store: ListStore) -> ListStore:
    store.add_number(LISTED)
    return store


# -- 4. the header of the file of several phone columns is defused --------------------------

def test_the_combined_file_defuses_its_header_as_each_columns_file_does(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    """An input column named like a formula (and a phone column so named, whose verdict
    columns are ``=..._e164``, ...) came out live in the combined file only."""
    src = write_csv([["home_phone", "=cmd()", FORMULA], [LISTED, "3125550199", "=1+2"]])
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home_phone",
                       "--phone-column", "=cmd()")
    assert code == 0, err
    names = column_header(["home_phone", "=cmd()", FORMULA], ["home_phone", "=cmd()"])
    header = _header(out)
    assert header == [defuse(h) for h in names]
    assert header[1:3] == ["'=cmd()", "'" + FORMULA]
    assert header[-5:] == [f"'=cmd()_{a}" for a in ADDED_COLUMNS]
    assert not any(h.startswith(("=", "+", "-", "@")) for h in header)
    # the same header cells as each column's own verdict file, whose cells it copies
    for part in (tmp_path / "out.columns").glob("*.csv"):
        assert _header(part)[:3] == header[:3]
    with out.open(encoding="utf-8", newline="") as fh:
        row = list(csv.reader(fh))[1]
    assert row[2] == "'=1+2" and row[4] == "block"


def test_a_raw_combined_file_keeps_its_header_as_written(
        settings: Settings, write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    """``raw``: nothing is defused, the header as the cells (as each column's file)."""
    src = write_csv([["home_phone", "=cmd()", FORMULA], [LISTED, "3125550199", "=1+2"]])
    scrubber = Scrubber(settings, audit=False)
    header = ["home_phone", "=cmd()", FORMULA]
    parts = {}
    for k, column in enumerate(("home_phone", "=cmd()")):
        parts[column] = tmp_path / f"part{k}.csv"
        scrubber.scrub_file(src, parts[column], phone_column=column, raw=True,
                            at=datetime.fromisoformat(AT))
    out = tmp_path / "raw.csv"
    write_column_verdicts(out, header, parts, raw=True)
    assert _header(out) == column_header(header, list(parts))
    assert _header(parts["=cmd()"])[:3] == header
    with out.open(encoding="utf-8", newline="") as fh:
        assert list(csv.reader(fh))[1][2] == "=1+2"


def test_a_combined_parquet_file_names_its_columns_as_a_single_one_does(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    """Parquet column names are not cells a spreadsheet runs: not defused, in either file."""
    src = write_csv([["home_phone", "=cmd()"], [LISTED, "3125550199"]])
    out = tmp_path / "out.parquet"
    code, err = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home_phone",
                       "--phone-column", "=cmd()")
    assert code == 0, err
    names = pq.ParquetFile(out).schema_arrow.names
    assert names == column_header(["home_phone", "=cmd()"], ["home_phone", "=cmd()"])
    single = tmp_path / "single.parquet"
    assert _scrub(capsys, str(src), "-o", str(single), "--phone-column", "=cmd()")[0] == 0
    assert pq.ParquetFile(single).schema_arrow.names[:2] == names[:2]


# -- 5. a requested column whose name repeats -----------------------------------------------

def _twice(kind: str, tmp_path: Path) -> Path:
    """An input with two columns named ``phone`` (the first unlisted, the second listed)."""
    rows = [["phone", "phone"], ["3125550199", LISTED]]
    if kind == "csv":
        path = tmp_path / "in.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
    elif kind == "parquet":
        path = tmp_path / "in.parquet"
        pq.write_table(pa.table([pa.array([rows[1][0]]), pa.array([rows[1][1]])],
                                names=rows[0]), path)
    else:
        import xlsxwriter

        path = tmp_path / "in.xlsx"
        book = xlsxwriter.Workbook(str(path))
        sheet = book.add_worksheet()
        for r, row in enumerate(rows):
            sheet.write_row(r, 0, row)
        book.close()
    return path


@pytest.mark.parametrize("kind", ["csv", "parquet", "xlsx"])
def test_a_requested_column_named_twice_is_refused(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path,
        listed: ListStore, kind: str) -> None:
    """``--phone-column phone`` checked the first ``phone`` only and exited 0: the listed
    number in the second was never checked."""
    src = _twice(kind, tmp_path)
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "phone")
    assert code == 2
    assert _error(err) == ("error: several columns are named 'phone' (columns 1, 2): only "
                           "one of them would be checked; rename them so each has its own "
                           "name")
    assert not out.exists()
    for columnar in (True, False):
        with pytest.raises(InputError, match="several columns are named 'phone'"):
            Scrubber(settings, audit=False, columnar=columnar).scrub_file(
                src, out, phone_column="phone")
    code, err = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "phone",
                       "--phone-column", "phone")
    assert code == 2 and "several columns are named 'phone'" in _error(err)
    assert not out.exists()


def test_phone_like_columns_named_twice_say_to_rename_them(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The refusal no longer sends the user to ``--phone-column``, which is refused too."""
    code, err = _scrub(capsys, str(_twice("csv", tmp_path)), "-o", str(tmp_path / "o.csv"))
    assert code == 2
    assert _error(err) == (
        "error: several columns look like phone numbers: phone, phone; rename the columns "
        "named 'phone' so each has its own name (--phone-column names one column), then name "
        "the ones to check")


# -- 6. added columns never differ from input columns only by case --------------------------

def test_added_columns_named_like_input_columns_in_another_case_get_the_prefix(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    src = write_csv([["E164", "Detail"], [LISTED, "a"]])
    out = tmp_path / "out.csv"
    assert _scrub(capsys, str(src), "-o", str(out))[0] == 0
    want = ["E164", "Detail", "dncguard_e164", "decision", "reason_codes", "dncguard_detail",
            "next_allowed_at"]
    assert _header(out) == want == output_header(["E164", "Detail"])
    assert read_csv(out)[0]["dncguard_e164"] == "+12025550123"
    # read again, its verdict is replaced and the input's own columns are kept
    again = tmp_path / "again.csv"
    code, err = _scrub(capsys, str(out), "-o", str(again))
    assert code == 0 and "holds an earlier verdict" in err
    assert again.read_bytes() == out.read_bytes()


def test_column_header_compares_names_in_any_case(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    src = write_csv([["home_phone", "mobile_phone", "Home_Phone_Detail"],
                     [LISTED, "3125550199", "x"]])
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out), "--phone-column", "home_phone",
                       "--phone-column", "mobile_phone")
    assert code == 0, err
    header = _header(out)
    assert "dncguard_home_phone_detail" in header and "home_phone_detail" not in header
    assert len({h.casefold() for h in header}) == len(header)


@pytest.mark.parametrize(("header", "dropped"), [
    # written so (moved in a spreadsheet): the verdict's columns, found by name
    (["dncguard_e164", "E164", "decision", "Detail", "reason_codes", "dncguard_detail",
      "next_allowed_at"],
     ["dncguard_e164", "decision", "reason_codes", "dncguard_detail", "next_allowed_at"]),
    # written before names were compared in any case: its lower-case columns, not the input's
    (["E164", "Detail", "e164", "decision", "reason_codes", "detail", "next_allowed_at"],
     ["e164", "decision", "reason_codes", "detail", "next_allowed_at"]),
    (["e164", "E164", "decision", "Detail", "reason_codes", "detail", "next_allowed_at"],
     ["e164", "decision", "reason_codes", "detail", "next_allowed_at"]),
    # two phone columns named alike but for case: each one's own columns
    (["Cell", "cell", *(f"Cell_{a}" for a in ADDED_COLUMNS),
      *(f"cell_{a}" for a in ADDED_COLUMNS)],
     [*(f"Cell_{a}" for a in ADDED_COLUMNS), *(f"cell_{a}" for a in ADDED_COLUMNS)]),
    # not a verdict: nothing is dropped
    (["E164", "DECISION", "Reason_Codes", "DETAIL", "Next_Allowed_At"], []),
])
def test_a_verdict_file_read_again_drops_its_own_columns_only(
        header: list[str], dropped: list[str]) -> None:
    assert [header[i] for i in old_verdict_columns(header)] == dropped


# -- 7. next_allowed_at in whole seconds, rounded up ----------------------------------------

def test_iso_utc_rounds_up_to_the_whole_second() -> None:
    at = datetime(2026, 12, 5, 14, 0, 1, 123456, tzinfo=UTC)
    assert iso_utc(at) == "2026-12-05T14:00:02Z"
    assert iso_utc(at.replace(microsecond=1)) == "2026-12-05T14:00:02Z"
    assert iso_utc(at.replace(microsecond=0)) == "2026-12-05T14:00:01Z"
    assert iso_utc(datetime(2026, 12, 31, 23, 59, 59, 500, tzinfo=UTC)) == \
        "2027-01-01T00:00:00Z"
    assert iso_utc(None) == ""


@pytest.mark.parametrize("columnar", [True, False])
def test_next_allowed_at_has_one_form_in_a_column(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, columnar: bool) -> None:
    """A cap freed by an attempt recorded with microseconds gave ``...14:00:01.123456Z``
    beside ``...13:00:00Z``; now ``14:00:02Z``, never earlier than the cap frees."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    settings = load_settings(home=tmp_path / "home")
    at = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)  # 22:00 in Miami and New York
    first = datetime(2026, 12, 4, 14, 0, 1, 123456, tzinfo=UTC)
    attempts = AttemptStore(settings, clock=lambda: at)
    for hours in (0, 1, 2):  # Florida's cap: 3 in 24 h on one subject
        attempts.record("+13055550111", first + timedelta(hours=hours, seconds=hours))
    src = tmp_path / "in.csv"
    src.write_text("phone\n3055550111\n2125550111\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    Scrubber(settings, audit=False, columnar=columnar).scrub_file(src, out, at=at)
    rows = read_csv(out)
    assert [(r["decision"], r["next_allowed_at"]) for r in rows] == [
        ("defer", "2026-12-05T14:00:02Z"), ("defer", "2026-12-05T13:00:00Z")]
    assert "FREQUENCY_CAP" in rows[0]["reason_codes"]
    assert datetime.fromisoformat(rows[0]["next_allowed_at"]) >= first + timedelta(hours=24)
    # the cap's own words agree with the cell (they said 14:00, a second early)
    assert "frees up at 2026-12-05 14:00:02 UTC" in rows[0]["detail"]
    typed = tmp_path / "out.parquet"
    Scrubber(settings, audit=False, columnar=columnar).scrub_file(src, typed, at=at)
    assert pq.read_table(typed).column("next_allowed_at").to_pylist() == [
        datetime(2026, 12, 5, 14, 0, 2, tzinfo=UTC), datetime(2026, 12, 5, 13, tzinfo=UTC)]
    assert [c[4] for c in verdict_cells(typed)] == [r["next_allowed_at"] for r in rows]


def test_an_instant_stored_with_microseconds_reads_back_as_stored(tmp_path: Path) -> None:
    """A Parquet verdict file written before instants were whole seconds reads back as its
    audit record has it (a proof compares the two)."""
    path = tmp_path / "old.parquet"
    cells = [pa.array([s], pa.string()) for s in ("p", "+13055550111", "defer", "", "")]
    stamp = pa.array([datetime(2026, 12, 5, 14, 0, 1, 123456, tzinfo=UTC)],
                     pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table([*cells, stamp], names=["phone", *ADDED_COLUMNS]), path)
    assert [c[4] for c in verdict_cells(path)] == ["2026-12-05T14:00:01.123456Z"]


# -- 11b. an empty input is refused ---------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf"], ids=["empty", "bom-only"])
def test_an_empty_csv_file_is_refused(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path,
        content: bytes) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out))
    assert code == 2
    assert _error(err) == f"error: {src}: no header row: the file is empty"
    assert not out.exists()
    for columnar in (True, False):
        with pytest.raises(InputError, match="no header row: the file is empty"):
            Scrubber(settings, audit=False, columnar=columnar).scrub_file(src, out)
    assert not out.exists()


def test_a_parquet_file_of_no_columns_is_refused(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({}), src)
    out = tmp_path / "out.csv"
    code, err = _scrub(capsys, str(src), "-o", str(out))
    assert code == 2
    assert _error(err) == f"error: {src}: no header row: the Parquet file has no columns"
    for columnar in (True, False):
        with pytest.raises(InputError, match="no columns"):
            Scrubber(settings, audit=False, columnar=columnar).scrub_file(src, out)
    assert not out.exists()


def test_a_header_without_rows_is_still_an_empty_verdict(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A header and no rows is a file of no contacts, in every format: not refused."""
    import xlsxwriter

    csv_in = tmp_path / "in.csv"
    csv_in.write_text("phone,name\n", encoding="utf-8")
    pq_in = tmp_path / "in.parquet"
    pq.write_table(pa.table({"phone": pa.array([], pa.string())}), pq_in)
    xlsx_in = tmp_path / "in.xlsx"
    book = xlsxwriter.Workbook(str(xlsx_in))
    book.add_worksheet().write_row(0, 0, ["phone"])
    book.close()
    for src in (csv_in, pq_in, xlsx_in):
        out = tmp_path / f"out-{src.suffix[1:]}.csv"
        code, err = _scrub(capsys, str(src), "-o", str(out))
        assert code == 0, err
        assert read_csv(out) == []
        assert _header(out)[-5:] == list(ADDED_COLUMNS)


def test_an_empty_excel_sheet_is_refused(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    import xlsxwriter

    src = tmp_path / "in.xlsx"
    book = xlsxwriter.Workbook(str(src))
    book.add_worksheet("Contacts")
    book.close()
    code, err = _scrub(capsys, str(src), "-o", str(tmp_path / "out.csv"))
    assert code == 2 and "is empty" in _error(err)



def test_a_raw_scrub_of_several_columns_keeps_the_combined_header_as_written(
        settings: Settings, write_csv: Callable[..., Path], tmp_path: Path,
        listed: ListStore) -> None:
    """The scrub passes ``raw`` on to the combined file (it was always defused)."""
    src = write_csv([["home_phone", "=cmd()", FORMULA], [LISTED, "3125550199", "=1+2"]])
    out = tmp_path / "raw.csv"
    Scrubber(settings, audit=False).scrub_file(src, out, phone_column=["home_phone", "=cmd()"],
                                               raw=True, at=datetime.fromisoformat(AT))
    assert _header(out)[:3] == ["home_phone", "=cmd()", FORMULA]
