"""Normalisation to E.164, regions, masking and area-code states."""

from __future__ import annotations

import pytest

from dncguard.models import ReasonCode
from dncguard.phones import mask, normalise, normalise_many, state_for


@pytest.mark.parametrize(
    ("raw", "region", "e164", "found"),
    [
        pytest.param("+12025550123", None, "+12025550123", "US", id="e164"),
        pytest.param("(202) 555-0123", "US", "+12025550123", "US", id="us-national"),
        pytest.param("202.555.0123", "US", "+12025550123", "US", id="us-dots"),
        pytest.param("1-202-555-0123", "US", "+12025550123", "US", id="us-trunk-1"),
        pytest.param("613-555-0123", "US", "+16135550123", "CA", id="canada-by-npa"),
        pytest.param("020 7946 0123", "GB", "+442079460123", "GB", id="gb-national"),
        pytest.param("020 7946 0123", "UK", "+442079460123", "GB", id="uk-alias"),
        pytest.param("02 5550 1234", "AU", "+61255501234", "AU", id="au-national"),
        pytest.param("  +44 20 7946 0123 ", "US", "+442079460123", "GB", id="intl-beats-hint"),
    ],
)
def test_valid_numbers_become_e164(raw: str, region: str | None, e164: str, found: str) -> None:
    """Valid input in any common format normalises to one E.164 form and its region."""
    result = normalise(raw, region)
    assert result.ok
    assert (result.e164, result.region) == (e164, found)
    assert result.digits == int(e164[1:])


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        pytest.param("", ReasonCode.INVALID_NUMBER, "empty", id="empty"),
        pytest.param("   ", ReasonCode.INVALID_NUMBER, "empty", id="blank"),
        pytest.param("call me", ReasonCode.INVALID_NUMBER, "not a phone number", id="words"),
        pytest.param("12345", ReasonCode.INVALID_NUMBER, "not a valid number", id="short"),
        pytest.param("+1 202 555 01234567", ReasonCode.INVALID_NUMBER, "", id="too-long"),
        pytest.param("(111) 555-0123", ReasonCode.INVALID_NUMBER, "not a valid", id="bad-npa"),
        pytest.param("+18765550100", ReasonCode.UNSUPPORTED_REGION, "JM", id="jamaica"),
        pytest.param("+33142685300", ReasonCode.UNSUPPORTED_REGION, "FR", id="france"),
        # a second number after ';' (read as RFC 3966 parameters) or as a long extension
        # would be dropped unchecked
        pytest.param("2025550101;3055550150", ReasonCode.INVALID_NUMBER, "one number per",
                     id="semicolon"),
        pytest.param("+12025550101;isub=1234", ReasonCode.INVALID_NUMBER, "';'", id="isub"),
        pytest.param("2025550101 ext 3055550150", ReasonCode.INVALID_NUMBER,
                     "extension of 10 digits", id="long-extension"),
        pytest.param("(202) 555-0101 x1234567", ReasonCode.INVALID_NUMBER,
                     "extension of 7 digits", id="seven-digit-extension"),
    ],
)
def test_bad_numbers_explain_themselves(raw: str, code: ReasonCode, words: str) -> None:
    """Invalid input gets INVALID_NUMBER with the parser's reason; foreign numbers
    UNSUPPORTED_REGION naming their country."""
    result = normalise(raw, "US")
    assert not result.ok
    assert result.error is code
    assert words in result.message


def test_normalise_many_keeps_order_and_regions() -> None:
    """Each input is parsed with its own default region."""
    out = normalise_many(["020 7946 0123", "2025550123"], ["GB", "US"])
    assert [o.e164 for o in out] == ["+442079460123", "+12025550123"]


def test_mask_hides_the_subscriber_digits() -> None:
    assert mask("+12025550123") == "+1202555****"
    assert "0123" not in mask("+12025550123")
    assert mask(None) == "<none>"


@pytest.mark.parametrize(
    ("e164", "state"),
    [("+12025550123", "DC"), ("+13055550123", "FL"), ("+14155550123", "CA"),
     ("+16135550123", "ON"), ("+18005550123", None), ("+442079460123", None)],
)
def test_state_for_area_code(e164: str, state: str | None) -> None:
    """US and Canadian area codes map to a state or province; others to none."""
    assert state_for(e164) == state


@pytest.mark.parametrize("raw", ["2025550101 ext. 12", "2025550101;ext=123456",
                                 "(202) 555-0101 x 42"])
def test_a_short_extension_is_the_number(raw: str) -> None:
    """An extension of up to six digits is dialled after the number: the number is checked."""
    assert normalise(raw, "US").e164 == "+12025550101"
