"""``dncguard serve`` (the HTTP service) and ``dncguard keys ...`` (its API keys)."""

from __future__ import annotations

import json
import os

import typer
from rich.markup import escape
from rich.table import Table

from ._common import console, err_console, settings, who

#: The levels ``--log-level`` takes (the logging module's, as uvicorn names them).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

keys_app = typer.Typer(help="Create, list and revoke API keys for the HTTP service.",
                       no_args_is_help=True)


def serve(
    host: str | None = typer.Option(None, "--host", help="Interface (default 127.0.0.1)"),
    port: int | None = typer.Option(None, "--port", help="TCP port (default 8000)"),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default 1)"),
    no_auth: bool = typer.Option(False, "--no-auth",
                                 help="Serve without API keys: local development only"),
    log_level: str = typer.Option("info", "--log-level",
                                  help="debug, info, warning, error or critical"),
) -> None:
    """Run the HTTP validation service (OpenAPI at /docs)."""
    if log_level.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not a level: use "
                                 f"{', '.join(LOG_LEVELS)}", param_hint="--log-level")
    log_level = log_level.lower()
    import uvicorn

    from ..config import all_sections
    from ..server.app import log_config
    from ..server.keys import KeyStore
    from ..server.settings import load_server_settings
    from ..store import get_engine, metadata

    cfg = settings()
    all_sections(cfg)  # an invalid section is refused here (exit 2), not in a worker
    server = load_server_settings(cfg, host=host, port=port, workers=workers,
                                  no_auth=no_auth or None)
    engine = get_engine(cfg)
    metadata.create_all(engine)
    if server.no_auth:
        os.environ["DNCGUARD_SERVER_NO_AUTH"] = "true"
        err_console.print("[bold red]WARNING: authentication is OFF (--no-auth).[/] Anyone who "
                          "can reach the port can check numbers and change opt-outs.")
    elif KeyStore(engine).active_count() == 0:
        err_console.print("[red]error:[/] no API key exists; create one with "
                          "'dncguard keys create --name NAME --scope check' or pass --no-auth "
                          "for local development")
        raise typer.Exit(2)
    engine.dispose()
    uvicorn.run("dncguard.server.app:app_from_env", factory=True, host=server.host,
                port=server.port, workers=server.workers, access_log=False,
                log_config=log_config(log_level), log_level=log_level,
                server_header=False,
                # [server] proxy_headers, forwarded_allow_ips: always given, so uvicorn's
                # FORWARDED_ALLOW_IPS variable never decides which proxies are trusted
                proxy_headers=server.proxy_headers,
                forwarded_allow_ips=server.forwarded_allow_ips,
                # uvloop and httptools (uvicorn[standard], a dependency), named so that a
                # broken install fails at start instead of serving on the slow stack
                loop="uvloop", http="httptools")


@keys_app.command("create")
def create_key(
    name: str = typer.Option(..., "--name", help="Who uses the key, e.g. dialer-east (at "
                             "most 200 characters, no control characters)"),
    scope: list[str] = typer.Option(..., "--scope",
                                    help="check, jobs, dnc:write, admin or console "
                                         "(repeat)"),
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from ..errors import ConfigError
    from ..server.keys import ApiKeyError, KeyStore
    from ..store import get_engine, metadata

    engine = get_engine(settings())
    metadata.create_all(engine)
    try:
        key, text = KeyStore(engine).create(name, scope, who=who())
    except ApiKeyError as exc:
        raise ConfigError(str(exc)) from exc
    # a name is text, not markup: "[/]" made rich raise after the key was made, its secret
    # never shown
    err_console.print(f"created key {key.id} ({escape(name)}; scopes "
                      f"{', '.join(key.scopes)}). It is shown once; store it now:")
    print(text)


@keys_app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """List keys (never their secrets)."""
    from ..server.keys import KeyStore
    from ..store import get_engine, metadata

    engine = get_engine(settings())
    metadata.create_all(engine)
    keys = KeyStore(engine).all()
    if as_json:
        console.print_json(json.dumps([
            {"id": k.id, "name": k.name, "scopes": list(k.scopes),
             "createdAt": k.created_at.isoformat(), "createdBy": k.created_by,
             "revokedAt": k.revoked_at.isoformat() if k.revoked_at else None} for k in keys]))
        return
    table = Table("id", "name", "scopes", "created (UTC)", "revoked")
    for k in keys:
        table.add_row(k.id, escape(k.name), ",".join(k.scopes),
                      k.created_at.strftime("%Y-%m-%d %H:%M"),
                      k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "")
    console.print(table if keys else "no keys yet; create one with 'dncguard keys create'")


@keys_app.command("revoke")
def revoke_key(key_id: str = typer.Argument(..., help="The key's id (see 'keys list')")) -> None:
    """Revoke a key; replicas stop accepting it within the key cache time (2 s). A key
    revoked already is refused (exit 2, saying when), nothing changed."""
    from ..errors import ConfigError
    from ..server.keys import ApiKeyError, KeyStore
    from ..store import get_engine, metadata

    engine = get_engine(settings())
    metadata.create_all(engine)
    try:
        key = KeyStore(engine).revoke(key_id)
    except ApiKeyError as exc:
        raise ConfigError(str(exc)) from exc
    console.print(f"revoked key {key.id} ({escape(key.name)})")
