"""Exceptions raised by dncguard.

::

    DncGuardError
    ├── ConfigError          bad or missing settings
    ├── InputError           unreadable input file, missing column (the CLI exits 2)
    ├── ListError            list import or management failure (unknown list, bad file)
    └── SourceError          a DNC source could not answer (checks fail closed)

A DNC *hit* is a result (a :class:`~dncguard.models.Reason`), never an exception. A malformed
row is reported in the output and the summary; it never raises.
"""

from __future__ import annotations


class DncGuardError(Exception):
    """Base class of every error dncguard raises on purpose."""


class ConfigError(DncGuardError):
    """The settings are invalid or incomplete."""


class InputError(DncGuardError):
    """An input file cannot be read as a whole (missing file, column, unsupported format)."""


class ListError(DncGuardError):
    """A list operation failed: unknown list, bad file, missing snapshot date."""


class SourceError(DncGuardError):
    """A DNC source could not complete a check. Numbers it could not check become ``error``."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source
