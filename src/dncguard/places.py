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


@cache
def _subdivisions() -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """(spelling key -> (region, code), region -> codes)."""
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
    English or French) or an AP abbreviation; None when it is none of those."""
    return _subdivisions()[0].get(spelling_key(value))


def subdivision_codes(region: str) -> list[str]:
    """The codes of a region's states or provinces (``US``: states, DC and territories)."""
    return list(_subdivisions()[1].get(region, []))


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


__all__ = ["CA_POSTAL", "CA_POSTAL_PROVINCES", "NUNAVUT_FSAS", "US_ZIP", "postal_state",
           "spelling_key", "subdivision", "subdivision_codes", "zip_state"]
