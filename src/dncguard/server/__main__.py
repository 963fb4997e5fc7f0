"""``python -m dncguard.server serve|keys ...``: the service without the main CLI."""

from __future__ import annotations

import sys

import typer

from ..cli.serve import keys_app, serve
from ..errors import DncGuardError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")


def main() -> None:
    try:
        app(prog_name="dncguard")
    except DncGuardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
