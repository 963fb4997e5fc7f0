"""Reading contact files (CSV, Parquet, Excel): whole, as string columns, or row by row.

:func:`read_table` reads a file that parses cleanly as a table (CSV: every row has the
header's width and is valid UTF-8; Parquet: string columns, or binary ones holding UTF-8 text;
Excel: the first sheet, no column name repeated) into string columns, the engine's fast input.
Anything it refuses (:class:`NotColumnar`) is read row by row (:func:`open_table`): a row that
cannot be read as a whole (wrong number of fields, bytes that are not UTF-8 in a CSV file or a
Parquet binary column, a CSV syntax error) is still yielded, with an error message, so the
batch goes on and the row is reported.
"""

from __future__ import annotations

import csv
import difflib
import itertools
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .._lazy import lazy_import
from ..errors import InputError
from ._excel import EXCEL_SUFFIXES, read_excel
from .verdict_file import ADDED_COLUMNS, PARQUET_SUFFIXES, fold_name, output_header

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

PHONE_COLUMN_NAMES = (
    "phone", "phonenumber", "phoneno", "phonenum", "telephone", "telephonenumber", "tel",
    "number", "mobile", "mobilenumber", "mobilephone", "cell", "cellphone", "cellnumber",
    "msisdn", "e164", "contactnumber", "contactphone", "dialnumber", "phone1", "primaryphone",
)
#: The optional per-row columns that refine a row's check: each context field and every
#: column name read as it. A name is compared in lower case with spaces, ``-`` and ``/`` read
#: as ``_`` (``ZIP Code`` is ``zip_code``, ``State/Province`` is ``state_province``). Short
#: names that could mean something else (``st``) and names that look like a phone column
#: (``phone_type``) are not read as context.
CONTEXT_COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "region": ("region", "country"),
    "state": ("state", "province", "state_province", "state_or_province", "state_code"),
    "zip": ("zip", "zip_code", "zipcode", "postal_code", "postalcode", "postcode", "post_code",
            "zip_postal_code"),
    "timezone": ("timezone", "time_zone", "tz"),
    "line_type": ("line_type", "linetype"),
    "subject": ("subject",),
}
_CONTEXT_FIELD = {name: field for field, names in CONTEXT_COLUMN_NAMES.items()
                  for name in names}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))



@lru_cache(maxsize=4096)
def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class InputRow:
    """One data row: 1-based number, its fields (padded to the header), and any read error."""

    row: int
    fields: list[str]
    error: str | None = None


#: Parts of a column name that make it look like a phone column (``home_phone``, ``cell``).
_PHONE_PARTS = ("phone", "mobile", "cell", "msisdn", "telephone")


def phone_like(header: list[str]) -> list[str]:
    """The columns whose names look like phone numbers (``e164`` only when nothing else
    does: re-scrubbing a verdict file keeps its input's phone column)."""
    names = [h for h in header
             if _norm(h) in PHONE_COLUMN_NAMES or any(p in _norm(h) for p in _PHONE_PARTS)]
    others = [h for h in names if _norm(h) != "e164"]
    return others or names


def find_phone_column(header: list[str], requested: str | None) -> int:
    """The index of the phone column: the one named, else the only phone-like column. A
    header with several phone-like columns is refused: one of them would go unchecked. So is
    a column that cannot hold phone numbers exactly (a Parquet column of float32 or decimal
    numbers, or of float64 ones that are not all whole: :class:`ColumnName`)."""
    found = _phone_column(tuple(header), requested)
    name = header[found]
    why = name.why_not_phones() if isinstance(name, ColumnName) else None
    if why is not None:
        raise InputError(why)
    return found


class ColumnName(str):
    """A column's name that knows why the column cannot be read as phone numbers (a Parquet
    column stored as float32, ...): the readers give these for such columns, and
    :func:`find_phone_column` refuses the one it picks. Otherwise an ordinary ``str`` (a
    copy or a pickle of one is a plain ``str``)."""

    _why: Callable[[], str | None]
    _found: tuple[str | None] | None

    def __new__(cls, name: str, why: Callable[[], str | None]) -> ColumnName:
        self = super().__new__(cls, name)
        self._why = why
        self._found = None
        return self

    def why_not_phones(self) -> str | None:
        """Why this column's values are not phone numbers as written, or None (worked out
        once: a float64 column is read to the end)."""
        if self._found is None:
            self._found = (self._why(),)
        return self._found[0]

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return str, (str(self),)


@lru_cache(maxsize=256)
def _phone_column(header_t: tuple[str, ...], requested: str | None) -> int:
    header = list(header_t)
    if requested is not None:
        exact = [i for i, h in enumerate(header) if h == requested]
        if len(exact) > 1:
            raise InputError(f"several columns are named {requested!r} (columns "
                             f"{', '.join(str(i + 1) for i in exact)}): only one of them "
                             "would be checked; rename them so each has its own name")
        if exact:
            return exact[0]
        lowered = [h.strip().lower() for h in header]
        same = [i for i, h in enumerate(lowered) if h == requested.strip().lower()]
        if len(same) > 1:
            raise InputError(f"several columns are named {requested!r} (in another case): "
                             f"{', '.join(header[i] for i in same)}; name one exactly")
        if same:
            return same[0]
        raise InputError(f"no column named {requested!r}; columns: {', '.join(header) or 'none'}")
    candidates = phone_like(header)
    if len(candidates) > 1:
        twice = sorted({h for h in candidates if candidates.count(h) > 1})
        hint = (f"rename the columns named {', '.join(map(repr, twice))} so each has its own "
                "name (--phone-column names one column), then name the ones to check"
                if twice else "name the one to check with --phone-column (repeat it to "
                "check several)")
        raise InputError(
            f"several columns look like phone numbers: {', '.join(candidates)}; {hint}")
    if candidates:
        return header.index(candidates[0])
    raise InputError(
        "no phone column found (looked for phone, phone_number, mobile, number, ...); columns: "
        f"{', '.join(header) or 'none'}; name it with --phone-column"
    )


def _context_key(name: str) -> str:
    """A column name as context names are compared (:data:`CONTEXT_COLUMN_NAMES`)."""
    return re.sub(r"[\s/-]+", "_", name.strip().lower()).strip("_")


def context_field(name: str) -> str | None:
    """The context field a column of this name gives (:data:`CONTEXT_COLUMN_NAMES`), or None."""
    return _CONTEXT_FIELD.get(_context_key(name))


def context_columns(header: list[str]) -> dict[str, int]:
    """Indexes of the optional per-row context columns present, by field (``country`` and
    ``Country`` -> ``region``, ``ZIP Code`` -> ``zip``: :data:`CONTEXT_COLUMN_NAMES`). Two
    columns giving the same field (``state`` and ``State``, ``zip`` and ``postal_code``) are
    refused (InputError): one of them would be read and the other ignored."""
    found: dict[str, int] = {}
    for i, h in enumerate(header):
        field = context_field(h)
        if field is None:
            continue
        if field in found:
            raise InputError(f"columns {header[found[field]]!r} and {h!r} both give the rows' "
                             f"{field}; keep one of them")
        found[field] = i
    return found


def context_near_misses(header: list[str]) -> list[str]:
    """A warning for each column that is not read as context but looks as if it were meant to
    be (``timezone_name``, ``zip5``, ``Sate``, ``billing_state``): its name holds a context
    name as a word, or is a near spelling of one. Such a column is kept as data and the check
    goes on without it, so the scrub says so (a time zone the rows give in ``timezone_name``
    was not read, and a row the zone would defer came back ``allow``)."""
    out: list[str] = []
    names = sorted(_CONTEXT_FIELD)
    for h in header:
        key = _context_key(h)
        if not key or key in _CONTEXT_FIELD:
            continue
        field = next((_CONTEXT_FIELD[n] for n in names if f"_{n}_" in f"_{key}_"), None)
        if field is None:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.85)
            field = _CONTEXT_FIELD[close[0]] if close else None
        if field is None:
            continue
        spelt = ", ".join(CONTEXT_COLUMN_NAMES[field])
        out.append(f"column {h!r} was not read as the rows' {field} (a column named "
                   f"{spelt} is): if it gives the called party's {field}, rename it; as it "
                   "is, it was kept as data and not used in the check")
    return out


def old_verdict_columns(header: list[str]) -> list[int]:
    """The columns of an earlier verdict (this file is a verdict file read again), dropped on
    reading so the new verdict replaces the old one instead of standing beside it.

    A verdict file is its input's columns, then the added ones (``e164``, ``decision``, ...),
    each named ``dncguard_<name>`` (again, as often as needed) when the input already had
    that name in any case (:func:`~dncguard.io.verdict_file.output_header`): the input
    ``phone,e164`` gives ``phone,e164,dncguard_e164,decision,...``, and ``E164,Detail`` gives
    ``E164,Detail,dncguard_e164,decision,reason_codes,dncguard_detail,...``. So the earlier
    verdict's column for each added name is the one with the most ``dncguard_`` prefixes,
    named as dncguard writes it (the shorter names held in any case), and the user's own
    columns of the plain names, in any case, are kept (a file written before names were
    compared in any case, ``E164,Detail,e164,...,detail,...``, reads the same). Checked
    first as the last columns exactly as dncguard appends them; else found anywhere (columns
    moved in a spreadsheet). The same for each phone column's added columns
    (``home_phone_decision``, ...). Never every column."""
    n = len(ADDED_COLUMNS)
    if len(header) > n and header[-n:] == output_header(header[:-n])[-n:]:
        return list(range(len(header) - n, len(header)))
    taken = set(header)
    folded = {fold_name(h) for h in header}

    def latest(name: str) -> str | None:
        """``name`` with the most ``dncguard_`` prefixes that the header holds as dncguard
        writes it, each shorter one being held in some case."""
        found = None
        while fold_name(name) in folded:
            if name in taken:
                found = name
            name = f"dncguard_{name}"
        return found

    drop: set[str] = set()
    for stem in ("", *(f"{h}_" for h in header)):
        names = [latest(f"{stem}{a}") for a in ADDED_COLUMNS]
        if all(names):
            drop.update(n for n in names if n is not None)
    if len(drop) >= len(taken):
        return []
    return [i for i, h in enumerate(header) if h in drop]


class _Dropping:
    """Readers that leave out an earlier verdict's columns (see :func:`old_verdict_columns`)."""

    header: list[str]
    dropped: list[str]
    _keep: list[int] | None

    def _drop_old_verdict(self, header: list[str]) -> list[str]:
        gone = set(old_verdict_columns(header))
        self.dropped = [header[i] for i in sorted(gone)]
        self._keep = [i for i in range(len(header)) if i not in gone] if gone else None
        return [header[i] for i in self._keep] if self._keep is not None else header

    def _kept(self, fields: list[str]) -> list[str]:
        return fields if self._keep is None else [fields[i] for i in self._keep]


#: Byte order marks of the encodings a CSV file must not be in (read as UTF-8 they give a
#: mangled header and a phantom row). UTF-32 first: its little-endian mark starts as UTF-16's.
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
              (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
#: The line :class:`_CsvRecords` reads after a file's last line (Unicode noncharacters: no
#: text holds them): a record of it is the end of the file, a field that holds it was opened
#: by a quote that was never closed.
_EOF = "\ufdd0dncguard: end of file\ufdd0"
#: What a one-column header holding one of these was separated by (CSV files use commas).
_DELIMITERS = {";": "';'", "\t": "tabs", "|": "'|'"}
#: A header cell of 7 digits or more (as a spreadsheet may save it): a phone number.
_NUMBER_CELL = re.compile(r"\+?[0-9]{7,}(?:\.0+)?")


class _UnclosedQuote(Exception):
    """The record starting at ``line`` opened a quote that the file never closes."""

    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _unclosed_quote_error(path: Path, row: int | None, line: int) -> InputError:
    """A file that ends inside a quoted field: every line after the quote would be read into
    one field, so the file is refused (row ``None``: the header's quote)."""
    where = "the header" if row is None else f"row {row}"
    return InputError(f"{path}: {where} (line {line}) opens a quote that is never "
                      "closed, so every later line would be read into one field; close or "
                      "remove that quote")


class _CsvRecords:
    """A UTF-8 CSV file's records (``csv.reader``, not strict, bad bytes replaced), its
    header read and checked (:func:`check_header`): blank lines before it are skipped; a
    file with no header row (empty, or only blank lines) is refused, and so is one that ends
    inside a quoted field (:class:`_UnclosedQuote`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as raw:
                start = raw.read(4)
            for bom, encoding in _WIDE_BOMS:
                if start.startswith(bom):
                    raise InputError(f"{path} is {encoding} text (it starts with a "
                                     f"{encoding} byte order mark): save it as UTF-8 CSV")
            self._fh: IO[str] = path.open("r", encoding="utf-8-sig", errors="replace",
                                          newline="")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        self._ended = False
        self._reader = csv.reader(itertools.chain(self._fh, self._end()))
        try:
            self.header, self.header_line = self._read_header()
        except BaseException:
            self.close()
            raise

    def _end(self) -> Iterator[str]:
        self._ended = True
        yield _EOF

    def next(self) -> tuple[list[str], int] | None:
        """The next record and the line it starts on; None at the end of the file. Raises
        csv.Error (the record is skipped) or :class:`_UnclosedQuote`."""
        line = self._reader.line_num + 1
        try:
            fields = next(self._reader)
        except StopIteration:  # (after a csv.Error in the last record, which is reported)
            return None
        if self._ended:
            if fields == [_EOF]:
                return None
            raise _UnclosedQuote(line)
        return fields, line

    def _read_header(self) -> tuple[list[str], int]:
        blank = 0
        while True:
            try:
                got = self.next()
            except csv.Error as exc:
                raise InputError(f"{self.path}: the header line is not valid CSV: {exc}"
                                 ) from exc
            except _UnclosedQuote as exc:
                raise _unclosed_quote_error(self.path, None, exc.line) from None
            if got is None:
                what = "holds only blank lines" if blank else "is empty"
                raise InputError(f"{self.path}: no header row: the file {what}")
            fields, line = got
            if len(fields) > 1 or (fields and fields[0].strip()):
                _check_header(self.path, fields, f"line {line}")
                return fields, line
            blank += 1

    def close(self) -> None:
        self._fh.close()


def _is_phone_number(cell: str) -> bool:
    """A header cell that is a phone number: 7 digits or more (``2025550123``, or as a
    spreadsheet saved it, ``2025550123.0``), or a value of 7 digits or more, mostly digits,
    that :func:`~dncguard.phones.normalise` reads as a valid number (``+1 202 555 0123``,
    ``(202) 555-0123``; not a date, ``2024-01-15``, nor a name with an example number in it,
    ``Phone (e.g. 202-555-0123)``)."""
    from ..phones import normalise

    text = cell.strip()
    digits = sum(c.isdigit() for c in text)
    if digits < 7:
        return False
    if _NUMBER_CELL.fullmatch(text):
        return True
    if digits * 2 < len("".join(text.split())):
        return False
    return any(normalise(text, region).e164 is not None for region in (None, "US"))


def _check_header(path: Path, header: list[str], where: str = "the first row") -> None:
    """Refuse a header row (of a CSV file or an Excel sheet) that is not one: no column names,
    bytes that are not UTF-8 or NUL bytes, one column holding another delimiter (``;``, tabs,
    ``|``: the file is not comma separated), or a phone number (the file has no header row,
    and its first row would be taken for one and not checked). The messages name the header
    by its line, not the file's name (a service job's upload is stored under a name of the
    server's own; the CLI reads one input)."""
    if not any(h.strip() for h in header):
        raise InputError(f"no header row: {where} has no column names")
    if any("\ufffd" in h for h in header):
        raise InputError(f"the header ({where}) is not valid UTF-8 (or holds U+FFFD, the "
                         "character that stands in for bytes that are not): save the file as "
                         "UTF-8 CSV")
    if any("\x00" in h for h in header):
        raise InputError(f"the header ({where}) holds NUL bytes: the file is not UTF-8 text "
                         "(UTF-16?); save it as UTF-8 CSV")
    if len(header) == 1:
        counts = {d: header[0].count(d) for d in _DELIMITERS}
        delimiter = max(counts, key=lambda d: counts[d])
        if counts[delimiter]:
            raise InputError(f"the header ({where}) is one column holding "
                             f"{_DELIMITERS[delimiter]}: the file seems to be separated by "
                             f"{_DELIMITERS[delimiter]}, and files must be comma separated")
    for k, h in enumerate(header, 1):
        if _is_phone_number(h):
            raise InputError(f"the file seems to have no header row: {where}, column {k} "
                             "holds a phone number; add a header row (phone,...)")


class CsvReader(_Dropping):
    """Streams a CSV file's rows; the first record that is not a blank line is the header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._records = _CsvRecords(path)
        self._full = self._records.header
        self.header = self._drop_old_verdict(self._full)

    def rows(self) -> Iterator[InputRow]:
        for row in self._rows():
            yield InputRow(row.row, self._kept(row.fields), row.error)

    def _rows(self) -> Iterator[InputRow]:
        width = len(self._full)
        n = 0
        while True:
            try:
                got = self._records.next()
            except csv.Error as exc:
                n += 1
                yield InputRow(n, [""] * width, f"not valid CSV: {exc}")
                continue
            except _UnclosedQuote as exc:
                raise _unclosed_quote_error(self.path, n + 1, exc.line) from None
            if got is None:
                return
            fields = got[0]
            if not fields:
                continue  # blank line
            n += 1
            error = None
            if len(fields) != width:
                error = f"expected {width} fields, found {len(fields)}"
                fields = (fields + [""] * width)[:width]
            if error is None and any("\ufffd" in f for f in fields):
                bad = next(i for i, f in enumerate(fields) if "\ufffd" in f)
                error = (f"field {self._full[bad]!r} is not valid UTF-8 (or holds U+FFFD, "
                         "the character that stands in for bytes that are not)")
            yield InputRow(n, fields, error)

    def close(self) -> None:
        self._records.close()


class ParquetReader(_Dropping):
    """Streams a Parquet file's rows as strings. Its header names a column that cannot hold
    phone numbers exactly with a :class:`ColumnName` (see :func:`_parquet_header`). A binary
    column's values are read as UTF-8 text; a row holding one that is not is flagged, naming
    the column, as a CSV row with bytes that are not UTF-8 is (its bytes read with
    U+FFFD in their place)."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for unreadable files
            raise InputError(f"cannot read {path} as Parquet: {exc}") from exc
        schema = self._file.schema_arrow
        _check_parquet_columns(path, schema)
        self._names = list(schema.names)
        self._binary = {i for i, t in enumerate(schema.types) if _is_binary(t)}
        self.header = self._drop_old_verdict(_parquet_header(path, schema))

    def rows(self) -> Iterator[InputRow]:
        n = 0
        for batch in self._file.iter_batches(batch_size=65_536):
            bad: dict[int, int] = {}  # row in the batch -> the first column not UTF-8
            columns = []
            for i, col in enumerate(batch.columns):
                if i in self._binary:
                    texts, wrong = _utf8_texts(col)
                    for r in wrong:
                        bad.setdefault(r, i)
                    columns.append(texts)
                else:
                    columns.append(["" if v is None else str(v) for v in col.to_pylist()])
            for r, fields in enumerate(zip(*columns, strict=True)):
                n += 1
                error = None
                if r in bad:
                    error = f"field {self._names[bad[r]]!r} is not valid UTF-8"
                yield InputRow(n, self._kept(list(fields)), error)

    def close(self) -> None:
        pass


def _check_parquet_columns(path: Path, schema: pa.Schema) -> None:
    """Refuse a Parquet file of no columns as an empty CSV file is refused (it has no phone
    column, and its verdict file would say nothing)."""
    if not schema.names:
        raise InputError(f"{path}: no header row: the Parquet file has no columns")


def _is_binary(kind: pa.DataType) -> bool:
    """Whether a Parquet column of this type holds bytes (binary, also dictionary-encoded)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
                or pa.types.is_fixed_size_binary(kind) or pa.types.is_binary_view(kind))


def _utf8_texts(column: pa.Array) -> tuple[list[str], list[int]]:
    """A binary column's values as text (``""`` for null) and the rows whose bytes are not
    UTF-8 (read with U+FFFD in their place)."""
    if isinstance(column, pa.DictionaryArray):
        column = column.dictionary_decode()
    try:
        return ["" if v is None else v for v in column.cast(pa.string()).to_pylist()], []
    except pa.ArrowInvalid:  # not all UTF-8: value by value
        pass
    texts: list[str] = []
    wrong: list[int] = []
    for r, value in enumerate(column.to_pylist()):
        if value is None:
            texts.append("")
            continue
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(value.decode("utf-8", errors="replace"))
            wrong.append(r)
    return texts, wrong


#: The largest whole number a float64 holds exactly, with every whole number below it.
_EXACT_FLOAT = 2**53


def _parquet_header(path: Path, schema: pa.Schema) -> list[str]:
    """A Parquet file's column names; a column of float32, float16 or decimal numbers (a
    float32 holds 2025550123 as 2025550080), or of float64 ones, as a :class:`ColumnName`
    that is refused as the phone column (float64: when a value is not a whole number within
    2**53, found only if it is picked)."""
    names: list[str] = []
    for i, field in enumerate(schema):
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_decimal(kind) or (pa.types.is_floating(kind) and kind.bit_width < 64):
            why = (f"{path}: column {field.name!r} is stored as {kind} numbers, which do "
                   "not hold every phone number exactly; store phone numbers as text (or "
                   "int64) and export again")
            names.append(ColumnName(field.name, partial(_same, why)))
        elif pa.types.is_floating(kind):
            names.append(ColumnName(field.name, partial(_inexact_floats, path, i, field.name)))
        else:
            names.append(field.name)
    return names


def _same(text: str) -> str:
    return text


def _inexact_floats(path: Path, index: int, name: str) -> str | None:
    """Why the float64 column ``index`` of a Parquet file is not read as phone numbers: its
    first finite value that is not a whole number within 2**53 (NaN and infinity are left to
    the row checks: ``nan`` is no phone number), or None."""
    import numpy as np
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    unique = file.schema_arrow.names.count(name) == 1
    row = 0
    for batch in file.iter_batches(batch_size=65_536, columns=[name] if unique else None):
        column = batch.column(0 if unique else index)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(values) & ((values != np.floor(values))
                                         | (np.abs(values) > _EXACT_FLOAT))
        if bad.any():
            return (f"{path}: column {name!r} is stored as float64 numbers, and row "
                    f"{row + int(np.flatnonzero(bad)[0]) + 1} holds one that is not a whole "
                    "number a float64 holds exactly; store phone numbers as text (or int64) "
                    "and export again")
        row += len(values)
    return None


def input_format(path: Path) -> str:
    """``parquet``, ``excel`` or ``csv`` (the default), from the file name."""
    suffix = path.suffix.lower()
    return "parquet" if suffix in PARQUET_SUFFIXES else "excel" if suffix in EXCEL_SUFFIXES \
        else "csv"

class ExcelReader(_Dropping):
    """The first sheet of an Excel workbook, row by row (read whole: a sheet is at most
    about a million rows). Its header is the sheet's first row as written: a repeated name
    is refused or read as a CSV file's is (two ``timezone`` columns are refused)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        table = read_excel(path)
        _check_header(path, list(table.column_names))
        self.header = self._drop_old_verdict(list(table.column_names))
        # by position: a name may repeat
        self._table = table.select(self._keep) if self._keep is not None else table

    def rows(self) -> Iterator[InputRow]:
        columns = [c.to_pylist() for c in self._table.columns]
        for n, fields in enumerate(zip(*columns, strict=True), 1):
            yield InputRow(n, [str(v) for v in fields])

    def close(self) -> None:
        pass


def without_old_verdict(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """``table`` without an earlier verdict's columns, and their names."""
    names = list(table.column_names)
    gone = old_verdict_columns(names)
    if not gone:
        return table, []
    return table.drop_columns([names[i] for i in gone]), [names[i] for i in gone]


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file")


def open_table(path: Path) -> CsvReader | ParquetReader | ExcelReader:
    _check_exists(path)
    kind = input_format(path)
    if kind == "parquet":
        return ParquetReader(path)
    if kind == "excel":
        return ExcelReader(path)
    return CsvReader(path)

def read_header(path: Path) -> list[str]:
    """The header of an input file (InputError when it cannot be read)."""
    reader = open_table(path)
    try:
        return list(reader.header)
    finally:
        reader.close()


class NotColumnar(Exception):
    """The file needs the row-by-row path; the message says why."""


def read_table(path: Path) -> pa.Table:
    """The whole input as string columns, or :class:`NotColumnar`. A file that cannot be
    read at all, or whose header is refused, raises InputError as :func:`open_table` does."""
    _check_exists(path)
    kind = input_format(path)
    if kind == "parquet":
        return _read_parquet(path)
    if kind == "excel":
        table = read_excel(path)
        _check_header(path, list(table.column_names))
        if len(set(table.column_names)) != len(table.column_names):
            raise NotColumnar("repeated column names")
        return table
    records = _CsvRecords(path)  # the header, read and checked as the row path reads it
    records.close()
    header = records.header
    if len(set(header)) != len(header):
        raise NotColumnar("repeated column names")
    import pyarrow.csv as pv

    try:
        table = pv.read_csv(
            path,
            read_options=pv.ReadOptions(use_threads=True),
            parse_options=pv.ParseOptions(newlines_in_values=True),
            convert_options=pv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, OSError) as exc:  # the row path reports the bad rows
        raise NotColumnar(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if table.column_names != header:
        raise NotColumnar("header differs")
    for col in table.columns:  # the row path flags these cells as bad bytes
        if pc.any(pc.match_substring(col, "\ufffd")).as_py():
            raise NotColumnar("replacement characters")
    if _may_end_in_quote(path, table):  # the row path refuses it, naming the row
        raise NotColumnar("the file may end inside a quoted field")
    return table


def _may_end_in_quote(path: Path, table: pa.Table) -> bool:
    """Whether the file may end inside a quoted field (pyarrow reads every line after an
    unclosed quote into one field, and says nothing): only the last row's last field can be
    that field (in any other, the row would be short of fields), and then the file ends with
    the quote and that field's text as written. True for a few files that do not (``""x``
    at the end): they are read row by row, which tells them apart."""
    if not table.num_rows or not table.num_columns:
        return False
    last = table.column(table.num_columns - 1)[table.num_rows - 1].as_py()
    tail = ('"' + last.replace('"', '""')).encode("utf-8")
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if len(tail) > size:
            return False
        fh.seek(size - len(tail))
        return bool(fh.read() == tail)


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise NotColumnar(f"{type(exc).__name__}") from None
    _check_parquet_columns(path, schema)
    if not all(pa.types.is_string(t) or pa.types.is_large_string(t)
               or pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in schema.types):
        raise NotColumnar("Parquet columns that are not strings")
    if len(set(schema.names)) != len(schema.names):
        raise NotColumnar("repeated column names")
    table = pq.read_table(path)
    try:  # binary columns read as UTF-8 text, as the row path reads them
        columns = [c.cast(pa.string()) for c in table.columns]
    except pa.ArrowInvalid:  # bytes that are not UTF-8: the row path flags their rows
        raise NotColumnar("binary values that are not UTF-8") from None
    return pa.table([pc.fill_null(c, "") for c in columns], names=table.column_names)
