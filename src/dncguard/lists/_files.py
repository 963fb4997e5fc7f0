"""Reading list files: numbers, change lists, hashes and prefixes, plain or zipped.

Number files hold one number per line, in E.164 (``+12025550100``) or the national format of
the list's jurisdiction (``2025550100``, ``(202) 555-0100``, ``020 7946 0000``), or the FTC's
``NPA,NXXXXXX`` CSV. A row that is not digits and separators alone (``+1`` and ten digits
aside, any ``+`` row; one with an extension or letters) is read as
:func:`dncguard.phones.normalise` reads it, or rejected with its line, so a row is never stored
as a number other than the one the check reads. A first line without digits (or with only
those of the column name ``e164``) is taken as a header. Change lists add a flag field to each
record: ``A``/``ADD``/``I`` adds, ``D``/``DEL``/``DELETE``/``R`` deletes (``2025550100,D`` or
``202,5550100,A,2026-11-01``), with at most one date of the change, after the flag or before
it, with or without a time of day in it (a time with an offset is converted to UTC, one
without is taken as UTC); any other field before the flag, or any field after the date,
rejects the record. A number's last record decides: the latest date, then, for records of the
same day that all carry a time, the latest time, then the later line (see
:func:`read_changes`). A prefix row's second column is a note, never digits (``1,900`` is
rejected, not read as ``1``), and a prefix is one some judged number can start with: the
whole country code of a region dncguard judges first (``202555`` is rejected, never read as
+20), never followed by the trunk prefix (``4402079``), and no longer than the country's
numbers (see :func:`prefix_problem`).

Large number files are parsed with pyarrow compute, a block at a time, so a national registry
never needs a Python object per number.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import phonenumbers

from .. import nanp
from .._lazy import lazy_import
from ..config import SUPPORTED_REGIONS
from ..errors import ListError
from ..phones import normalise_arrays
from .snapshots import sorted_unique

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")
    pacsv = lazy_import("pyarrow.csv", globals(), "pacsv")

MAX_REJECTS_LISTED = 20


@dataclass
class ParseReport:
    """What a file held besides valid entries."""

    lines: int = 0
    accepted: int = 0  # distinct entries (numbers, hashes, prefixes or changed numbers)
    rejected: int = 0
    reject_samples: list[str] = field(default_factory=list)  # "member:line: why"
    #: lines read as an entry, each repeat of an entry counted (``accepted`` counts each
    #: entry once): what ``rejected`` is weighed against
    valid_lines: int = 0

    def reject(self, where: str, why: str) -> None:
        self.rejected += 1
        if len(self.reject_samples) < MAX_REJECTS_LISTED:
            self.reject_samples.append(f"{where}: {why}")


_lzma = getattr(zipfile, "lzma", None)  # None when Python was built without it
#: What reading a damaged zip member raises: a bad CRC or header (BadZipFile), a broken
#: deflate, bzip2 or lzma stream (zlib.error, OSError, LZMAError), a truncated one (EOFError).
_ZIP_DAMAGE: tuple[type[Exception], ...] = (
    zipfile.BadZipFile, zlib.error, EOFError, OSError,
    *((_lzma.LZMAError,) if _lzma is not None else ()))


class _ZipMember(io.RawIOBase):
    """A zip member's bytes, whose damage raises :class:`ListError` naming the archive and
    member (``st.zip!a.txt: damaged zip member (Bad CRC-32 for file 'a.txt')``) instead of
    zipfile's and zlib's own exceptions. A member's CRC is checked when its end is read;
    every reader here reads each member to its end before anything is imported, so a damaged
    member imports nothing."""

    def __init__(self, where: str, member: IO[bytes]) -> None:
        super().__init__()
        self.where = where
        self._member = member

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._member.read(len(buffer))
        except _ZIP_DAMAGE as exc:
            raise ListError(f"{self.where}: damaged zip member ({exc})") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._member.close()
        super().close()


def _open_member(zf: zipfile.ZipFile, name: str, where: str) -> IO[bytes]:
    try:
        member = zf.open(name)
    except _ZIP_DAMAGE as exc:  # a bad local header, or an offset past the end
        raise ListError(f"{where}: damaged zip member ({exc})") from exc
    except (NotImplementedError, RuntimeError) as exc:  # a compression method or encryption
        raise ListError(f"{where}: cannot read this zip member ({exc})") from exc
    return io.BufferedReader(_ZipMember(where, member), buffer_size=1 << 20)


_ZIP_START = b"PK\x03\x04"  # a zip archive's first local file header


def _looks_zipped(path: Path) -> bool:
    """Whether the file is meant to be a zip archive: named ``.zip``, or starting with a
    local file header."""
    if path.suffix.lower() == ".zip":
        return True
    with path.open("rb") as fh:
        return fh.read(len(_ZIP_START)) == _ZIP_START


@contextmanager
def _open_members(path: Path) -> Iterator[list[tuple[str, IO[bytes]]]]:
    """The file's byte streams: the file itself, or each member of a zip archive (a damaged
    archive or member raises :class:`ListError`, never zipfile's or zlib's exceptions)."""
    if not path.is_file():
        raise ListError(f"{path}: no such file")
    if _looks_zipped(path) and not zipfile.is_zipfile(path):
        # a truncated archive has no end record: never read its members' bytes as text
        raise ListError(f"{path}: damaged zip archive (its central directory is missing: "
                        "truncated?); nothing was imported")
    if zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ListError(f"{path}: damaged zip archive ({exc})") from exc
        except NotImplementedError as exc:  # a zip format version zipfile cannot read
            raise ListError(f"{path}: cannot read this zip archive ({exc})") from exc
        with zf:
            names = sorted(i.filename for i in zf.infolist() if not i.is_dir())
            if not names:
                raise ListError(f"{path}: the zip archive is empty")
            streams: list[tuple[str, IO[bytes]]] = []
            try:
                for n in names:
                    where = f"{path.name}!{n}"
                    streams.append((where, _open_member(zf, n, where)))
                yield streams
            finally:
                for _, s in streams:
                    s.close()
    else:
        with path.open("rb") as fh:
            yield [(path.name, fh)]


def _line_batches(stream: IO[bytes], where: str) -> Iterator[pa.Array]:
    """Whole lines as a string array, a block at a time (empty lines kept as ''); ``where``
    names the file (or ``archive!member``) in the error of one that is not text."""
    read = pacsv.ReadOptions(column_names=["line"], block_size=1 << 24)
    parse = pacsv.ParseOptions(
        delimiter="\x1f", quote_char=False, escape_char=False, ignore_empty_lines=False
    )
    convert = pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False)
    try:
        reader = pacsv.open_csv(stream, read_options=read, parse_options=parse,
                                convert_options=convert)
        for batch in reader:
            yield batch.column(0)
    except pa.ArrowInvalid as exc:
        raise ListError(f"{where}: cannot read as text: {exc}") from exc


def country_of(jurisdiction: str | None, default_region: str) -> str:
    """The country whose national format a list uses: ``US-FL`` -> ``US``."""
    return (jurisdiction or default_region).split("-")[0].upper().replace("UK", "GB")


def _digits_to_e164(
    digits: pa.Array, plus: npt.NDArray[np.bool_], country: str
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Convert digit strings to E.164 integers; returns (values, valid)."""
    lengths = np.asarray(pc.utf8_length(digits).to_numpy(zero_copy_only=False), dtype=np.int64)
    first = np.asarray(pc.utf8_slice_codeunits(digits, 0, 1).to_numpy(zero_copy_only=False))
    safe = pc.if_else(pc.equal(pc.utf8_length(digits), 0), "0", digits)
    long_ok = lengths <= 15
    safe = pc.if_else(pa.array(long_ok), safe, "0")
    values = np.asarray(pc.cast(safe, pa.uint64()).to_numpy(zero_copy_only=False), dtype=np.uint64)
    out = np.zeros(values.shape, dtype=np.uint64)
    valid = np.zeros(values.shape, dtype=bool)

    # Already international (written with '+', or with the country code and no trunk 0).
    intl = plus & (lengths >= 8) & long_ok
    out[intl] = values[intl]
    valid[intl] = True
    national = ~plus & long_ok
    if country in ("US", "CA"):
        ten = national & (lengths == 10)
        out[ten] = values[ten] + np.uint64(10_000_000_000)
        valid[ten] = True
        eleven = national & (lengths == 11) & (first == "1")
        out[eleven] = values[eleven]
        valid[eleven] = True
        # NANP: 1 + NPA (2-9xx) + NXX (2-9xx) + 4 digits
        nanp = valid & (out // np.uint64(10**10) == 1)
        npa_ok = (out // np.uint64(10**7)) % np.uint64(1000) >= 200
        nxx_ok = (out // np.uint64(10**4)) % np.uint64(1000) >= 200
        valid &= ~nanp | (npa_ok & nxx_ok)
        valid &= nanp | intl
    else:
        cc, nsn = {"GB": (44, (9, 10)), "AU": (61, (9, 9))}.get(country, (0, (0, 0)))
        if cc:
            trunk = national & (first == "0") & (lengths - 1 >= nsn[0]) & (lengths - 1 <= nsn[1])
            scale = np.power(np.uint64(10), (lengths - 1).clip(0).astype(np.uint64))
            out[trunk] = np.uint64(cc) * scale[trunk] + values[trunk]
            valid[trunk] = True
            width = len(str(cc))
            with_cc = national & (first != "0") & (lengths - width >= nsn[0]) & (
                lengths - width <= nsn[1]
            )
            prefix = values // np.power(np.uint64(10), (lengths - width).clip(0).astype(np.uint64))
            with_cc &= prefix == cc
            out[with_cc] = values[with_cc]
            valid[with_cc] = True
    return out, valid


BLOCK_BYTES = 1 << 26  # 64 MiB of text at a time


def _byte_blocks(stream: IO[bytes]) -> Iterator[bytes]:
    """The stream in blocks of whole lines (the last one may lack its newline)."""
    while True:
        block = stream.read(BLOCK_BYTES)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += stream.readline()
        yield block


_ZERO, _NINE, _NL, _CR, _COMMA, _PLUS, _ONE = 48, 57, 10, 13, 44, 43, 49


def _fixed_width_numbers(
    block: bytes,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]] | None:
    """Parse a block whose lines all have one NANP layout, with numpy alone.

    Layouts: ``NPA,NXXXXXX`` (the FTC download), ``NPANXXXXXX``, ``1NPANXXXXXX`` and
    ``+1NPANXXXXXX``, each line the same width (CRLF allowed). Returns (E.164 values, valid) as
    :func:`_digits_to_e164` would for US/CA, or ``None`` when the block is anything else.
    """
    if not block.endswith(b"\n"):
        block += b"\n"
    width = block.find(b"\n") + 1
    if width < 11 or width > 14 or len(block) % width:
        return None
    rows = np.frombuffer(block, dtype=np.uint8).reshape(-1, width)
    if not bool((rows[:, -1] == _NL).all()):
        return None
    body = rows[:, :-1]
    if bool((body[:, -1] == _CR).all()):
        body = body[:, :-1]
    w = body.shape[1]
    first = body[:, 0]
    cols: list[int]
    if w == 11 and bool((body[:, 3] == _COMMA).all()):
        cols = [0, 1, 2, *range(4, 11)]
    elif w == 10:
        cols = list(range(10))
    elif w == 11 and bool((first == _ONE).all()):
        cols = list(range(1, 11))
    elif w == 12 and bool((first == _PLUS).all()) and bool((body[:, 1] == _ONE).all()):
        cols = list(range(2, 12))
    else:
        return None
    value = np.zeros(body.shape[0], dtype=np.uint64)
    for c in cols:
        digit = body[:, c] - np.uint8(_ZERO)  # wraps below '0'
        if not bool((digit <= 9).all()):
            return None  # not all digits: leave the block to the general parser
        value *= np.uint64(10)
        value += digit
    npa_ok = value >= np.uint64(2_000_000_000)
    nxx_ok = (value // np.uint64(10_000)) % np.uint64(1000) >= 200
    return value + np.uint64(10_000_000_000), npa_ok & nxx_ok


#: A column name with digits a header may hold: ``e164`` (``E.164``, ``phone_e164``,
#: ``e164_number``), the name dncguard gives its own column of E.164 numbers. Never preceded
#: by a digit or '.' (``1e164`` is a float, not a name), never followed by a digit.
_HEADER_DIGITS = re.compile(r"(?<![0-9.])e\.?164(?![0-9])", re.IGNORECASE)


def is_header(line: str) -> bool:
    """Whether a list file's first line is a header: it holds no digit, or none outside the
    column name ``e164`` (see :data:`_HEADER_DIGITS`). No number is written so: a line with
    any other digit is read as an entry (or rejected), never skipped."""
    if not line.strip():
        return False
    return not any(ch.isdigit() for ch in _HEADER_DIGITS.sub("", line))


def _header_split(block: bytes) -> tuple[bool, bytes]:
    """(had a header line, rest): a first line that is a header (see :func:`is_header`)."""
    end = block.find(b"\n")
    head = block if end < 0 else block[:end]
    if is_header(head.decode("utf-8", errors="replace")):
        return True, b"" if end < 0 else block[end + 1:]
    return False, block


def iter_numbers(
    path: Path, *, jurisdiction: str | None, default_region: str, report: ParseReport
) -> Iterator[npt.NDArray[np.uint64]]:
    """The valid numbers of a number file as E.164 integers, a block at a time (unsorted,
    duplicates possible); ``report`` counts lines and rejects as the blocks go by.

    US and Canadian files in a fixed-width layout (the FTC's ``NPA,NXXXXXX`` download and
    the like) are parsed with numpy; anything else line by line with pyarrow compute.
    """
    country = country_of(jurisdiction, default_region)
    with _open_members(path) as members:
        for member, stream in members:
            line_no = 0
            for n, block in enumerate(_byte_blocks(stream)):
                if n == 0:
                    header, block = _header_split(block)
                    if header:
                        report.lines += 1
                        line_no += 1
                fast = _fixed_width_numbers(block) if country in ("US", "CA") else None
                if fast is None:
                    parts: list[npt.NDArray[np.uint64]] = []
                    line_no = _parse_block(block, member, line_no, country, report, parts)
                    yield from parts
                    continue
                values, valid = fast
                bad = np.flatnonzero(~valid)
                for i in bad[:MAX_REJECTS_LISTED].tolist():
                    report.reject(f"{member}:{line_no + i + 1}",
                                  f"not a {country} number in a known format")
                report.rejected += max(0, int(bad.size) - MAX_REJECTS_LISTED)
                report.lines += int(values.size)
                report.valid_lines += int(values.size) - int(bad.size)
                line_no += int(values.size)
                yield values[valid] if bad.size else values


def read_numbers(
    path: Path, *, jurisdiction: str | None, default_region: str
) -> tuple[npt.NDArray[np.uint64], ParseReport]:
    """All valid numbers of a number file as sorted unique E.164 integers (see
    :func:`iter_numbers`; for national-scale files build a bitmap snapshot from the blocks
    instead: :func:`dncguard.lists.snapshots.build_nanp_bitmap`)."""
    report = ParseReport()
    parts = [sorted_unique(block) for block in iter_numbers(
        path, jurisdiction=jurisdiction, default_region=default_region, report=report)]
    merged = sorted_unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.uint64)
    report.accepted = int(merged.size)
    return merged.astype(np.uint64), report


def _parse_block(block: bytes, member: str, line_no: int, country: str, report: ParseReport,
                 parts: list[npt.NDArray[np.uint64]]) -> int:
    """The general parser for one block (header already removed); returns the next line."""
    if not block:
        return line_no
    for lines in _line_batches(io.BytesIO(block), f"{member} (lines from {line_no + 1})"):
        text = pc.utf8_trim_whitespace(lines)
        empty = np.asarray(pc.equal(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False))
        values, valid, reason, reasons = _read_rows(text, country)
        bad = np.flatnonzero(~valid & ~empty)
        for i in bad[:MAX_REJECTS_LISTED].tolist():
            report.reject(f"{member}:{line_no + i + 1}", reasons[reason[i]]
                          or f"not a {country} number in a known format")
        report.rejected += max(0, int(bad.size) - MAX_REJECTS_LISTED)
        report.lines += len(text)
        report.valid_lines += int(valid.sum())
        parts.append(values[valid])
        line_no += len(text)
    return line_no


#: Rows the digit path reads as :func:`dncguard.phones.normalise` reads the same text: '+1'
#: and ten digits, or digits and separators with no '+' (no letter, '#' or ';': nothing the
#: check side reads as an extension, which the digit path would take as more digits). Every
#: other row (any other '+' row: '+44 (0)20 ...', '+1 202 555 0100 x12', '+2025550147') is
#: normalised as the check side does, each distinct text once.
_DIGIT_ROW = r"""^(?:\+1[0-9]{10}|[0-9 \t().,/'"-]+)$"""


def _read_rows(text: pa.Array, country: str) -> tuple[
        npt.NDArray[np.uint64], npt.NDArray[np.bool_], npt.NDArray[np.int32], tuple[str, ...]]:
    """Trimmed rows as E.164 integers: (values, valid, reason, reasons). ``reasons[reason[i]]``
    says why a normalised row ``i`` is rejected (``""`` for the digit path's rows). Rows of
    :data:`_DIGIT_ROW` go through :func:`_digits_to_e164`; the rest through
    :func:`dncguard.phones.normalise_arrays`, once per distinct text, reading a national
    number as one of ``country``: a row it cannot read as a number (or reads with a too long
    extension) is rejected, never stored as other digits."""
    n = len(text)
    values = np.zeros(n, dtype=np.uint64)
    valid = np.zeros(n, dtype=bool)
    reason = np.zeros(n, dtype=np.int32)
    reasons: tuple[str, ...] = ("",)
    by_digits = np.asarray(pc.match_substring_regex(text, _DIGIT_ROW).to_numpy(
        zero_copy_only=False), dtype=bool)
    plain = np.flatnonzero(by_digits)
    if plain.size:
        sub = text if plain.size == n else text.take(pa.array(plain))
        plus = np.asarray(pc.starts_with(sub, "+").to_numpy(zero_copy_only=False), dtype=bool)
        values[plain], valid[plain] = _digits_to_e164(
            pc.replace_substring_regex(sub, r"[^0-9]", ""), plus, country)
    filled = np.asarray(pc.greater(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False),
                        dtype=bool)
    rest = np.flatnonzero(~by_digits & filled)
    if rest.size:
        encoded = pc.dictionary_encode(text.take(pa.array(rest)))
        norm = normalise_arrays(encoded.dictionary, country)
        at = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        got = norm.digits[at]
        values[rest] = got
        valid[rest] = got != 0  # a valid number, also of a region not judged (never callable)
        reason[rest] = norm.message[at]
        reasons = norm.message_texts
    return values, valid, reason, reasons


_ADD = {"A", "ADD", "ADDED", "I", "INSERT", "N", "NEW", "+"}
_DEL = {"D", "DEL", "DELETE", "DELETED", "R", "REMOVE", "REMOVED", "-"}


def _text_lines(path: Path) -> Iterator[tuple[str, str]]:
    """(where, line) for every non-empty line of the file or zip members."""
    with _open_members(path) as members:
        for member, stream in members:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace")
            for n, line in enumerate(text, 1):
                if line.strip():
                    yield f"{member}:{n}", line.strip()


_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
#: A field that looks like a time of day (``23:00``, ``9:30:15 PM``): the hint of its reject.
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?"
                          r"(?:\s*(?:Z|[A-Za-z]{2,5}|[+-]\d{2}:?\d{2}))?$")
#: A change record's time of day when it has none (a date alone, or no date).
NO_TIME = -1


def _change_stamp(text: str, country: str) -> tuple[int, int]:
    """A change record's date field as (day, time): the day as an ordinal, the time of day in
    microseconds (:data:`NO_TIME` for a date alone). ISO 8601: a date (``2026-11-20``) or a
    date and time (``2026-11-20T10:00``, ``2026-11-20 10:00:00.5``), with an offset
    (``Z``, ``+02:00``) converted to UTC, and without one taken as UTC; or, on US lists,
    ``MM/DD/YYYY``. Raises ValueError when the field is not a date."""
    try:
        return date.fromisoformat(text).toordinal(), NO_TIME
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        us = _US_DATE.match(text) if country == "US" else None
        if us is None:
            raise ValueError(text) from None
        return date(int(us[3]), int(us[1]), int(us[2])).toordinal(), NO_TIME
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    micros = ((when.hour * 60 + when.minute) * 60 + when.second) * 1_000_000 + when.microsecond
    return when.toordinal(), micros


def _runs_any(flags: npt.NDArray[np.bool_], keys: tuple[npt.NDArray[Any], ...]
              ) -> npt.NDArray[np.bool_]:
    """For each record, whether any record with the same ``keys`` has ``flags`` set."""
    order = np.lexsort(keys[::-1])
    new = np.zeros(flags.size, dtype=bool)
    new[0] = True
    for k in keys:
        sk = k[order]
        new[1:] |= sk[1:] != sk[:-1]
    group = np.cumsum(new) - 1
    out = np.empty(flags.size, dtype=bool)
    out[order] = np.logical_or.reduceat(flags[order], np.flatnonzero(new))[group]
    return out


def _last_records(values: npt.NDArray[np.uint64], adding: npt.NDArray[np.bool_],
                  days: npt.NDArray[np.int64], times: npt.NDArray[np.int64]
                  ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_]]:
    """Each number's last record: (sorted unique numbers, whether that record adds).

    Records are in file order; ``days`` holds each one's day (-1: no date) and ``times`` its
    time of day in UTC (:data:`NO_TIME`: none). When every record of a number carries a date,
    the latest day wins; records of the same day are ordered by their time when each of them
    carries one, else in file order. When any record of a number has no date, file order
    alone decides for that number."""
    if not values.size:
        return values, adding
    pos = np.arange(values.size, dtype=np.int64)
    undated = _runs_any(days < 0, (values,))
    day = np.where(undated, 0, days)
    untimed = undated | _runs_any(times < 0, (values, day))
    time = np.where(untimed, 0, times)
    order = np.lexsort((pos, time, day, values))  # by number, then day, time and line
    v = values[order]
    last = np.concatenate((v[1:] != v[:-1], [True]))
    return v[last], adding[order][last]


def _record_fields(fields: list[str], flag_at: int, country: str
                   ) -> tuple[str, int, int] | str:
    """A change record's (number, day, time) from its fields (see :func:`read_changes`), or
    why the record is rejected."""
    parts: list[str] = []
    dates: list[tuple[int, tuple[int, int]]] = []  # (field number, (day, time))
    for i, f in enumerate(fields[:flag_at]):
        if not f or f.lstrip("+").isdigit():
            parts.append(f)
            continue
        try:
            dates.append((i + 1, _change_stamp(f, country)))
        except ValueError:
            return (f"field {i + 1} (before the A/D flag) is neither part of the number "
                    "(digits) nor a date")
    after = [(i + 1, f) for i, f in enumerate(fields[flag_at + 1:], flag_at + 1) if f]
    if after and not dates:  # the first field after the flag is the record's date
        try:
            dates.append((after[0][0], _change_stamp(after[0][1], country)))
        except ValueError:
            return "the change date is not a date (YYYY-MM-DD)"
        after = after[1:]
    if after:  # nothing follows the date: a field read nowhere is never dropped
        at, text = after[0]
        try:
            _change_stamp(text, country)
        except ValueError:
            pass
        else:
            return f"two dates in the record (fields {dates[0][0]} and {at})"
        if _TIME_OF_DAY.match(text):
            return (f"field {at} is a time of day apart from the date (field {dates[0][0]}): "
                    "write the time in the date field, ISO 8601 (2026-11-20T10:00)")
        return (f"field {at} follows the change date (field {dates[0][0]}) and is not "
                "understood: a record ends with its date")
    if len(dates) > 1:
        return f"two dates in the record (fields {dates[0][0]} and {dates[1][0]})"
    day, time = dates[0][1] if dates else (-1, NO_TIME)
    number = "".join(p for p in parts if p)
    if fields[0].startswith("+"):
        number = "+" + number.lstrip("+")
    return number, day, time


def read_changes(
    path: Path, *, jurisdiction: str | None, default_region: str,
    not_before: date | None = None,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], ParseReport]:
    """A change list: (numbers added, numbers deleted, report), each sorted and unique and
    never both: a number's last record decides (see :func:`_last_records`), so deleting and
    re-adding a number leaves it listed, and the two arrays are the net change to apply in
    any order.

    A record's fields (split at ``,``, ``;``, tab or ``|``) are its number (digit fields
    before the flag, joined: ``202,5550100``), its flag, and at most one date (see
    :func:`_change_stamp`), after the flag (``2025550100,A,2026-11-20``) or before it
    (``2025550100,2026-11-20,A``), and nothing after the date. A record is rejected, with its
    line, when a field before the flag is neither digits, empty nor a date, when the first
    field after the flag is not a date, when it has two dates, when a field follows its date
    (a time of day belongs in the date field: ``2026-11-20T10:00``), or when it is dated
    before ``not_before`` (the list's snapshot date, whose download already reflects every
    change made before that day)."""
    country = country_of(jurisdiction, default_region)
    report = ParseReport()
    numbers: list[str] = []
    adding: list[bool] = []
    days: list[int] = []
    times: list[int] = []
    wheres: list[str] = []
    first = True
    for where, line in _text_lines(path):
        report.lines += 1
        fields = [f.strip().strip('"') for f in re.split(r"[,;\t|]", line)]
        flag_at = next((i for i, f in enumerate(fields) if f.upper() in _ADD | _DEL), None)
        if flag_at is None:
            if first and is_header(line):
                first = False
                continue
            report.reject(where, "no add/delete flag (A or D) in the record")
            continue
        first = False
        record = _record_fields(fields, flag_at, country)
        if isinstance(record, str):
            report.reject(where, record)
            continue
        if not_before is not None and 0 <= record[1] < not_before.toordinal():
            report.reject(where, "the change is dated before the list's snapshot of "
                                 f"{not_before.isoformat()}, which already reflects it")
            continue
        numbers.append(record[0])
        adding.append(fields[flag_at].upper() in _ADD)
        days.append(record[1])
        times.append(record[2])
        wheres.append(where)

    empty = np.zeros(0, dtype=np.uint64)
    if not numbers:
        return empty, empty, report
    values, valid, reason, reasons = _read_rows(pa.array(numbers, type=pa.string()), country)
    for i in np.flatnonzero(~valid).tolist():
        report.reject(wheres[i], reasons[reason[i]] or f"not a {country} number")
    report.valid_lines = int(valid.sum())
    final, adds = _last_records(values[valid], np.asarray(adding, dtype=bool)[valid],
                                np.asarray(days, dtype=np.int64)[valid],
                                np.asarray(times, dtype=np.int64)[valid])
    report.accepted = int(final.size)
    return final[adds], final[~adds], report


_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
#: A first line taken as a column name, not a digest: no digit (``hash``), or letters,
#: digits and ``_`` with a letter no digest has (``sha256``, ``e164_sha256``); at most 32
#: characters, so that a damaged digest (a typo of a letter past ``f``) is still a reject.
_HASH_HEADER = re.compile(r"^(?:[^0-9]*|[0-9A-Za-z_]*[g-zG-Z_][0-9A-Za-z_]*)$")


def read_hashes(path: Path) -> tuple[npt.NDArray[Any], ParseReport]:
    """Hex SHA-256 digests, one per line, as sorted unique 32-byte values; a first line that
    is a column name (see :data:`_HASH_HEADER`) is skipped.

    A row is the digest alone: one with a second column that is not empty (``digest,salt``:
    a salt per row, which lookups would never use) is rejected with its line, never read as
    its first column."""
    report = ParseReport()
    values: list[bytes] = []
    first = True
    for where, line in _text_lines(path):
        report.lines += 1
        token, *rest = (f.strip().strip('"') for f in line.split(","))
        extra = next((i for i, f in enumerate(rest, 2) if f), None)
        if first and len(token) <= 32 and _HASH_HEADER.match(token):
            pass  # a header: its other columns name what the rows would hold
        elif not _HEX64.match(token):
            report.reject(where, "not a 64-character hex SHA-256 digest")
        elif extra is not None:
            report.reject(where, f"column {extra} beside the digest: a hashed list holds one "
                                 "digest per line (SHA-256 of --salt and the E.164 number), "
                                 "and a column it does not read, such as a salt per row, is "
                                 "not dropped")
        else:
            values.append(bytes.fromhex(token))
        first = False
    arr = np.unique(np.array(values, dtype="S32")) if values else np.zeros(0, dtype="S32")
    report.accepted = int(arr.size)
    report.valid_lines = len(values)
    return arr, report


_PREFIX = re.compile(r"^\+?([0-9]{1,15})$")
#: The country codes of the regions dncguard judges (``1``, ``44``, ``61``): a prefix that
#: starts with none of them matches no number a check could allow.
JUDGED_COUNTRY_CODES = tuple(sorted({str(phonenumbers.country_code_for_region(r))
                                     for r in SUPPORTED_REGIONS}))


def _country_rules() -> dict[str, tuple[str, int]]:
    """For each judged country code, from the ``phonenumbers`` metadata of the regions
    dncguard judges: (the national trunk prefix, the most digits a national number of the
    country has). ``{"1": ("1", 10), "44": ("0", 10), "61": ("0", 12)}`` with the pinned
    metadata (Australia's longest are 1300 numbers of twelve digits)."""
    rules: dict[str, tuple[str, int]] = {}
    for region in SUPPORTED_REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta is None or meta.general_desc is None:  # pragma: no cover - pinned metadata
            raise RuntimeError(f"phonenumbers has no metadata for {region}")
        cc = str(meta.country_code)
        longest = max(meta.general_desc.possible_length or (15 - len(cc),))
        trunk, known = rules.get(cc, (meta.national_prefix or "", 0))
        rules[cc] = (trunk, max(known, longest))
    return rules


#: :func:`_country_rules`, computed once.
COUNTRY_RULES = _country_rules()


#: The regular-expression parser's opcodes (``re._constants``: the standard library's own
#: parser reads the ``phonenumbers`` patterns; no stub types it).
_SRE: Any = importlib.import_module("re._constants")


def _starts(items: Any, digits: str, at: int) -> set[int]:
    """The positions in ``digits`` that a number pattern's parsed ``items`` (what
    ``re._parser`` gives) can reach from ``at``; ``len(digits)`` also when the digits run
    out inside the items (a longer number could go on from there). Handles what the
    ``phonenumbers`` patterns are written with: literals, classes, ``\\d``, groups,
    alternatives and counted repeats."""
    c = _SRE  # the parser's own opcodes
    end = len(digits)
    reach = {at}
    for op, arg in items:
        after: set[int] = set()
        for i in reach:
            if i == end:  # every remaining item can be matched by digits still to come
                after.add(end)
            elif op is c.LITERAL:
                if ord(digits[i]) == arg:
                    after.add(i + 1)
            elif op is c.IN:
                if _in_class(arg, digits[i]):
                    after.add(i + 1)
            elif op is c.SUBPATTERN:
                after |= _starts(arg[-1], digits, i)
            elif op is c.BRANCH:
                for alternative in arg[1]:
                    after |= _starts(alternative, digits, i)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and len(arg[2]) == 1 and \
                    arg[2][0][0] in (c.LITERAL, c.IN):  # \\d{9}, [2-9]{2}: one digit a time
                low, high, sub = arg
                (one, what), = sub
                run = i
                while run < end and run - i < high and (
                        ord(digits[run]) == what if one is c.LITERAL
                        else _in_class(what, digits[run])):
                    run += 1
                after.update(range(i + low, run + 1))
                if run == end:  # the digits ran out within the repeat
                    after.add(end)
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                low, high, sub = arg
                here = {i}
                for count in range(min(high, end - i + 1) + 1):
                    if count >= low or end in here:
                        after |= here
                    here = {q for p in here if p < end for q in _starts(sub, digits, p)} | (
                        {end} if end in here else set())
                    if not here:
                        break
            else:  # pragma: no cover - an opcode the pinned metadata does not use
                raise RuntimeError(f"number pattern opcode {op} is not understood")
        reach = after
    return reach


def _in_class(items: Any, char: str) -> bool:
    c = _SRE
    code = ord(char)
    for op, arg in items:
        if op is c.LITERAL and code == arg:
            return True
        if op is c.RANGE and arg[0] <= code <= arg[1]:
            return True
        if op is c.CATEGORY and arg is c.CATEGORY_DIGIT and char.isdigit():
            return True
        if op is c.NEGATE:  # pragma: no cover - not in the pinned metadata
            raise RuntimeError("negated number pattern classes are not understood")
    return False


@functools.cache
def _number_patterns() -> dict[str, list[Any]]:
    """For each judged country code, the parsed pattern of every valid national number of
    its judged regions (``phonenumbers``' general description, which every valid number
    matches)."""
    parser = importlib.import_module("re._parser")
    out: dict[str, list[Any]] = {}
    for region in SUPPORTED_REGIONS:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert meta is not None and meta.general_desc is not None  # see _country_rules
        pattern = meta.general_desc.national_number_pattern
        if not pattern:  # pragma: no cover - pinned metadata
            raise RuntimeError(f"phonenumbers has no number pattern for {region}")
        out.setdefault(str(meta.country_code), []).append(parser.parse(pattern))
    return out


def _begins_a_number(cc: str, national: str) -> bool:
    """Whether some valid number of country code ``cc`` (of the regions dncguard judges)
    has national digits starting with ``national``."""
    return any(len(national) in _starts(p, national, 0) for p in _number_patterns()[cc])


def _nanp_problem(national: str) -> str | None:
    """Why no judged number of country code 1 starts with ``national`` (the digits after the
    1), or None: the area code never starts with 0 or 1, and the NPA-NXX table of
    :mod:`dncguard.nanp` (from the same metadata) says which area codes and exchanges hold
    any valid number."""
    if national[0] in "01":
        return (f"after the country code 1 comes a NANP area code, which never starts with "
                f"{national[0]} (for 1202555 the area code is 202)")
    codes, _ = nanp.load_table()
    head = national[:6]
    width = 10 ** (6 - len(head))
    start = int(head) * width
    if (codes[start:start + width] == nanp.INVALID).all():
        return (f"no valid number of country code 1 starts with 1{head} (no such area code "
                "or exchange is assigned)")
    return None


def prefix_problem(prefix: str) -> str | None:
    """Why the digit prefix ``prefix`` (country code first) can match no number dncguard
    judges, or None when it can. It must start with a whole judged country code
    (:data:`JUDGED_COUNTRY_CODES`): ``4`` is not ``44``; the national digits after it never
    start with the country's trunk prefix (``+44 0``, ``+61 0``, ``+1 1``: no E.164 number
    holds it), a NANP area code never starts with 0 or 1 and must be assigned, the
    prefix is no longer than the country's longest numbers (:data:`COUNTRY_RULES`), and
    some valid number of the country begins with it (``+612`` and ten more digits passes the
    length rule, as some ``+611`` numbers have twelve national digits, but no ``+612``
    number has more than nine)."""
    if prefix.startswith("0"):
        return ("a prefix starts with the country code, and none starts with 0 (for 0207946 "
                "write 44207946)")
    cc = next((c for c in JUDGED_COUNTRY_CODES if prefix.startswith(c)), None)
    if cc is None:
        whole = [c for c in JUDGED_COUNTRY_CODES if c.startswith(prefix)]
        if whole:
            return (f"{prefix} is only the beginning of a country code ({', '.join(whole)}): "
                    "a prefix starts with a whole country code (write "
                    f"{whole[0]} to block every +{whole[0]} number)")
        return (f"a prefix starts with the country code of a region dncguard judges "
                f"({', '.join(JUDGED_COUNTRY_CODES)}): written in national format it matches "
                "no number that can be called (for 202555 write 1202555, country code first)")
    national = prefix[len(cc):]
    trunk, longest = COUNTRY_RULES[cc]
    if not national:
        return None
    if trunk and national.startswith(trunk):
        return (f"the country code {cc} is followed by {trunk}, the national trunk prefix, "
                "which no number in international format holds: leave it out"
                + (f" (for {prefix} write {cc}{national[len(trunk):]})"
                   if national[len(trunk):] else ""))
    if len(national) > longest:
        return (f"{len(prefix)} digits: longer than any number of country code {cc} "
                f"({len(cc) + longest} digits with the country code), so it matches none")
    if cc == "1":
        return _nanp_problem(national)
    if not _begins_a_number(cc, national):
        return (f"no valid number of country code {cc} starts with {prefix} (the numbering "
                "plan has no number of that range and length), so it matches none")
    return None


#: A second column that may be the rest of the prefix (``1,900``: is it 1900?): it starts
#: with a digit, perhaps after ``+``, ``(``, ``-`` or spaces.
_DIGITS_AFTER_COMMA = re.compile(r"^[\s+(-]*[0-9]")


def read_prefixes(path: Path) -> tuple[npt.NDArray[Any], ParseReport]:
    """Digit prefixes of E.164 numbers (country code first, '+' optional), one per line.

    A prefix is one group of digits: a row with separators between digits (``1 202``,
    ``1900-1999``: a range is not read as one) is rejected, and so is one that no number
    dncguard judges can start with (:func:`prefix_problem`, the reason given with the line):
    one starting with 0 (a national trunk prefix: no country code starts with 0), one that
    does not start with the whole country code of a region dncguard judges
    (:data:`JUDGED_COUNTRY_CODES`: ``202555`` or ``900`` written in national format would be
    read as +20 or +90 and block no callable number, ``1202555`` and ``1900`` do; ``4`` is
    not ``44``), one whose country code is followed by the trunk prefix (``4402079``,
    ``6102``, ``11``) or, on +1, by an area code starting with 0 or 1 or not assigned
    (``1020555``), and one longer than any number of its country (``120255501101``). Text after
    a comma is a note (``1900,premium rate``), but a row whose second column starts with a
    digit (``1,900``) is rejected: read as the prefix ``1`` it would block every number of
    its country. A first line that is a header (see :func:`is_header`) is skipped."""
    report = ParseReport()
    values: list[str] = []
    for where, line in _text_lines(path):
        report.lines += 1
        if report.lines == 1 and is_header(line):
            continue
        head, comma, rest = line.partition(",")
        token = head.strip().strip('"')
        second = rest.split(",")[0].strip().strip('"')
        found = _PREFIX.match(token)
        if comma and _DIGITS_AFTER_COMMA.match(second):
            report.reject(where, "digits after the comma: a prefix is one group of digits "
                                 "(1900, not 1,900), and a second column is a note that "
                                 "does not start with a digit")
        elif found and (problem := prefix_problem(found[1])) is not None:
            report.reject(where, problem)
        elif found:
            values.append(found[1])
        elif re.fullmatch(r"\+?[0-9]+(?:[^0-9]+[0-9]+)+", token):
            report.reject(where, "one prefix per line, digits only: no spaces or dashes "
                                 "between digits (a range such as 1900-1999 is not read)")
        else:
            report.reject(where, "not a digit prefix of 1 to 15 digits")
    arr = np.unique(np.array(values, dtype="U15")) if values else np.zeros(0, dtype="U15")
    report.accepted = int(arr.size)
    report.valid_lines = len(values)
    return arr, report


def salt_problem(salt: str) -> str | None:
    """Why a hashed list cannot use ``salt`` (None when it can): it must be printable ASCII
    (letters, digits, punctuation and spaces), the characters :func:`hash_number` hashes.
    The salt itself is never part of the answer."""
    if all(" " <= ch <= "~" for ch in salt):
        return None
    return ("the salt is not printable ASCII (letters, digits, punctuation and spaces "
            "only), so no number could be hashed with it")


def hash_number(e164: str, salt: str | None) -> bytes:
    """SHA-256 of ``salt + e164`` (the E.164 form with its '+'), as the hashed lists hold it
    (``salt``: printable ASCII, see :func:`salt_problem`)."""
    return hashlib.sha256(((salt or "") + e164).encode("ascii")).digest()


def prefix_hits(prefixes: npt.NDArray[Any], digits: npt.NDArray[np.uint64]) -> npt.NDArray[Any]:
    """For each number, the longest matching prefix ('' when none)."""
    hits = np.full(digits.shape, "", dtype="U15")
    if prefixes.size == 0 or digits.size == 0:
        return hits
    ndig = np.char.str_len(digits.astype("U15"))
    by_len: dict[int, set[int]] = {}
    for p in prefixes.tolist():
        by_len.setdefault(len(p), set()).add(int(p))
    for length in sorted(by_len):  # longer prefixes overwrite shorter ones
        shift = (ndig - length).clip(0).astype(np.uint64)
        heads = digits // np.power(np.uint64(10), shift)
        wanted = np.fromiter(by_len[length], dtype=np.uint64)
        match = np.isin(heads, wanted) & (ndig >= length)
        hits[match] = heads[match].astype("U15")
    return hits
