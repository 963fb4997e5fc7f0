"""The ``dncguard`` command line: a thin layer over the library.

Exit codes: 0 success; 2 usage or input errors (one clear line, never a traceback);
3 when the command completed but not everything could be done: ``scrub`` when some rows
could not be verified (decision ``error``), ``cxone push`` when some opt-outs were not
delivered, ``audit outbox --deliver`` when a delivery failed. 1 when the command ran and
found a problem (``audit verify`` on a broken chain; ``lists``, ``consent`` or ``attempts
import`` with rejected rows, after importing the good ones).
"""

from __future__ import annotations

import gc
import sys

import typer
from rich.markup import escape

from ..errors import ContextError, DncGuardError
from ._audit import audit_app, report
from ._common import err_console
from ._cxone import app as cxone_app
from ._db import db_app
from ._lists import dnc_app, lists_app
from ._rules import attempts_app, consent_app, rules_app
from ._scrub import check, config_app, demo, scrub
from .serve import keys_app, serve

app = typer.Typer(
    name="dncguard",
    help="May we call this number now? DNC lists, calling rules and pre-dial checks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("scrub")(scrub)
app.command("check")(check)
app.command("demo")(demo)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(lists_app, name="lists")
app.add_typer(dnc_app, name="dnc")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.command("report")(report)
app.add_typer(cxone_app, name="cxone", help="NICE CXone DNC groups: sync, search, write-back.")
app.add_typer(rules_app, name="rules")
app.add_typer(consent_app, name="consent")
app.add_typer(attempts_app, name="attempts")


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return its exit code (used by :func:`main` and tests)."""
    try:
        result = app(args=argv, prog_name="dncguard", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except ContextError as exc:  # a flag, a campaign profile or a setting not understood
        flag = f"--{exc.field.replace('_', '-')}"
        err_console.print(f"[red]error:[/] {flag}: {escape(exc.why)}", highlight=False)
        return 2
    except DncGuardError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        return 2
    except OSError as exc:  # a file we could not write or read: one line, no traceback
        where = f" {exc.filename}" if exc.filename else ""
        err_console.print(f"[red]error:[/]{where}: {exc.strerror or exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:
        if _is_sqlalchemy_error(exc):  # e.g. an unreachable PostgreSQL or a locked SQLite file
            err_console.print(f"[red]error:[/] the database is unavailable "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                              highlight=False)
            return 2
        # Click's usage errors (typer vendors click, so match by shape rather than class).
        show = getattr(exc, "show", None)
        if show is None or not hasattr(exc, "exit_code"):
            raise
        names = {c.__name__ for c in type(exc).__mro__}
        if "UsageError" in names and "NoArgsIsHelpError" not in names:
            usage_line(exc)  # a bad flag or argument: one line, exit 2
            return 2
        show()
        return int(exc.exit_code)
    return result if isinstance(result, int) else 0


def usage_line(exc: Exception) -> None:
    """A usage error (bad value, missing or unknown option) as one line naming the command's
    help, instead of click's usage block."""
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "dncguard"
    fmt = getattr(exc, "format_message", None)
    message = str(fmt()) if callable(fmt) else str(exc)
    err_console.print(f"[red]error:[/] {escape(message)} (see '{escape(path)} --help')",
                      highlight=False)


def _is_sqlalchemy_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a SQLAlchemy error, without importing SQLAlchemy (a command that
    raised one has imported it; the others must start without it)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    return sa_exc is not None and isinstance(exc, sa_exc.SQLAlchemyError)


def main() -> None:
    """The ``dncguard`` command: run it, then exit with its code."""
    code = run()
    # The process ends here. Shutdown collects garbage twice over every object the imports
    # made (about 85 ms of a 0.53 s `dncguard check`); frozen objects are skipped and their
    # memory goes with the process. No finalizer runs then for what modules still hold, so a
    # command must close its files and commit its transactions before it returns (they do;
    # see docs/performance.md, "Starting the command line").
    gc.freeze()
    sys.exit(code)
