"""Generate src/dncguard/data/npa_state.csv from the pinned phonenumbers' geocoding data.

For every NANP area code that phonenumbers assigns to the US or Canada, look up the geocoder's
description of a sample of exchanges and keep the state or province it names most often. An
area code phonenumbers assigns to a US territory (``dncguard.phones.US_TERRITORIES``: PR, VI,
GU, MP, AS) gets that territory as its state; its ``region`` column stays phonenumbers' region
(the verdict's region is ``US``, see ``dncguard.phones``). An area code whose exchanges the
geocoder names by no state (it says "Washington State" for 564) takes its state from
:data:`HAND`, a short cited table; one that the geocoder does name must agree with it.
Run: python scripts/gen_npa_states.py > src/dncguard/data/npa_state.csv

``tests/rules/test_zone_data.py`` checks the shipped file against :func:`csv_text`.
"""

from __future__ import annotations

import collections
import sys

import phonenumbers
from phonenumbers import geocoder

from dncguard.phones import US_TERRITORIES

US = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC",
}
CA = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Nova Scotia": "NS", "Ontario": "ON",
    "Prince Edward Island": "PE", "Quebec": "QC", "Saskatchewan": "SK",
    "Northwest Territories": "NT", "Nunavut": "NU", "Yukon": "YT",
}


#: Area codes the geocoder of phonenumbers 9.0.43 names by no state, with the state they serve.
#: Each is an overlay, so it serves its parent area code's state or province.
HAND: dict[int, tuple[str, str, str]] = {
    257: ("CA", "BC", "overlay of 604/250/778/236/672 in British Columbia (CRTC relief plan, "
                      "in service 24 May 2025); the geocoder says 'British Colombia'"),
    564: ("US", "WA", "overlay of 360 (and 206) in western Washington (Washington UTC order of "
                      "May 2016, in service 2017); the geocoder says 'Washington State'"),
    782: ("CA", "NS", "overlay of 902, Nova Scotia and Prince Edward Island (CRTC, October "
                      "2012, in service 30 November 2014); given 902's state, NS; the geocoder "
                      "says 'Nova Scotia/Prince Edward Island'"),
}


def state_of(description: str, region: str) -> str | None:
    table = US if region == "US" else CA
    if description in table:
        return table[description]
    tail = description.rsplit(",", 1)[-1].strip()
    if tail in table.values():
        return tail
    return table.get(tail)


def rows() -> list[tuple[int, str, str]]:
    """(area code, region, state) of every area code with a state."""
    out = []
    for npa in range(200, 1000):
        votes: collections.Counter[tuple[str, str]] = collections.Counter()
        for nxx in range(200, 1000, 7):
            number = phonenumbers.parse(f"+1{npa}{nxx}4567")
            region = phonenumbers.region_code_for_number(number)
            if region not in ("US", "CA", *US_TERRITORIES) \
                    or not phonenumbers.is_valid_number(number):
                continue
            if region in US_TERRITORIES:
                state: str | None = region
            else:
                state = state_of(geocoder.description_for_number(number, "en"), region)
            if state:
                votes[(region, state)] += 1
        hand = HAND.get(npa)
        if votes:
            (region, state), _ = votes.most_common(1)[0]
            if hand and hand[:2] != (region, state):
                raise SystemExit(f"NPA {npa}: the geocoder says {region} {state}, "
                                 f"HAND says {hand[0]} {hand[1]}")
            out.append((npa, region, state))
        elif hand:
            out.append((npa, hand[0], hand[1]))
        else:
            print(f"generated no state for NPA {npa}", file=sys.stderr)
    return out


def csv_text() -> str:
    """The contents of ``npa_state.csv``."""
    return "".join(f"{line}\n" for line in ["npa,region,state",
                                             *(f"{n},{r},{s}" for n, r, s in rows())])


def main() -> None:
    sys.stdout.write(csv_text())


if __name__ == "__main__":
    main()
