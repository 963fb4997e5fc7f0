"""What a CXone DNC record says, read the same way by the sync, the live search and the
write-back: its update and expiry times, its number (as E.164, and back as CXone stores it),
and which of two records of a number blocks longer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...phones import normalise

#: How the records endpoint is asked for the newest records first.
ORDER_NEWEST = "lastUpdateTime desc"


def list_name(group_id: Any) -> str:
    """The local list a DNC group is synced into."""
    return f"cxone:{group_id}"


def parse_time(value: Any) -> datetime | None:
    """A CXone timestamp (ISO 8601, usually with ``Z``) as an aware UTC datetime."""
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    # an offset other than Z is kept as the same instant in UTC (stored as such: SQLite
    # keeps no offset)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def phone_digits(raw: Any) -> str:
    """The digits of a CXone phone number, in order (whatever punctuation it came with)."""
    return "".join(ch for ch in str(raw) if ch.isdigit())


def record_key(record: dict[str, Any]) -> str:
    """What tells two records of a group apart: the record id, else the number."""
    rid = record.get("recordId")
    if rid not in (None, ""):
        return f"id:{rid}"
    return f"phone:{phone_digits(record.get('phoneNumber'))}"


def to_e164(raw: Any, region: str) -> str | None:
    """A CXone phone number as E.164, or None when it cannot be read.

    CXone (and :func:`to_cxone_phone`, dncguard's own write-back) stores national digits
    for NANP numbers and the full digits, country code first and no ``+``, for the others.
    So a number that is not a number of the default region is read again: ten digits as a
    NANP number, then the digits as an international number (``+`` and the digits): a UK
    number in a US home, or a NANP number in a UK or Australian home, is still read."""
    digits = phone_digits(raw)
    if not digits:
        return None
    if region in ("US", "CA") and len(digits) == 10 and digits[0] in "23456789":
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
        return "+" + digits
    text = str(raw).strip()
    result = normalise(text if text.startswith("+") else digits, region)
    if result.e164 is not None or text.startswith("+"):
        return result.e164
    if len(digits) == 10 and digits[0] in "23456789":
        nanp = normalise("+1" + digits, region)
        if nanp.e164 is not None:
            return nanp.e164
    return normalise("+" + digits, region).e164


def record_number(rec: dict[str, Any], region: str) -> str | None:
    """A record's number as E.164 (its ``phoneNumber``, else its ``formattedPhone``), or
    None when it cannot be read: what every step of a sync reads the record as."""
    return to_e164(rec.get("phoneNumber") or rec.get("formattedPhone") or "", region)


def to_cxone_phone(e164: str) -> str:
    """What CXone stores: national digits for NANP numbers, else the full digits."""
    return e164[2:] if e164.startswith("+1") and len(e164) == 12 else e164.lstrip("+")


def blocks_longer(kept: datetime | None, other: datetime | None) -> bool:
    """Whether a record expiring at ``kept`` blocks at least as long as one expiring at
    ``other`` (None: never expires)."""
    if kept is None:
        return True
    return other is not None and kept >= other
