"""Where the called party may be: candidate time zones and states, and how they were found.

Every signal present is used and nothing is collapsed: the zones of the area code (the
split-zone table in ``_zones.yaml`` first, else ``phonenumbers``' exchange-level data), the
zones of the address state (a ``state`` column or flag) and of the ZIP/postal code's state or
province, and an explicit ``timezone`` column. A call must be legal in every candidate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import phonenumbers
from phonenumbers import timezone as pn_timezone

from ...nanp import FALLBACK, PREFIXES, load_table, metadata_fingerprint
from ...phones import state_for
from ...places import address_state
from ._loader import Ruleset, load_ruleset

log = logging.getLogger("dncguard.sources.rules.zones")  # its name before it became _zones

#: phonenumbers answers every NANP zone for non-geographic numbers (800 etc.); more than this
#: many zones means "no location".
_MAX_PN_ZONES = 10

#: Zones that ``phonenumbers`` gives an area code wrongly, dropped from its answer (the area
#: code's right zones are in ``multi_timezone_npas`` of ``_zones.yaml``). Keep each cited;
#: ``tests/rules/test_zone_data.py`` checks that the ZIP codes the ``zipcodes`` package lists
#: for the area code never have a dropped zone.
#:
#: * 689: phonenumbers 9.0.43 keys ``1689`` to America/Chicago only. 689 is the overlay of
#:   407/321 (Orange, Osceola, Seminole and parts of Lake and Volusia counties, Florida, all
#:   Eastern), approved by the Florida PSC in July 2018, in service since June 2019.
PN_AREA_CODE_ERRORS: Mapping[str, frozenset[str]] = {
    "689": frozenset({"America/Chicago"}),
}

#: the instants :func:`zone_signature` compares: noon UTC every week of two years
_SIGNATURE_START = datetime(2026, 1, 1, 12, tzinfo=UTC)
_SIGNATURE_WEEKS = 105


@cache
def zone_signature(name: str) -> tuple[timedelta | None, ...]:
    """A zone's UTC offsets at noon UTC each week of 2026-2027: zones with equal signatures
    keep the same local time (America/Indiana/Knox and America/Chicago, America/Boise and
    America/Denver), so a window legal in one is legal in the other."""
    zi = ZoneInfo(name)
    return tuple((_SIGNATURE_START + timedelta(weeks=i)).astimezone(zi).utcoffset()
                  for i in range(_SIGNATURE_WEEKS))


def zones_meet(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether a zone of ``a`` keeps the same local time as a zone of ``b``."""
    return not {zone_signature(z) for z in a}.isdisjoint(zone_signature(z) for z in b)


@dataclass(frozen=True)
class Location:
    """Candidate zones and states of one number, and the signals that gave them."""

    zones: tuple[str, ...]
    states: tuple[str, ...]  # US states / CA provinces, e.g. ("FL",)
    how: str  # '+'-joined sources, e.g. "npa-table+zip"
    known: bool  # False when the zones are the region fallback
    zip: str | None = None
    #: states whose day and hour rules apply besides those of ``states``: with no state known
    #: for a US number, every state or territory that has a candidate zone (for the region
    #: fallback, every state of the region)
    time_states: tuple[str, ...] = ()
    #: the row gave an address: a state other than the area code's, or a ZIP or postal code
    #: whose state is known (as the lists read it, ``sources.local.applies_to``: without one,
    #: every state list of the country applies to the number)
    addressed: bool = False


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


def _zip_state(zip_code: str) -> str | None:
    """The state or province of a US ZIP or Canadian postal code, whatever the number's
    country (as a ``state`` column is read: a Toronto number with a Miami ZIP gets Florida's
    zones and rules too); None for a military post code, which names no state and no zone
    (the number's own location stands, as with an unknown ZIP), and for anything else. One
    reading for the rules, the state lists and the verdict's state:
    :func:`dncguard.places.address_state`."""
    return address_state(zip_code)


def _pn_zones(e164: str) -> tuple[str, ...]:
    """``phonenumbers``' zones of a number (empty when it gives none, or more than
    :data:`_MAX_PN_ZONES`)."""
    if len(e164) == 12 and e164.startswith("+1") and e164[1:].isdigit():
        zid = NANP_ZONES.zone_id(int(e164[2:8]))
        if zid >= 0:
            return NANP_ZONES.tuples[zid]
        # the answer depends on digits after the exchange
        return _memo_zones(_FALLBACK_CACHE, e164, e164)
    # elsewhere phonenumbers' zone data is keyed by prefixes of at most 8 digits after the
    # country code, so numbers sharing that prefix share the answer
    return _memo_zones(_PN_CACHE, e164[:8] if e164.startswith("+1") else e164[:10], e164)


def _memo_zones(cache: dict[str, tuple[str, ...]], key: str, e164: str) -> tuple[str, ...]:
    """``phonenumbers``' zones of ``e164``, remembered under ``key`` (bounded)."""
    hit = cache.get(key)
    if hit is None:
        hit = _pn_zones_uncached(e164)
        if len(cache) > 100_000:
            cache.clear()
        cache[key] = hit
    return hit


_PN_CACHE: dict[str, tuple[str, ...]] = {}
_FALLBACK_CACHE: dict[str, tuple[str, ...]] = {}

#: :meth:`NanpZones.zone_id` for a prefix whose answer depends on the later digits
PER_NUMBER = -2
_NOT_YET = -1
#: the shipped answer of :class:`NanpZones` for every prefix (``scripts/gen_nanp_zones.py``)
ZONES_FILE = "nanp_zones.csv"


class NanpZones:
    """``phonenumbers``' time zones of +1 numbers, found once per class of NPA-NXX prefixes.

    For a ten-digit NANP number ``time_zones_for_number`` depends on the number's region and
    type (decided by the region's patterns) and on the longest key of its zone data that
    prefixes the number (at most ``1``+NPA+NXX). The NANP table (:mod:`dncguard.nanp`) marks
    the prefixes where every pattern matches all or none of the 10,000 numbers of the block;
    for those, prefixes with the same table entry, the same outcome of each of the region's
    patterns and the same zone-data key get the same answer, which one ``phonenumbers`` call
    on a representative number gives. Other prefixes are answered per number
    (:data:`PER_NUMBER`).

    Finding the classes costs seconds for a campaign over every area code, so the answer for
    every prefix ships as ``data/nanp_zones.csv``: on first use it is read once, when it was
    built from the installed ``phonenumbers`` version (and ``shipped`` becomes true); else the
    classes are found as prefixes are seen. Either way one instance keeps its ids: equal ids
    are equal zones within a process, not across processes.
    """

    def __init__(self, *, shipped: bool = True) -> None:
        self._ids = np.full(PREFIXES, _NOT_YET, dtype=np.int32)
        self._try_shipped = shipped
        self.shipped = False  # whether the shipped table gave every answer
        self._codes: npt.NDArray[np.uint8] | None = None
        self._regions: tuple[str, ...] = ()
        self._signatures: dict[int, npt.NDArray[np.uint64]] = {}
        self._geo: npt.NDArray[np.int32] | None = None
        self._classes: dict[tuple[int, int, int], int] = {}
        self.tuples: list[tuple[str, ...]] = []
        self._tuple_ids: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def _load_shipped(self) -> bool:
        """Take every answer from the shipped table when it matches the installed
        ``phonenumbers``; False (logged once) when it does not."""
        from ...nanp import metadata_fingerprint

        ids, tuples, header = parse_zones_text(_shipped_text())
        built = header.get("phonenumbers")
        if built != phonenumbers.__version__ or header.get("metadata") != metadata_fingerprint():
            log.info("%s was built from phonenumbers %s (metadata %s), not the installed %s: "
                     "finding NANP time zones as prefixes are seen", ZONES_FILE, built,
                     header.get("metadata", "?")[:12], phonenumbers.__version__)
            return False
        self._ids[:] = ids
        self.tuples = tuples
        self._tuple_ids = {t: i for i, t in enumerate(tuples)}
        self.shipped = True
        return True

    def _nanp_codes(self) -> npt.NDArray[np.uint8]:
        if self._codes is None:
            self._codes, self._regions = load_table()
        return self._codes

    def _geo_ids(self) -> npt.NDArray[np.int32]:
        """Per prefix: an id of the longest +1 zone-data key that prefixes it (-1: none)."""
        if self._geo is None:
            from phonenumbers.tzdata import TIMEZONE_DATA

            keys = sorted((k for k in TIMEZONE_DATA if k.startswith("1")), key=len)
            geo = np.full(self._ids.size, -1, dtype=np.int32)
            if any(len(k) > 7 for k in keys):  # keyed below the exchange: answer per number
                self._codes = np.full_like(self._nanp_codes(), FALLBACK)
            for n, k in enumerate(keys):
                digits = k[1:]
                if not digits:
                    geo[:] = n
                    continue
                span = 10 ** (6 - len(digits))
                geo[int(digits) * span:(int(digits) + 1) * span] = n
            self._geo = geo
        return self._geo

    def _signature(self, code: int) -> npt.NDArray[np.uint64]:
        """Per prefix: which of the region's patterns match every number of the block."""
        sig = self._signatures.get(code)
        if sig is None:
            from ...nanp import patterns, prefix_masks

            region = self._regions[code - 1]
            sig = np.zeros(self._ids.size, dtype=np.uint64)
            mine = [(p, pre) for name, p, pre in patterns() if name.startswith(f"{region}.")]
            if len(mine) > 64:
                raise ValueError(f"too many patterns for region {region}")
            for bit, (pattern, prefix) in enumerate(mine):
                _, every = prefix_masks(pattern, prefix)
                sig[every] |= np.uint64(1 << bit)
            self._signatures[code] = sig
        return sig

    def _fill(self, prefixes: npt.NDArray[np.int64]) -> None:
        """Answer ``prefixes`` (called under the lock; repeats allowed): from the shipped table
        on first use, else by their classes."""
        if self._try_shipped:
            self._try_shipped = False
            if self._load_shipped():
                return
        todo = np.zeros(PREFIXES, dtype=bool)  # cheaper than np.unique for many prefixes
        todo[prefixes] = True
        prefixes = np.flatnonzero(todo & (self._ids == _NOT_YET))
        geo = self._geo_ids()
        codes = self._nanp_codes()[prefixes]
        for code in np.unique(codes).tolist():
            ps = prefixes[codes == code]
            if code == FALLBACK:
                self._ids[ps] = PER_NUMBER
                continue
            sig = self._signature(code)[ps] if code else np.zeros(ps.size, dtype=np.uint64)
            for p, s, g in zip(ps.tolist(), sig.tolist(), geo[ps].tolist(), strict=True):
                key = (code, s, g)
                zid = self._classes.get(key)
                if zid is None:
                    found = _pn_zones_uncached(f"+1{p:06d}0000")
                    zid = self._tuple_ids.setdefault(found, len(self.tuples))
                    if zid == len(self.tuples):
                        self.tuples.append(found)
                    self._classes[key] = zid
                self._ids[p] = zid

    def zone_ids(self, prefixes: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
        """Per six-digit NPA-NXX prefix: an index into :attr:`tuples`, or :data:`PER_NUMBER`."""
        ids = self._ids[prefixes]
        if (ids == _NOT_YET).any():
            with self._lock:
                self._fill(prefixes[ids == _NOT_YET])
            ids = self._ids[prefixes]
        return ids

    def zone_id(self, prefix: int) -> int:
        zid = int(self._ids[prefix])
        if zid == _NOT_YET:
            with self._lock:
                self._fill(np.array([prefix], dtype=np.int64))
            zid = int(self._ids[prefix])
        return zid


def build_zones() -> tuple[npt.NDArray[np.int32], list[tuple[str, ...]]]:
    """Compute :class:`NanpZones`' answer for every prefix from the installed
    ``phonenumbers`` (several seconds): (zone id per prefix, zones per id)."""
    found = NanpZones(shipped=False)
    ids = found.zone_ids(np.arange(PREFIXES, dtype=np.int64))
    return ids, list(found.tuples)


def zones_text(ids: npt.NDArray[np.int32], tuples: list[tuple[str, ...]]) -> str:
    """The answer as text: a header, one ``id,zones`` line per zone tuple (``;``-joined,
    empty for none) and one ``first,last,id`` line per run of prefixes (id ``*`` for
    :data:`PER_NUMBER`)."""
    starts = np.flatnonzero(np.diff(ids, prepend=_NOT_YET))
    ends = np.append(starts[1:], ids.size) - 1
    lines = [
        "# NANP NPA-NXX time zones generated by scripts/gen_nanp_zones.py",
        f"# phonenumbers {phonenumbers.__version__}",
        f"# metadata {metadata_fingerprint()}",
        "id,zones",
    ]
    lines += [f"{i},{';'.join(zones)}" for i, zones in enumerate(tuples)]
    lines.append("first,last,id")
    lines += [f"{s:06d},{e:06d},{'*' if ids[s] == PER_NUMBER else int(ids[s])}"
              for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    return "\n".join(lines) + "\n"


def parse_zones_text(text: str) -> tuple[npt.NDArray[np.int32], list[tuple[str, ...]],
                                         dict[str, str]]:
    """(zone id per prefix, zones per id, header fields) from :func:`zones_text` output;
    ValueError when the runs do not cover every prefix or name an unknown id."""
    header: dict[str, str] = {}
    tuples: list[tuple[str, ...]] = []
    firsts: list[int] = []
    lasts: list[int] = []
    values: list[int] = []
    runs = False
    for line in text.splitlines():
        if line.startswith("#"):
            key, _, value = line[2:].partition(" ")
            header[key] = value
        elif line in ("id,zones", "first,last,id"):
            runs = line == "first,last,id"
        elif runs:
            first, last, zid = line.split(",")
            firsts.append(int(first))
            lasts.append(int(last))
            values.append(PER_NUMBER if zid == "*" else int(zid))
        elif line:
            zid, _, zones = line.partition(",")
            if int(zid) != len(tuples):
                raise ValueError(f"zone ids out of order at {line!r}")
            tuples.append(tuple(zones.split(";")) if zones else ())
    start, end, zid_arr = np.array(firsts), np.array(lasts), np.array(values, dtype=np.int32)
    if not start.size or start[0] != 0 or end[-1] != PREFIXES - 1 \
            or (start[1:] != end[:-1] + 1).any() or (end < start).any():
        raise ValueError("the runs of the NANP zone table do not cover every prefix once")
    if ((zid_arr >= len(tuples)) | ((zid_arr < 0) & (zid_arr != PER_NUMBER))).any():
        raise ValueError("the NANP zone table names an unknown zone id")
    return np.repeat(zid_arr, end - start + 1), tuples, header


def _shipped_text() -> str:
    return resources.files("dncguard.data").joinpath(ZONES_FILE).read_text("utf-8")


NANP_ZONES = NanpZones()


def zone_keys(e164s: list[str], digits: npt.NDArray[np.uint64] | None = None) -> list[object]:
    """Per number: a key such that numbers with equal keys get the same candidate zones and
    states from :func:`resolve_location` (given the same row hints): ``(NPA, zone id)`` for a
    ten-digit NANP number whose exchange decides ``phonenumbers``' answer, else the number."""
    n = len(e164s)
    if digits is None or len(digits) != n:
        digits = np.array([int(e[1:]) if e[1:].isdigit() else 0 for e in e164s],
                          dtype=np.uint64)
    keyed = zone_key_array(digits).tolist()
    return [k if k >= 0 else e164s[i] for i, k in enumerate(keyed)]


def zone_key_array(digits: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """:func:`zone_keys` as integers: ``NPA * 2**32 + zone id``, or -1 where the number
    itself is the key."""
    d = digits.astype(np.int64, copy=False)
    nanp = (d >= 10_000_000_000) & (d < 20_000_000_000)
    prefixes = np.where(nanp, (d // 10_000) % 1_000_000, 0)
    ids = NANP_ZONES.zone_ids(prefixes[nanp])
    zid = np.full(d.size, PER_NUMBER, dtype=np.int64)
    zid[nanp] = ids
    return np.where(zid >= 0, (prefixes // 1000) * (1 << 32) + zid, -1)


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


#: regions whose numbers share one numbering plan and are read across the border (a Toronto
#: number with a Miami ZIP): a zone of either is a zone of a number of either
_NANP_REGIONS = ("US", "CA")


def country_zones(region: str, ruleset: Ruleset | None = None) -> frozenset[str]:
    """The zones dncguard knows for the numbers of ``region``: the region's zones in
    ``_zones.yaml`` and those of its states or provinces, and ``phonenumbers``' zones for the
    country's numbers; for a US or Canadian number those of both countries (the NANP, read
    across the border as an address is), their split area codes' included. Empty for a
    region dncguard does not judge."""
    rs = ruleset or load_ruleset()
    return _country_zones(region.upper(), rs.version, rs)


_COUNTRY_ZONES: dict[tuple[str, str], frozenset[str]] = {}


def _country_zones(region: str, version: str, rs: Ruleset) -> frozenset[str]:
    hit = _COUNTRY_ZONES.get((region, version))
    if hit is not None:
        return hit
    from phonenumbers.tzdata import TIMEZONE_DATA

    from ...places import subdivision_codes

    zones: set[str] = set()
    if region in _NANP_REGIONS:
        for r in _NANP_REGIONS:
            zones.update(rs.zones.region_zones.get(r, []))
            for code in subdivision_codes(r):
                zones.update(rs.zones.subdivision_zones.get(code, []))
        for npa_zones in rs.zones.multi_timezone_npas.values():
            zones.update(npa_zones)
    elif region in rs.zones.region_zones:
        zones.update(rs.zones.region_zones[region])
        cc = str(phonenumbers.country_code_for_region(region))
        for key, found in TIMEZONE_DATA.items():
            if key.startswith(cc) and len(found) <= _MAX_PN_ZONES:
                zones.update(z for z in found if z != "Etc/Unknown")
    hit = _COUNTRY_ZONES[(region, version)] = frozenset(zones)
    return hit


@cache
def _zone_in(name: str, zones: frozenset[str]) -> bool:
    return _valid_zone(name) and zones_meet((name,), zones)


def zone_in_country(name: str, region: str, ruleset: Ruleset | None = None) -> bool:
    """Whether the IANA zone ``name`` keeps the local time of one of :func:`country_zones`
    of ``region`` (itself, or a link or a zone of the same offsets all year:
    ``US/Eastern``, ``America/Indiana/Indianapolis``, ``Australia/Melbourne``). A zone that
    does not (``Asia/Tokyo`` or ``UTC`` for an Australian or a US number) is not read for
    the number: :func:`dncguard.engine.context.place_problem` refuses it, and
    :func:`resolve_location` never lets it stand for the number's own zones."""
    return bool(name) and _zone_in(name, country_zones(region, ruleset))


def resolve_location(e164: str, region: str, state: str | None,
                     extra: Mapping[str, str] | None = None,
                     ruleset: Ruleset | None = None) -> Location:
    """Candidate zones and states of a number (see the module docstring)."""
    rs = ruleset or load_ruleset()
    extra = extra or {}
    # the number's own region (a row's region only helps read a national number: it never
    # moves a number that reads as another region's)
    region = (region or extra.get("region") or "").strip().upper()
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
    given = ""  # the row's zone, when it names one
    if tz:
        if _valid_zone(tz):
            given = tz
            add([tz], "timezone-column")
        else:
            how.append("timezone-column-invalid")
    # a zone outside the number's country (refused by the scrub and the API: place_problem)
    # is only ever one more candidate, never the number's whole location
    foreign = bool(given) and not zone_in_country(given, region, rs)
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
        wrong = PN_AREA_CODE_ERRORS.get(npa)
        if wrong and table:
            pn = tuple(z for z in pn if z not in wrong)
        add(pn, "npa-nxx")
        add_state(npa_state)
    else:
        found = _pn_zones(e164)
        # outside NANP a multi-zone answer (e.g. an Australian mobile) says nothing about where
        # the subscriber is: a time zone given for the number narrows it to that zone when the
        # zone keeps the local time of one of them; any other zone is one more candidate
        if not (len(found) > 1 and given and not foreign and zones_meet((given,), found)):
            add(found, "number-prefix")
    if address_state:
        add_state(address_state)
        add(rs.zones.subdivision_zones.get(address_state, []), "state")
    zip_code = (extra.get("zip") or "").strip() or None
    addressed = address_state is not None
    if zip_code:
        zs = _zip_state(zip_code)
        if zs:
            addressed = True
            add_state(zs)
            add(_zip_zones(rs, zip_code, zs), "zip")
        else:
            how.append("zip-unknown")
    # a number with no zones of its own is judged in a zone given for it only when the zone
    # is one of its country's (a toll-free number with America/Chicago)
    known = bool(zones) and not (foreign and zones == [given])
    if not known:
        zones.extend(rs.zones.region_zones.get(region, []))
        single = len(zones) == 1
        how.append("region" if single else "region-fallback")
        known = single
    every: tuple[str, ...] = ()
    if region == "US" and not states:
        # no state is known (a toll-free number, an area code the NPA table does not name):
        # every state or territory with a candidate zone is a candidate for the day and hour
        # rules, so a day or hour that any of them bans is not callable (reference section
        # 4.1: prohibited if any candidate state bans it). For the region fallback that is
        # every state and DC. Their lists, consent and caps are not brought in: those need
        # the state the party is in, which the address gives.
        every = _states_meeting(rs, tuple(zones))
    return Location(tuple(zones), tuple(states), "+".join(how), known, zip_code, every,
                    addressed)


def _states_meeting(rs: Ruleset, zones: tuple[str, ...]) -> tuple[str, ...]:
    """The US states, DC and territories with a rules file and a zone that keeps the same
    local time as one of ``zones`` (in the ruleset's file order)."""
    return tuple(j[3:] for j in rs.files if j.startswith("US-")
                 and zones_meet(rs.zones.subdivision_zones.get(j[3:], ()), zones))


def resolve_zones(e164: str, region: str, state: str | None,
                  extra: Mapping[str, str] | None = None) -> tuple[list[str], str]:
    """Candidate IANA zones of a number and how they were found (for the verdict's timezone)."""
    loc = resolve_location(e164, region, state, extra)
    return list(loc.zones), loc.how
