"""Phone-number normalisation: every input goes through :func:`normalise`.

The reference is ``phonenumbers`` (pinned), called per row by :func:`normalise`. Batches go
through :func:`normalise_arrays` (or :func:`normalise_many`, its list-of-objects form): inputs
in a plain NANP format (``+1``, ``1`` or ten digits, with spaces, dots, dashes or brackets)
are decided with numpy from the NPA-NXX table of :mod:`dncguard.nanp`, which is built from the
same ``phonenumbers`` metadata; every other input (other countries, letters, extensions,
blocks the table leaves open) goes to the per-row parser. Both give identical results
(``tests/test_nanp_agreement.py``).

Numbers of the US territories in the NANP (:data:`US_TERRITORIES`: Puerto Rico, the US Virgin
Islands, Guam, the Northern Mariana Islands, American Samoa) are US numbers: their region is
``US`` and their area code's state is the territory (``PR``, ...), so US federal rules, the US
national registry and US internal lists apply to them as to any US number. ``phonenumbers``
gives them regions of their own; both paths map those to ``US``. A valid number of any other
region (Jamaica, France, ...) gets ``UNSUPPORTED_REGION``: unlike ``INVALID_NUMBER`` it keeps
its E.164 form and region, and it is never callable because nothing here can judge it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import phonenumbers
from phonenumbers import NumberParseException

from . import nanp
from ._lazy import lazy_import
from .config import SUPPORTED_REGIONS
from .models import ReasonCode

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

_PARSE_ERRORS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown or missing country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


#: The NANP regions that are US territories (``phonenumbers`` region codes, which are also
#: their ISO 3166-2:US subdivision codes). Their numbers normalise to region ``US``;
#: ``tests/rules/test_territories.py`` checks the list against ``phonenumbers`` (NANP regions)
#: and the ``holidays`` package (US subdivisions that are not states or DC).
US_TERRITORIES: tuple[str, ...] = ("AS", "GU", "MP", "PR", "VI")


def _country_of(found: str) -> str:
    """The region dncguard judges a number of ``phonenumbers`` region ``found`` under."""
    return "US" if found in US_TERRITORIES else found


@dataclass(frozen=True, slots=True)
class Normalised:
    """The outcome of normalising one input.

    ``region`` is the country whose rules and registries apply (``US`` for the US territories);
    ``e164`` and ``region`` are also set for ``UNSUPPORTED_REGION`` (a valid number that is not
    judged), never for ``INVALID_NUMBER``.
    """

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


#: A number a spreadsheet saved as a float (``2025550123.0``): its digits are the number.
_FLOAT_CELL = re.compile(r"(\+?\d{7,15})\.0+")
_FLOAT_CELL_RE2 = r"^(\s*\+?[0-9]{7,15})\.0+(\s*)$"


@lru_cache(maxsize=65_536)
def _normalise_cached(raw: str, region: str) -> Normalised:
    return _normalise(raw, region, table=True)


def normalise_by_parser(raw: str, region: str | None = None) -> Normalised:
    """:func:`normalise` with every input read by ``phonenumbers`` (no NANP table): the
    reference the table paths are held to in the tests."""
    return _normalise(raw, _region_hint(region), table=False)


#: The longest extension accepted after a number (``x1234``, ``ext. 12``, ``;ext=12``); a
#: longer one is more likely a second number, which would go unchecked.
MAX_EXTENSION_DIGITS = 6
#: The one RFC 3966 parameter a phone field may carry: an extension, at the end.
_EXTENSION_PARAM = re.compile(r"^[^;]*;ext=[0-9]+\s*$", re.IGNORECASE)
#: Where ``phonenumbers`` sees a second number begin (``/x``, ``\ x``: its
#: ``_SECOND_NUMBER_START``); it cuts the text there and parses the first number only, so a
#: second number after it would go unchecked. ``tests/test_two_numbers_more.py`` holds this
#: to the library's pattern.
SECOND_NUMBER_START = re.compile(r"[\\/] *x")


def _normalise(raw: str, region: str, *, table: bool) -> Normalised:
    text = raw.strip()
    floated = _FLOAT_CELL.fullmatch(text)
    if floated:
        text = floated.group(1)
    if not text:
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER, message="the phone field is empty")
    if table:
        quick = _nanp_quick(raw, text, region)
        if quick is not None:
            return quick
    if ";" in text and not _EXTENSION_PARAM.search(text):
        # phonenumbers reads ';...' as RFC 3966 parameters and drops them: a second number
        # after a ';' would go unchecked
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER,
                          message="a ';' in the phone field: one number per field")
    second = SECOND_NUMBER_START.search(text)
    if second:
        # phonenumbers cuts the text at '/x' or '\x' (a second number) and drops the rest
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER, message=(
            f"'{second.group(0)[0]}x' in the phone field marks a second number: one number "
            "per field"))
    try:
        number = phonenumbers.parse(text, region or None)
    except NumberParseException as exc:
        why = _PARSE_ERRORS.get(exc.error_type, str(exc))
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER, message=f"cannot parse: {why}")
    if number.extension and len(number.extension) > MAX_EXTENSION_DIGITS:
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER, message=(
            f"an extension of {len(number.extension)} digits is as long as a phone number: "
            "one number per field"))
    # is_valid_number would look the region up itself; look it up once and reuse it
    found = phonenumbers.region_code_for_number(number)
    if not (found and phonenumbers.is_valid_number_for_region(number, found)):
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
    found = _country_of(found)
    if found not in SUPPORTED_REGIONS:
        return Normalised(
            raw,
            e164=e164,
            region=found,
            error=ReasonCode.UNSUPPORTED_REGION,
            message=_unsupported_message(found),
        )
    return Normalised(raw, e164=e164, region=found)


_NOT_ASSIGNED = "not a valid number: no such number range is assigned"
# A NANP number in digits only: '+1' and ten digits, or eleven or ten digits with a US/CA hint.
_NANP_DIGITS = re.compile(r"(\+1|1)?([2-9][0-9]{9})")


def _nanp_quick(raw: str, text: str, hint: str) -> Normalised | None:
    """The table path of :func:`normalise_arrays` for one digits-only NANP input (None: not
    such an input, or a prefix the table leaves to the parser): what ``phonenumbers`` would
    say, without parsing (``tests/test_nanp_agreement.py`` holds the table to that)."""
    found = _NANP_DIGITS.fullmatch(text)
    if found is None:
        return None
    lead, national = found.groups()
    if lead != "+1" and hint not in _NANP_HINTS:
        return None
    codes, regions = nanp.load_table()
    code = int(codes[int(national[:6])])
    if code == nanp.FALLBACK:
        return None
    if code == nanp.INVALID:
        return Normalised(raw, error=ReasonCode.INVALID_NUMBER, message=_NOT_ASSIGNED)
    name = regions[code - 1]
    country = _country_of(name)
    if country not in SUPPORTED_REGIONS:
        return Normalised(raw, e164="+1" + national, region=country,
                          error=ReasonCode.UNSUPPORTED_REGION,
                          message=_unsupported_message(name))
    return Normalised(raw, e164="+1" + national, region=country)


def _unsupported_message(found: str | None) -> str:
    where = found if found and found != "001" else "a non-geographic range"
    return (f"valid number of {where}, a region dncguard does not judge (supported: US with "
            f"{', '.join(US_TERRITORIES)}; CA; GB; AU): not checked, so not callable")


def normalise(raw: str, region: str | None = None) -> Normalised:
    """Normalise one input to E.164; ``region`` is the default for national-format input."""
    return _normalise_cached(raw, _region_hint(region))


def normalise_many(raws: Sequence[str], regions: Sequence[str | None]) -> list[Normalised]:
    """Normalise a batch; ``regions[i]`` is the default region of ``raws[i]``."""
    if len(raws) != len(regions):
        raise ValueError(f"{len(raws)} inputs but {len(regions)} regions")
    if len(raws) < _SMALL_BATCH:
        return [_normalise_cached(r, _region_hint(g)) for r, g in zip(raws, regions,
                                                                        strict=True)]
    return normalise_arrays(raws, regions).to_list(raws)


_SMALL_BATCH = 64  # below this the per-row parser (cached) is as fast as the table

#: error codes of :class:`NormalisedArrays` (index 0: no error)
ERROR_CODES: tuple[ReasonCode | None, ...] = (
    None, ReasonCode.INVALID_NUMBER, ReasonCode.UNSUPPORTED_REGION)
_ERROR_INDEX = {code: i for i, code in enumerate(ERROR_CODES)}
_NANP_HINTS = ("US", "CA", *US_TERRITORIES)
# A plain NANP input: optional spaces and '+', then digits and ASCII separators only.
_PLAIN = r"^ *\+?[0-9 ().\-]{10,40}$"
_TEN = 10_000_000_000


@dataclass(frozen=True, slots=True)
class NormalisedArrays:
    """A batch's normalisation as arrays, row ``i`` for input ``i``.

    ``digits`` is the E.164 number as an integer (0 when there is none); ``region`` and
    ``message`` index ``region_names`` and ``message_texts`` (index 0 is ``""``); ``error``
    indexes :data:`ERROR_CODES` (0: valid and supported). A row is usable when ``error == 0``.
    Rows with ``error == 2`` (unsupported region) still carry their E.164 digits and region.
    """

    digits: npt.NDArray[np.uint64]
    region: npt.NDArray[np.int16]
    error: npt.NDArray[np.uint8]
    message: npt.NDArray[np.int32]
    region_names: tuple[str, ...]
    message_texts: tuple[str, ...]
    parsed_per_row: int = 0  # rows that needed the per-row parser

    def __len__(self) -> int:
        return int(self.digits.size)

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.error == 0, dtype=bool)

    def e164(self) -> list[str | None]:
        """E.164 strings (``None`` where the input gave no number)."""
        text = pc.binary_join_element_wise(
            "+", pc.cast(pa.array(self.digits), pa.string()), "")
        out: list[str | None] = text.to_pylist()
        for i in np.flatnonzero(self.digits == 0).tolist():
            out[i] = None
        return out

    def regions(self) -> list[str | None]:
        names = np.array([n or None for n in self.region_names], dtype=object)
        return list(names[self.region])

    def to_list(self, raws: Sequence[str]) -> list[Normalised]:
        """The same results as :class:`Normalised` objects (what :func:`normalise` gives)."""
        texts = self.message_texts
        return [
            Normalised(raw, e, g) if k == 0 else Normalised(raw, e, g, ERROR_CODES[k], texts[m])
            for raw, e, g, k, m in zip(raws, self.e164(), self.regions(), self.error.tolist(),
                                       self.message.tolist(), strict=True)
        ]


def normalise_arrays(
    raws: Sequence[str] | pa.Array | pa.ChunkedArray,
    regions: Sequence[str | None] | str | None,
) -> NormalisedArrays:
    """Normalise a batch into arrays; ``regions`` is one default region per input, or one
    for all. Plain NANP inputs are decided by the NPA-NXX table; the rest per row. A batch
    of fewer than :data:`_SMALL_BATCH` inputs goes through the per-row function (cached, the
    same answers: the tests hold both to ``phonenumbers``), which is faster at that size."""
    small = len(raws) < _SMALL_BATCH
    given: Sequence[str] | None = None
    if not isinstance(raws, (pa.Array, pa.ChunkedArray)):
        given = raws
    elif small:  # no array pass for a few inputs: each goes to the per-row parser below
        given = [r if r is not None else "" for r in raws.to_pylist()]
    text = None if small else _as_strings(raws)
    n = len(raws)
    codes, nanp_regions = nanp.load_table()
    region_names: list[str] = ["", *nanp_regions]
    region_ids = {name: i for i, name in enumerate(region_names)}
    # the region each table code is judged under: a territory's code becomes the US's
    judged = np.array([region_ids[_country_of(name)] if name else 0 for name in region_names],
                      dtype=np.int16)
    texts: list[str] = ["", _NOT_ASSIGNED]
    text_ids = {t: i for i, t in enumerate(texts)}

    digits = np.zeros(n, dtype=np.uint64)
    region = np.zeros(n, dtype=np.int16)
    error = np.zeros(n, dtype=np.uint8)
    message = np.zeros(n, dtype=np.int32)
    hints, nanp_hint = _hints(regions, n)

    # -- the table path ----------------------------------------------------------------------
    done = np.zeros(n, dtype=bool)
    at, plus, width, value = (_plain_inputs(text) if text is not None else
                              (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool),
                               np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)))
    if at.size:
        eleven = (width == 11) & (value // np.uint64(_TEN) == 1)
        national = np.where(eleven, value - np.uint64(_TEN), value)
        fits = (((width == 10) & ~plus & nanp_hint[at]) | (eleven & (plus | nanp_hint[at])))
        fits &= (national >= np.uint64(2_000_000_000))
        code = codes[(national // np.uint64(10_000)).clip(0, nanp.PREFIXES - 1).astype(np.int64)]
        fits &= code != nanp.FALLBACK
        rows = at[fits]
        code = code[fits].astype(np.int16)
        valid = code != nanp.INVALID
        digits[rows[valid]] = national[fits][valid] + np.uint64(_TEN)
        region[rows] = judged[code]
        error[rows[~valid]] = _ERROR_INDEX[ReasonCode.INVALID_NUMBER]
        message[rows[~valid]] = text_ids[_NOT_ASSIGNED]
        unsupported = np.isin(code, [region_ids[r] for r in nanp_regions
                                     if _country_of(r) not in SUPPORTED_REGIONS]) & valid
        for k in np.unique(code[unsupported]).tolist():
            where = rows[unsupported & (code == k)]
            error[where] = _ERROR_INDEX[ReasonCode.UNSUPPORTED_REGION]
            message[where] = _intern(texts, text_ids, _unsupported_message(region_names[k]))
        done[rows] = True

    # -- the per-row parser for the rest (each distinct input once) --------------------------
    rest = np.flatnonzero(~done)
    if rest.size:
        if given is not None:
            rest_text = [given[i] for i in rest.tolist()]
        else:
            assert text is not None  # the per-row parser reads a float cell itself
            rest_text = text.take(pa.array(rest)).to_pylist()
        rest_hint = [hints[i] for i in rest.tolist()] if isinstance(hints, list) else None
        for j, i in enumerate(rest.tolist()):
            hint = rest_hint[j] if rest_hint is not None else str(hints)
            res = _normalise_cached(rest_text[j], hint)
            if res.e164:
                digits[i] = res.digits
            if res.region:
                region[i] = _intern(region_names, region_ids, res.region)
            if res.error is not None:
                error[i] = _ERROR_INDEX[res.error]
                message[i] = _intern(texts, text_ids, res.message)
    return NormalisedArrays(digits, region, error, message, tuple(region_names), tuple(texts),
                            int(rest.size))


#: What each byte is to :func:`_scan_plain`, as one count in a row's sum: digits in the low
#: 32 bits (exact for any row), then dots, plus signs and other bytes (exact for the rows of
#: at most 41 bytes the scan decides); spaces, brackets and dashes count nothing.
_BYTE_COUNTS = np.zeros(256, dtype=np.uint64)
_BYTE_COUNTS[ord("0"):ord("9") + 1] = 1
_BYTE_COUNTS[ord(".")] = 1 << 32
_BYTE_COUNTS[ord("+")] = 1 << 40
_BYTE_COUNTS[[b for b in range(256) if chr(b) not in "0123456789 ().-+"]] = 1 << 48
_FIELD = np.uint64(0xFF)
_LONGEST = 41  # bytes of the longest input the scan decides ('+' and forty)
_POWERS = {w: 10 ** np.arange(w - 1, -1, -1, dtype=np.uint64) for w in (10, 11)}
#: Rows scanned at a time: a chunk's arrays stay small (in cache, and below the size at
#: which every allocation is fresh memory from the kernel).
_SCAN_ROWS = 1 << 16


def _scan_plain(text: pa.Array) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_],
                                         npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """The plain inputs that need no regular expression, read from the string array's bytes:
    ``(quick, plus, width, value)``, one entry per row. ``quick`` rows are ten to forty
    digits, spaces, brackets, dashes and dots (never exactly one dot: no float cell), led by
    at most one ``+``: they match :data:`_PLAIN` and :data:`_FLOAT_CELL_RE2` leaves them as
    they are. For those rows ``plus`` says whether a ``+`` leads, ``width`` counts the digits
    and ``value`` is the digits as a number when there are ten or eleven (else 0): what the
    regular expressions give (``tests/test_nanp_agreement.py`` holds the two together)."""
    n = len(text)
    bufs = text.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=n + 1,
                            offset=4 * text.offset).astype(np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None and n else \
        np.zeros(0, dtype=np.uint8)
    quick, plus = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    width, value = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.uint64)
    for lo in range(0, n, _SCAN_ROWS):
        hi = min(lo + _SCAN_ROWS, n)
        _scan_rows(data, offsets[lo:hi + 1], quick[lo:hi], plus[lo:hi], width[lo:hi],
                   value[lo:hi])
    return quick, plus, width, value


def _scan_rows(data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64],
               quick: npt.NDArray[np.bool_], plus: npt.NDArray[np.bool_],
               width: npt.NDArray[np.int64], value: npt.NDArray[np.uint64]) -> None:
    """:func:`_scan_plain` of the rows between ``offsets``, into the given arrays."""
    start = offsets[:-1] - offsets[0]
    lens = np.diff(offsets)
    filled = lens > 0
    if not filled.any():
        return
    body = data[offsets[0]:offsets[-1]]
    counts = _BYTE_COUNTS[body]
    sums = np.zeros(lens.size, dtype=np.uint64)
    sums[filled] = np.add.reduceat(counts, start[filled])
    pluses = (sums >> np.uint64(40)) & _FIELD
    led = np.zeros(lens.size, dtype=bool)
    led[filled] = body[start[filled]] == ord("+")
    quick[:] = ((lens >= 10) & (lens <= _LONGEST) & (sums >> np.uint64(48) == 0)
                & ((sums >> np.uint64(32)) & _FIELD != 1)
                & ((pluses == 0) & (lens < _LONGEST) | (pluses == 1) & led & (lens >= 11)))
    plus[:] = (pluses == 1) & quick
    width[:] = sums & np.uint64(0xFFFF_FFFF)
    digits = body[counts == 1] - np.uint8(ord("0"))  # every row's digits, in order
    first = np.cumsum(width) - width  # where each row's digits begin among them
    for w, powers in _POWERS.items():
        rows = np.flatnonzero(quick & (width == w))
        if rows.size:
            value[rows] = digits[first[rows, None] + np.arange(w)].astype(np.uint64) @ powers


def _plain_inputs(text: pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_],
                                           npt.NDArray[np.int64], npt.NDArray[np.uint64]]:
    """The rows of ``text`` in a plain NANP format (:data:`_PLAIN`, once a float cell's
    ``.0`` is dropped) as ``(rows, plus, width, value)``: whether the input has a ``+``, how
    many digits it has, and the digits as a number when there are ten or eleven (else 0).
    :func:`_scan_plain` decides most rows from their bytes; the rest go through the regular
    expressions."""
    quick, plus, width, value = _scan_plain(text)
    slow = np.flatnonzero(~quick)
    plain = quick.copy()
    if slow.size:
        sub = pc.replace_substring_regex(text.take(pa.array(slow)), _FLOAT_CELL_RE2, r"\1\2")
        hit = _bools(pc.match_substring_regex(sub, _PLAIN))
        rows = slow[hit]
        if rows.size:
            sub = sub.filter(pa.array(hit))
            plus[rows] = _bools(pc.match_substring(sub, "+"))
            num = pc.replace_substring_regex(sub, r"[^0-9]", "")
            w = np.asarray(pc.utf8_length(num).to_numpy(zero_copy_only=False), dtype=np.int64)
            short = pc.if_else(pa.array((w >= 10) & (w <= 11)), num, "0")
            width[rows] = w
            value[rows] = np.asarray(pc.cast(short, pa.uint64()).to_numpy(zero_copy_only=False),
                                     dtype=np.uint64)
            plain[rows] = True
    at = np.flatnonzero(plain)
    return at, plus[at], width[at], value[at]


def _intern(items: list[str], ids: dict[str, int], value: str) -> int:
    found = ids.get(value)
    if found is None:
        found = ids[value] = len(items)
        items.append(value)
    return found


def _as_strings(raws: Sequence[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(raws, pa.ChunkedArray):
        raws = raws.combine_chunks()
    if isinstance(raws, pa.Array):
        arr = raws if raws.type == pa.string() else pc.cast(raws, pa.string())
    else:
        try:
            arr = pa.array(raws, type=pa.string())
        except (UnicodeError, pa.ArrowException):
            # text that is not valid Unicode (lone surrogates): the per-row parser decides it
            arr = pa.array([r if _encodable(r) else "\x00" for r in raws], type=pa.string())
    return pc.fill_null(arr, "")


def _encodable(raw: str) -> bool:
    try:
        raw.encode("utf-8")
    except UnicodeError:
        return False
    return True


def _bools(values: pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _hints(regions: Sequence[str | None] | str | None,
           n: int) -> tuple[list[str] | str, npt.NDArray[np.bool_]]:
    """The cleaned default region of each row (or one for all) and whether it is US/CA."""
    if regions is None or isinstance(regions, str):
        one = _region_hint(regions)
        return one, np.full(n, one in _NANP_HINTS, dtype=bool)
    if len(regions) != n:
        raise ValueError(f"{n} inputs but {len(regions)} regions")
    clean = {g: _region_hint(g) for g in set(regions)}
    hints = [clean[g] for g in regions]
    nanp_hint = np.fromiter((h in _NANP_HINTS for h in hints), dtype=bool, count=n)
    return hints, nanp_hint


def mask(e164: str | None) -> str:
    """A masked form safe for logs, e.g. ``+1202555****``."""
    if not e164:
        return "<none>"
    return e164[:-4] + "****" if len(e164) > 6 else "****"


#: A run of 7 or more digits, possibly after a ``+`` and with single separators between them
#: (``+1 (202) 555-0123``): what could be a phone number inside free text.
_NUMBER_RUN = re.compile(r"\+?\d(?:[\s().-]?\d){6,}")


def mask_digits(text: str) -> str:
    """``text`` with its digits masked as :func:`mask` masks a number when it holds 7 or
    more: only the first are shown (at most 6, never the last 4), the others ``*``."""
    digits = [i for i, c in enumerate(text) if c.isdecimal()]  # what \d matches
    if len(digits) < 7:
        return text
    chars = list(text)
    for i in digits[min(6, len(digits) - 4):]:
        chars[i] = "*"
    return "".join(chars)


def mask_numbers(text: str) -> str:
    """``text`` with every run of 7 or more digits masked (:func:`mask_digits`): for
    messages that quote what another system said (an error body may name the number it
    refused)."""
    return _NUMBER_RUN.sub(lambda m: mask_digits(m.group(0)), text)


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


@cache
def npa_state_table() -> tuple[list[str], npt.NDArray[np.int64]]:
    """The states of the NANP area codes as (names, index per area code 0-999); name 0 is
    ``""`` (no state known)."""
    names = [""]
    per_npa = np.zeros(1000, dtype=np.int64)
    for npa, (_region, state) in sorted(_npa_states().items()):
        if state not in names:
            names.append(state)
        per_npa[npa] = names.index(state)
    return names, per_npa


def npa_state_index(digits: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Per E.164 number given as an integer: its state's index into ``npa_state_table()[0]``
    (0 when unknown or not a ten-digit NANP number)."""
    d = np.asarray(digits, dtype=np.uint64)
    nanp_ten = (d >= np.uint64(10_000_000_000)) & (d < np.uint64(20_000_000_000))
    npa = ((d // np.uint64(10_000_000)) % np.uint64(1000)).astype(np.int64)
    return np.where(nanp_ten, npa_state_table()[1][npa], 0)
