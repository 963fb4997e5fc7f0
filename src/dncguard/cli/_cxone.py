"""``dncguard cxone ...``: NICE CXone DNC groups: list, sync, search, push, and the sandbox."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.markup import escape
from rich.table import Column, Table

from ..errors import DncGuardError
from ._common import JSON_HELP, console, err_console, print_json, settings

# The CXone client is imported by the commands, not here, so that `dncguard --help` starts fast.
if TYPE_CHECKING:
    from ..config import Settings

app = typer.Typer(help="NICE CXone DNC groups: sync, search, write-back, sandbox.",
                  no_args_is_help=True)

P = ParamSpec("P")
R = TypeVar("R")


def _clean_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """One clear line and exit code 2 for any dncguard error, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DncGuardError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper


def _run(coro: Coroutine[Any, Any, R]) -> R:
    import asyncio

    return asyncio.run(coro)


def _client(s: Settings) -> Any:
    from ..sources.cxone import CxoneClient, load_cxone

    return CxoneClient(load_cxone(s))


@app.command("groups")
@_clean_errors
def groups(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List the tenant's DNC groups with their scrubbed skills."""
    import asyncio

    from ..sources.cxone import group_on

    s = settings()

    async def go() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        async with _client(s) as client:
            found = await client.groups()
            skills = await asyncio.gather(*(client.skills(str(g["dncGroupId"]))
                                            for g in found))
            return list(zip(found, skills, strict=True))

    rows = _run(go())
    found: list[dict[str, Any]] = [
        {"id": str(g.get("dncGroupId")), "name": str(g.get("dncGroupName", "")),
         "active": group_on(g)[0],
         "validRecords": g.get("validRecords"), "skills": [str(k.get("skillId")) for k in sk],
         "updated": g.get("lastUpdateTime")} for g, sk in rows]
    if as_json:
        print_json(found)
        return
    table = Table(Column("id", no_wrap=True), Column("name", overflow="fold"), "active",
                  "valid records", Column("scrubbed skills", overflow="fold"),
                  Column("updated", overflow="fold"))
    for g in found:
        table.add_row(g["id"], escape(g["name"]), "yes" if g["active"] else "no",
                      str(g["validRecords"] if g["validRecords"] is not None else ""),
                      ", ".join(g["skills"]), str(g["updated"] or ""))
    console.print(table if found else "the tenant has no DNC groups")


@app.command("sync")
@_clean_errors
def sync(
    group: list[str] | None = typer.Option(None, "--group", help="Group id (repeatable)"),
    skill: str | None = typer.Option(None, "--skill", help="Groups scrubbing this skill"),
    full: bool = typer.Option(False, "--full", help="Download every record again"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Sync DNC groups into the local store (every active group by default; incremental).
    A group that cannot be synced keeps its last sync; the others are synced, and the command
    then exits 2 naming it."""
    from ..sources.cxone import CxoneSync, SyncFailed, load_cxone

    s = settings()
    cx = load_cxone(s)

    async def go() -> Any:
        async with _client(s) as client:
            return await CxoneSync(s, cx, client).sync(group or None, skill, full=full)

    failed: SyncFailed | None = None
    try:
        report = _run(go())
    except SyncFailed as exc:  # the groups that synced are shown too
        report, failed = exc.report, exc
    if as_json:
        print_json({"groups": [{"id": g.group_id, "name": g.name, "mode": g.mode,
                                "records": g.records, "downloaded": g.fetched,
                                "skipped": g.skipped, "active": g.active}
                               for g in report.groups],
                    "failed": [{"id": f.group_id, "name": f.name, "error": f.error}
                               for f in report.failed],
                    "requests": report.requests})
    else:
        table = Table(Column("group", no_wrap=True), Column("name", overflow="fold"), "mode",
                      "records", "downloaded", "skipped", "active")
        for g in report.groups:
            table.add_row(g.group_id, escape(g.name), g.mode, f"{g.records:,}",
                          f"{g.fetched:,}", str(g.skipped), "yes" if g.active else "no")
        for f in report.failed:
            table.add_row(f.group_id, escape(f.name), "[red]failed[/]", "", "", "", "")
        console.print(table)
        console.print(f"{len(report.groups)} group(s) synced with {report.requests} API "
                      "request(s)")
    if failed is not None:
        err_console.print(f"[red]error:[/] {escape(str(failed))}", highlight=False)
        raise typer.Exit(2)


@app.command("search")
@_clean_errors
def search(phone: str = typer.Argument(..., help="Phone number to look up live"),
           as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Search one number live on CXone (every group holding it, blocking or not)."""
    from ..phones import mask, normalise
    from ..sources.cxone.source import search_number

    s = settings()
    result = normalise(phone, s.default_region)
    if result.e164 is None:
        err_console.print(f"[red]error:[/] {escape(repr(phone))} is not a valid number: "
                          f"{escape(result.message or '')}", highlight=False)
        raise typer.Exit(2)
    e164 = result.e164

    async def go() -> list[dict[str, Any]]:
        async with _client(s) as client:  # groups read as the check reads them
            return await search_number(client, e164, datetime.now(UTC), groups=True)

    found: list[dict[str, Any]] = [
        {"groupId": str(r.get("dncGroupId")), "groupName": str(r.get("dncGroupName", "")),
         "expires": r.get("expiredDate"), "groupActive": bool(r["groupActive"]),
         "blocking": bool(r["blocking"])} for r in _run(go())]
    if as_json:
        print_json({"number": mask(e164), "groups": found,
                    "blocking": any(g["blocking"] for g in found)})
        return
    if not found:
        console.print(f"{mask(e164)}: in no CXone DNC group")
        return
    table = Table(Column("group", no_wrap=True), Column("name", overflow="fold"),
                  Column("expires", overflow="fold"), "blocks now")
    for g in found:
        table.add_row(g["groupId"], escape(g["groupName"]), str(g["expires"] or "never"),
                      "yes" if g["blocking"] else "no" if g["groupActive"]
                      else "no (group inactive)")
    console.print(f"{mask(e164)}:")
    console.print(table)


@app.command("push")
@_clean_errors
def push_cmd(
    group: str | None = typer.Option(None, "--group",
                                     help="Target group (default DNCGUARD_CXONE_PUSH_GROUP)"),
    retry_dead: bool = typer.Option(False, "--retry-dead",
                                    help="Also retry items parked after a permanent error"),
    backfill: bool = typer.Option(
        False, "--backfill", help="First queue every opt-out in force that the queue does not "
        "hold (recorded before write-back was set up, or where it was not), and the expiry of "
        "every number pushed before that no internal list holds now"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Push queued opt-outs to a CXone DNC group (drains the durable queue; exit 3 when some
    could not be delivered)."""
    from ..lists.store import ListStore
    from ..optouts import queue_writeback
    from ..outbox import Outbox
    from ..sources.cxone import TOPIC, load_cxone, push
    from ..store import get_engine

    s = settings()
    cx = load_cxone(s)
    target = group or cx.push_group
    if not target:
        raise typer.BadParameter("give --group or set DNCGUARD_CXONE_PUSH_GROUP",
                                 param_hint="--group")
    box = Outbox(get_engine(s))
    queued = queue_writeback(ListStore(s)) if backfill else None
    if retry_dead:
        box.requeue(TOPIC)

    async def go() -> Any:
        async with _client(s) as client:
            return await push(client, box, target, batch_size=cx.write_batch_size,
                              settings=s)

    report = _run(go())
    if as_json:
        print_json({"group": target, "sent": report.sent, "delivered": report.delivered,
                    "superseded": report.superseded,
                    "nothingToExpire": report.nothing_to_expire,
                    "pending": report.pending_after, "parked": report.dead_total,
                    "retrying": [{"number": m, "error": e} for m, e in report.retrying],
                    "refused": [{"number": m, "error": e} for m, e in report.dead],
                    **({"backfilled": {"optouts": queued[0], "expiries": queued[1]}}
                       if queued is not None else {}),
                    "ok": report.ok})
        if not report.ok:
            raise typer.Exit(3)
        return
    superseded = (f", {report.superseded} not sent (a later change for the number was "
                  "delivered)") if report.superseded else ""
    if report.nothing_to_expire:
        superseded += (f", {len(report.nothing_to_expire)} expiries settled (the group holds "
                       "no record of the number that still blocks)")
    if queued is not None:
        console.print(f"queued {queued[0]} opt-out(s) and {queued[1]} expiry(ies) the queue "
                      "did not hold")
    console.print(f"group {target}: {report.delivered} delivered of {report.sent} sent"
                  f"{superseded}; {report.pending_after} pending, {report.dead_total} parked")
    for masked, error in report.retrying:
        err_console.print(f"  [yellow]retry later[/] {masked}: {escape(error)}",
                          highlight=False)
    for masked, error in report.dead:
        err_console.print(f"  [red]refused[/] {masked}: {escape(error)}", highlight=False)
    if not report.ok:
        raise typer.Exit(3)


@app.command("sandbox")
@_clean_errors
def sandbox(
    port: int = typer.Option(8765, "--port", help="Port on 127.0.0.1 (0: any free port)"),
    data: Path | None = typer.Option(None, "--data", help="Seed JSON file"),
    token_lifetime: int = typer.Option(3600, "--token-lifetime", help="Seconds"),
    page_size: int = typer.Option(1000, "--page-size", help="Largest records page (top)"),
    rate_limit: float | None = typer.Option(None, "--rate-limit",
                                            help="Admin API requests/second (429 above)"),
    batch_rate_limit: float | None = typer.Option(None, "--batch-rate-limit",
                                                  help="http-batch requests/second"),
    retry_after: bool = typer.Option(False, "--retry-after", help="Send Retry-After on 429"),
    fail_rate: float = typer.Option(0.0, "--fail-rate", help="Share of 5xx answers"),
    throttle_rate: float = typer.Option(0.0, "--throttle-rate", help="Share of random 429s"),
    timeout_rate: float = typer.Option(0.0, "--timeout-rate", help="Share of hung requests"),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate",
                                         help="Share of malformed 200 bodies"),
    latency: float = typer.Option(0.0, "--latency", help="Seconds added to each API call"),
    expire_tokens_every: int | None = typer.Option(
        None, "--expire-tokens-every", help="Revoke tokens every N API requests"),
) -> None:
    """Run a CXone-compatible sandbox (plus the http-batch endpoint) on loopback."""
    from ..sandbox import SandboxConfig, SandboxServer, SandboxState, default_seed

    config = SandboxConfig(
        token_lifetime=token_lifetime, max_top=page_size, rate_limit=rate_limit,
        batch_rate_limit=batch_rate_limit, retry_after=retry_after, fail_rate=fail_rate,
        throttle_rate=throttle_rate, timeout_rate=timeout_rate, malformed_rate=malformed_rate,
        latency=latency, expire_tokens_every=expire_tokens_every)
    if data is not None:
        if not data.is_file():
            raise typer.BadParameter(f"{data} does not exist", param_hint="--data")
        try:
            state = SandboxState.from_file(data, config)
        except (ValueError, KeyError, TypeError) as exc:
            raise typer.BadParameter(f"{data} is not a valid seed file: {exc}",
                                     param_hint="--data") from None
    else:
        state = SandboxState(config)
        state.seed(default_seed())
    try:
        server = SandboxServer(state, port=port)
    except OSError as exc:
        raise typer.BadParameter(f"cannot listen on port {port}: {exc.strerror}",
                                 param_hint="--port") from None
    console.print(f"CXone sandbox on [bold]{server.url}[/]; point dncguard at it with:")
    for k, v in server.env().items():
        console.print(f"  export {k}='{v}'", highlight=False, soft_wrap=True)
    console.print("Ctrl-C stops it.")
    try:
        server.server.run(sockets=[server.sock])
    except KeyboardInterrupt:
        pass
    finally:
        server.sock.close()
