"""Input files that used to be misread without a word: every one is now read whole, in order,
or refused with one line (exit 2, no verdict file).

Context columns under their usual names, Parquet numbers that are not the phone number
written, blank lines before the header, a quote that is never closed, a file without a header
row, an earlier verdict's ``dncguard_`` columns beside the user's own, and files that are not
UTF-8 or not comma separated. The CSV cases run on both readers (as a table and row by row):
the same verdict file, or the same refusal.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import InputError
from dncguard.io import tables
from dncguard.lists.store import ListStore

from .conftest import AT, cli, read_csv

LISTED = "2025550123"  # on the internal list in every test here (block)
ROWS = b"2025550123,a\r\n3125550188,b\r\n"


@pytest.fixture(autouse=True)
def _listed(store: ListStore) -> None:
    store.add_number(LISTED)


def _scrub(capsys: pytest.CaptureFixture[str], src: Path, out: Path,
           *args: str) -> tuple[int, str]:
    """``dncguard scrub`` (exit code, stderr)."""
    code, _, err = cli(capsys, "scrub", str(src), "-o", str(out), "-q",
                       "--at", "2026-11-19T15:00:00Z", *args)
    return code, err


def _refused(capsys: pytest.CaptureFixture[str], src: Path, tmp_path: Path,
             *args: str) -> str:
    """The one-line error of a scrub refused with exit 2 (no verdict file written)."""
    out = tmp_path / "refused.csv"
    code, err = _scrub(capsys, src, out, *args)
    assert code == 2, err
    assert not out.exists()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    return lines[0]


def _both_paths(settings: Settings, src: Path, tmp_path: Path) -> bytes | str:
    """Scrub ``src`` as a table and row by row: the verdict file (the same both ways) or
    the refusal (the same both ways)."""
    got: list[bytes | str] = []
    for columnar in (True, False):
        out = tmp_path / f"both-{columnar}.csv"
        try:
            Scrubber(settings, clock=lambda: AT, columnar=columnar, audit=False).scrub_file(
                src, out, at=AT)
            got.append(out.read_bytes())
        except InputError as exc:
            assert not out.exists()
            got.append(str(exc))
    assert got[0] == got[1]
    return got[0]


# -- 1. context columns under their usual names -------------------------------------------

NIGHT_IN_FLORIDA = "2026-11-20T01:30:00Z"  # 20:30 in Miami and Washington: Florida's window
MORNING_IN_LA = "2026-11-19T15:00:00Z"  # 10:00 in Washington, 07:00 in Los Angeles


@pytest.fixture
def rules_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")


@pytest.mark.usefixtures("rules_on")
@pytest.mark.parametrize(("column", "value", "at"), [
    ("ZIP Code", "33101", NIGHT_IN_FLORIDA),
    ("zip_code", "33101", NIGHT_IN_FLORIDA),
    ("postal_code", "33101", NIGHT_IN_FLORIDA),
    ("Postcode", "33101", NIGHT_IN_FLORIDA),
    ("Zip/Postal Code", "33101", NIGHT_IN_FLORIDA),
    ("State/Province", "FL", NIGHT_IN_FLORIDA),
    ("state_or_province", "FL", NIGHT_IN_FLORIDA),
    ("Province", "FL", NIGHT_IN_FLORIDA),
    ("time zone", "America/Los_Angeles", MORNING_IN_LA),
    ("Time-Zone", "America/Los_Angeles", MORNING_IN_LA),
    ("tz", "America/Los_Angeles", MORNING_IN_LA),
])
def test_context_columns_under_their_usual_names_apply(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, column: str, value: str,
        at: str) -> None:
    """A 202 number called at 20:30 is inside the federal window but outside Florida's; at
    07:00 in Los Angeles it is outside every window there: the row's own column says so."""
    src = tmp_path / "in.csv"
    src.write_text(f"phone,{column}\n3125550101,{value}\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    code, err = cli(capsys, "scrub", str(src), "-o", str(out), "-q", "--at", at)[::2]
    assert code == 0, err
    rows = read_csv(out)
    assert [r[column] for r in rows] == [value]
    assert [r["decision"] for r in rows] == ["defer"]
    assert rows[0]["reason_codes"] == "OUTSIDE_CALLING_WINDOW"


@pytest.mark.usefixtures("rules_on")
def test_a_line_type_column_named_linetype_applies(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("phone,LineType\n3125550101,landline\n3125550102,\n", encoding="utf-8")
    code, _, err = cli(capsys, "scrub", str(src), "-o", str(tmp_path / "o.csv"), "-q",
                       "--at", "2026-11-19T16:00:00Z", "--call-type", "autodialed")
    rows = read_csv(tmp_path / "o.csv")
    assert [r["decision"] for r in rows] == ["allow", "block"]  # the second: assumed mobile
    assert "CONSENT_REQUIRED" in rows[1]["reason_codes"]


@pytest.mark.usefixtures("rules_on")
def test_ambiguous_short_names_stay_ordinary_columns(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("phone,st\n3125550101,FL\n", encoding="utf-8")
    cli(capsys, "scrub", str(src), "-o", str(tmp_path / "o.csv"), "-q", "--at",
        NIGHT_IN_FLORIDA)
    assert [r["decision"] for r in read_csv(tmp_path / "o.csv")] == ["allow"]
    assert tables.context_field("st") is None and tables.context_field("phone_type") is None


@pytest.mark.parametrize("header", ["phone,zip,Postal Code", "phone,State,province",
                                    "phone,time_zone,TZ"])
def test_two_columns_for_one_context_field_are_refused(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path, header: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"{header}\n3125550101,a,b\n", encoding="utf-8")
    first, second = header.split(",")[1:]
    line = _refused(capsys, src, tmp_path)
    assert f"columns {first!r} and {second!r} both give the rows'" in line


def test_the_alias_table_is_the_one_place() -> None:
    """Every alias reads as its field, and no name is given to two fields."""
    names = [n for aliases in tables.CONTEXT_COLUMN_NAMES.values() for n in aliases]
    assert len(names) == len(set(names))
    for field, aliases in tables.CONTEXT_COLUMN_NAMES.items():
        assert all(tables.context_field(a) == field for a in aliases)
        assert tables.context_field(field.upper()) == field


# -- 2. Parquet numbers that are not the number written -------------------------------------

def _parquet(path: Path, **columns: pa.Array) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize("kind", [pa.float32(), pa.float16(), pa.decimal128(12, 0),
                                  pa.decimal128(14, 2)])
def test_a_float32_or_decimal_phone_column_is_refused(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path,
                                                      kind: pa.DataType) -> None:
    """2025550123 as float32 is 2025550080: another valid number, which was checked."""
    values = [2025550123, 3125550188]
    column = (pa.array([Decimal(v) for v in values], kind) if pa.types.is_decimal(kind)
              else pa.array([float(v) for v in values]).cast(kind, safe=False))
    src = _parquet(tmp_path / "in.parquet", phone=column, name=pa.array(["a", "b"]))
    line = _refused(capsys, src, tmp_path)
    assert "column 'phone'" in line and "store phone numbers as text" in line


def test_a_float32_column_named_with_phone_column_is_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = _parquet(tmp_path / "in.parquet", id=pa.array(["1"]),
                   dial=pa.array([2025550123.0]).cast(pa.float32(), safe=False))
    assert "column 'dial'" in _refused(capsys, src, tmp_path, "--phone-column", "dial")


def test_a_float32_column_that_is_not_the_phone_column_is_read(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = _parquet(tmp_path / "in.parquet", phone=pa.array([LISTED, "3125550188"]),
                   score=pa.array([0.5, 1.25], pa.float32()))
    code, err = _scrub(capsys, src, tmp_path / "o.csv")
    assert code == 0, err
    rows = read_csv(tmp_path / "o.csv")
    assert [(r["score"], r["decision"]) for r in rows] == [("0.5", "block"), ("1.25", "allow")]


def test_a_float64_phone_column_of_whole_numbers_is_read(capsys: pytest.CaptureFixture[str],
                                                         tmp_path: Path) -> None:
    src = _parquet(tmp_path / "in.parquet",
                   phone=pa.array([2025550123.0, 13125550188.0, None, float("nan")]))
    code, err = _scrub(capsys, src, tmp_path / "o.csv")
    assert code == 0, err
    rows = read_csv(tmp_path / "o.csv")
    assert [r["e164"] for r in rows] == ["+12025550123", "+13125550188", "", ""]
    assert [r["decision"] for r in rows] == ["block", "allow", "invalid", "invalid"]


@pytest.mark.parametrize("suffix", [".parquet", ".xlsx"])
def test_a_float64_phone_column_writes_any_verdict_format(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str) -> None:
    """The column's name carries its check (:class:`~dncguard.io.tables.ColumnName`): it is
    written as any other name, and copies or pickles as a plain one."""
    import pickle

    src = _parquet(tmp_path / "in.parquet", phone=pa.array([2025550123.0]))
    code, err = _scrub(capsys, src, tmp_path / f"o{suffix}")
    assert code == 0, err
    header = tables.read_header(src)
    assert isinstance(header[0], tables.ColumnName) and header == ["phone"]
    assert type(pickle.loads(pickle.dumps(header[0]))) is str


@pytest.mark.parametrize("value", [1202555012.5, 2.0**53 + 2])
def test_a_float64_phone_column_with_a_value_that_is_not_whole_is_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, value: float) -> None:
    """``1202555012.5`` read as text is +12025550125, a different valid number."""
    src = _parquet(tmp_path / "in.parquet", phone=pa.array([2025550123.0, value]))
    line = _refused(capsys, src, tmp_path)
    assert "column 'phone'" in line and "row 2" in line and "float64" in line


# -- 3. blank lines before the header, an empty first sheet ---------------------------------

@pytest.mark.parametrize("lead", [b"\n", b"\xef\xbb\xbf\n", b"\r\n\r\n", b"  \n\n"],
                         ids=["blank", "bom-blank", "crlf-crlf", "spaces"])
def test_blank_lines_before_the_header_are_skipped(settings: Settings, tmp_path: Path,
                                                   lead: bytes) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(lead + b"phone,name\r\n" + ROWS)
    data = _both_paths(settings, src, tmp_path)
    assert isinstance(data, bytes)
    rows = read_csv(tmp_path / "both-True.csv")
    assert [(r["phone"], r["name"], r["decision"]) for r in rows] == [
        (LISTED, "a", "block"), ("3125550188", "b", "allow")]


@pytest.mark.parametrize("content", [b"\n\n", b"\xef\xbb\xbf\r\n", b",,\n2025550123,a,b\n"])
def test_a_file_without_a_header_row_but_not_empty_is_refused(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path,
        content: bytes) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    assert "no header row" in str(_both_paths(settings, src, tmp_path))
    assert "no header row" in _refused(capsys, src, tmp_path)


def test_an_empty_file_is_refused_as_a_file_of_blank_lines_is(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"")
    code, err = _scrub(capsys, src, tmp_path / "o.csv")
    assert code == 2 and "no header row" in err
    assert not (tmp_path / "o.csv").exists()


def test_an_empty_first_sheet_is_refused_naming_it(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    import xlsxwriter

    src = tmp_path / "in.xlsx"
    book = xlsxwriter.Workbook(str(src))
    book.add_worksheet("Cover")
    sheet = book.add_worksheet("Contacts")
    sheet.write_row(0, 0, ["phone", "name"])
    sheet.write_row(1, 0, [LISTED, "a"])
    book.close()
    line = _refused(capsys, src, tmp_path)
    assert "first sheet, 'Cover', is empty" in line


# -- 4. a quote that is never closed ---------------------------------------------------------

@pytest.mark.parametrize(("content", "where"), [
    (b"phone,name\n2025550123,\"O'Brien\n3125550188,b\n4155550100,c\n", "row 1 (line 2)"),
    (b"phone,name\r\n2025550123,\"O'Brien\r\n3125550188,b\r\n", "row 1 (line 2)"),
    (b"phone,name\n2025550123,a\n3125550188,\"b", "row 2 (line 3)"),
    (b"phone,name\n2025550123,a\n\"3125550188,b\n4155550100,c\n", "row 2 (line 3)"),
    (b"phone,name\n2025550123,\"a\nb\"\n3125550188,\"x\"\"y\n", "row 2 (line 4)"),
    (b"\"phone,name\n2025550123,a\n", "the header (line 1)"),
])
def test_a_quote_never_closed_is_refused_naming_its_row(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path,
        content: bytes, where: str) -> None:
    """Every line after the quote went into one field: rows missing, exit 0."""
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    refusal = _both_paths(settings, src, tmp_path)
    assert isinstance(refusal, str) and f"{where} opens a quote that is never closed" in refusal
    assert where in _refused(capsys, src, tmp_path)


@pytest.mark.parametrize("content", [
    b"phone,name\n2025550123,a\n3125550188,\"b\nc\"\n",
    b"phone,name\n2025550123,a\n3125550188,\"\"b",
    b"phone,name\n2025550123,a\n3125550188,\"\"",
    b"phone,name\n2025550123,a\n3125550188,\"b\"\"\"",
])
def test_closed_quotes_at_the_end_are_read(settings: Settings, tmp_path: Path,
                                           content: bytes) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    assert isinstance(_both_paths(settings, src, tmp_path), bytes)
    rows = read_csv(tmp_path / "both-True.csv")
    assert [r["decision"] for r in rows] == ["block", "allow"]


# -- 5. a file without a header row ----------------------------------------------------------

@pytest.mark.parametrize("first", ["2025550123,mobile", "+1 202 555 0123,mobile",
                                   "name,(312) 555-0188", "2025550123.0,x"])
def test_a_first_row_of_data_is_refused_as_no_header(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path,
        first: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"{first}\n3125550188,landline\n", encoding="utf-8")
    assert "seems to have no header row" in str(_both_paths(settings, src, tmp_path))
    line = _refused(capsys, src, tmp_path)
    assert "seems to have no header row" in line
    assert "202" not in line and "312" not in line  # the number is not echoed


def test_an_excel_sheet_without_a_header_row_is_refused(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    import xlsxwriter

    src = tmp_path / "in.xlsx"
    book = xlsxwriter.Workbook(str(src))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, [2025550123, "mobile"])
    sheet.write_row(1, 0, [3125550188, "landline"])
    book.close()
    assert "seems to have no header row" in _refused(capsys, src, tmp_path)


def test_a_header_with_digits_that_are_no_phone_number_is_read(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("Phone (e.g. 202-555-0123),2024-01-15,Q3 2024\n2025550123,x,y\n",
                   encoding="utf-8")
    assert _scrub(capsys, src, tmp_path / "o.csv")[0] == 0
    assert [r["decision"] for r in read_csv(tmp_path / "o.csv")] == ["block"]


# -- 6. re-scrubbing a verdict file keeps the user's own columns ------------------------------

@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_verdict_file_rescrubbed_keeps_the_users_e164_column(
        capsys: pytest.CaptureFixture[str], store: ListStore, tmp_path: Path,
        suffix: str) -> None:
    """The input's phone column is named ``e164``: the verdict's own is ``dncguard_e164``,
    and that one (with the rest of the earlier verdict) is what a re-scrub replaces."""
    src = tmp_path / "in.csv"
    src.write_text("name,e164\na,2025550123\nb,3125550188\n", encoding="utf-8")
    first = tmp_path / f"first{suffix}"
    assert _scrub(capsys, src, first)[0] == 0
    store.add_number("3125550188")
    again = tmp_path / "again.csv"
    code, err = _scrub(capsys, first, again)
    assert code == 0, err
    rows = read_csv(again)
    assert list(rows[0]) == ["name", "e164", "dncguard_e164", "decision", "reason_codes",
                             "detail", "next_allowed_at"]
    assert [(r["name"], r["e164"], r["dncguard_e164"], r["decision"]) for r in rows] == [
        ("a", "2025550123", "+12025550123", "block"),
        ("b", "3125550188", "+13125550188", "block")]


def test_the_earlier_verdict_is_the_set_with_the_prefix() -> None:
    header = ["phone", "e164", "dncguard_e164", "decision", "reason_codes", "detail",
              "next_allowed_at"]
    assert tables.old_verdict_columns(header) == [2, 3, 4, 5, 6]
    moved = ["dncguard_e164", "decision", "phone", "e164", "reason_codes", "detail",
             "next_allowed_at"]  # columns moved in a spreadsheet
    assert tables.old_verdict_columns(moved) == [0, 1, 4, 5, 6]
    both = ["phone", "e164", "decision", "reason_codes", "detail", "next_allowed_at",
            *(f"dncguard_{n}" for n in ("e164", "decision", "reason_codes", "detail",
                                        "next_allowed_at"))]
    assert tables.old_verdict_columns(both) == [6, 7, 8, 9, 10]
    assert tables.old_verdict_columns(["e164", "decision", "reason_codes", "detail",
                                "next_allowed_at"]) == []  # never every column


# -- 7. not UTF-8, not comma separated --------------------------------------------------------

@pytest.mark.parametrize(("encoding", "name"), [("utf-16", "UTF-16"), ("utf-16-be", "UTF-16"),
                                                ("utf-32", "UTF-32")])
def test_a_utf16_or_utf32_file_is_refused(capsys: pytest.CaptureFixture[str],
                                          settings: Settings, tmp_path: Path, encoding: str,
                                          name: str) -> None:
    src = tmp_path / "in.csv"
    text = "phone,name\n2025550123,a\n"
    src.write_bytes(("\ufeff" + text if encoding == "utf-16-be" else text).encode(encoding))
    assert f"is {name} text" in str(_both_paths(settings, src, tmp_path))
    assert "save it as UTF-8 CSV" in _refused(capsys, src, tmp_path)


@pytest.mark.parametrize(("sep", "shown"), [(";", "';'"), ("\t", "tabs"), ("|", "'|'")])
def test_a_file_not_comma_separated_is_refused(capsys: pytest.CaptureFixture[str],
                                               settings: Settings, tmp_path: Path, sep: str,
                                               shown: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"phone{sep}name\n2025550123{sep}a\n3125550188{sep}b\n", encoding="utf-8")
    assert "must be comma separated" in str(_both_paths(settings, src, tmp_path))
    line = _refused(capsys, src, tmp_path)
    assert f"separated by {shown}" in line and "must be comma separated" in line


@pytest.mark.parametrize(("header", "why"), [(b"phone,pr\xe9nom", "not valid UTF-8"),
                                             (b"phone,na\x00me", "NUL")])
def test_a_header_that_is_not_utf8_text_is_refused(capsys: pytest.CaptureFixture[str],
                                                   settings: Settings, tmp_path: Path,
                                                   header: bytes, why: str) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(header + b"\n2025550123,a\n")
    assert why in str(_both_paths(settings, src, tmp_path))
    assert why in _refused(capsys, src, tmp_path)
