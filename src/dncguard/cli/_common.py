"""What every CLI command shares: consoles, settings, parsing of instants, the user's name."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from ..identity import acting_user

if TYPE_CHECKING:
    from ..config import Settings

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


#: The ``--json`` flag every command that prints data takes.
JSON_HELP = "Print JSON (its fields: docs/cli.md)"


def print_json(data: object) -> None:
    """``data`` as JSON on stdout (indented; never wrapped, whatever the terminal width)."""
    console.print_json(json.dumps(data))


def iso(value: datetime | date | None) -> str | None:
    """An ISO 8601 text of a date or instant, or None."""
    return None if value is None else value.isoformat()


def settings() -> Settings:
    from ..config import load_settings

    return load_settings()


def parse_instant(value: str | None, flag: str = "--at") -> datetime | None:
    """An ISO 8601 instant with an offset or ``Z``; refuses one without (ambiguous local time)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 instant, e.g. 2026-11-26T15:00:00-05:00", param_hint=flag
        ) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(
            f"{value!r} has no UTC offset; add one (e.g. -05:00) or Z, since the dial time is an "
            "instant and a bare local time is ambiguous",
            param_hint=flag,
        )
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise typer.BadParameter(f"{value!r} is out of range", param_hint=flag) from None
    return parsed


def parse_date(value: str | None, flag: str) -> date | None:
    """A ``YYYY-MM-DD`` date, and nothing else: Python reads ``2026-W52-1`` and ``20261210``
    as dates too, and a typo in either would become another day without a word."""
    if value is None:
        return None
    text = value.strip()
    try:
        if not _DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=flag) from None


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def who() -> str:
    """The CLI user recorded in list changes and audit records."""
    return acting_user("cli")


def e164(phone: str, region: str, name: str = "PHONE") -> str:
    """A valid number's E.164 form; anything else is refused with one line naming ``name``
    (InputError: exit 2). The input is not echoed: a mistyped number is still personal data."""
    from ..errors import InputError
    from ..phones import normalise

    n = normalise(phone, region)
    if not n.ok or n.e164 is None:
        raise InputError(f"{name}: {n.message or 'not a valid number'}")
    return n.e164


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 number``, ``2 numbers`` (thousands separated)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def print_rows(headers: list[str], rows: list[list[str]], *, caption: str | None = None
               ) -> None:
    """Rows as a table when the whole table fits the terminal, else each row as lines (its
    first cell, then ``header: value`` for the others): no cell is ever cut or folded into
    pieces. ``rows`` hold console markup (escape what is data)."""
    from rich.measure import Measurement
    from rich.table import Column, Table

    table = Table(*(Column(h, no_wrap=True) for h in headers), caption=caption)
    for row in rows:
        table.add_row(*row)
    wide = console.options.update_width(1 << 20)  # the table's natural width, unclamped
    if Measurement.get(console, wide, table).maximum <= console.width:
        console.print(table)
        return
    for row in rows:
        console.print(row[0], soft_wrap=True)
        for header, cell in zip(headers[1:], row[1:], strict=True):
            if cell:
                console.print(f"  {header}: {cell}", soft_wrap=True)
    if caption:
        console.print(caption, soft_wrap=True)
