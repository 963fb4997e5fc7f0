"""Two columns giving one context field, or two phone columns differing only in case, are
refused: reading one and ignoring the other would judge rows by a value chosen silently."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.cli import run
from dncguard.errors import InputError
from dncguard.io.tables import context_columns


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
