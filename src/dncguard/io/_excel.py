"""Excel workbooks: the first sheet read as string columns (a contact file, or a verdict
file read back), when it is the one visible sheet that holds data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_import
from ..errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

#: File name endings read as Excel (inputs: anything else is read as CSV).
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
#: Columns an Excel sheet holds (A to XFD).
EXCEL_MAX_COLUMNS = 16_384
#: Characters an Excel cell holds (UTF-16 code units: a character beyond U+FFFF is two).
EXCEL_MAX_CELL = 32_767


def read_excel(path: Path) -> pa.Table:
    """The first sheet of an Excel file as string columns (empty cells ``""``; numbers a
    spreadsheet stored as floats come back as their digits, ``2025550123``), named by its
    first row as written: a name given twice stays twice (fastexcel would read the second as
    ``timezone_1``, a column no reader knows), an empty header cell is ``__UNNAMED__<k>``.

    Refused (InputError, naming the sheets): a workbook whose first sheet is empty or
    hidden, or where another visible sheet holds data too; the rows there would not be read.
    Hidden sheets other than the first (lookup tables) are not read."""
    import fastexcel

    try:
        book = fastexcel.read_excel(str(path))
        # header_row=None: the first row is read as data, its cells as written
        first = book.load_sheet(0, header_row=None, dtypes="string")
        table = first.to_arrow()
        others = [book.load_sheet(i, header_row=None, dtypes="string", n_rows=1)
                  for i in range(1, len(book.sheet_names))]
    except Exception as exc:  # fastexcel raises its own error types for unreadable files
        raise InputError(f"cannot read {path} as an Excel workbook: {exc}") from exc
    _check_sheets(path, [first, *others])
    header = table.slice(0, 1).to_pylist()[0] if table.num_rows else {}
    names = [str(header.get(c) or f"__UNNAMED__{k}")
             for k, c in enumerate(table.column_names)]
    return pa.table([pc.fill_null(c.cast(pa.string()), "") for c in table.slice(1).columns],
                    names=names)


def _check_sheets(path: Path, sheets: list[Any]) -> None:
    """Refuse a workbook unless its first sheet is visible, holds data, and is the only
    visible sheet that does (``sheets``: fastexcel's, every sheet in order)."""
    seen = [(s.name, s.visible == "visible", s.width > 0) for s in sheets]
    name, shown, full = seen[0]
    others = [n for n, s, f in seen[1:] if s and f]
    if shown and full and not others:
        return
    if not shown:
        why = f"its first sheet, {name!r}, is hidden"
    elif not full:
        why = f"its first sheet, {name!r}, is empty"
    else:
        why = (f"other visible sheets hold data too: {', '.join(map(repr, others))}"
               if len(others) > 1 else f"another visible sheet holds data too: {others[0]!r}")
    listed = ", ".join(f"{n!r} ({'hidden, ' if not s else ''}{'data' if f else 'empty'})"
                       for n, s, f in seen)
    raise InputError(f"{path.name}: {why}; dncguard reads the first sheet only, when it is "
                     "visible and no other visible sheet holds data (sheets: "
                     f"{listed}): put the contacts on the first sheet, and no data on the "
                     "other visible sheets")


__all__ = ["EXCEL_MAX_CELL", "EXCEL_MAX_COLUMNS", "EXCEL_SUFFIXES", "read_excel"]
