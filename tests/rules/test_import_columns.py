"""``consent import`` / ``attempts import`` understand every column or refuse the file.

A column the import does not know used to be dropped silently: a revocation in a column
named ``revoked_on`` was lost and the number stayed callable on its consent. Now a header
with an unknown column, a column twice, or no header at all refuses the whole file (exit 2,
one line naming the column and listing the accepted ones; nothing imported), and a value
with no column name rejects its row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncguard.cli import run
from dncguard.config import Settings
from dncguard.errors import InputError
from dncguard.sources.rules.stores import AttemptStore, ConsentStore

NUMBER = "+12025550123"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
CONSENT_ROW = f"{NUMBER},express_written,2025-01-05,2026-06-01\n"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def refused(code: int, out: str, err: str, *words: str) -> None:
    """Exit 2, one line on stderr naming what was wrong, nothing on stdout, no traceback."""
    assert code == 2, (out, err)
    assert out == ""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_refuses_a_misnamed_revocation_column(capsys: pytest.CaptureFixture[str],
                                                  settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, "phone,type,date,revoked_on\n" + CONSENT_ROW)
    code, out, err = cli(capsys, "consent", "import", str(path), "--json")
    refused(code, out, err, "revoked_on", "unknown column", "expires, revoked",
            "nothing was imported")
    assert ConsentStore(settings).records(NUMBER) == []


def test_cli_refuses_an_unknown_attempts_column(capsys: pytest.CaptureFixture[str],
                                                settings: Settings, tmp_path: Path) -> None:
    path = write(tmp_path, "phone,at,campain\n+13055550100,2026-11-18T11:00:00Z,spring\n")
    code, out, err = cli(capsys, "attempts", "import", str(path))
    refused(code, out, err, "campain", "campaign, purpose, subject, outcome")
    assert AttemptStore(settings).for_numbers(["+13055550100"], EPOCH) == {}


@pytest.mark.parametrize(("store", "text", "words"), [
    ("consent", "phone,type,date,revoked_on\n" + CONSENT_ROW, ["unknown column(s) revoked_on"]),
    ("consent", "phone,type,date,revoked,Revoked \n" + CONSENT_ROW + "\n",
     ["column(s) revoked given twice"]),
    ("consent", "number,type,date\n" + CONSENT_ROW,
     ["unknown column(s) number", "missing column(s) phone"]),
    ("consent", "", ["no header row", "phone, type, date"]),
    ("consent", ",,\n" + CONSENT_ROW, ["no header row"]),
    ("attempts", "phone,at,outcome,notes\n+13055550100,2026-11-18T11:00:00Z,,x\n",
     ["unknown column(s) notes", "phone, at and optionally campaign"]),
    ("attempts", "phone,at,at\n+13055550100,2026-11-18T11:00:00Z,\n",
     ["column(s) at given twice"]),
], ids=["unknown", "twice", "unknown-and-missing", "empty-file", "blank-header",
        "attempts-unknown", "attempts-twice"])
def test_library_refuses_the_header_and_imports_nothing(
        settings: Settings, tmp_path: Path, store: str, text: str, words: list[str]) -> None:
    path = write(tmp_path, text)
    importer = ConsentStore(settings) if store == "consent" else AttemptStore(settings)
    with pytest.raises(InputError) as caught:
        importer.import_csv(path)
    for word in words:
        assert word in str(caught.value)
    assert "\n" not in str(caught.value)
    assert ConsentStore(settings).records(NUMBER) == []
    assert AttemptStore(settings).for_numbers(["+13055550100"], EPOCH) == {}


def test_a_value_with_no_column_name_rejects_its_row(settings: Settings,
                                                     tmp_path: Path) -> None:
    """A trailing empty header cell is harmless while its values are blank; a value under it
    (or past the header's end) is never dropped: its row is rejected (and then nothing is
    imported)."""
    path = write(tmp_path, "phone,type,date,\n"
                           f"{NUMBER},express_written,2025-01-05,2026-06-01\n"
                           "+12025550124,express_written,2025-01-05,\n"
                           "+12025550125,express_written,2025-01-05,,2026-06-01\n")
    report = ConsentStore(settings).import_csv(path)
    assert (report.rows, report.added) == (3, 0)
    assert [(e.line, e.field) for e in report.errors] == [(2, "column 4"), (4, "column 5")]
    assert "'2026-**-**'" in report.errors[0].message  # quoted masked: it may be a number
    assert ConsentStore(settings).records(NUMBER) == []
    assert ConsentStore(settings).records("+12025550124") == []
    attempts = write(tmp_path, "phone,at\n+13055550100,2026-11-18T11:00:00Z,spring\n",
                     name="a.csv")
    report = AttemptStore(settings).import_csv(attempts, purpose="telemarketing")
    assert report.added == 0 and [e.field for e in report.errors] == ["column 3"]


def test_misnamed_revocation_never_makes_the_number_callable(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The reproduction: with ``revoked_on`` the call used to be allowed on the (revoked)
    consent; the file is now refused, so no consent stands and the call is blocked."""
    registry = write(tmp_path, "2025550100\n", name="reg.txt")
    code, _, err = cli(capsys, "lists", "import", str(registry), "--kind", "national",
                       "--jurisdiction", "US", "--snapshot-date", "2026-11-20",
                       "--name", "us-ftc")
    assert code == 0, err

    def check() -> dict[str, object]:
        code, out, err = cli(capsys, "check", NUMBER, "--at", "2026-12-02T17:00:00Z",
                             "--call-type", "prerecorded", "--json")
        assert code in (0, 1), err
        got: dict[str, object] = json.loads(out)
        return got

    bad = write(tmp_path, "phone,type,date,revoked_on\n" + CONSENT_ROW, name="bad.csv")
    code, out, err = cli(capsys, "consent", "import", str(bad), "--json")
    refused(code, out, err, "revoked_on")
    got = check()
    codes = [r["code"] for r in got["reasons"]]  # type: ignore[attr-defined]
    assert got["decision"] != "allow" and "CONSENT_REQUIRED" in codes, got
    assert "EXEMPT_CONSENT" not in codes
    # the same file with the column spelt right (any case) is imported and revokes
    good = write(tmp_path, "Phone,Type,Date,Revoked\n" + CONSENT_ROW, name="good.csv")
    code, out, err = cli(capsys, "consent", "import", str(good), "--json")
    assert code == 0 and json.loads(out)["added"] == 1, err
    got = check()
    codes = [r["code"] for r in got["reasons"]]  # type: ignore[attr-defined]
    assert got["decision"] != "allow" and "CONSENT_REQUIRED" in codes, got
