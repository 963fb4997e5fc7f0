"""The shipped zone data against its sources: the area-code state table (phonenumbers'
geocoder and a short cited table), the ZIP3 zones (the ``zipcodes`` package), and the zones of
every US area code against the zones of the ZIP codes ``zipcodes`` lists for it."""

from __future__ import annotations

import csv
import importlib.util
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import phonenumbers
import pytest
import zipcodes
from phonenumbers import geocoder

from dncguard.nanp import load_table
from dncguard.phones import US_TERRITORIES, state_for
from dncguard.places import postal_state
from dncguard.sources.rules import RulesCheck, _zones, load_ruleset, resolve_location
from dncguard.sources.rules._zones import NANP_ZONES, PER_NUMBER, _zip_zones

from .conftest import run_check

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@cache
def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: a zone's offsets over two years (zones that keep the same local time compare equal), kept
zone_signature = cache(_zones.zone_signature)
_valid_zone = _zones._valid_zone


@cache
def _zips() -> list[dict[str, Any]]:
    """Every ZIP code of ``zipcodes`` with a valid zone."""
    return [z for z in zipcodes.list_all() if z.get("timezone") and _valid_zone(str(z["timezone"]))]


# -- the area codes' states --------------------------------------------------------------------

def _shipped_npa_states() -> str:
    return resources.files("dncguard.data").joinpath("npa_state.csv").read_text("utf-8")


def test_every_geographic_area_code_has_a_state() -> None:
    """An area code with a valid geographic US, territory or Canadian number has a row: an
    area code missing from the table (564 Washington, 257 British Columbia, 782 Nova Scotia/
    PEI) had no state, so none of its state's rules applied."""
    rows = {int(r["npa"]): (r["region"], r["state"])
            for r in csv.DictReader(_shipped_npa_states().splitlines())}
    regions = ("US", "CA", *US_TERRITORIES)
    codes, _ = load_table()
    missing = []
    for npa in range(200, 1000):
        for nxx in np.flatnonzero(codes[npa * 1000:(npa + 1) * 1000]).tolist():
            number = phonenumbers.parse(f"+1{npa}{nxx:03d}4567")
            if phonenumbers.is_valid_number(number):  # an area code is of one type
                if phonenumbers.region_code_for_number(number) in regions \
                        and phonenumbers.is_number_geographical(number) and npa not in rows:
                    missing.append(npa)
                break
    assert missing == []
    assert rows[564] == ("US", "WA") and rows[257] == ("CA", "BC") and rows[782] == ("CA", "NS")


@pytest.mark.slow
def test_npa_state_table_is_its_generators_output() -> None:
    """``data/npa_state.csv`` is what ``scripts/gen_npa_states.py`` makes from the installed
    phonenumbers and its cited table of area codes the geocoder names by no state."""
    assert _shipped_npa_states() == _script("gen_npa_states").csv_text()


def test_a_number_of_an_added_area_code_gets_its_state_rules(time_check: RulesCheck) -> None:
    """RCW 19.158.040(2): 08:00-20:00 in Washington; 564 is a Washington area code."""
    at = datetime(2026, 11, 19, 4, 30, tzinfo=UTC)  # Wed 20:30 PST
    reasons = run_check(time_check, "+15645550100", at, line_type="landline")
    assert any(r.rule == "US-WA:calling_window" for r in reasons), reasons


# -- ZIP3 zones --------------------------------------------------------------------------------

def test_zip3_table_is_its_generators_output() -> None:
    """The ``zip3_zones`` table of ``_zones.yaml`` is ``scripts/gen_zip3_zones.py``'s output
    for the installed ``zipcodes`` (re-run the script after upgrading it)."""
    gen = _script("gen_zip3_zones")
    text = gen.ZONES_YAML.read_text("utf-8")
    shipped = text[text.index(f"\n{gen.MARKER}\n") + 1:]
    assert shipped == gen.table_text(load_ruleset().zones.subdivision_zones)


def test_every_zip_code_keeps_its_own_zone() -> None:
    """The zones the engine gives a ZIP code include the zone ``zipcodes`` gives it (by local
    time: America/Indiana/Knox is Central), for every ZIP code with a valid zone except the
    cited errors of ``gen_zip3_zones.WRONG``: 479 (Newton and Jasper counties IN, Central),
    835 (Riggins ID, Mountain), 979 (Drewsey OR, Pacific), 377 and 375 (Central parts) were
    missing a zone. Each cited error still is one: no other ZIP code of its city has its
    zone."""
    rs = load_ruleset()
    wrong = _script("gen_zip3_zones").WRONG
    by_code = {str(z["zip_code"]): z for z in _zips()}
    for code in wrong:
        z = by_code[code]
        others = {str(o["timezone"]) for o in _zips() if o["city"] == z["city"]
                  and o["state"] == z["state"] and o["zip_code"] != code}
        assert others and z["timezone"] not in others, code
    missing: dict[tuple[str, str], list[str]] = defaultdict(list)
    for z in _zips():
        code, tz = str(z["zip_code"]), str(z["timezone"])
        state = postal_state(code)
        if code in wrong or state is None:
            continue
        ours = {zone_signature(x) for x in _zip_zones(rs, code, state)}
        if zone_signature(tz) not in ours:
            missing[(code[:3], tz)].append(f"{code} {z['city']} {state}")
    assert dict(missing) == {}


# -- area codes against the ZIP codes that use them --------------------------------------------

#: ZIP codes ``zipcodes`` lists for an area code of their state that it does not serve (the
#: package lists nearby area codes too: Kentland IN, 47951, lists Illinois' 815 and 779), and
#: why. The test checks each against phonenumbers' geocoder: a town it names in an exchange of
#: the state is named in another area code, never in this one.
NOT_SERVED: dict[str, tuple[frozenset[str], str]] = {
    "765": (frozenset({"47948", "47951", "47977"}),
            "Goodland, Kentland (Newton County) and Remington (Jasper County) are Central and "
            "in area code 219"),
    "865": (frozenset({"37723", "38555", "38558", "38571"}),
            "Crab Orchard and Crossville (Cumberland County, Central) are in area code 931"),
    "931": (frozenset({"37337", "37381", "37726", "37770", "37841", "37852", "37854", "37872",
                       "37887"}),
            "Rhea, Morgan and Scott counties (Eastern) are in area code 423, Rockwood (Roane "
            "County, Eastern) in 865"),
    "915": (frozenset({"79734", "79772", "79854"}),
            "Jeff Davis and Reeves counties (Central) have been in area code 432 since the 2003 "
            "split of 915"),
}


@cache
def _places(npa: str) -> frozenset[str]:
    """phonenumbers' geocoder descriptions of the exchanges of ``npa``."""
    return frozenset(geocoder.description_for_number(phonenumbers.parse(f"+1{npa}{x}4567"), "en")
                     for x in range(200, 1000))


def _check_not_served() -> None:
    by_code = {str(z["zip_code"]): z for z in _zips()}
    rows = list(csv.DictReader(_shipped_npa_states().splitlines()))
    for npa, (codes, _why) in NOT_SERVED.items():
        state = state_for(f"+1{npa}2000000")
        others = [r["npa"] for r in rows if r["state"] == state and r["npa"] != npa]
        named = 0
        for code in codes:
            town = f"{by_code[code]['city']}, {state}"
            assert town not in _places(npa), (npa, code, town)
            named += any(town in _places(o) for o in others)
        assert named, npa


def _area_code_zones(npa: str) -> set[tuple[timedelta | None, ...]]:
    """The signatures of every zone the engine gives a number of ``npa`` (one number per
    class of exchanges whose numbers get the same zones, see ``zone_keys``)."""
    rs = load_ruleset()
    prefixes = np.arange(int(npa) * 1000 + 200, int(npa) * 1000 + 1000, dtype=np.int64)
    ids = NANP_ZONES.zone_ids(prefixes).tolist()
    seen: set[int] = set()
    out: set[tuple[timedelta | None, ...]] = set()
    for prefix, zid in zip(prefixes.tolist(), ids, strict=True):
        if zid in seen and zid != PER_NUMBER:
            continue
        seen.add(zid)
        for line in ("0000", "4567", "9999"):
            e164 = f"+1{prefix:06d}{line}"
            if phonenumbers.is_valid_number(phonenumbers.parse(e164)):
                loc = resolve_location(e164, "US", state_for(e164), {}, rs)
                out |= {zone_signature(z) for z in loc.zones}
    return out


def test_area_code_zones_cover_their_zip_codes() -> None:
    """For every US area code, the zones the engine gives its numbers include the zone of
    every standard ZIP code of its state that ``zipcodes`` says uses it (689, Orlando, was
    given Central only; 402/531 lacked Cherry County's Mountain time), except the ZIP codes
    of :data:`NOT_SERVED`, which phonenumbers' geocoder places in other area codes."""
    _check_not_served()
    wanted: dict[str, dict[tuple[timedelta | None, ...], list[str]]] = defaultdict(
        lambda: defaultdict(list))
    for z in _zips():
        if z["zip_code_type"] != "STANDARD" or not z["active"]:
            continue
        for npa in z.get("area_codes") or []:
            if state_for(f"+1{npa}2000000") != z["state"]:
                continue
            if str(z["zip_code"]) in NOT_SERVED.get(npa, (frozenset(), ""))[0]:
                continue
            wanted[npa][zone_signature(str(z["timezone"]))].append(
                f"{z['zip_code']} {z['city']} {z['state']} {z['timezone']}")
    assert len(wanted) > 250
    missing = {}
    for npa, by_zone in sorted(wanted.items()):
        ours = _area_code_zones(npa)
        if not ours:  # no valid number (a code zipcodes still lists but that is out of use)
            continue
        gaps = [codes[:3] for sig, codes in by_zone.items() if sig not in ours]
        if gaps:
            missing[npa] = gaps
    assert missing == {}


def test_689_is_eastern(time_check: RulesCheck) -> None:
    """phonenumbers 9.0.43 gives area code 689 (the Orlando overlay) Central time only: its
    numbers are Eastern, so 20:30 EST is outside Florida's 08:00-20:00."""
    loc = resolve_location("+16895550100", "US", "FL", {})
    assert loc.zones == ("America/New_York",)
    reasons = run_check(time_check, "+16895550100", datetime(2026, 11, 18, 1, 30, tzinfo=UTC),
                        line_type="landline")
    assert any(r.rule == "US-FL:calling_window" for r in reasons), reasons
    # a zone dropped from phonenumbers' answer is one no ZIP code of the area code has
    for npa, dropped in getattr(_zones, "PN_AREA_CODE_ERRORS", {}).items():
        state = state_for(f"+1{npa}2000000")
        bad = {zone_signature(z) for z in dropped}
        assert not [z["zip_code"] for z in _zips() if z["state"] == state
                    and npa in (z.get("area_codes") or [])
                    and zone_signature(str(z["timezone"])) in bad], npa


# -- no state known ----------------------------------------------------------------------------

def test_with_zones_but_no_state_every_state_of_those_zones_applies(
        time_check: RulesCheck) -> None:
    """A toll-free number with a Central time zone: Sunday 10:00 CST is a day Alabama,
    Louisiana and Mississippi ban (and before Texas' Sunday noon), though no state is known."""
    loc = resolve_location("+18005550100", "US", None, {"timezone": "America/Chicago"})
    assert loc.states == ()
    assert {"AL", "LA", "MS", "TX", "IN", "FL"} <= set(loc.time_states)
    assert not {"CA", "NY", "HI", "PR", "GU"} & set(loc.time_states)
    at = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)  # Sunday 10:00 CST
    reasons = run_check(time_check, "+18005550100", at, timezone="America/Chicago",
                        line_type="landline")
    assert {"US-AL:calling_window", "US-LA:calling_window", "US-MS:calling_window"} \
        <= {r.rule for r in reasons}, reasons
    # the region fallback still brings in every state and DC, no territory
    fallback = resolve_location("+18005550100", "US", None, {})
    assert len(fallback.time_states) == 51 and not set(US_TERRITORIES) & set(fallback.time_states)
