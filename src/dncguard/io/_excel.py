"""Excel workbooks: the first sheet read as string columns (a contact file, or a verdict
file read back)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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


def read_excel(path: Path) -> pa.Table:
    """The first sheet of an Excel file as string columns (empty cells ``""``; numbers a
    spreadsheet stored as floats come back as their digits, ``2025550123``). An empty first
    sheet is refused, naming it: the contacts on a later sheet are not read."""
    import fastexcel

    try:
        sheet = fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string")
        table = sheet.to_arrow()
    except Exception as exc:  # fastexcel raises its own error types for unreadable files
        raise InputError(f"cannot read {path} as an Excel workbook: {exc}") from exc
    if table.num_columns == 0:
        raise InputError(f"{path.name}: its first sheet, {sheet.name!r}, is empty; dncguard "
                         "reads the first sheet only: put the contacts on the first sheet")
    names = [str(n) for n in table.column_names]
    return pa.table([pc.fill_null(c.cast(pa.string()), "") for c in table.columns],
                    names=names)


__all__ = ["EXCEL_SUFFIXES", "read_excel"]
