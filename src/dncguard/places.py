"""Where a called party is, from what a row says: state and province names, ZIP codes.

The tables ship as data generated from maintained packages (``scripts/gen_place_data.py``;
``tests/test_places.py`` checks them against their sources):

* ``data/subdivisions.csv``: the US states, DC and territories and the Canadian provinces and
  territories, with their official names (English and French, from ``holidays``) and the AP
  style abbreviations (``Fla.``, from ``us``);
* ``data/zip_states.csv``: every US ZIP code (from ``zipcodes``) and its state.

The provinces of Canadian postal codes are a short table here (:data:`CA_POSTAL_PROVINCES`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources

import numpy as np
import numpy.typing as npt


def spelling_key(value: str) -> str:
    """How a spelling is compared: accents, case, dots, hyphens and spaces do not count."""
    text = unicodedata.normalize("NFKD", value)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[\s.\-_']+", "", text.casefold())


#: Subdivisions of the tables' sources that dncguard has no calling rules and no time zones
#: for (``US-UM``, the US Minor Outlying Islands: no rules file, no zones). A row naming one
#: is refused (:func:`unserved_subdivision`): read as a known state it would switch off the
#: readings for a number whose state is not known (every state's day and hour rules, every
#: state list) and bring no rules of its own, which turns a stop into an allow.
#: ``tests/test_context_refusals_more.py`` holds this to the rules data: every other code has
#: zones (and, in the US, a rules file).
UNSERVED_SUBDIVISIONS: frozenset[tuple[str, str]] = frozenset({("US", "UM")})


@cache
def _subdivisions() -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """(spelling key -> (region, code), region -> codes), the unserved ones included."""
    text = resources.files("dncguard.data").joinpath("subdivisions.csv").read_text("utf-8")
    found: dict[str, tuple[str, str]] = {}
    codes: dict[str, list[str]] = {}
    for line in text.splitlines()[2:]:
        region, code, names = line.split(",", 2)
        codes.setdefault(region, []).append(code)
        for spelling in (code, *names.split("|")):
            if spelling:
                found.setdefault(spelling_key(spelling), (region, code))
    return found, codes


def subdivision(value: str) -> tuple[str, str] | None:
    """``(region, code)`` of a state or province written as its code, its name (any case,
    English or French) or an AP abbreviation; None when it is none of those, or one of
    :data:`UNSERVED_SUBDIVISIONS`."""
    found = _subdivisions()[0].get(spelling_key(value))
    return None if found in UNSERVED_SUBDIVISIONS else found


def unserved_subdivision(value: str) -> tuple[str, str] | None:
    """``(region, code)`` when ``value`` names one of :data:`UNSERVED_SUBDIVISIONS` (a
    subdivision dncguard knows of but has no rules and zones for); None otherwise."""
    found = _subdivisions()[0].get(spelling_key(value))
    return found if found in UNSERVED_SUBDIVISIONS else None


def subdivision_codes(region: str) -> list[str]:
    """The codes of a region's states or provinces (``US``: states, DC and territories) that
    dncguard has rules and zones for (not :data:`UNSERVED_SUBDIVISIONS`)."""
    return [c for c in _subdivisions()[1].get(region, [])
            if (region, c) not in UNSERVED_SUBDIVISIONS]


@cache
def _zip_runs() -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], list[str]]:
    text = resources.files("dncguard.data").joinpath("zip_states.csv").read_text("utf-8")
    firsts, lasts, states = [], [], []
    for line in text.splitlines()[2:]:
        first, last, state = line.split(",")
        firsts.append(int(first))
        lasts.append(int(last))
        states.append(state)
    return np.array(firsts, dtype=np.int32), np.array(lasts, dtype=np.int32), states


def zip_state(zip5: str) -> str | None:
    """The state (USPS code, including territories and the military ``AA``/``AE``/``AP``) of
    a five-digit US ZIP code, or None when the ZIP code is not known."""
    if len(zip5) != 5 or not zip5.isdigit():
        return None
    firsts, lasts, states = _zip_runs()
    code = int(zip5)
    i = int(np.searchsorted(firsts, code, side="right")) - 1
    if i < 0 or code > int(lasts[i]):
        return None
    return states[i]


#: The province or territory of a Canadian postal code by its first letter, as Canada Post
#: assigns them (Canada Post, "Addressing guidelines", postal code: the first letter of the
#: forward sortation area names the province or territory). ``X`` serves two territories:
#: see :data:`NUNAVUT_FSAS`.
CA_POSTAL_PROVINCES: dict[str, str] = {
    "A": "NL", "B": "NS", "C": "PE", "E": "NB", "G": "QC", "H": "QC", "J": "QC",
    "K": "ON", "L": "ON", "M": "ON", "N": "ON", "P": "ON", "R": "MB", "S": "SK", "T": "AB",
    "V": "BC", "X": "NT", "Y": "YT",
}
#: The forward sortation areas of Nunavut; every other ``X`` area is the Northwest
#: Territories' (X0E, X0G, X1A).
NUNAVUT_FSAS = frozenset({"X0A", "X0B", "X0C"})

#: A US ZIP code (five digits, or ZIP+4 with or without the hyphen) and a Canadian postal
#: code (``K1A 0B1``, with or without the space; the letters Canada Post never uses refused).
#: Groups: the five digits and the four (ZIP+4); the forward sortation area and the rest.
US_ZIP = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")
CA_POSTAL = re.compile(r"^([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]) ?(\d[ABCEGHJ-NPRSTV-Z]\d)$")
#: A UK postcode (``SW1A 1AA``, upper case, with or without the space): outward and inward
#: code. Checked after :data:`CA_POSTAL` (a Canadian postal code is never one).
GB_POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?) ?(\d[A-Z]{2})$")

#: The military post codes of the ZIP table (APO/FPO/DPO: Armed Forces Americas, Europe,
#: Pacific): an address abroad, in no state and no known time zone.
MILITARY_POST = frozenset({"AA", "AE", "AP"})


def postal_state(code: str) -> str | None:
    """The state or province of a US ZIP code (its first five digits, from the ZIP table) or
    a Canadian postal code (by its forward sortation area), in any case; None for anything
    else (an unknown ZIP code, a UK postcode, a partial code)."""
    text = code.strip().upper()
    us = US_ZIP.match(text)
    if us:
        return zip_state(us.group(1))
    ca = CA_POSTAL.match(text)
    if ca:
        return "NU" if ca.group(1) in NUNAVUT_FSAS else CA_POSTAL_PROVINCES[text[0]]
    return None


def address_state(code: str) -> str | None:
    """The state or province a ZIP or postal code puts the called party's address in, as
    the state lists, the rules and the verdict's ``state`` all read it: :func:`postal_state`,
    except that a military post code (:data:`MILITARY_POST`: ``AA``/``AE``/``AP``) names none.
    Such a code reads as an unknown ZIP code: the row gives no address, so the number keeps
    its own location and every state list of its country applies (the safe side). The same
    whatever the number's country (a Toronto number with a Miami ZIP: Florida)."""
    found = postal_state(code)
    return None if found in MILITARY_POST else found


@cache
def _australian_states() -> dict[str, str]:
    import holidays

    au = holidays.country_holidays("AU")
    return {code: name for name, code in au.subdivisions_aliases.items()
            if code in au.subdivisions}


def australian_state(code: str) -> str | None:
    """The Australian state or territory whose code is ``code`` (as :func:`subdivision`
    returns it, e.g. ``WA``: Western Australia), from the ``holidays`` package's subdivisions;
    None for any other code. Two of them (``WA``, ``NT``) are also a US state's and a
    Canadian territory's code, which is how :func:`subdivision` reads them."""
    return _australian_states().get(code.strip().upper()) if code else None


def uk_postcode(code: str) -> bool:
    """Whether ``code`` is a UK postcode (any case; never a US ZIP or Canadian postal code)."""
    text = code.strip().upper()
    return (GB_POSTCODE.match(text) is not None and US_ZIP.match(text) is None
            and CA_POSTAL.match(text) is None)


__all__ = ["CA_POSTAL", "CA_POSTAL_PROVINCES", "GB_POSTCODE", "MILITARY_POST", "NUNAVUT_FSAS",
           "UNSERVED_SUBDIVISIONS", "US_ZIP", "address_state", "australian_state",
           "postal_state", "spelling_key",
           "subdivision", "subdivision_codes", "uk_postcode", "unserved_subdivision",
           "zip_state"]
