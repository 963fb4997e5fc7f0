"""``config show`` without the database, and ``check`` refusing a flag it cannot read for
the number (settings review, finding 11; scrub review, finding 10b)."""

from __future__ import annotations

import json

import pytest

from .conftest import cli

#: Nothing listens on port 9 (discard) of the loopback: the connection is refused at once.
UNREACHABLE = "postgresql+psycopg://u:S3cr3tPw@127.0.0.1:9/db"


class TestConfigShowWithoutTheDatabase:
    """The settings need no database; only what each campaign checks (the lists the
    database holds) does. It printed "the database is unavailable" and no setting."""

    @pytest.fixture(autouse=True)
    def _unreachable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        pytest.importorskip("psycopg")
        monkeypatch.setenv("DNCGUARD_DATABASE_URL", UNREACHABLE)
        monkeypatch.setenv("DNCGUARD_SERVER_PORT", "8123")

    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = cli(capsys, "config", "show", "--json")
        assert code == 2
        data = json.loads(out)
        assert data["server"]["port"] == 8123
        assert data["core"]["database_url"] == "postgresql+psycopg://u:***@127.0.0.1:9/db"
        assert set(data) >= {"core", "audit", "cxone", "http_batch", "prefilter", "rules"}
        assert "the database is unavailable" in data["campaign_checks"]["unavailable"]
        assert "the database is unavailable (OperationalError" in err
        assert "Traceback" not in err and "S3cr3tPw" not in out + err

    def test_tables(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = cli(capsys, "config", "show")
        assert code == 2
        assert "8123" in out and "campaign_checks" in out and "unavailable" in out
        assert "the database is unavailable (OperationalError" in err


def test_config_show_with_the_database_shows_the_campaign_checks(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "config", "show", "--json")
    assert code == 0
    assert json.loads(out)["campaign_checks"]["default"]["consent"] is True


class TestCheckRefusesAPlaceOfAnotherCountry:
    """A flag ``check`` cannot read for the number exits 2 naming it, as ``rules when``
    does and as the README says ("A refused flag exits 2 naming the flag"): a UK postcode
    on a US number gave an ``error`` verdict (CONTEXT_INVALID) and exit 0."""

    @pytest.mark.parametrize("json_flag", [[], ["--json"]])
    def test_a_uk_postcode_on_a_us_number(self, capsys: pytest.CaptureFixture[str],
                                          json_flag: list[str]) -> None:
        code, out, err = cli(capsys, "check", "2025550100", "--zip", "SW1A 1AA", *json_flag)
        assert (code, out) == (2, "")
        assert err.startswith("error: --zip: 'SW1A 1AA' is a UK postcode but the number is a "
                              "US number")
        same, _, when_err = cli(capsys, "rules", "when", "2025550100", "--zip", "SW1A 1AA")
        assert (same, when_err) == (2, err)

    def test_an_australian_state_code_on_an_australian_number(
            self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = cli(capsys, "check", "+61291234567", "--state", "WA", "--json")
        assert (code, out) == (2, "")
        assert err.startswith("error: --state: 'WA' on an Australian number")

    def test_a_flag_that_cannot_be_read_is_refused_as_before(
            self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = cli(capsys, "check", "2025550100", "--line-type", "pager")
        assert (code, out) == (2, "")
        assert err.startswith("error: --line-type:")

    @pytest.mark.parametrize(("args", "region"), [
        (["2025550100", "--zip", "20001"], "US"),
        (["02079460000", "--region", "UK", "--zip", "SW1A 1AA"], "GB"),
        (["not a number", "--zip", "SW1A 1AA"], None),  # unreadable: the check says invalid
    ])
    def test_places_of_the_number_s_country_are_checked(
            self, capsys: pytest.CaptureFixture[str], args: list[str],
            region: str | None) -> None:
        code, out, _ = cli(capsys, "check", *args, "--json")
        assert code == 0
        verdict = json.loads(out)
        assert verdict["region"] == region
        assert verdict["decision"] != "error"
