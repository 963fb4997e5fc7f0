"""A time zone given for a number narrows its zones only within the number's country; one
outside the country is refused for that number (never standing for the number's own zones):
an Australian mobile with ``--timezone UTC`` came back ``allow`` at 22:00 in Sydney, and a
Canadian non-geographic number with ``Asia/Tokyo`` was judged in Tokyo only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.engine.context import clean_context
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import ContextError
from dncguard.models import Decision
from dncguard.sources.rules import resolve_location

from .conftest import cli, read_csv

AU_MOBILE = "+61412345678"
#: Wednesday 2026-12-02 11:00 UTC: 22:00 in Sydney (outside the window), 19:00 in Perth and
#: 11:00 UTC (inside it), 06:00 in New York
EVENING = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


@pytest.fixture
def rules_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def test_a_foreign_zone_does_not_replace_an_australian_mobiles_zones() -> None:
    loc = resolve_location(AU_MOBILE, "AU", None, {"timezone": "UTC"})
    assert "Australia/Sydney" in loc.zones and "UTC" in loc.zones
    loc = resolve_location(AU_MOBILE, "AU", None, {"timezone": "America/New_York"})
    assert "Australia/Sydney" in loc.zones and "Australia/Perth" in loc.zones
    # a zone of the mobile's own narrows it, and so does one keeping the same local time
    assert resolve_location(AU_MOBILE, "AU", None,
                            {"timezone": "Australia/Perth"}).zones == ("Australia/Perth",)
    assert resolve_location(AU_MOBILE, "AU", None, {"timezone": "Australia/Melbourne"}
                            ).zones == ("Australia/Melbourne",)
    # a zone of the country that keeps none of the mobile's local times is one more
    darwin = resolve_location(AU_MOBILE, "AU", None, {"timezone": "Australia/Darwin"})
    assert "Australia/Darwin" in darwin.zones and "Australia/Sydney" in darwin.zones


def test_a_foreign_zone_is_never_a_zoneless_numbers_only_zone() -> None:
    """A number with no zones of its own (a Canadian non-geographic 600 number): a zone of
    its country (or, across the border, of the US) is its zone; any other is not known."""
    toronto = resolve_location("+16005550100", "CA", None, {"timezone": "America/Toronto"})
    assert toronto.zones == ("America/Toronto",) and toronto.known
    tokyo = resolve_location("+16005550100", "CA", None, {"timezone": "Asia/Tokyo"})
    assert not tokyo.known and "America/Vancouver" in tokyo.zones
    assert "region-fallback" in tokyo.how


def test_nanp_keeps_the_strict_reading() -> None:
    """A New York number with a Los Angeles zone is judged in both (the strictest reading);
    a Toronto number with a New York zone is read across the border."""
    ny = resolve_location("+12125550100", "US", None, {"timezone": "America/Los_Angeles"})
    assert set(ny.zones) == {"America/New_York", "America/Los_Angeles"}
    assert clean_context({"timezone": "America/New_York"}, country="CA") == {
        "timezone": "America/New_York"}
    assert clean_context({"timezone": "US/Eastern"}, country="US") == {"timezone": "US/Eastern"}


@pytest.mark.parametrize("zone", ["America/Atikokan", "America/Coral_Harbour"])
def test_a_canadian_zone_without_dst_is_one_of_canadas(zone: str) -> None:
    """Atikokan (Ontario) keeps Eastern Standard Time all year, so no zone of the country
    keeps its time all year: it was refused for an 807 number. Its own zone is one of
    Ontario's (and Nunavut's, for Coral Harbour) in the zone data now."""
    assert clean_context({"timezone": zone}, country="CA") == {"timezone": zone}
    loc = resolve_location("+18075971234", "CA", None, {"timezone": zone})
    assert zone in loc.zones


@pytest.mark.parametrize(("country", "zone"), [
    ("AU", "UTC"), ("AU", "America/New_York"), ("CA", "Asia/Tokyo"), ("US", "Europe/London"),
    ("GB", "Australia/Sydney")])
def test_the_context_of_one_number_refuses_a_foreign_zone(country: str, zone: str) -> None:
    with pytest.raises(ContextError) as err:
        clean_context({"timezone": zone}, country=country)
    assert err.value.field == "timezone" and zone in err.value.why


def test_check_refuses_a_foreign_zone(rules_home: Path) -> None:
    scrubber = Scrubber(load_settings(home=rules_home), audit=False)
    assert scrubber.check(AU_MOBILE, at=EVENING).decision is Decision.DEFER
    assert scrubber.check(AU_MOBILE, at=EVENING, timezone="Australia/Perth").decision \
        is Decision.ALLOW
    for zone in ("UTC", "America/New_York"):
        v = scrubber.check(AU_MOBILE, at=EVENING, timezone=zone)
        assert v.decision is Decision.ERROR and v.reason_codes == ["CONTEXT_INVALID"], zone
        assert "timezone" in v.reasons[0].detail
    v = scrubber.check("6005550100", at=EVENING, timezone="Asia/Tokyo")
    assert v.decision is Decision.ERROR and v.reason_codes == ["CONTEXT_INVALID"]


def test_scrub_refuses_a_foreign_zone_per_row(rules_home: Path, tmp_path: Path,
                                             write_csv: Callable[..., Path]) -> None:
    """A default zone (--timezone) and a row's own: the rows of another country are refused
    naming the column or field, the others judged as before."""
    settings = load_settings(home=rules_home)
    scrubber = Scrubber(settings, audit=False)
    mixed = write_csv([["phone"], ["2125550123"], ["+61 412 345 678"]], "mixed.csv")
    out = tmp_path / "out.csv"
    scrubber.scrub_file(mixed, out, at=EVENING, defaults={"timezone": "UTC"})
    rows = read_csv(out)
    assert [r["decision"] for r in rows] == ["error", "error"]  # UTC: neither country's
    out2 = tmp_path / "out2.csv"
    scrubber.scrub_file(mixed, out2, at=EVENING, defaults={"timezone": "America/New_York"})
    rows = read_csv(out2)
    assert rows[1]["decision"] == "error" and rows[1]["reason_codes"] == "CONTEXT_INVALID"
    assert "timezone" in rows[1]["detail"] and "America/New_York" in rows[1]["detail"]
    assert rows[0]["reason_codes"] != "CONTEXT_INVALID"
    own = write_csv([["phone", "tz"], ["+61 412 345 678", "UTC"],
                     ["+61 412 345 679", "Australia/Perth"], ["+61 412 345 670", ""]], "own.csv")
    out3 = tmp_path / "out3.csv"
    scrubber.scrub_file(own, out3, at=EVENING)
    rows = read_csv(out3)
    assert [r["decision"] for r in rows] == ["error", "allow", "defer"]
    assert "column 'tz'" in rows[0]["detail"]


def test_rules_when_refuses_a_foreign_zone(rules_home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "rules", "when", AU_MOBILE, "--timezone", "UTC")
    assert code == 2 and "--timezone" in err and "Australia" in err
    code, _, err = cli(capsys, "rules", "when", AU_MOBILE, "--timezone", "Australia/Perth")
    assert code == 0, err
