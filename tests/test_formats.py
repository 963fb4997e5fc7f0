"""File formats: Excel in and out, the output format from the name or refused, numbers a
spreadsheet saved as floats, and change-list rejections by line (issue 14, formats)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import fastexcel
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from dncguard.audit._jobs import prove
from dncguard.cli import run
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import InputError
from dncguard.lists.store import ListStore

from .conftest import AT, read_csv


def _sheet(path: Path) -> list[dict[str, str]]:
    """The rows of a workbook's first sheet, and that none of its cells is a formula."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        assert not any(b"<f>" in z.read(n) for n in z.namelist() if n.startswith("xl/work"))
    table = fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string").to_arrow()
    return [{k: v or "" for k, v in row.items()} for row in table.to_pylist()]


def _workbook(path: Path, rows: list[list[object]]) -> Path:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, str):
                sheet.write_string(r, c, value)  # text, even "=SUM(A1)"
            elif value is not None:
                sheet.write_number(r, c, value)
    book.close()
    return path


@pytest.mark.parametrize("columnar", [True, False], ids=["array-path", "row-path"])
def test_excel_in_and_out(settings: Settings, store: ListStore, tmp_path: Path,
                          write_lines: Callable[..., Path], columnar: bool) -> None:
    """An .xlsx contact sheet (phones stored as numbers) scrubs into an .xlsx verdict sheet
    whose cells are text (a formula stays text)."""
    store.import_file(write_lines(["2025550101"]), kind="internal", name="internal")
    src = _workbook(tmp_path / "contacts.xlsx", [
        ["name", "phone"], ["a", 2025550100], ["b", 2025550101.0], ["=SUM(A1)", "junk"]])
    out = tmp_path / "verdicts.xlsx"
    summary = Scrubber(settings, clock=lambda: AT, columnar=columnar).scrub_file(src, out,
                                                                                 at=AT)
    rows = _sheet(out)
    assert [r["e164"] for r in rows] == ["+12025550100", "+12025550101", ""]
    assert [r["decision"] for r in rows] == ["allow", "block", "invalid"]
    assert rows[2]["name"] == "=SUM(A1)"  # text in a cell, never a formula
    assert summary.total_rows == 3
    # recorded in the audit trail like any verdict file: every row proves
    from dncguard import audit

    log = audit.audit_log(settings)
    job = summary.audit_jobs[""]
    proofs = [prove(log, job, n) for n in (1, 2, 3)]
    assert all(audit.verify_proof(p) for p in proofs)
    assert [p["leaf"]["decision"] for p in proofs] == ["allow", "block", "invalid"]


def test_float_phones_in_csv_are_digits(settings: Settings, tmp_path: Path,
                                        write_csv: Callable[..., Path]) -> None:
    """``2025550123.0`` (a number a spreadsheet saved as a float) is the number, on both
    paths, byte for byte."""
    src = write_csv([["phone"], ["2025550123.0"], ["+12025550124.00"], ["2.02555E+09"]])
    outs = []
    for columnar in (True, False):
        out = tmp_path / f"o-{columnar}.csv"
        Scrubber(settings, clock=lambda: AT, columnar=columnar).scrub_file(src, out, at=AT)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    rows = read_csv(tmp_path / "o-True.csv")
    assert [r["e164"] for r in rows] == ["+12025550123", "+12025550124", ""]
    assert rows[2]["decision"] == "invalid"  # rounded away: never guessed


def test_output_format_from_the_name_or_refused(capsys: pytest.CaptureFixture[str],
                                                write_csv: Callable[..., Path],
                                                tmp_path: Path, settings: Settings) -> None:
    src = write_csv([["phone"], ["2025550123"]])
    code = run(["scrub", str(src), "-o", str(tmp_path / "out.txt")])
    err = capsys.readouterr().err
    assert code == 2 and ".xlsx" in err and not (tmp_path / "out.txt").exists()
    with pytest.raises(InputError):
        Scrubber(settings).scrub_file(src, tmp_path / "out.xls")
    code = run(["scrub", str(src), "-o", str(tmp_path / "out.parquet"), "-q"])
    assert code == 0
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "out.parquet").column("e164").to_pylist() == [
        "+12025550123"]


def test_change_list_rejections_name_the_line(store: ListStore, tmp_path: Path,
                                              write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["2025550100"]), kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=date(2026, 11, 1))
    changes = tmp_path / "changes.txt"
    changes.write_text("npa,number,flag\n202,5550101,A\n999,12,A\n202,5550100,D\n",
                       encoding="utf-8")
    result = store.import_file(changes, kind="national", name="us-ftc", jurisdiction="US",
                               snapshot_date=date(2026, 11, 2), changes=True)
    samples = json.dumps(result.model_dump(mode="json") if hasattr(result, "model_dump")
                         else result.__dict__, default=str)
    assert "changes.txt:3" in samples


@pytest.mark.parametrize("columnar", [True, False], ids=["array-path", "row-path"])
def test_a_verdict_file_read_again_gets_a_new_verdict_in_place(
        settings: Settings, store: ListStore, tmp_path: Path,
        write_csv: Callable[..., Path], columnar: bool) -> None:
    """Re-scrubbing last run's verdict file after an opt-out replaces the old verdict
    columns (with a warning); it never leaves ``decision=allow`` beside a new block."""
    src = write_csv([["name", "phone"], ["a", "2025550100"], ["b", "2025550101"]])
    first = tmp_path / "first.csv"
    Scrubber(settings, columnar=columnar).scrub_file(src, first, at=AT)
    store.add_number("2025550101", reason="asked")
    again = tmp_path / "again.csv"
    summary = Scrubber(settings, columnar=columnar).scrub_file(first, again, at=AT)
    rows = read_csv(again)
    assert list(rows[0]) == ["name", "phone", "e164", "decision", "reason_codes", "detail",
                             "next_allowed_at"]
    assert [r["decision"] for r in rows] == ["allow", "block"]
    assert summary.warnings and "earlier verdict" in summary.warnings[0]


def test_parquet_output_is_typed(settings: Settings, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 write_csv: Callable[..., Path]) -> None:
    """Parquet verdicts: ``next_allowed_at`` is a UTC timestamp, null when there is none, and
    the audit trail proves its rows with the same text the CSV file has."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dncguard import audit

    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    cfg = settings  # the rules read their settings when the scrubber's checks are built
    src = write_csv([["phone"], ["4155550100"], ["2125550100"], ["junk"]])
    night = datetime_at("2026-11-19T13:00:00Z")  # 05:00 in San Francisco, 08:00 in New York
    csv_out, pq_out = tmp_path / "v.csv", tmp_path / "v.parquet"
    Scrubber(cfg).scrub_file(src, csv_out, at=night)
    summary = Scrubber(cfg).scrub_file(src, pq_out, at=night)
    table = pq.read_table(pq_out)
    assert table.schema.field("next_allowed_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("decision").type == pa.string()
    typed = table.column("next_allowed_at").to_pylist()
    text = [r["next_allowed_at"] for r in read_csv(csv_out)]
    assert text[0] and typed[0] is not None and typed[1] is None and typed[2] is None
    assert typed[0].isoformat().replace("+00:00", "Z") == text[0]
    log = audit.audit_log(cfg)
    proof = prove(log, summary.audit_jobs[""], 1)
    assert audit.verify_proof(proof) and proof["leaf"]["next_allowed_at"] == text[0]


def datetime_at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="=+-@\t\r'x1 .()", max_size=8) | st.text(max_size=8),
                min_size=1, max_size=30))
def test_undefuse_gives_back_what_defuse_was_given(cells: list[str]) -> None:
    """The verdict file's defusing is undone exactly on reading (the audit reads the verdict
    columns back), cell by cell and on arrays; except for a cell that itself starts with an
    apostrophe before a formula character, which reads back without it (no verdict column
    starts so)."""
    import pyarrow as pa

    from dncguard.io.verdict_file import defuse, defuse_array, undefuse, undefuse_array

    cells = [c for c in cells if not (c[:1] == "'" and c[1:2] and c[1] in "=+-@\t\r")]
    assert [undefuse(defuse(c)) for c in cells] == cells
    defused = defuse_array(pa.array(cells, pa.string()))
    assert defused.to_pylist() == [defuse(c) for c in cells]
    assert undefuse_array(defused).to_pylist() == cells
    # a large_string column (8-byte offsets) is defused alike (it raised)
    assert defuse_array(pa.array(cells, pa.large_string())).to_pylist() == defused.to_pylist()


def test_a_verdict_file_with_a_long_cell_reads_back_in_a_fresh_process(tmp_path: Path) -> None:
    """Reading a verdict file back (the audit's search, report and proofs) sets its own CSV
    field limit: a cell longer than Python's default 131,072 characters reads in a process
    that never imported the readers of contact files."""
    import subprocess
    import sys

    path = tmp_path / "results.csv"
    path.write_text("phone,note,e164,decision,reason_codes,detail,next_allowed_at\r\n"
                    f"2015550000,{'x' * 200_000},+12015550000,allow,,,\r\n", "utf-8")
    code = ("import sys\nfrom pathlib import Path\n"
            "from dncguard.io.verdict_file import verdict_cells\n"
            "assert 'dncguard.io.tables' not in sys.modules\n"
            "print(list(verdict_cells(Path(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "+12015550000" in out.stdout
