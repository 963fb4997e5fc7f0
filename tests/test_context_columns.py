"""Two columns giving one context field, or two phone columns differing only in case, are
refused: reading one and ignoring the other would judge rows by a value chosen silently."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.cli import run
from dncguard.errors import InputError
from dncguard.io.tables import context_columns, context_near_misses


def test_context_columns() -> None:
    assert context_columns(["phone", "State", "ZIP", "country"]) == {
        "state": 1, "zip": 2, "region": 3}
    for header, field in ((["phone", "state", "State"], "state"),
                          (["region", "phone", "country"], "region"),
                          (["zip", " Zip "], "zip")):
        with pytest.raises(InputError, match=f"both give the rows' {field}"):
            context_columns(header)


@pytest.mark.parametrize("rows, flags, message", [
    ([["phone", "state", "State"], ["2025550100", "DC", "TX"]], [],
     "columns 'state' and 'State' both give the rows' state"),
    ([["phone", "region", "country"], ["2025550100", "US", "GB"]], [],
     "columns 'region' and 'country' both give the rows' region"),
    ([["Phone", "PHONE"], ["2025550100", "2025550101"]], ["--phone-column", "phone"],
     "several columns are named 'phone'"),
])
def test_the_scrub_refuses_them(capsys: pytest.CaptureFixture[str],
                                write_csv: Callable[..., Path], tmp_path: Path,
                                rows: list[list[str]], flags: list[str], message: str) -> None:
    source = write_csv(rows)
    code = run(["scrub", str(source), "-o", str(tmp_path / "o.csv"), "-q", *flags])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(("column", "field"), [
    ("timezone_name", "timezone"), ("Time Zone Name", "timezone"), ("tz_database", "timezone"),
    ("zip5", "zip"), ("Sate", "state"), ("billing_state", "state"),
    ("line_type_code", "line_type"),
])
def test_a_column_that_looks_like_context_is_named_in_a_warning(
        capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path], tmp_path: Path,
        column: str, field: str) -> None:
    """A column whose name holds a context name, or nearly spells one, is kept as data and
    not read (a time zone in ``timezone_name`` was not used, and a row it would defer came
    back ``allow`` without a word): the scrub now says so, on screen and in the summary."""
    source = write_csv([["phone", column], ["2025550123", "America/Los_Angeles"]])
    code = run(["scrub", str(source), "-o", str(tmp_path / "o.csv"), "-q"])
    assert code in (0, 3)
    err = capsys.readouterr().err
    assert f"column '{column}' was not read as the rows' {field}" in err
    summary = json.loads((tmp_path / "o.summary.json").read_text(encoding="utf-8"))
    assert any(column in w for w in summary["warnings"])


def test_context_names_and_plain_columns_get_no_warning() -> None:
    assert context_near_misses(["phone", "timezone", "ZIP Code", "State/Province", "name",
                                "email", "notes", "phone_type", "id"]) == []
