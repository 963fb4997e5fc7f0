"""``dncguard scrub --timezone``: the default time zone of rows that give none, as the README
lists it among the context flags (``check`` and ``rules when`` had it, ``scrub`` refused it
as an unknown option); a zone that is not understood is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import cli, read_csv

AT = "2026-11-18T13:30:00Z"  # 08:30 in New York, 05:30 in Los Angeles (a Wednesday)


def test_scrub_timezone_is_the_default_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REGISTRY_OPTIONAL", '["*"]')
    src = tmp_path / "in.csv"
    src.write_text("phone,timezone\n2125550123,\n2125550124,America/New_York\n")
    out = tmp_path / "out.csv"
    code, _, err = cli(capsys, "scrub", str(src), "-o", str(out), "--at", AT, "-q",
                       "--line-type", "landline", "--timezone", "America/Los_Angeles")
    assert code == 0, err
    rows = read_csv(out)
    assert [r["decision"] for r in rows] == ["defer", "allow"]  # the row's own zone stands
    assert "OUTSIDE_CALLING_WINDOW" in rows[0]["reason_codes"]
    code, out_text, err = cli(capsys, "scrub", str(src), "-o", str(tmp_path / "x.csv"),
                              "--timezone", "EST", "-q")
    assert code == 2 and "Traceback" not in err and "EST" in err
