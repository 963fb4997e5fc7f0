"""One place for the state of a ZIP or postal code (``dncguard.places.postal_state``), used by
the rules (zones and state) and the state lists alike."""

from __future__ import annotations

from importlib import resources

import pytest

from dncguard.places import CA_POSTAL_PROVINCES, NUNAVUT_FSAS, postal_state, subdivision_codes
from dncguard.sources.local import _zip_states, applies_to
from dncguard.sources.protocol import Batch
from dncguard.sources.rules import RulesDataError, parse_texts, resolve_location


@pytest.mark.parametrize(("code", "state"), [
    ("X0A 0H0", "NU"),   # Iqaluit
    ("x0b 0c0", "NU"),   # Cambridge Bay, any case
    ("X0C0G0", "NU"),    # Rankin Inlet, no space
    ("X1A 2L9", "NT"),   # Yellowknife
    ("X0E 0T0", "NT"),   # Hay River
    ("K1A 0B1", "ON"),
    ("T2P 1J9", "AB"),
    ("H2X 1Y4", "QC"),
    ("Y1A 1B1", "YT"),
    ("84101", "UT"),
    ("84101-1234", "UT"),
    ("841011234", "UT"),
    (" 10001 ", "NY"),
])
def test_known_codes(code: str, state: str) -> None:
    assert postal_state(code) == state


@pytest.mark.parametrize("code", [
    "SW1A 1AA",   # a UK postcode: its first letter is not Saskatchewan
    "S",          # a letter alone
    "K1A",        # a forward sortation area alone
    "D1A 1A1",    # a first letter Canada Post does not use
    "00000",      # not a ZIP code anyone has
    "8410",
    "",
])
def test_anything_else_has_no_state(code: str) -> None:
    assert postal_state(code) is None


def test_table_names_canadian_provinces_only() -> None:
    provinces = set(subdivision_codes("CA"))
    assert set(CA_POSTAL_PROVINCES.values()) | {"NU"} == provinces
    assert {fsa[0] for fsa in NUNAVUT_FSAS} == {"X"}


def test_rules_use_nunavut_zones_for_a_nunavut_postal_code() -> None:
    """An Ontario mobile number whose holder lives in Iqaluit: the rules add Nunavut's zones
    and state, not the Northwest Territories'."""
    found = resolve_location("+14165550100", "CA", None, {"zip": "X0A 0H0"})
    assert "NU" in found.states and "NT" not in found.states
    assert "America/Iqaluit" in found.zones
    assert "America/Yellowknife" not in found.zones


def test_rules_read_no_province_from_a_uk_postcode() -> None:
    """A US number with a UK postcode: no Saskatchewan (its first letter) among the states."""
    found = resolve_location("+12125550100", "US", None, {"zip": "SW1A 1AA"})
    assert "SK" not in found.states
    assert "America/Regina" not in found.zones
    assert "zip-unknown" in found.how


def test_state_lists_and_rules_agree() -> None:
    codes = ["X0A 0H0", "X1A 2L9", "30301", "SW1A 1AA", "K1A 0B1", ""]
    assert _zip_states(codes) == ["NU", "NT", "GA", "", "ON", ""]
    for code, state in zip(codes, _zip_states(codes), strict=True):
        region = "CA" if code[:1].isalpha() else "US"
        found = resolve_location("+14165550100" if region == "CA" else "+12125550100",
                                 region, None, {"zip": code} if code else {})
        assert (state in found.states) if state else ("zip" not in found.how.split("+"))


def test_a_rules_folder_with_the_old_postal_table_is_refused() -> None:
    data = resources.files("dncguard.sources.rules") / "data"
    texts = {p.name: p.read_text("utf-8") for p in data.iterdir() if p.name.endswith(".yaml")}
    texts["_zones.yaml"] += "ca_postal_provinces:\n  X: NT\n"
    with pytest.raises(RulesDataError, match="ca_postal_provinces is no longer read"):
        parse_texts(texts)


def test_a_provincial_list_applies_by_the_postal_code() -> None:
    """A row's postal code brings in its province's list (the state lists' road): a Nunavut
    code, Nunavut's list; a Northwest Territories code, theirs; a row with no address, every
    province's list (its area code does not show where the subscriber lives)."""
    toronto = "+14165550100"
    batch = Batch.of([toronto] * 4, ["CA"] * 4, [None] * 4,
                     [{"zip": "X0A 0H0"}, {"zip": "X1A 2L9"}, {}, {"state": "ON"}])
    assert applies_to("CA-NU", batch).tolist() == [True, False, True, False]
    assert applies_to("CA-NT", batch).tolist() == [False, True, True, False]
