"""Where the called party may be: candidate time zones and states, and how they were found.

Every signal present is used and nothing is collapsed: the zones of the area code (the
split-zone table in ``_zones.yaml`` first, else ``phonenumbers``' exchange-level data), the
zones of the address state (a ``state`` column or flag) and of the ZIP/postal code's state or
province, and an explicit ``timezone`` column. A call must be legal in every candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from ..phones import state_for
from .loader import Ruleset, load_ruleset

#: phonenumbers answers every NANP zone for non-geographic numbers (800 etc.); more than this
#: many zones means "no location".
_MAX_PN_ZONES = 10


@dataclass(frozen=True)
class Location:
    """Candidate zones and states of one number, and the signals that gave them."""

    zones: tuple[str, ...]
    states: tuple[str, ...]  # US states / CA provinces, e.g. ("FL",)
    how: str  # '+'-joined sources, e.g. "npa-table+zip"
    known: bool  # False when the zones are the region fallback
    zip: str | None = None


def _in_ranges(table: Mapping[str, object], value: int) -> object | None:
    for span, hit in table.items():
        lo, hi = (int(p) for p in span.split("-"))
        if lo <= value <= hi:
            return hit
    return None


def _zip_zones(ruleset: Ruleset, zip_code: str, state: str) -> list[str]:
    """The zones of a US ZIP: its ZIP3's zones where known, else every zone of its state."""
    digits = zip_code.strip()[:3]
    if digits.isdigit() and len(digits) == 3:
        hit = _in_ranges(ruleset.zones.zip3_zones, int(digits))
        if isinstance(hit, list):
            return [str(z) for z in hit]
    return list(ruleset.zones.subdivision_zones.get(state, []))


def _zip_state(ruleset: Ruleset, region: str, zip_code: str) -> str | None:
    """The state or province of a US ZIP or Canadian postal code (NANP regions only)."""
    code = zip_code.strip().upper()
    if region not in ("US", "CA") or not code:
        return None
    if code[0].isalpha():
        return ruleset.zones.ca_postal_provinces.get(code[0])
    digits = code[:3]
    if len(digits) < 3 or not digits.isdigit():
        return None
    hit = _in_ranges(ruleset.zones.zip3_states, int(digits))
    return hit if isinstance(hit, str) else None


def _pn_zones(e164: str) -> tuple[str, ...]:
    # phonenumbers' zone data is keyed by prefixes of at most 7 digits for NANP (1+NPA+NXX)
    # and 8 elsewhere, so numbers sharing that prefix share the answer
    key = e164[:8] if e164.startswith("+1") else e164[:10]
    hit = _PN_CACHE.get(key)
    if hit is None:
        hit = _pn_zones_uncached(e164)
        if len(_PN_CACHE) > 100_000:
            _PN_CACHE.clear()
        _PN_CACHE[key] = hit
    return hit


_PN_CACHE: dict[str, tuple[str, ...]] = {}


def _pn_zones_uncached(e164: str) -> tuple[str, ...]:
    try:
        num = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return ()
    found = tuple(z for z in pn_timezone.time_zones_for_number(num) if z != "Etc/Unknown")
    return () if len(found) > _MAX_PN_ZONES else found


def _valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def resolve_location(e164: str, region: str, state: str | None,
                     extra: Mapping[str, str] | None = None,
                     ruleset: Ruleset | None = None) -> Location:
    """Candidate zones and states of a number (see the module docstring)."""
    rs = ruleset or load_ruleset()
    extra = extra or {}
    region = (extra.get("region") or region or "").strip().upper()
    if region == "UK":
        region = "GB"
    zones: list[str] = []
    states: list[str] = []
    how: list[str] = []

    def add(zs: list[str] | tuple[str, ...], source: str) -> None:
        new = [z for z in zs if z not in zones]
        zones.extend(new)
        if zs and source not in how:
            how.append(source)

    def add_state(st: str | None) -> None:
        if st and st not in states:
            states.append(st)

    tz = (extra.get("timezone") or "").strip()
    if tz:
        if _valid_zone(tz):
            add([tz], "timezone-column")
        else:
            how.append("timezone-column-invalid")
    npa_state = state_for(e164)
    address_state = (extra.get("state") or "").strip().upper() or None
    if state and state.upper() != npa_state:
        address_state = address_state or state.upper()
    if e164.startswith("+1") and len(e164) == 12:
        npa = e164[2:5]
        table = rs.zones.multi_timezone_npas.get(npa)
        if table:
            add(table, "npa-table")
        pn = _pn_zones(e164)
        add(pn, "npa-nxx")
        add_state(npa_state)
    else:
        found = _pn_zones(e164)
        # outside NANP a multi-zone answer (e.g. an Australian mobile) says nothing about where
        # the subscriber is: an explicit time zone replaces it
        if not (len(found) > 1 and "timezone-column" in how):
            add(found, "number-prefix")
    if address_state:
        add_state(address_state)
        add(rs.zones.subdivision_zones.get(address_state, []), "state")
    zip_code = (extra.get("zip") or "").strip() or None
    if zip_code:
        zs = _zip_state(rs, region, zip_code)
        if zs:
            add_state(zs)
            add(_zip_zones(rs, zip_code, zs), "zip")
        else:
            how.append("zip-unknown")
    if zones:
        return Location(tuple(zones), tuple(states), "+".join(how), True, zip_code)
    fallback = rs.zones.region_zones.get(region, [])
    single = len(fallback) == 1
    how.append("region" if single else "region-fallback")
    return Location(tuple(fallback), tuple(states), "+".join(how), single, zip_code)


def resolve_zones(e164: str, region: str, state: str | None,
                  extra: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """Candidate IANA zones of a number and how they were found (for the verdict's timezone)."""
    loc = resolve_location(e164, region, state, extra)
    return list(loc.zones), loc.how
