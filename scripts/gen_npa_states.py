"""Generate src/dncguard/data/npa_state.csv from the pinned phonenumbers' geocoding data.

For every NANP area code that phonenumbers assigns to the US or Canada, look up the geocoder's
description of a sample of exchanges and keep the state or province it names most often. An
area code phonenumbers assigns to a US territory (``dncguard.phones.US_TERRITORIES``: PR, VI,
GU, MP, AS) gets that territory as its state; its ``region`` column stays phonenumbers' region
(the verdict's region is ``US``, see ``dncguard.phones``).
Run: python scripts/gen_npa_states.py > src/dncguard/data/npa_state.csv
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


def state_of(description: str, region: str) -> str | None:
    table = US if region == "US" else CA
    if description in table:
        return table[description]
    tail = description.rsplit(",", 1)[-1].strip()
    if tail in table.values():
        return tail
    return table.get(tail)


def main() -> None:
    print("npa,region,state")
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
        if votes:
            (region, state), _ = votes.most_common(1)[0]
            print(f"{npa},{region},{state}")
        else:
            print(f"generated no state for NPA {npa}", file=sys.stderr)


if __name__ == "__main__":
    main()
