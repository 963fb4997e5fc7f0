"""Candidate zones and states: never collapsed, every signal kept, and how they were found."""

from __future__ import annotations

import pytest

from dncguard.sources.rules import load_ruleset, resolve_location, resolve_zones


@pytest.mark.parametrize("npa", sorted(load_ruleset().zones.multi_timezone_npas))
def test_split_zone_area_codes_keep_every_zone(npa: str) -> None:
    """reference 4.2: area codes spanning zones are never collapsed to one."""
    expected = load_ruleset().zones.multi_timezone_npas[npa]
    zones, how = resolve_zones(f"+1{npa}5550100", "US", None)
    assert set(expected) <= set(zones)
    assert "npa-table" in how


@pytest.mark.parametrize(("phone", "region", "state", "extra", "zones", "states", "how"), [
    ("+12125550100", "US", "NY", {}, ["America/New_York"], ["NY"], "npa-nxx"),
    ("+13055550100", "US", "FL", {"zip": "32501"},
     ["America/New_York", "America/Chicago"], ["FL"], "npa-nxx+zip"),
    ("+12125550100", "US", "CA", {"state": "CA"},
     ["America/New_York", "America/Los_Angeles"], ["NY", "CA"], "npa-nxx+state"),
    ("+12125550100", "US", "NY", {"timezone": "America/Chicago"},
     ["America/Chicago", "America/New_York"], ["NY"], "timezone-column+npa-nxx"),
    ("+12125550100", "US", "NY", {"timezone": "Mars/Base"}, ["America/New_York"], ["NY"],
     "timezone-column-invalid+npa-nxx"),
    ("+14165550100", "CA", "ON", {"zip": "V6B 1A1"},
     ["America/Toronto", "America/Vancouver", "America/Edmonton", "America/Dawson_Creek",
      "America/Fort_Nelson", "America/Creston"], ["ON", "BC"], "npa-nxx+zip"),
    ("+442079460018", "GB", None, {}, ["Europe/London"], [], "number-prefix"),
    ("+447700900123", "GB", None, {}, ["Europe/London"], [], "region"),
    # 729 is unknown to phonenumbers 9.0.43 and to the NPA-state table: the state column helps
    ("+17295550100", "US", "TN", {}, ["America/New_York", "America/Chicago"], ["TN"],
     "npa-table+state"),
])
def test_resolution(phone: str, region: str, state: str | None, extra: dict[str, str],
                    zones: list[str], states: list[str], how: str) -> None:
    loc = resolve_location(phone, region, state, extra)
    assert list(loc.zones) == zones
    assert list(loc.states) == states
    assert loc.how == how
    assert loc.known


def test_unknown_zone_falls_back_to_region() -> None:
    loc = resolve_location("+18005550100", "US", None, {})
    assert not loc.known and loc.how == "region-fallback"
    assert "Pacific/Honolulu" in loc.zones and "America/New_York" in loc.zones
    loc = resolve_location("+18005550100", "US", None, {"zip": "00000"})
    assert "zip-unknown" in loc.how


def test_timezones_for_the_verdict(check) -> None:  # type: ignore[no-untyped-def]
    """RulesCheck.timezones gives the verdict's timezone field and its source per number."""
    from dncguard.sources.protocol import Batch

    batch = Batch.of(["+18505550100", "+12125550100"], ["US", "US"], ["FL", "NY"],
                     [{}, {"zip": "84101"}])
    assert check.timezones(batch) == [
        ("America/New_York;America/Chicago", "npa-table+npa-nxx"),
        ("America/New_York;America/Denver", "npa-nxx+zip"),
    ]


@pytest.mark.parametrize(("zip_code", "zones"), [
    ("33101", ["America/New_York"]),  # Miami: Eastern only
    ("32501", ["America/New_York", "America/Chicago"]),  # Pensacola: Central added
    ("79901", ["America/New_York", "America/Denver"]),  # El Paso: Mountain
    ("37201", ["America/New_York", "America/Chicago"]),  # Nashville: Central
    ("47708", ["America/New_York", "America/Chicago"]),  # Evansville: Central
    # Ontario OR (Malheur): Mountain; its ZIP3 979 has Pacific towns too (Drewsey, Juntura)
    ("97914", ["America/New_York", "America/Los_Angeles", "America/Boise"]),
    ("32301", ["America/New_York"]),  # Tallahassee
])
def test_zip3_zones_of_split_states(zip_code: str, zones: list[str]) -> None:
    """A ZIP in a multi-zone state adds its own zone where the ZIP3 table knows it."""
    assert list(resolve_location("+12125550100", "US", "NY", {"zip": zip_code}).zones) == zones


def test_au_mobile_zone_replaced_by_explicit_timezone() -> None:
    """An Australian mobile maps to every AU zone; a timezone column says where it is."""
    loc = resolve_location("+61412345678", "AU", None, {})
    assert "Australia/Perth" in loc.zones and "Australia/Sydney" in loc.zones
    loc = resolve_location("+61412345678", "AU", None, {"timezone": "Australia/Perth"})
    assert loc.zones == ("Australia/Perth",) and loc.how == "timezone-column"
    # a geographic number keeps its own zone too
    loc = resolve_location("+61298765432", "AU", None, {"timezone": "Australia/Perth"})
    assert loc.zones == ("Australia/Perth", "Australia/Sydney")


@pytest.mark.parametrize(("zip_code", "zone"), [
    ("69153", "America/Denver"),  # Ogallala NE (Keith County): Mountain
    ("69021", "America/Denver"),  # Benkelman NE (Dundy County): Mountain
    ("40143", "America/Chicago"),  # Hardinsburg KY (Breckinridge County): Central
    ("58533", "America/Denver"),  # Elgin ND (Grant County): Mountain
    ("57567", "America/Denver"),  # Philip SD (Haakon County): Mountain
    ("32456", "America/New_York"),  # Port St. Joe FL (Gulf County): Eastern
    ("79855", "America/Chicago"),  # Van Horn TX (Culberson County): Central by law
])
def test_a_zip_near_a_zone_line_keeps_the_zone_it_is_in(zip_code: str, zone: str) -> None:
    """A ZIP3 that a zone line crosses gives both zones: its ZIP's own is never dropped, even
    when the number's area code is in the state's other zone."""
    number = "+12125551234" if zone == "America/Chicago" else "+14025551234"  # other zone
    found = resolve_location(number, "US", None, {"zip": zip_code})
    assert zone in found.zones, (zip_code, found)
