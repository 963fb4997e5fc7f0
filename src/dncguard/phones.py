"""Phone-number normalisation: every input goes through :func:`normalise`.

The per-row parser is ``phonenumbers`` (pinned). The performance issue replaces the body of
:func:`normalise_many` with a vectorised path; callers only use these two functions.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

import phonenumbers
from phonenumbers import NumberParseException

from .config import SUPPORTED_REGIONS
from .models import ReasonCode

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown or missing country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


@dataclass(frozen=True, slots=True)
class Normalised:
    """The outcome of normalising one input."""

    raw: str
    e164: str | None = None
    region: str | None = None
    error: ReasonCode | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.e164 is not None

    @property
    def digits(self) -> int:
        """The E.164 number as an integer (country code and number, no '+')."""
        assert self.e164 is not None
        return int(self.e164[1:])


def _region_hint(region: str | None) -> str:
    hint = (region or "").strip().upper()
    if hint == "UK":
        return "GB"
    return hint


@lru_cache(maxsize=65_536)
def _normalise_cached(raw: str, region: str) -> Normalised:
    text = raw.strip()
    if not text:
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER, message="the phone field is empty")
    try:
        number = phonenumbers.parse(text, region or None)
    except NumberParseException as exc:
        why = _PARSE_ERRORS.get(exc.error_type, str(exc))
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER, message=f"cannot parse: {why}")
    if not phonenumbers.is_valid_number(number):
        reason = phonenumbers.is_possible_number_with_reason(number)
        why = {
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
            phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length for its country",
        }.get(reason, "no such number range is assigned")
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER,
                          message=f"not a valid number: {why}")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    found = phonenumbers.region_code_for_number(number)
    if found not in SUPPORTED_REGIONS:
        where = found or "a non-geographic range"
        return Normalised(
            raw,
            e164=e164,
            region=found,
            error=ReasonCode.UNSUPPORTED_REGION,
            message=f"number belongs to {where}; supported regions are US, CA, GB, AU",
        )
    return Normalised(raw, e164=e164, region=found)


def normalise(raw: str, region: str | None = None) -> Normalised:
    """Normalise one input to E.164; ``region`` is the default for national-format input."""
    return _normalise_cached(raw, _region_hint(region))


def normalise_many(raws: Sequence[str], regions: Sequence[str | None]) -> list[Normalised]:
    """Normalise a batch; ``regions[i]`` is the default region of ``raws[i]``."""
    return [_normalise_cached(r, _region_hint(g)) for r, g in zip(raws, regions, strict=True)]


def mask(e164: str | None) -> str:
    """A masked form safe for logs, e.g. ``+1202555****``."""
    if not e164:
        return "<none>"
    return e164[:-4] + "****" if len(e164) > 6 else "****"


@cache
def _npa_states() -> dict[int, tuple[str, str]]:
    table: dict[int, tuple[str, str]] = {}
    text = resources.files("dncguard.data").joinpath("npa_state.csv").read_text("utf-8")
    for row in csv.DictReader(text.splitlines()):
        table[int(row["npa"])] = (row["region"], row["state"])
    return table


def state_for(e164: str | None) -> str | None:
    """The US state or Canadian province of a NANP number's area code, when known."""
    if not e164 or not e164.startswith("+1") or len(e164) != 12:
        return None
    hit = _npa_states().get(int(e164[2:5]))
    return hit[1] if hit else None
