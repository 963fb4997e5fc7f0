"""What every CLI command shares: consoles, settings, parsing of instants, the user's name."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ..config import Settings

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


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
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=flag) from None


def who() -> str:
    """The CLI user recorded in list changes and audit records."""
    name = os.environ.get("DNCGUARD_USER")
    if name:
        return name
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"
