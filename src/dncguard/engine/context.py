"""One place where the context a number is judged in is read and validated.

Context arrives as CLI flags, scrub-file columns, API fields, job-upload fields and campaign
profiles; all of them go through :func:`clean_field` (one value) or :func:`clean_context`
(several). Every value is either understood and returned in its canonical form, or refused
with a :class:`ContextError` that names the field, the value and the accepted forms. Nothing
is dropped: a value the rules could not read would otherwise judge the number as if the row
had said nothing, which can turn a stop into an allow.

============  ==========================================================================
field         accepted (any case, surrounding spaces ignored) -> canonical form
============  ==========================================================================
region        ``US``, ``CA``, ``GB`` (or ``UK``), ``AU`` -> the code
state         a US state, DC or territory, or a Canadian province or territory, as its
              postal code, its name (English or French) or an AP abbreviation
              (``Florida``, ``fla.``, ``FL``) -> the postal code (``FL``). A subdivision
              without rules and zones (``UM``, the US Minor Outlying Islands) is refused,
              and so is, on an Australian number, a code that is also an Australian
              state's (``WA``, ``NT``: ``place_problem``).
zip           US: five digits or ZIP+4 (``12345-6789``, ``123456789``) of a known ZIP code
              -> the five digits; Canada: a postal code (``K1A 0B1``) -> ``K1A 0B1``;
              UK: a postcode (``SW1A 1AA``), for a UK number only (the scrub refuses it on
              another country's number: ``place_problem``). Four digits
              are refused: an Australian postcode and a US ZIP that lost its leading zero
              look alike.
timezone      an IANA zone name (``America/New_York``) -> the name as given; one outside
              the number's country (for a US or Canadian number: outside both) is refused
              for that number (``place_problem``)
line_type     ``mobile`` (``wireless``, ``cell``), ``landline`` (``wireline``, ``fixed``),
              ``voip`` -> ``mobile`` / ``landline`` / ``voip``
subject       any text up to 200 characters (a frequency-cap subject such as a debt id)
============  ==========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config import SUPPORTED_REGIONS
from ..errors import ContextError
from ..phones import US_TERRITORIES
from ..places import (
    CA_POSTAL,
    GB_POSTCODE,
    US_ZIP,
    australian_state,
    subdivision,
    uk_postcode,
    unserved_subdivision,
    zip_state,
)

#: Per-row context fields, in the order they key a row's context.
CONTEXT_FIELDS = ("region", "state", "zip", "timezone", "line_type", "subject")
PURPOSES = ("telemarketing", "informational", "collections")
CALL_TYPES = ("manual", "autodialed", "prerecorded")
LINE_TYPES = ("mobile", "landline", "voip")
_LINE_ALIASES = {"mobile": "mobile", "wireless": "mobile", "cell": "mobile",
                 "cellular": "mobile", "landline": "landline", "wireline": "landline",
                 "fixed": "landline", "voip": "voip"}
MAX_SUBJECT = 200

ACCEPTED: dict[str, str] = {
    "region": "one of US (or a US territory: PR, VI, GU, MP, AS), CA, GB (or UK), AU",
    "state": "a US state, DC or territory, or a Canadian province, as its postal code "
             "(FL), its name (Florida) or an AP abbreviation (Fla.)",
    "zip": "a known US ZIP code (12345 or 12345-6789), a Canadian postal code (K1A 0B1) "
           "or, for a UK number, a UK postcode (SW1A 1AA)",
    "timezone": "an IANA time zone name such as America/New_York",
    "line_type": "mobile (or wireless, cell), landline (or wireline, fixed) or voip",
    "subject": f"text of at most {MAX_SUBJECT} characters",
    "purpose": "one of " + ", ".join(PURPOSES),
    "call_type": "one of " + ", ".join(CALL_TYPES),
}


def _refuse(field: str, value: str, why: str | None = None) -> ContextError:
    return ContextError(field, value, ACCEPTED.get(field, ""), why)


def _zone(value: str) -> str:
    if "/" not in value and value.upper() not in ("UTC", "GMT"):
        raise ValueError(value)  # "EST", "Eastern": abbreviations are ambiguous
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(value) from None
    return value


def place_problem(country: str, state: str, zip_code: str,
                  timezone: str = "") -> tuple[str, str] | None:
    """Why a state, ZIP or time zone (each canonical, as :func:`clean_field` returns it;
    blank for none) cannot be read for a number of ``country`` (its region, as the number
    reads): the field and why, or None. One rule for the scrub
    (:meth:`ScrubRun._refuse_foreign_places`: ``check`` too) and the context of one number
    (:func:`clean_context` with ``country``: ``rules when``, the API):

    * a UK postcode on a number of another country: it names no state, and the UK's rules and
      zone are not applied to another country's number, so it would go unread;
    * on an Australian number, a state whose code is also an Australian state's (``WA``:
      Washington or Western Australia; ``NT``): read as the US state or Canadian territory it
      would judge the number by that place's hours and lists, and an Australian state is not
      read;
    * a time zone outside the number's country (:func:`~dncguard.sources.rules._zones.
      zone_in_country`; for a US or Canadian number, outside both): given for an Australian
      mobile it would stand for the mobile's every zone, and for a number with no zones of
      its own (toll-free) it would be the only one, so the call would be judged where the
      number cannot be. A zone of the country narrows a number's zones only as
      docs/rules.md says."""
    if zip_code and country != "GB" and uk_postcode(zip_code):
        return "zip", (
            f"{zip_code!r} is a UK postcode but the number is a {country} number: dncguard "
            "reads a UK postcode only for a UK number (the UK's rules and zone are not applied "
            "to another country's number, so the postcode would go unread); give the party's "
            "US ZIP or Canadian postal code, or leave it out")
    au = australian_state(state) if state and country == "AU" else None
    if au is not None:
        return "state", (
            f"{state!r} on an Australian number is also the code of {au}, and dncguard reads "
            "a state only as a US state or Canadian province (it would judge the number by "
            "that place's hours and lists); an Australian number's own zones are used: give "
            "the party's time zone in a timezone column (Australia/Perth) or leave the state "
            "out")
    if timezone and not _zone_in_country(timezone, country):
        where = _COUNTRY_NAMES.get(country, country)
        return "timezone", (
            f"{timezone!r} is not a time zone of the number's country ({where}): dncguard "
            "judges a number only in its own country's zones (a zone "
            "elsewhere would stand for the number's own and judge the call where the number "
            f"cannot be); give the party's zone in {where}, or leave it out")
    return None


#: how :func:`place_problem` names where a number's zones are
_COUNTRY_NAMES = {"US": "the US or Canada", "CA": "Canada or the US", "GB": "the UK",
                  "AU": "Australia"}


def _zone_in_country(zone: str, country: str) -> bool:
    from ..sources.rules import zone_in_country

    return zone_in_country(zone, country)


def clean_field(field: str, value: str) -> str:
    """The canonical form of one context value, or :class:`ContextError`. An empty value
    (after stripping) is returned as ``""``: missing, not wrong."""
    text = value.strip()
    if not text:
        return ""
    if field == "region":
        code = text.upper()
        code = "GB" if code == "UK" else "US" if code in US_TERRITORIES else code
        if code not in SUPPORTED_REGIONS:
            raise _refuse(field, value)
        return code
    if field == "state":
        found = subdivision(text)
        if found is None:
            unserved = unserved_subdivision(text)
            if unserved is not None:
                # known as a place, but with no rules and no zones: read as a known state it
                # would switch off the every-state readings and bring no rules (an allow)
                raise _refuse(field, value, (
                    f"{text!r} ({unserved[0]}-{unserved[1]}) is a subdivision dncguard has no "
                    "calling rules or time zones for, so a number there cannot be judged; "
                    f"expected {ACCEPTED[field]}"))
            raise _refuse(field, value)
        return found[1]
    if field == "zip":
        us = US_ZIP.match(text)
        if us:
            if zip_state(us.group(1)) is None:
                raise _refuse(field, value, f"{text!r} is not a known US ZIP code; expected "
                                             f"{ACCEPTED[field]}")
            return us.group(1)
        ca = CA_POSTAL.match(text.upper())
        if ca:
            return f"{ca.group(1)} {ca.group(2)}"
        gb = GB_POSTCODE.match(text.upper())
        if gb:
            return f"{gb.group(1)} {gb.group(2)}"
        raise _refuse(field, value)
    if field == "timezone":
        try:
            return _zone(text)
        except ValueError:
            raise _refuse(field, value) from None
    if field == "line_type":
        line = _LINE_ALIASES.get(text.lower())
        if line is None:
            raise _refuse(field, value)
        return line
    if field == "subject":
        if len(text) > MAX_SUBJECT:
            raise _refuse(field, value, f"longer than {MAX_SUBJECT} characters")
        return text
    if field == "purpose":
        if text.lower() not in PURPOSES:
            raise _refuse(field, value)
        return text.lower()
    if field == "call_type":
        if text.lower() not in CALL_TYPES:
            raise _refuse(field, value)
        return text.lower()
    raise _refuse(field, value, "is not a context field")


#: what a scrub is asked for as a whole, never per row: a row default of one, or a column
#: named like one, is refused (:func:`clean_row_defaults`, :func:`scope_columns`)
SCRUB_FIELDS = ("purpose", "call_type")


def clean_row_defaults(values: Mapping[str, str | None]) -> dict[str, str]:
    """:func:`clean_context` of the per-row context defaults of a scrub (the rows that do
    not give a value get it), refusing (:class:`ContextError`) a field that is not one of
    :data:`CONTEXT_FIELDS`: ``purpose`` and ``call_type`` are the scrub's own arguments,
    and as a default they would be taken and never read (a prerecorded call judged as a
    manual one)."""
    for field, value in values.items():
        if field in CONTEXT_FIELDS:
            continue
        shown = value if isinstance(value, str) else repr(value)
        if field in SCRUB_FIELDS:
            why = (f"{field} is not a per-row context field: pass it as the scrub's own "
                   f"{field}= argument (--{field.replace('_', '-')}), not among the row "
                   f"defaults ({', '.join(CONTEXT_FIELDS)})")
        else:
            why = (f"{field!r} is not a per-row context field; the row defaults are "
                   f"{', '.join(CONTEXT_FIELDS)}")
        raise ContextError(field, shown, ", ".join(CONTEXT_FIELDS), why)
    return clean_context(values)


def scope_columns(header: list[str]) -> list[str]:
    """The columns of ``header`` named like a scrub's purpose or call type (any case,
    spaces or ``-`` for ``_``: ``call_type``, ``Call Type``, ``calltype``, ``purpose``,
    ``call_purpose``): a scrub refuses them (:class:`~dncguard.engine.run.ScrubRun`), since
    they are not read per row and their values would judge no row."""
    names = {"purpose", "call_purpose", "call_type", "calltype"}
    return [h for h in header
            if re.sub(r"[\s/-]+", "_", h.strip().lower()).strip("_") in names]


def scope_column_refusal(column: str) -> str:
    """Why a scrub refuses ``column`` (one of :func:`scope_columns`), in the command line's
    words; the service says the same with its parameters for the flags
    (``server._jobs.api_words``)."""
    what = "purpose" if "purpose" in column.lower() else "call type"
    return (f"column {column!r} would give each row's {what}, which dncguard does not read "
            "per row (the scrub's --purpose and --call-type, or the campaign profile's, "
            "judge every row): its values would be ignored, so a prerecorded or "
            "telemarketing row could be judged as another kind of call. Scrub the rows of "
            "each purpose and call type on their own, giving it as --purpose / --call-type "
            "(purpose= / call_type=), and rename or remove the column")


def clean_context(values: Mapping[str, str | None], *,
                  country: str | None = None) -> dict[str, str]:
    """Canonical non-empty values of several context fields (the first wrong one raises).
    With ``country`` (the region of the one number they go with), a state, ZIP or time zone
    that cannot be read for it raises too (:func:`place_problem`)."""
    out: dict[str, str] = {}
    for field, value in values.items():
        if value is None:
            continue
        cleaned = clean_field(field, value)
        if cleaned:
            out[field] = cleaned
    refused = place_problem(country, out.get("state", ""), out.get("zip", ""),
                            out.get("timezone", "")) if country else None
    if refused is not None:
        field, why = refused
        raise ContextError(field, out[field], ACCEPTED[field], why)
    return out


__all__ = ["ACCEPTED", "CALL_TYPES", "CONTEXT_FIELDS", "SCRUB_FIELDS", "ContextError",
           "LINE_TYPES", "PURPOSES", "clean_context", "clean_field", "clean_row_defaults",
           "place_problem", "scope_column_refusal", "scope_columns"]
