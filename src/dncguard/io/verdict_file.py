"""The verdict file: the columns dncguard adds, and writing them (CSV, Parquet, Excel).

One module owns the file every scrub writes (the CLI, the library, a service job): the added
columns (:data:`ADDED_COLUMNS`), how a cell is written (:func:`iso_utc` for instants,
:func:`defuse` against spreadsheet formulas, and :func:`undefuse` to read a cell back, e.g.
for the audit), the writers (:class:`TableWriter`, :func:`write_csv_rows`) and the file of
several phone columns (:func:`write_column_verdicts`).
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from .._lazy import lazy_import
from ..errors import InputError, VerdictFileError
from ._excel import EXCEL_MAX_CELL, EXCEL_MAX_COLUMNS, read_excel

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

ADDED_COLUMNS = ("e164", "decision", "reason_codes", "detail", "next_allowed_at")
#: File name endings written (and read) as Parquet.
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Rows an Excel sheet holds, the header included.
EXCEL_MAX_ROWS = 1_048_576

_SURROGATE = re.compile("[\udc80-\udcff]")

# A verdict file holds the input's cells as they were: read back, a cell may be as long as the
# input's (the row reader allows the same).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def ceil_second(value: datetime) -> datetime:
    """``value`` rounded up to the whole second: a moment a verdict gives (when a number may
    be called) is never earlier than the one the rules found."""
    return value.replace(microsecond=0) + timedelta(seconds=1) if value.microsecond else value


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_utc(value: datetime | None) -> str:
    """An instant as verdict files write it (empty for none): ISO 8601 in UTC with ``Z``, in
    whole seconds, rounded up (:func:`ceil_second`), so every cell of a column has one form
    (``2026-12-05T14:00:02Z``, never ``2026-12-05T14:00:01.123456Z``)."""
    return _iso(ceil_second(value)) if value else ""


def output_format(path: Path) -> str:
    """``csv``, ``parquet`` or ``xlsx`` from the output name; anything else is refused (a
    name like ``out.xlsx`` must never quietly get CSV)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix == ".xlsx":
        return "xlsx"
    raise InputError(f"cannot tell the output format from {str(path)!r}: name it .csv, "
                     ".parquet or .xlsx")


#: The added columns a dialer acts on: an input column named like one of them (or like its
#: ``dncguard_`` form, which earlier verdict files gave the verdict when the input used the
#: name) would stand beside this scrub's verdict and could be read as it, so it is refused
#: (:func:`refuse_stale_verdict`). ``detail`` is free text no dialer acts on: an input
#: ``detail`` stays, and the added one becomes ``dncguard_detail``.
ACTED_ON = ("e164", "decision", "reason_codes", "next_allowed_at")


def fold_name(name: str) -> str:
    """A column name as dncguard compares names that must differ (spaces around removed, case
    folded): an added column never differs from an input column only so."""
    return name.strip().casefold()


def stale_verdict_columns(header: list[str], phone: int | None = None,
                          columns: Collection[str] = ()) -> list[str]:
    """The input columns named like a verdict column a dialer acts on (:data:`ACTED_ON`,
    bare or ``dncguard_``, in any case) that are not this scrub's verdict: ``header`` is the
    input's (a complete earlier verdict already dropped), ``phone`` the index of the phone
    column checked (a column named ``e164`` may stay only as that column: the verdict is about
    the number in it). ``columns``: the phone columns of a scrub of several, whose verdict
    columns are ``<column>_<name>``; each column's own verdict file has the bare names too,
    where an ``e164`` column is not the one checked for every column, so it is refused."""
    stems = ["", *(f"{c}_" for c in columns)]
    acted = {fold_name(f"{prefix}{stem}{name}"): stem == "" and name == "e164"
             for stem in stems for name in ACTED_ON for prefix in ("", "dncguard_")}
    return [h for i, h in enumerate(header)
            if fold_name(h) in acted
            and not (acted[fold_name(h)] and not columns and i == phone)]


def _shown(name: str) -> str:
    return name if re.fullmatch(r"[\w.-]+", name) else repr(name)


def refuse_stale_verdict(header: list[str], phone: int | None = None,
                         columns: Collection[str] = ()) -> None:
    """Refuse (InputError, one line) an input with :func:`stale_verdict_columns`: left beside
    this scrub's verdict, a dialer could read its stale ``decision`` instead."""
    stale = stale_verdict_columns(header, phone, columns)
    if not stale:
        return
    names = ", ".join(_shown(h) for h in stale)
    what = (f"a column named {names} that is not" if len(stale) == 1
            else f"columns named {names} that are not")
    them = "it" if len(stale) == 1 else "them"
    hint = ("; a column named e164 is kept only as the one phone column checked"
            if any(fold_name(h).endswith("e164") for h in stale) else "")
    raise InputError(f"the input has {what} a complete earlier verdict: rename or remove "
                     f"{them}{hint}")

# Numbers and phone numbers written with spaces, dots, dashes or parentheses hold no letters,
# so a spreadsheet cannot run a function or a DDE link from them: they stay as they are.
_PLAIN_NUMBER = re.compile(r"^[+-]?[\d ().-]*\d[\d ().-]*$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


_FIRST = frozenset(_FORMULA_START)


def defuse(cell: str) -> str:
    """Prefix an apostrophe to cells a spreadsheet could run as a formula (CSV injection).

    Cells starting with ``= + - @``, tab or carriage return get one, unless they are plain
    numbers (``+12025550100``, ``-5``, ``+1 (202) 555-0100``).
    """
    if cell[:1] in _FIRST and not _PLAIN_NUMBER.match(cell):
        return "'" + cell
    return cell


def undefuse(cell: str) -> str:
    """The cell :func:`defuse` was given (reading a verdict file's own columns back, e.g. for
    the audit). A cell that was written starting with an apostrophe before a formula
    character reads back without it: none of the verdict columns starts so."""
    if cell.startswith("'") and cell[1:2] and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


# What undefuse strips the apostrophe of, in RE2
_DEFUSED_RE = "^'[=+@\\t\\r-]"


def undefuse_array(cells: pa.Array) -> pa.Array:
    """:func:`undefuse` applied to every cell of a string array."""
    if not pc.any(pc.starts_with(cells, "'")).as_py():
        return cells
    hit = pc.match_substring_regex(cells, _DEFUSED_RE)
    return pc.if_else(hit, pc.utf8_slice_codeunits(cells, 1), cells)


# The same tests as ``defuse`` in RE2 (pyarrow's regex engine): Python's ``\\d`` is any Unicode
# decimal digit and its ``$`` also matches before a final newline.
_PLAIN_NUMBER_RE = r"^[+-]?[\p{Nd} ().-]*\p{Nd}[\p{Nd} ().-]*\n?$"


_FORMULA_BYTES = np.frombuffer("".join(_FORMULA_START).encode(), dtype=np.uint8)


def _first_bytes(cells: pa.Array) -> npt.NDArray[np.uint8]:
    """The first byte of every cell (0 for an empty one), read off the array's buffers."""
    width = np.int32 if pa.types.is_string(cells.type) else np.int64
    offsets: npt.NDArray[np.int64] = np.frombuffer(cells.buffers()[1], dtype=width)[
        cells.offset:cells.offset + len(cells) + 1].astype(np.int64)
    data = cells.buffers()[2]
    out = np.zeros(len(cells), dtype=np.uint8)
    if data is None or not len(cells):
        return out
    raw = np.frombuffer(data, dtype=np.uint8)
    filled = offsets[1:] > offsets[:-1]
    out[filled] = raw[offsets[:-1][filled]]
    return out


def defuse_array(cells: pa.Array) -> pa.Array:
    """:func:`defuse` of every cell of a string (or dictionary-encoded string) array."""
    if isinstance(cells, pa.DictionaryArray):
        return pa.DictionaryArray.from_arrays(cells.indices, defuse_array(cells.dictionary))
    risky = np.flatnonzero(np.isin(_first_bytes(cells), _FORMULA_BYTES))
    if not risky.size:
        return cells
    picked = cells.take(pa.array(risky))
    plain = np.asarray(pc.match_substring_regex(picked, _PLAIN_NUMBER_RE).to_numpy(
        zero_copy_only=False), dtype=bool)
    risky = risky[~plain]
    if not risky.size:
        return cells
    mask = np.zeros(len(cells), dtype=bool)
    mask[risky] = True
    mark, empty = pa.scalar("'", cells.type), pa.scalar("", cells.type)  # string or large
    return pc.if_else(pa.array(mask), pc.binary_join_element_wise(mark, cells, empty), cells)


#: The bytes that make Python's ``csv`` writer quote a cell (minimal quoting, ``\r\n`` line
#: ends): the delimiter, the quote and the line end's characters.
_QUOTED = (b",", b'"', b"\r", b"\n")
_QUOTE, _EMPTY, _CRLF, _COMMA = (pa.scalar(t, pa.large_string()) for t in ('"', "", "\r\n", ","))
_QUOTED_BYTES = np.zeros(256, dtype=bool)
_QUOTED_BYTES[[b[0] for b in _QUOTED]] = True
#: Rows joined into lines at a time (the lines of one step are one buffer).
_ROWS_PER_WRITE = 65_536


def _csv_cells(cells: pa.Array, *, alone: bool) -> pa.Array:
    """Cells as Python's ``csv`` writer writes them (a quoted cell's quotes doubled), a
    missing one as nothing, as one ``large_string`` array; ``alone``: the row's only cell
    (an empty one is then written ``""``, as the writer does, so the row is not blank)."""
    if isinstance(cells, pa.DictionaryArray):  # quoted once per distinct value
        return pc.fill_null(_csv_cells(cells.dictionary, alone=alone).take(cells.indices),
                            '""' if alone else "")
    cells = pc.fill_null(cells.cast(pa.large_string()), "")
    quote = _needs_quotes(cells)
    if alone:
        empty = _lengths(cells) == 0
        quote = empty if quote is None else quote | empty
    if quote is None or not quote.any():
        return cells
    quoted = pc.binary_join_element_wise(_QUOTE, pc.replace_substring(cells, '"', '""'),
                                         _QUOTE, _EMPTY)
    return pc.if_else(pa.array(quote), quoted, cells)


def _offsets(cells: pa.Array) -> npt.NDArray[np.int64]:
    """The offsets of a ``large_string`` array's cells in its data buffer."""
    return np.frombuffer(cells.buffers()[1], dtype=np.int64)[
        cells.offset:cells.offset + len(cells) + 1]


def _lengths(cells: pa.Array) -> npt.NDArray[np.int64]:
    return np.diff(_offsets(cells))


def _needs_quotes(cells: pa.Array) -> npt.NDArray[np.bool_] | None:
    """Which cells of a ``large_string`` array hold a byte the writer quotes for (None: no
    cell does), read off the data buffer: a search of the whole buffer for each byte, and
    only when one is found, the cells holding them (a regular expression per cell is
    several times slower, and most columns hold none)."""
    data = cells.buffers()[2]
    offsets = _offsets(cells)
    start = int(offsets[0])
    if data is None or int(offsets[-1]) == start:
        return None
    blob = memoryview(data)[start:int(offsets[-1])].tobytes()
    if not any(byte in blob for byte in _QUOTED):
        return None
    raw = np.frombuffer(blob, dtype=np.uint8)
    found = np.flatnonzero(_QUOTED_BYTES[raw])
    out = np.zeros(len(cells), dtype=bool)
    out[np.searchsorted(offsets[1:] - start, found, side="right")] = True
    return out


def write_csv_rows(columns: list[pa.Array], stream: IO[bytes], *, raw: bool = False,
                   safe: Collection[int] = ()) -> None:
    """Rows of string columns as CSV, byte for byte what Python's ``csv`` writer writes for
    them (minimal quoting, CRLF), with :func:`defuse` applied unless ``raw`` (and but to the
    columns ``safe`` names, which the caller knows hold no formula, e.g. E.164 numbers).

    The cells are quoted and joined into lines by Arrow's compute kernels (native code,
    without the GIL), a step of rows at a time, and each step's lines are written as the one
    buffer Arrow holds them in."""
    cells = [c if raw or i in safe else defuse_array(c) for i, c in enumerate(columns)]
    rows = len(cells[0]) if cells else 0
    for start in range(0, rows, _ROWS_PER_WRITE):
        part = [_csv_cells(c.slice(start, _ROWS_PER_WRITE), alone=len(cells) == 1)
                for c in cells]
        # the line end goes on the last cell (a join of one column, not of the lines)
        part[-1] = pc.binary_join_element_wise(part[-1], _EMPTY, _CRLF)
        lines = pc.binary_join_element_wise(*part, _COMMA)
        offsets = _offsets(lines)
        data = lines.buffers()[2]
        if data is not None:
            stream.write(memoryview(data)[int(offsets[0]):int(offsets[-1])])


def _unused(name: str, inputs: set[str], added: set[str]) -> str:
    """``name``, with ``dncguard_`` in front as often as the input uses it in any case
    (``inputs``: its names as :func:`fold_name` gives them) or another added column has it
    (``added``, then holding it too). Added names are not compared with each other in any
    case: they differ so only where the input's names do (``Cell`` and ``cell``)."""
    while fold_name(name) in inputs or name in added:
        name = f"dncguard_{name}"
    added.add(name)
    return name


def output_header(header: list[str]) -> list[str]:
    """Input columns, then the added ones; an added name the input uses, in any case
    (:func:`fold_name`), gets ``dncguard_`` in front (``E164,Detail`` gives
    ``dncguard_e164`` and ``dncguard_detail``)."""
    inputs = {fold_name(h) for h in header}
    added: set[str] = set()
    return [*header, *(_unused(name, inputs, added) for name in ADDED_COLUMNS)]


def column_header(header: list[str], columns: list[str]) -> list[str]:
    """Input columns, then ``<column>_<added>`` for each phone column (``dncguard_`` first
    when the input already uses that name, in any case, as in :func:`output_header`)."""
    inputs = {fold_name(h) for h in header}
    added: set[str] = set()
    return [*header, *(_unused(f"{column}_{name}", inputs, added)
                       for column in columns for name in ADDED_COLUMNS)]


def _read_part(path: Path, width: int) -> list[pa.Array]:
    """A column's own verdict file (see :func:`write_column_verdicts`) as its ``width``
    string columns, by position, read in its own format (its names may repeat)."""
    fmt = output_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path).read()  # by position: a repeated name reads too
    elif fmt == "xlsx":
        table = read_excel(path)
    else:
        import pyarrow.csv as pv

        # the header is read as a row (skip_rows would end it at a line break in a name)
        names = [f"c{i}" for i in range(width)]
        for size in CSV_BLOCK_SIZES:  # a cell longer than a block needs a larger one
            try:
                table = pv.read_csv(
                    path, read_options=pv.ReadOptions(column_names=names, block_size=size),
                    parse_options=pv.ParseOptions(newlines_in_values=True),
                    convert_options=pv.ConvertOptions(
                        column_types=dict.fromkeys(names, pa.string()),
                        strings_can_be_null=False, quoted_strings_can_be_null=False)
                ).slice(1)
                break
            except pa.ArrowInvalid as exc:
                if "straddl" not in str(exc) or size == CSV_BLOCK_SIZES[-1]:
                    raise VerdictFileError(f"{path}: the column's verdict file cannot be "
                                           f"read back ({str(exc)[:120]})") from None
    if table.num_columns != width:
        raise VerdictFileError(f"{path}: the column's verdict file has {table.num_columns} "
                               f"columns, not {width}")
    return [c.combine_chunks() for c in table.columns]


def write_column_verdicts(output: Path, header: list[str], parts: dict[str, Path], *,
                          raw: bool = False) -> None:
    """The verdict file of several phone columns from each column's own verdict file: the
    input columns once, then each column's added columns (cells copied as written: the
    parts were defused, or not, as asked). Each part is read in its own format, its columns
    by position; ``output`` has the format of its name (the parts have it too). Its header
    is written as a verdict file's is: defused unless ``raw`` (the scrub's ``raw``)."""
    n = len(ADDED_COLUMNS)
    width = len(header) + n
    columns: list[pa.Array] = []
    rows: int | None = None
    for k, path in enumerate(parts.values()):
        cells = _read_part(path, width)
        if rows is not None and len(cells[0]) != rows:
            raise VerdictFileError(f"{path}: {len(cells[0]):,} rows, where the first "
                                   f"column's verdict file has {rows:,}")
        rows = len(cells[0])
        columns.extend(cells if k == 0 else cells[len(header):])
    names = column_header(header, list(parts))
    writer = TableWriter(output, names, raw=raw, cells_written=True, timestamps=[
        len(header) + k * n + n - 1 for k in range(len(parts))])
    try:
        writer.write_columns(columns)
        writer.close()
    except BaseException:
        writer.abort()
        raise


def timestamp_type() -> pa.DataType:
    """The Parquet type of an instant column."""
    return pa.timestamp("us", tz="UTC")


def instants(cells: pa.Array) -> pa.Array:
    """ISO 8601 instants (``2026-12-01T14:00:00Z``; empty: none) as ``timestamp[us, UTC]``."""
    if pa.types.is_timestamp(cells.type):
        return cells.cast(timestamp_type())
    text = cells.cast(pa.string())
    return pc.cast(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text),
                   timestamp_type())


def instant_text(value: object) -> str:
    """A cell of an instant column read back from a Parquet verdict file as the CSV verdict
    file writes it (``""`` for none): as stored (a file written before instants were whole
    seconds reads back as its audit record has it)."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    return str(value)


def _utf16_units(text: str) -> int:
    """Excel's length of a cell: UTF-16 code units (a character beyond U+FFFF is two)."""
    return len(text) + sum(ord(c) > 0xFFFF for c in text)


def _over_cell(text: str) -> bool:
    """Whether ``text`` is longer than an Excel cell holds (the length in code points first:
    only more than half the limit can pass it in UTF-16)."""
    return len(text) * 2 > EXCEL_MAX_CELL and _utf16_units(text) > EXCEL_MAX_CELL


def _cell_too_long(row: int, name: str, text: str) -> InputError:
    """``row``: 1 for the first data row (0: the header)."""
    where = f"row {row:,}" if row else "the header"
    return InputError(f"{where}, column {name!r}: a cell of {_utf16_units(text):,} "
                      f"characters does not fit in an Excel cell ({EXCEL_MAX_CELL:,} at most): "
                      "write .csv or .parquet")


def _check_xlsx_header(header: list[str]) -> None:
    """Refuse (InputError) a header an Excel sheet cannot hold as it is: wider than a sheet,
    or a name longer than a cell (xlsxwriter leaves out the columns beyond the last and cuts
    a long cell, and reading the file back would take the wrong cells for the verdict)."""
    if len(header) > EXCEL_MAX_COLUMNS:
        raise InputError(f"{len(header):,} columns (the input's and the verdict's) do not fit "
                         f"in an Excel sheet ({EXCEL_MAX_COLUMNS:,} at most): write .csv or "
                         ".parquet")
    for k, name in enumerate(header, 1):
        if _over_cell(name):
            raise InputError(f"the name of column {k:,} ({_utf16_units(name):,} characters) "
                             f"does not fit in an Excel cell ({EXCEL_MAX_CELL:,} at most): "
                             "write .csv or .parquet")


def _parquet_to_xlsx(source: Path, target: Path, header: list[str]) -> None:
    """Copy a string Parquet file into one sheet of an Excel workbook, every cell as text.
    A cell xlsxwriter does not write as given (it answers -1 for a place outside the sheet,
    -2 for a string it cut) raises InputError naming its row and column: the caller removes
    the workbook (:class:`TableWriter` checks both before, as the rows come)."""
    import pyarrow.parquet as pq
    import xlsxwriter

    rows = pq.ParquetFile(source).metadata.num_rows
    if rows + 1 > EXCEL_MAX_ROWS:
        raise InputError(f"{rows:,} rows do not fit in an Excel sheet ({EXCEL_MAX_ROWS - 1:,} "
                         "at most): write .csv or .parquet")
    _check_xlsx_header(header)
    book = xlsxwriter.Workbook(str(target), {"constant_memory": True, "strings_to_numbers":
                                            False, "strings_to_formulas": False,
                                            "strings_to_urls": False})

    def write(r: int, col: int, value: str) -> None:
        got = sheet.write_string(r, col, value)
        if got == -2:
            raise _cell_too_long(r, header[col], value)
        if got:
            where = f"row {r:,}" if r else "the header"
            raise InputError(f"{where}, column {col + 1:,} ({header[col]!r}) cannot be "
                             f"written to an Excel sheet (xlsxwriter answered {got}): write "
                             ".csv or .parquet")

    try:
        sheet = book.add_worksheet("verdicts")
        for col, name in enumerate(header):
            write(0, col, name)
        r = 1
        for batch in pq.ParquetFile(source).iter_batches(batch_size=65_536):
            for values in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                for col, value in enumerate(values):
                    if value:
                        write(r, col, value)
                r += 1
    finally:
        book.close()


class TableWriter:
    """Writes verdict rows to CSV, Parquet or Excel, by the output name (:func:`output_format`).

    An Excel file is written through a Parquet file beside it and converted on :meth:`close`
    (its cells are text: nothing in them runs as a formula, so nothing is defused)."""

    def __init__(self, path: Path, header: list[str], *, raw: bool = False,
                 cells_written: bool = False, timestamps: Collection[int] = ()) -> None:
        """``raw``: nothing is defused (:func:`defuse`), neither the header nor the cells;
        else, in a CSV file, both are. ``cells_written``: the cells come as a verdict file
        wrote them (already defused, or not, as asked), so only the header is defused.
        ``timestamps``: the columns holding instants (``next_allowed_at``): in Parquet
        they are typed ``timestamp[us, UTC]``, empty cells null; elsewhere ISO 8601 text."""
        self.path = path
        self.header = header
        self.format = output_format(path)
        if self.format == "parquet" and len(set(header)) != len(header):
            twice = sorted({h for h in header if header.count(h) > 1})
            raise InputError(f"several input columns are named {', '.join(map(repr, twice))}:"
                             " a Parquet verdict file cannot hold them; rename them, or write "
                             ".csv or .xlsx")
        if self.format == "xlsx":  # refused before anything is written
            _check_xlsx_header(header)
        self._rows = 0  # data rows written so far
        self.timestamps = frozenset(timestamps) if self.format == "parquet" else frozenset()
        self.raw = raw or self.format == "xlsx"  # the header's
        self._raw_cells = self.raw or cells_written
        self._parquet = self.format in ("parquet", "xlsx")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = path.with_name(f".{path.name}.partial")
        self._pq: Any = None
        if self._parquet:
            import pyarrow as pa

            self._schema = pa.schema([(h, timestamp_type() if i in self.timestamps
                                       else pa.string())
                                      for i, h in enumerate(header)])
            self._fh = None
        else:
            self._fh = self._tmp.open("w", encoding="utf-8", newline="")
            self._csv = csv.writer(self._fh)
            self._csv.writerow(header if self.raw else [defuse(h) for h in header])

    def write(self, rows: list[list[str]]) -> None:
        if self.format == "xlsx":
            self._check_xlsx_rows(len(rows))
            for n, row in enumerate(rows, self._rows + 1):
                for name, cell in zip(self.header, row, strict=False):
                    if _over_cell(cell):
                        raise _cell_too_long(n, name, cell)
        self._rows += len(rows)
        if not self._raw_cells:
            rows = [[defuse(c) for c in r] for r in rows]
        if self._parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._pq is None:
                self._pq = pq.ParquetWriter(self._tmp, self._schema)
            cols = list(zip(*rows, strict=True)) if rows else [() for _ in self.header]
            self._pq.write_table(pa.table(
                [self._typed(i, pa.array(list(c), type=pa.string()))
                 for i, c in enumerate(cols)], schema=self._schema))
        else:
            self._csv.writerows(rows)

    def write_columns(self, columns: list[pa.Array], safe: Collection[int] = ()) -> None:
        """Write rows given as string columns (the columnar scrub's slices); ``safe`` as for
        :func:`write_csv_rows`."""
        if self.format == "xlsx":
            self._check_xlsx_columns(columns)
        self._rows += len(columns[0]) if columns else 0
        if self._parquet:
            import pyarrow.parquet as pq

            if self._pq is None:
                self._pq = pq.ParquetWriter(self._tmp, self._schema)
            cells = [c if self._raw_cells or i in safe else defuse_array(c)
                     for i, c in enumerate(columns)]
            cells = [c.dictionary_decode() if isinstance(c, pa.DictionaryArray) else c
                     for c in cells]
            self._pq.write_table(pa.table([self._typed(i, c) for i, c in enumerate(cells)],
                                          schema=self._schema))
        else:
            assert self._fh is not None
            self._fh.flush()
            write_csv_rows(columns, cast(IO[bytes], self._fh.buffer), raw=self._raw_cells,
                           safe=safe)

    def _check_xlsx_rows(self, more: int) -> None:
        """Refuse (InputError) rows beyond what an Excel sheet holds, as they come."""
        if self._rows + more + 1 > EXCEL_MAX_ROWS:
            raise InputError(f"more than {EXCEL_MAX_ROWS - 1:,} rows do not fit in an Excel "
                             "sheet: write .csv or .parquet")

    def _check_xlsx_columns(self, columns: list[pa.Array]) -> None:
        """Refuse (InputError, naming the row and column) a cell longer than an Excel cell
        holds, before it is written: xlsxwriter would cut it."""
        self._check_xlsx_rows(len(columns[0]) if columns else 0)
        for name, cells in zip(self.header, columns, strict=False):
            if isinstance(cells, pa.DictionaryArray):
                cells = cells.dictionary_decode()
            if pa.types.is_timestamp(cells.type):
                continue
            # only a cell of more than half the limit in code points can pass it in UTF-16
            long = pc.greater(pc.utf8_length(cells), EXCEL_MAX_CELL // 2)
            if not pc.any(long).as_py():
                continue
            for i in np.flatnonzero(np.asarray(pc.fill_null(long, False).to_numpy(
                    zero_copy_only=False), dtype=bool)):
                text = cells[int(i)].as_py()
                if _utf16_units(text) > EXCEL_MAX_CELL:
                    raise _cell_too_long(self._rows + int(i) + 1, name, text)

    def _typed(self, i: int, cells: pa.Array) -> pa.Array:
        if i not in self.timestamps:
            return cells
        return instants(cells)

    def close(self) -> None:
        """Finish the file and move it into place (a crash never leaves a partial output)."""
        if self._parquet:
            if self._pq is None:
                self.write([])
            self._pq.close()
            self._pq = None
        elif self._fh is not None:
            self._fh.close()
        if self.format == "xlsx":
            parquet, self._tmp = self._tmp, self._tmp.with_name(f"{self._tmp.name}.xlsx")
            try:
                _parquet_to_xlsx(parquet, self._tmp, self.header)
            except BaseException:
                self._tmp.unlink(missing_ok=True)
                raise
            finally:
                parquet.unlink(missing_ok=True)
        self._tmp.replace(self.path)

    def abort(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._fh is not None:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)


# -- reading a verdict file back (the audit's proofs, reports and searches) ---------------

#: The verdict columns a leaf and a report use, in this order, found by their position among
#: the columns the pipeline adds at the end of every row.
VERDICT_COLUMNS = ("e164", "decision", "reason_codes", "detail", "next_allowed_at")
_PICK = [ADDED_COLUMNS.index(name) for name in VERDICT_COLUMNS]
#: The columns a row line uses (all but ``detail``), as positions among the added ones.
_LINE_PICK = [ADDED_COLUMNS.index(name)
              for name in ("e164", "decision", "reason_codes", "next_allowed_at")]


def verdict_cells(path: Path) -> Iterator[list[str]]:
    """The :data:`VERDICT_COLUMNS` cells of every data row of a results file, in order."""
    for tail in _added_cells(path):
        yield [tail[i] for i in _PICK]


def is_excel(path: Path) -> bool:
    return path.suffix.lower() == ".xlsx"


def _excel_table(path: Path) -> Any:
    try:
        return read_excel(path)
    except InputError as exc:
        raise VerdictFileError(str(exc)) from exc


def excel_batches(path: Path) -> Iterator[list[Any]]:
    """An Excel verdict file's row-line columns (its cells are text; see TableWriter)."""
    n = len(ADDED_COLUMNS)
    table = _excel_table(path)
    names = list(table.column_names)
    if len(names) < n:
        raise VerdictFileError(f"{path} is not a verdict file: it has {len(names)} columns")
    index = [len(names) - n + i for i in _LINE_PICK]
    for start in range(0, max(table.num_rows, 1), 65_536):
        part = table.slice(start, 65_536)
        if part.num_rows:
            yield [part.column(i).combine_chunks() for i in index]


def _added_cells(path: Path) -> Iterator[list[str]]:
    n = len(ADDED_COLUMNS)
    if is_excel(path):
        table = _excel_table(path)
        cols = [table.column(i).to_pylist() for i in range(table.num_columns - n,
                                                            table.num_columns)]
        for values in zip(*cols, strict=True):
            yield [str(v or "") for v in values]
        return
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=65_536):
            cols = [batch.column(i).to_pylist() for i in range(batch.num_columns - n,
                                                                batch.num_columns)]
            for values in zip(*cols, strict=True):
                yield [instant_text(v) for v in values]
        return
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        width = len(header)
        for cells in reader:
            # The writer emits every row with the header's width; be lenient anyway.
            tail = cells[width - n:width] if len(cells) >= width else cells[-n:]
            yield [undefuse(c) for c in tail]


def csv_picked(path: Path) -> list[str] | None:
    """The header names of the row-line columns (None for an empty file)."""
    n = len(ADDED_COLUMNS)
    try:  # (surrogateescape: bad bytes after the header are pyarrow's to report)
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
            header = next(csv.reader(fh), None)
    except csv.Error as exc:
        raise VerdictFileError(f"{path}: the header line is not valid CSV ({exc})") from exc
    except OSError as exc:
        raise VerdictFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if header is None:
        return None
    if any(_SURROGATE.search(name) for name in header):
        raise VerdictFileError(f"{path}: the header line is not valid UTF-8")
    if len(header) < n:
        raise VerdictFileError(f"{path} is not a verdict file: its header has {len(header)} "
                               "columns")
    picked = [header[len(header) - n + i] for i in _LINE_PICK]
    if any(header.count(name) != 1 for name in picked):
        # The pipeline renames added columns the input already has, so this is not its file.
        raise VerdictFileError(f"{path} is not a verdict file: its header repeats one of "
                         f"{', '.join(picked)}")
    return picked


#: pyarrow reads a CSV in blocks; a cell (or row) longer than a block cannot be parsed with
#: it ("straddling object straddles two block boundaries"), so a scan that meets one starts
#: again with the next size.
CSV_BLOCK_SIZES = (4 << 20, 64 << 20, 1 << 30)


def csv_batches(source: Any, picked: list[str], block_size: int = CSV_BLOCK_SIZES[0]
                 ) -> Iterator[list[Any]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=block_size),
        # Python's csv writer quotes a cell holding a comma, quote or line break and doubles
        # its quotes: pyarrow's default dialect, with line breaks allowed in quoted cells.
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            include_columns=picked, column_types=dict.fromkeys(picked, pa.string()),
            strings_can_be_null=False))
    for batch in reader:
        yield [undefuse_array(batch.column(name)) for name in picked]


def parquet_batches(path: Path) -> Iterator[list[Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    n = len(ADDED_COLUMNS)
    pf = pq.ParquetFile(path)
    names = list(pf.schema_arrow.names)
    if len(names) < n:
        raise VerdictFileError(f"{path} is not a verdict file: it has {len(names)} columns")
    index = [len(names) - n + i for i in _LINE_PICK]
    picked = [names[i] for i in index]
    unique = all(names.count(name) == 1 for name in picked)
    for batch in pf.iter_batches(batch_size=65_536, columns=picked if unique else None):
        cols = [batch.column(name) for name in picked] if unique else [
            batch.column(i) for i in index]
        yield [pa.array([instant_text(v) for v in c.to_pylist()], pa.string())
               if pa.types.is_timestamp(c.type)  # typed next_allowed_at: the CSV's text
               else pc.fill_null(pc.cast(c, pa.string()), "") for c in cols]
