"""The rules, consent and attempts commands (the coordinator registers them on `dncguard`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from dncguard.cli._rules import attempts_app, consent_app, rules_app
from dncguard.errors import InputError
from dncguard.sources.rules import load_ruleset

app = typer.Typer()
app.add_typer(rules_app, name="rules")
app.add_typer(consent_app, name="consent")
app.add_typer(attempts_app, name="attempts")
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_show() -> None:
    code, out = _run("rules", "show", "us-ri")
    assert code == 0 and "R.I. Gen. Laws 5-61-2" in out and "RI_STATE_AND_FEDERAL_HOLIDAYS" in out
    code, out = _run("rules", "show", "US-FL", "--json")
    data = json.loads(out)
    assert data["ruleset"].startswith("2026.11.0+")
    assert {r["id"] for r in data["rules"]} == {"calling_window", "same_subject_cap", "state_dnc"}
    code, out = _run("rules", "show", "US-WV")
    assert code == 0 and "federal" in out
    code, out = _run("rules", "show", "XX")
    assert code == 2


def test_when_json() -> None:
    code, out = _run("rules", "when", "+18505550100", "--at", "2026-11-21T12:00:00Z",
                     "--days", "2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["timezone"] == "America/New_York;America/Chicago"
    assert data["how"] == "npa-table+npa-nxx"
    assert data["zones"] == ["America/New_York", "America/Chicago"]
    assert data["at"] == "2026-11-21T12:00:00Z" and data["days"] == 2
    first = data["windows"][0]
    assert (first["start"], first["end"]) == ("2026-11-21T14:00:00Z", "2026-11-22T01:00:00Z")
    assert first["local"] == [
        {"zone": "America/New_York", "start": "2026-11-21T09:00:00-05:00",
         "end": "2026-11-21T20:00:00-05:00"},
        {"zone": "America/Chicago", "start": "2026-11-21T08:00:00-06:00",
         "end": "2026-11-21T19:00:00-06:00"}]
    assert {r["code"] for r in data["reasons"]} == {"OUTSIDE_CALLING_WINDOW", "REGISTRY_MISSING"}


def test_when_table_and_flags() -> None:
    code, out = _run("rules", "when", "2125550100", "--at", "2026-11-22T15:00:00Z",
                     "--state", "UT", "--purpose", "telemarketing", "--call-type", "manual",
                     "--line-type", "landline")
    assert code == 0 and "America/Denver" in out and "DAY_PROHIBITED" in out
    assert "2125550100" not in out  # numbers are masked
    code, _ = _run("rules", "when", "2125550100", "--purpose", "sales")
    assert code == 2
    code, _ = _run("rules", "when", "2125550100", "--at", "2026-11-22T15:00:00")
    assert code == 2


@pytest.mark.parametrize(("phone", "flag", "value", "words"), [
    ("2025550100", "--zip", "SW1A 1AA", "is a UK postcode but the number is a US number"),
    ("+61892345678", "--state", "WA", "also the code of Western Australia"),
    ("+61892345678", "--state", "nt", "also the code of Northern Territory")])
def test_when_refuses_a_place_the_scrub_refuses(phone: str, flag: str, value: str, words: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``rules when`` read a UK postcode on a US number as no address and WA on a Perth
    number as Washington (its windows then included Los Angeles), where a scrub refuses both."""
    from dncguard.cli import run

    code = run(["rules", "when", phone, "--at", "2026-12-02T03:00:00Z", flag, value])
    out, err = capsys.readouterr()
    assert code == 2 and words in " ".join(err.split()) and flag in err
    code = run(["rules", "when", "+442071234567", "--at", "2026-12-02T03:00:00Z", "--zip",
                "SW1A 1AA"])
    assert code == 0 and "Europe/London" in capsys.readouterr().out


def test_consent_and_attempts(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("phone,type,date\n+12125550100,express,2026-01-01\nx,express,2026-01-01\n")
    code, out = _run("consent", "import", str(f))
    assert code == 1 and "nothing imported, 1 rows rejected of 2" in out  # all or nothing
    code, out = _run("consent", "add", "+12125550101", "--type", "ebr_inquiry",
                     "--date", "2026-10-01")
    assert code == 0 and "added" in out
    code, out = _run("attempts", "record", "+13055550100", "--at", "2026-11-18T10:00:00-05:00",
                     "--campaign", "default", "--purpose", "telemarketing", "--outcome",
                     "no_answer")
    assert code == 0 and "recorded" in out
    code, out = _run("attempts", "record", "+13055550100", "--at", "2026-11-18T10:00:00-05:00",
                     "--campaign", "default", "--purpose", "telemarketing")
    assert "already recorded" in out
    a = tmp_path / "a.csv"
    a.write_text("phone,at\n+13055550100,2026-11-18T11:00:00Z\n")
    code, out = _run("attempts", "import", str(a), "--purpose", "telemarketing")
    assert code == 0 and "1 added" in out


def test_missing_columns_is_an_input_error(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("number,kind\n1,2\n")
    with pytest.raises(InputError, match="missing column"):
        _run("consent", "import", str(f))


@pytest.mark.parametrize("jurisdiction", load_ruleset().jurisdictions())
def test_show_every_jurisdiction(jurisdiction: str) -> None:
    code, out = _run("rules", "show", jurisdiction, "--json")
    assert code == 0 and json.loads(out)["jurisdiction"] == jurisdiction
    code, out = _run("rules", "show", jurisdiction)
    assert code == 0 and jurisdiction in out
