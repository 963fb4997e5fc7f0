"""A declared emergency that could not apply as written is refused when it is read.

Each was accepted, and then allowed calls it was meant to stop: an end before the start (no
day covered), a ZIP prefix of another state (``100``, New York, on a US-LA declaration: the
state's numbers with a ZIP code were allowed), and a misspelt column of the emergencies file
(``ends``, ``zip``: ignored, the declaration open-ended or statewide)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from dncguard.config import load_settings
from dncguard.errors import ConfigError
from dncguard.sources.rules import EmergencyDeclaration, RulesCheck, RulesSettings

from ..conftest import cli
from .conftest import run_check

#: 11:00 in New Orleans on a day of the declarations below.
DURING = datetime(2026, 9, 2, 16, tzinfo=UTC)


def _declare(**given: object) -> EmergencyDeclaration:
    return EmergencyDeclaration(**{"jurisdiction": "US-LA",  # type: ignore[arg-type]
                                   "start": date(2026, 9, 1), **given})


class TestDates:
    def test_an_end_before_the_start_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="the end 2026-08-31 is before the start "
                                                  "2026-09-01: the declaration would cover no "
                                                  "day"):
            _declare(end=date(2026, 8, 31))

    def test_a_one_day_emergency_is_accepted(self) -> None:
        assert _declare(end=date(2026, 9, 1)).covers(date(2026, 9, 1))

    def test_in_the_settings_file(self, tmp_path: Path) -> None:
        home = tmp_path / "home"
        home.mkdir()
        (home / "dncguard.toml").write_text(
            '[[rules.emergencies]]\njurisdiction = "US-LA"\nstart = 2026-09-03\n'
            "end = 2026-09-01\n")
        with pytest.raises(ConfigError, match=r"invalid \[rules\] settings: "
                                              r"emergencies\.0: the end 2026-09-01 is before"):
            load_settings().section(RulesSettings)


class TestZipPrefixes:
    @pytest.mark.parametrize("zips", [["100"], ["1"], ["70112", "10001"], ["00000"]])
    def test_a_prefix_of_no_zip_of_the_state_is_refused(self, zips: list[str]) -> None:
        with pytest.raises(ValidationError, match="not that of any ZIP code of US-LA"):
            _declare(zips=zips)

    @pytest.mark.parametrize("zips", [["701"], ["7"], ["70112"], ["700", "701", "708"]])
    def test_a_prefix_of_the_states_zips_is_accepted(self, zips: list[str]) -> None:
        assert _declare(zips=zips).zips == zips

    def test_a_new_york_prefix_on_louisiana_no_longer_allows_its_numbers(
            self, make_check: Callable[..., RulesCheck]) -> None:
        """The reviewer's case: refused; the state's own prefix still defers the number."""
        with pytest.raises(ValidationError, match="100 is not that of any ZIP code of US-LA"):
            make_check(emergencies=[{"jurisdiction": "US-LA", "start": "2026-09-01",
                                     "zips": ["100"]}])
        check = make_check(emergencies=[_declare(zips=["701"])])
        assert [r.code for r in run_check(check, "+15045550100", DURING, zip="70112")] == [
            "STATE_OF_EMERGENCY"]


class TestEmergenciesFile:
    @pytest.mark.parametrize(("header", "column"), [
        ("jurisdiction,start,ends", "'ends'"),
        ("jurisdiction,start,end,zip", "'zip'"),
        ("jurisdiction,start,bogus", "'bogus'"),
    ])
    def test_an_unknown_column_is_refused_naming_it(
            self, make_check: Callable[..., RulesCheck], tmp_path: Path, header: str,
            column: str) -> None:
        path = tmp_path / "em.csv"
        path.write_text(f"{header}\nUS-LA,2026-09-01,2026-09-03\n")
        with pytest.raises(ConfigError) as refused:
            make_check(emergencies_file=path)
        assert str(refused.value) == (
            f"{path}: unknown column {column}; the columns are jurisdiction,start,end,zips,"
            "note (jurisdiction and start required)")

    def test_a_row_with_more_values_than_columns_is_refused(
            self, make_check: Callable[..., RulesCheck], tmp_path: Path) -> None:
        """The end given without its column was dropped: open-ended."""
        path = tmp_path / "em.csv"
        path.write_text("jurisdiction,start\nUS-LA,2026-09-01,2026-09-03\n")
        with pytest.raises(ConfigError, match="row 1 has more values than the header"):
            make_check(emergencies_file=path)

    def test_a_column_given_twice_is_refused(self, make_check: Callable[..., RulesCheck],
                                             tmp_path: Path) -> None:
        path = tmp_path / "em.csv"
        path.write_text("jurisdiction,start,end,END\nUS-LA,2026-09-01,2026-09-03,\n")
        with pytest.raises(ConfigError, match="column 'end' given more than once"):
            make_check(emergencies_file=path)

    def test_dates_and_zips_are_checked_by_row(self, make_check: Callable[..., RulesCheck],
                                               tmp_path: Path) -> None:
        path = tmp_path / "em.csv"
        path.write_text("jurisdiction,start,end,zips\nUS-LA,2026-09-03,2026-09-01,\n")
        with pytest.raises(ConfigError, match=r"row 1, declaration: the end 2026-09-01 is "
                                              "before the start"):
            make_check(emergencies_file=path)
        path.write_text("jurisdiction,start,end,zips\nUS-LA,2026-09-01,,701;100\n")
        with pytest.raises(ConfigError, match="row 1, declaration: ZIP prefix 100 is not"):
            make_check(emergencies_file=path)

    def test_every_column_in_any_case_is_read(self, make_check: Callable[..., RulesCheck],
                                              tmp_path: Path) -> None:
        path = tmp_path / "em.csv"
        path.write_text(" Jurisdiction ,START,End,zips,note\n"
                        "US-LA,2026-09-01,2026-09-03,701;703,Hurricane\n")
        check = make_check(emergencies_file=path)
        assert [(d.end, d.zips, d.note) for d in check.emergencies] == [
            (date(2026, 9, 3), ["701", "703"], "Hurricane")]

    def test_through_the_cli(self, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
        """``dncguard check`` with a misspelt column: one line naming it, exit 2."""
        path = tmp_path / "em.csv"
        path.write_text("jurisdiction,start,ends\nUS-LA,2026-09-01,2026-09-03\n")
        monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
        monkeypatch.setenv("DNCGUARD_RULES_EMERGENCIES_FILE", str(path))
        code, out, err = cli(capsys, "check", "+15045550100", "--at", "2026-09-02T16:00:00Z")
        assert (code, out) == (2, "")
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "unknown column 'ends'" in err
