"""``dncguard db ...``: the database schema (Alembic migrations).

Every command that opens the database migrates it to the newest revision on first use; these
commands do it (or show where it stands) explicitly, e.g. in a deployment step before replicas
of the service start.
"""

from __future__ import annotations

import typer

from ._common import JSON_HELP, console, print_json, settings

db_app = typer.Typer(help="The database schema: show the revision, upgrade it.",
                     no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("head", help="Target revision (default: the newest)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Migrate the database to REVISION (adopts a database made by an older dncguard)."""
    from ..migrations import current_revision
    from ..migrations import upgrade as run_upgrade
    from ..store import make_engine

    engine = make_engine(settings())
    try:
        before = current_revision(engine)
        after = run_upgrade(engine, revision)
    finally:
        engine.dispose()
    if as_json:
        print_json({"database": engine.url.render_as_string(hide_password=True),
                    "before": before, "after": after, "upgraded": before != after})
        return
    if before == after:
        console.print(f"database already at {after}")
    else:
        console.print(f"database upgraded from {before or '(none)'} to {after}")


@db_app.command("current")
def current(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Show the database's revision and the newest one this version of dncguard knows."""
    from ..migrations import describe
    from ..store import make_engine

    cfg = settings()
    engine = make_engine(cfg)
    try:
        info = describe(engine)
    finally:
        engine.dispose()
    url = engine.url.render_as_string(hide_password=True)
    if as_json:
        print_json({"database": url, "current": info["current"], "head": info["head"],
                    "upToDate": bool(info["up_to_date"])})
        return
    if info["newer"]:  # migrated by a newer dncguard: upgrading cannot help, nor can this one
        state = "the database is newer than this version: upgrade dncguard"
    elif info["unknown"]:
        state = "the database's revision is unknown to this version"
    elif info["up_to_date"]:
        state = "up to date"
    else:
        state = "needs `dncguard db upgrade`"
    console.print(f"database: {url}", soft_wrap=True)
    console.print(f"current:  {info['current'] or '(none)'}", markup=False)
    console.print(f"head:     {info['head']} ({state})", soft_wrap=True)
