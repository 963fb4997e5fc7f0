"""Exceptions raised by dncguard.

::

    DncGuardError
    ├── ConfigError                bad or missing settings
    │   └── RulesDataError         the rule data cannot be read (rules._loader)
    ├── InputError                 unreadable input file, missing column
    │   └── ContextError           a context value (state, ZIP, campaign, ...) not understood
    ├── ListError                  list import or management failure (unknown list, bad file)
    │   └── SnapshotIntegrityError a snapshot file fails its seal (snapshot_integrity)
    ├── SourceError                a DNC source could not answer (checks fail closed)
    │   └── SyncFailed             some CXone groups could not be synced (sources.cxone)
    ├── AuditError                 an audit record or proof cannot be made (audit)
    │   ├── VerdictFileError       a verdict file cannot be read back (io.verdict_file)
    │   └── ChainBroken            a prune refused: the chain does not verify (audit)
    ├── ApiKeyError                an API key operation failed (server.keys)
    └── MigrationError             the database cannot be brought to the schema (migrations)

The CLI maps the tree once (``cli.run``: exit 2 with one line) and so does the service
(``server._errors.install``: :data:`~dncguard.server._errors.STATUS` gives each class's status).

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


class ContextError(InputError):
    """A context value that is not understood (a state, ZIP, time zone, line type, region,
    call type, purpose or campaign): the CLI exits 2, the API answers 422 naming ``field``,
    a scrub row gets ``error`` / ``CONTEXT_INVALID``. Never dropped silently."""

    def __init__(self, field: str, value: str, accepted: str, why: str | None = None) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        shown = value if len(value) <= 60 else value[:57] + "..."
        self.why = why or f"{shown!r} is not understood; expected {accepted}"
        super().__init__(f"{field}: {self.why}")


class ListError(DncGuardError):
    """A list operation failed: unknown list, bad file, missing snapshot date."""


class SourceError(DncGuardError):
    """A DNC source could not complete a check. Numbers it could not check become ``error``."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class AuditError(DncGuardError):
    """An audit operation failed (unknown job, missing or altered results file)."""


class VerdictFileError(AuditError):
    """A verdict file cannot be read back (not a verdict file, unreadable, a row too long)."""
