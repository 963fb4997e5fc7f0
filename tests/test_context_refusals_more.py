"""Context values the lists and the shown state read the same way as the rules, or refuse:

* a military post code (AA/AE/AP: APO/FPO/DPO) names no state: it reads as an unknown ZIP
  (no address), so every state list of the number's country still applies;
* a subdivision dncguard has no rules and zones for (US-UM) is refused as a state;
* a US ZIP or Canadian postal code is read whatever the number's country; a UK postcode on a
  number of another country is refused (its rules would go unread).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import holidays
import pytest

from dncguard import places  # its new helpers are looked up in the tests that use them
from dncguard.config import Settings
from dncguard.engine.context import clean_field
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import ContextError
from dncguard.lists.store import ListStore, jurisdiction_problem
from dncguard.models import Decision, Verdict
from dncguard.places import postal_state, subdivision, subdivision_codes
from dncguard.sources.local import _zip_states, applies_to
from dncguard.sources.protocol import Batch
from dncguard.sources.rules import resolve_location
from dncguard.sources.rules._loader import load_ruleset

from .conftest import AT, read_csv

D = date(2026, 11, 1)
NY = "+12125550111"  # area code 212: New York; on the Florida list
TOLL_FREE = "+18005550111"  # no state by area code; on the Florida list
LONDON = "+442071234567"
MILITARY = ["09001", "34001", "96201"]  # AE (Europe), AA (Americas), AP (Pacific)


@pytest.fixture
def lists(store: ListStore, write_lines: Callable[..., Path]) -> ListStore:
    store.import_file(write_lines([NY, TOLL_FREE], "fl.txt"), kind="state", name="us-fl",
                      jurisdiction="US-FL", snapshot_date=D)
    return store


def _lists(v: Verdict) -> list[str]:
    return sorted(r.list or "" for r in v.reasons)


# -- 1. military post codes ------------------------------------------------------------------


def test_a_military_post_code_names_no_state() -> None:
    assert [postal_state(z) for z in MILITARY] == ["AE", "AA", "AP"]  # the ZIP table's
    assert [places.address_state(z) for z in MILITARY] == [None, None, None]
    assert _zip_states(MILITARY) == ["", "", ""]
    assert places.address_state("33101") == "FL" and places.address_state("K1A 0B1") == "ON"


def test_the_lists_read_a_military_post_code_as_no_address() -> None:
    """Every state list applies to a row whose only address is a military post code, as to
    a row with no ZIP; the rules read it as an unknown ZIP too."""
    batch = Batch.of([NY, NY, NY], ["US"] * 3, [None] * 3,
                     [{"zip": "09001"}, {}, {"zip": "10001"}])
    assert applies_to("US-FL", batch).tolist() == [True, True, False]
    loc = resolve_location(NY, "US", None, {"zip": "09001"})
    assert not loc.addressed and "zip-unknown" in loc.how and "AE" not in loc.states


@pytest.mark.parametrize("zip_code", MILITARY)
def test_a_military_zip_does_not_switch_the_state_lists_off(
        lists: ListStore, scrubber: Scrubber, zip_code: str) -> None:
    v = scrubber.check(NY, at=AT, zip=zip_code)
    assert (v.decision, _lists(v)) == (Decision.BLOCK, ["us-fl"])
    assert v.state == "NY"  # the area code's: the post code names none
    assert "its ZIP or postal code names none" in v.reasons[0].detail
    # without a ZIP the wording stays as it was
    assert scrubber.check(NY, at=AT).reasons[0].detail.endswith(
        "the row gives no state or ZIP: an area code does not show where the subscriber lives")


def test_a_default_military_zip_in_a_scrub(lists: ListStore, scrubber: Scrubber) -> None:
    got = scrubber.scrub([NY, "+12125550199"], at=AT, zip="09001")
    assert [(v.decision, v.state) for v in got] == [(Decision.BLOCK, "NY"), (Decision.ALLOW, "NY")]


@pytest.mark.parametrize("n", [5, 300], ids=["few-rows", "many-rows"])
@pytest.mark.parametrize("columnar", [True, False], ids=["array", "streamed"])
def test_a_military_zip_column_in_a_scrubbed_file(
        n: int, columnar: bool, lists: ListStore, settings: Settings, tmp_path: Path,
        write_csv: Callable[..., Path]) -> None:
    rows = [["phone", "zip"], [NY, "09001"], [NY, "96201"], [NY, "10001"], [NY, ""]]
    rows += [[f"+1212555{i:04d}", "09001"] for i in range(200, 200 + n - 4)]
    out = tmp_path / "out.csv"
    summary = Scrubber(settings, columnar=columnar, audit=False).scrub_file(
        write_csv(rows), out, at=AT)
    got = read_csv(out)
    assert [r["decision"] for r in got[:4]] == ["block", "block", "allow", "block"]
    assert "its ZIP or postal code names none" in got[0]["detail"]
    assert set(summary.by_state) == {"NY"}


# -- 2. a subdivision without rules and zones ------------------------------------------------


@pytest.mark.parametrize("value", ["UM", "um", "United States Minor Outlying Islands"])
def test_a_state_without_rules_or_zones_is_refused(value: str) -> None:
    with pytest.raises(ContextError, match="no calling rules or time zones") as exc:
        clean_field("state", value)
    assert exc.value.field == "state" and "US-UM" in exc.value.why


def test_a_check_with_state_um_is_refused(lists: ListStore, scrubber: Scrubber) -> None:
    with pytest.raises(ContextError, match="state"):
        scrubber.check(TOLL_FREE, at=AT, state="UM")
    assert scrubber.check(TOLL_FREE, at=AT).decision is Decision.BLOCK


@pytest.mark.parametrize("columnar", [True, False], ids=["array", "streamed"])
def test_a_state_um_row_is_refused_in_a_scrub(
        columnar: bool, lists: ListStore, settings: Settings, tmp_path: Path,
        write_csv: Callable[..., Path]) -> None:
    rows = [["phone", "state"], [TOLL_FREE, "UM"], [TOLL_FREE, "FL"]]
    rows += [[f"+1212555{i:04d}", "UM"] for i in range(200, 280)]
    out = tmp_path / "out.csv"
    Scrubber(settings, columnar=columnar, audit=False).scrub_file(
        write_csv(rows), out, at=AT)
    got = read_csv(out)
    assert got[0]["decision"] == "error" and got[0]["reason_codes"] == "CONTEXT_INVALID"
    assert "no calling rules or time zones" in got[0]["detail"]
    assert got[1]["decision"] == "block"
    assert {r["decision"] for r in got[2:]} == {"error"}


def test_the_served_subdivisions_have_rules_and_zones() -> None:
    """Every subdivision a row or a list may name has time zones (and in the US a rules
    file); every one of the tables' source (holidays) that has not is refused by name."""
    rs = load_ruleset()
    for region in ("US", "CA"):
        served = subdivision_codes(region)
        source = holidays.country_holidays(region)
        for code in served:
            assert rs.zones.subdivision_zones.get(code), code
            if region == "US":
                assert f"US-{code}" in rs.files, code
        unserved = {(region, c) for c in source.subdivisions if c not in served}
        assert unserved == {s for s in places.UNSERVED_SUBDIVISIONS if s[0] == region}
        for _, code in unserved:
            assert subdivision(code) is None
            assert places.unserved_subdivision(code) == (region, code)
            assert jurisdiction_problem("state", f"{region}-{code}") is not None
            assert not (rs.zones.subdivision_zones.get(code) and f"US-{code}" in rs.files)


# -- 3. a ZIP or postcode of another country -------------------------------------------------


def test_a_us_zip_is_read_for_a_number_of_any_country() -> None:
    for e164, region in ((LONDON, "GB"), ("+14165550100", "CA"), ("+61212345678", "AU")):
        by_zip = resolve_location(e164, region, None, {"zip": "33101"})
        by_state = resolve_location(e164, region, None, {"state": "FL"})
        assert "FL" in by_zip.states and "FL" in by_state.states, e164
        assert by_zip.addressed and "zip" in by_zip.how.split("+")
        assert "America/New_York" in by_zip.zones


def test_a_zips_state_is_shown_for_a_number_of_any_country(scrubber: Scrubber) -> None:
    assert scrubber.check(LONDON, at=AT, zip="33101").state == "FL"
    assert scrubber.check(LONDON, at=AT, state="FL").state == "FL"


def test_uk_postcode() -> None:
    uk = places.uk_postcode
    assert uk("SW1A 1AA") and uk("sw1a1aa") and uk(" M1 1AE ")
    assert not uk("K1A 0B1") and not uk("33101") and not uk("")


@pytest.mark.parametrize("number", [NY, TOLL_FREE, "+14165550100", "+61212345678"])
def test_a_uk_postcode_on_another_countrys_number_is_refused(
        lists: ListStore, scrubber: Scrubber, number: str) -> None:
    v = scrubber.check(number, at=AT, zip="SW1A 1AA")
    assert v.decision is Decision.ERROR
    assert [r.code for r in v.reasons] == ["CONTEXT_INVALID"]
    assert "UK postcode" in v.reasons[0].detail
    assert scrubber.check(LONDON, at=AT, zip="SW1A 1AA").decision is Decision.ALLOW


@pytest.mark.parametrize("n", [5, 300], ids=["few-rows", "many-rows"])
@pytest.mark.parametrize("columnar", [True, False], ids=["array", "streamed"])
def test_a_uk_postcode_column_in_a_scrubbed_file(
        n: int, columnar: bool, lists: ListStore, settings: Settings, tmp_path: Path,
        write_csv: Callable[..., Path]) -> None:
    rows = [["phone", "zip"], ["2125550111", "SW1A 1AA"], [LONDON, "SW1A 1AA"],
            ["2125550111", "10001"], ["2125550199", "sw1a1aa"]]
    rows += [[f"+1212555{i:04d}", "10001"] for i in range(200, 200 + n - 4)]
    out = tmp_path / "out.csv"
    Scrubber(settings, columnar=columnar, audit=False).scrub_file(
        write_csv(rows), out, at=AT)
    got = read_csv(out)
    assert [r["decision"] for r in got[:4]] == ["error", "allow", "allow", "error"]
    assert got[0]["reason_codes"] == "CONTEXT_INVALID" and "column 'zip'" in got[0]["detail"]
    assert {r["decision"] for r in got[4:]} <= {"allow"}


def test_a_default_uk_postcode_refuses_only_other_countries_numbers(
        lists: ListStore, scrubber: Scrubber) -> None:
    got = scrubber.scrub([LONDON, "+12125550199"], at=AT, zip="SW1A 1AA")
    assert [v.decision for v in got] == [Decision.ALLOW, Decision.ERROR]


# -- an Australian state's code on an Australian number -----------------------------------------
PERTH = "+61892345678"  # area 08: WA, SA and the NT


def test_australian_state() -> None:
    au = places.australian_state
    assert (au("WA"), au("nt"), au("NSW")) == (
        "Western Australia", "Northern Territory", "New South Wales")
    assert au("FL") is None and au("") is None


@pytest.mark.parametrize("state", ["WA", "nt", "Washington"])
def test_a_clashing_state_on_an_australian_number_is_refused(
        scrubber: Scrubber, state: str) -> None:
    """WA was read as Washington and NT as the Northwest Territories: a Perth number judged
    by Washington's hours (and lists). Refused, naming the Australian reading."""
    v = scrubber.check(PERTH, at=AT, state=state)
    assert v.decision is Decision.ERROR
    assert [r.code for r in v.reasons] == ["CONTEXT_INVALID"]
    assert "on an Australian number is also the code of" in v.reasons[0].detail
    assert "Australia/Perth" in v.reasons[0].detail
    # the same state on a number of another country is read as before
    other = scrubber.check("+12065550123", at=AT, state=state)
    assert all(r.code != "CONTEXT_INVALID" for r in other.reasons)


@pytest.mark.parametrize("n", [5, 300], ids=["few-rows", "many-rows"])
@pytest.mark.parametrize("columnar", [True, False], ids=["array", "streamed"])
def test_a_clashing_state_column_in_a_scrubbed_file(
        n: int, columnar: bool, settings: Settings, tmp_path: Path,
        write_csv: Callable[..., Path]) -> None:
    rows = [["phone", "state"], [PERTH, "WA"], ["2065550111", "WA"], [PERTH, "TX"],
            ["+61892345679", "NT"]]
    rows += [[f"+1212555{i:04d}", "NY"] for i in range(200, 200 + n - 4)]
    out = tmp_path / "out.csv"
    Scrubber(settings, columnar=columnar, audit=False).scrub_file(write_csv(rows), out, at=AT)
    got = read_csv(out)
    assert [r["reason_codes"] == "CONTEXT_INVALID" for r in got[:4]] == [
        True, False, False, True]
    assert "column 'state'" in got[0]["detail"] and "Western Australia" in got[0]["detail"]
    assert "Northern Territory" in got[3]["detail"]


def test_a_default_clashing_state_refuses_only_australian_numbers(scrubber: Scrubber) -> None:
    got = scrubber.scrub([PERTH, "+12065550199"], at=AT, state="WA")
    assert got[0].decision is Decision.ERROR and got[0].reasons[0].code == "CONTEXT_INVALID"
    assert all(r.code != "CONTEXT_INVALID" for r in got[1].reasons)
