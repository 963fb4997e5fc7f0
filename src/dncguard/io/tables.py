"""Reading contact files (CSV, Parquet, Excel): whole, as string columns, or row by row.

:func:`read_table` reads a file that parses cleanly as a table (CSV: every row has the
header's width and is valid UTF-8; Parquet: string columns only; Excel: the first sheet) into
string columns, the engine's fast input. Anything it refuses (:class:`NotColumnar`) is read
row by row (:func:`open_table`): a row that cannot be read as a whole (wrong number of
fields, bytes that are not UTF-8, a CSV syntax error) is still yielded, with an error
message, so the batch goes on and the row is reported.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .._lazy import lazy_import
from ..errors import InputError
from ._excel import EXCEL_SUFFIXES, read_excel
from .verdict_file import ADDED_COLUMNS, PARQUET_SUFFIXES

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
#: Optional per-row columns that refine a row's check (matched case-insensitively).
CONTEXT_COLUMNS = ("region", "country", "state", "zip", "timezone", "line_type", "subject")

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
    header with several phone-like columns is refused: one of them would go unchecked."""
    return _phone_column(tuple(header), requested)


@lru_cache(maxsize=256)
def _phone_column(header_t: tuple[str, ...], requested: str | None) -> int:
    header = list(header_t)
    if requested is not None:
        if requested in header:
            return header.index(requested)
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
        raise InputError(
            f"several columns look like phone numbers: {', '.join(candidates)}; name the one "
            "to check with --phone-column (repeat it to check several)")
    if candidates:
        return header.index(candidates[0])
    raise InputError(
        "no phone column found (looked for phone, phone_number, mobile, number, ...); columns: "
        f"{', '.join(header) or 'none'}; name it with --phone-column"
    )


def context_columns(header: list[str]) -> dict[str, int]:
    """Indexes of the optional per-row context columns present (``country`` -> ``region``).
    Two columns giving the same field (``state`` and ``State``, ``region`` and ``country``)
    are refused (InputError): one of them would be read and the other ignored."""
    found: dict[str, int] = {}
    for i, h in enumerate(header):
        name = h.strip().lower()
        if name not in CONTEXT_COLUMNS:
            continue
        field = "region" if name == "country" else name
        if field in found:
            raise InputError(f"columns {header[found[field]]!r} and {h!r} both give the rows' "
                             f"{field}; keep one of them")
        found[field] = i
    return found


def old_verdict_columns(header: list[str]) -> list[int]:
    """The columns of an earlier verdict (this file is a verdict file read again): every
    added column (``e164``, ``decision``, ...) or every ``dncguard_``-named one, and each
    phone column's (``home_phone_decision``, ...). They are dropped on reading, so the new
    verdict replaces the old one instead of standing beside it."""
    taken = set(header)
    drop: set[str] = set()
    for prefix in ("", "dncguard_"):
        names = [f"{prefix}{n}" for n in ADDED_COLUMNS]
        if all(n in taken for n in names):
            drop.update(names)
    for h in header:
        for stem in (h, f"dncguard_{h}"):
            names = [f"{stem}_{n}" for n in ADDED_COLUMNS]
            if all(n in taken for n in names):
                drop.update(names)
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


class CsvReader(_Dropping):
    """Streams a CSV file's rows; the first record is the header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fh: IO[str] = path.open("r", encoding="utf-8-sig", errors="replace",
                                          newline="")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        self._reader = csv.reader(self._fh)
        try:
            self._full = next(self._reader)
        except StopIteration:
            self._full = []
        except csv.Error as exc:
            raise InputError(f"{path}: the header line is not valid CSV: {exc}") from exc
        self.header = self._drop_old_verdict(self._full)

    def rows(self) -> Iterator[InputRow]:
        for row in self._rows():
            yield InputRow(row.row, self._kept(row.fields), row.error)

    def _rows(self) -> Iterator[InputRow]:
        width = len(self._full)
        n = 0
        while True:
            try:
                fields = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                n += 1
                yield InputRow(n, [""] * width, f"not valid CSV: {exc}")
                continue
            if not fields:
                continue  # blank line
            n += 1
            error = None
            if len(fields) != width:
                error = f"expected {width} fields, found {len(fields)}"
                fields = (fields + [""] * width)[:width]
            if error is None and any("\ufffd" in f for f in fields):
                bad = next(i for i, f in enumerate(fields) if "\ufffd" in f)
                error = f"field {self._full[bad]!r} is not valid UTF-8"
            yield InputRow(n, fields, error)

    def close(self) -> None:
        self._fh.close()


class ParquetReader(_Dropping):
    """Streams a Parquet file's rows as strings."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for unreadable files
            raise InputError(f"cannot read {path} as Parquet: {exc}") from exc
        self.header = self._drop_old_verdict(list(self._file.schema_arrow.names))

    def rows(self) -> Iterator[InputRow]:
        n = 0
        for batch in self._file.iter_batches(batch_size=65_536):
            columns = [
                ["" if v is None else str(v) for v in col.to_pylist()] for col in batch.columns
            ]
            for fields in zip(*columns, strict=True):
                n += 1
                yield InputRow(n, self._kept(list(fields)))

    def close(self) -> None:
        pass



def input_format(path: Path) -> str:
    """``parquet``, ``excel`` or ``csv`` (the default), from the file name."""
    suffix = path.suffix.lower()
    return "parquet" if suffix in PARQUET_SUFFIXES else "excel" if suffix in EXCEL_SUFFIXES \
        else "csv"

class ExcelReader(_Dropping):
    """The first sheet of an Excel workbook, row by row (read whole: a sheet is at most
    about a million rows)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        table = read_excel(path)
        self.header = self._drop_old_verdict(list(table.column_names))
        self._table = table.select(self.header) if self.dropped else table

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


def open_table(path: Path) -> CsvReader | ParquetReader | ExcelReader:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file")
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
    """The whole input as string columns, or :class:`NotColumnar`."""
    kind = input_format(path)
    if kind == "parquet":
        return _read_parquet(path)
    if kind == "excel":
        table = read_excel(path)
        if len(set(table.column_names)) != len(table.column_names):
            raise NotColumnar("repeated column names")
        return table
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NotColumnar(f"header: {type(exc).__name__}") from None
    if not header or len(set(header)) != len(header):
        raise NotColumnar("no header, or repeated column names")
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
    return table


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise NotColumnar(f"{type(exc).__name__}") from None
    if not all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in schema.types):
        raise NotColumnar("Parquet columns that are not strings")
    if len(set(schema.names)) != len(schema.names):
        raise NotColumnar("repeated column names")
    table = pq.read_table(path)
    return pa.table([pc.fill_null(c.cast(pa.string()), "") for c in table.columns],
                    names=table.column_names)
