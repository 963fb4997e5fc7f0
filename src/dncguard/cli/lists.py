"""``dncguard lists ...`` and ``dncguard dnc ...``: local lists and manual opt-outs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Column, Table

from .common import console, err_console, parse_date, settings, who

# The library is imported by the commands, not here, so that `dncguard --help` starts fast.
if TYPE_CHECKING:
    from ..freshness import Freshness

#: ``dncguard.lists.IMPORT_KINDS``, spelled out for the help text so that building the command
#: tree does not import the list store (tests/test_cli_startup.py checks that they agree).
IMPORT_KINDS_HELP = ("internal", "national", "state", "litigator", "wireless", "hashed",
                     "prefix")

lists_app = typer.Typer(help="Import, inspect and remove DNC lists.", no_args_is_help=True)
dnc_app = typer.Typer(help="Add or remove single numbers on the internal list.",
                      no_args_is_help=True)


@lists_app.command("import")
def import_list(
    file: Path = typer.Argument(..., help="Number, hash or prefix file; plain or .zip"),
    kind: str = typer.Option(..., "--kind", help=f"One of: {', '.join(IMPORT_KINDS_HELP)}"),
    name: str = typer.Option(..., "--name", help="List name; re-importing a name replaces it"),
    jurisdiction: str | None = typer.Option(None, "--jurisdiction",
                                            help="US, CA, GB, AU, or a state such as US-FL"),
    snapshot_date: str | None = typer.Option(None, "--snapshot-date",
                                             help="Date of the download (national, state lists)"),
    changes: bool = typer.Option(False, "--changes",
                                 help="The file is a change list (A/D flags), applied in place"),
    salt: str | None = typer.Option(None, "--salt", help="Hashed lists: the salt used"),
) -> None:
    """Import a list file (replaces the list's content atomically; keeps old snapshots)."""
    from ..lists import ListStore

    store = ListStore(settings())
    result = store.import_file(
        file, kind=kind.lower(), name=name, jurisdiction=jurisdiction,
        snapshot_date=parse_date(snapshot_date, "--snapshot-date"), changes=changes, salt=salt,
        who=who())
    info, report = result.info, result.report
    if changes:
        console.print(f"[bold]{info.name}[/]: applied change list: +{result.added} added, "
                      f"-{result.deleted} deleted, now {info.count:,} entries")
    else:
        console.print(f"[bold]{info.name}[/] ({info.kind}): imported {info.count:,} entries "
                      f"from {report.lines:,} lines")
    if report.rejected:
        err_console.print(f"[yellow]{report.rejected:,} lines rejected[/]; first ones:")
        for sample in report.reject_samples:
            err_console.print(f"  {sample}")


@lists_app.command("ls")
def list_lists(as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """List every list with its kind, size, snapshot date and freshness (age, maximum age)."""
    from ..freshness import FreshnessPolicy, today
    from ..lists import ListStore

    cfg = settings()
    store = ListStore(cfg)
    infos = store.all()
    day = today()
    ages = {f.name: f for f in FreshnessPolicy.of(cfg).judge_all(infos, day)}
    if as_json:
        console.print_json(json.dumps([
            {"name": i.name, "kind": i.kind, "jurisdiction": i.jurisdiction,
             "snapshotDate": i.snapshot_date, "count": i.count,
             "manual": store.entry_counts(i.name), "updatedAt": i.updated_at.isoformat(),
             "ageDays": ages[i.name].age_days, "maxAgeDays": ages[i.name].max_age_days,
             "fresh": ages[i.name].fresh, "maxAgeRule": ages[i.name].rule,
             "maxAgeBasis": ages[i.name].basis, "asOf": day.isoformat()}
            for i in infos]))
        return
    table = Table(Column("name", no_wrap=True), "kind", "jurisdiction", "entries",
                  "manual +/-", Column("snapshot", no_wrap=True),
                  Column("age/max", no_wrap=True), Column("fresh", no_wrap=True),
                  "updated (UTC)")
    for i in infos:
        counts = store.entry_counts(i.name)
        f = ages[i.name]
        table.add_row(i.name, i.kind, i.jurisdiction or "", f"{i.count:,}",
                      f"+{counts['added']}/-{counts['removed']}", i.snapshot_date or "",
                      _age_text(f), _fresh_text(f), i.updated_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table if infos else "no lists yet; add one with 'dncguard lists import'")
    if infos:
        console.print(f"age/max: days on {day.isoformat()} (UTC) / days allowed by the "
                      "registry rule (* override, d default: no rule)")


def _age_text(f: Freshness) -> str:
    if f.max_age_days is None:
        return ""
    age = "?" if f.age_days is None else str(f.age_days)
    return f"{age}/{f.max_age_days}" + {"override": "*", "default": "d"}.get(f.basis, "")


def _fresh_text(f: Freshness) -> str:
    if f.max_age_days is None:
        return ""
    if f.fresh:
        return "[green]yes[/]"
    over = f.days_over
    return "[red]STALE[/]" + (f" +{over}d" if over is not None else " no date")


@lists_app.command("stats")
def list_stats(name: str) -> None:
    """Show one list's size, snapshot history and manual entries."""
    from ..lists import ListStore

    store = ListStore(settings())
    info = store.get(name)
    counts = store.entry_counts(name)
    console.print(f"[bold]{info.name}[/]  kind={info.kind}  jurisdiction={info.jurisdiction or '-'}"
                  f"  snapshot={info.snapshot_date or '-'}")
    console.print(f"snapshot entries: {info.count:,}; manual additions: {counts['added']:,}; "
                  f"removals: {counts['removed']:,}")
    if info.synced_at:
        console.print(f"last synced: {info.synced_at.isoformat()}")
    if info.current_file:
        problem = store.snapshot_problem(info)
        console.print(f"snapshot file: [red]DAMAGED[/] ({problem}); checks against this list "
                      "answer error until it is re-imported" if problem
                      else f"snapshot file: verified ({info.current_file})")
    table = Table("imported (UTC)", "snapshot date", "entries", "change list", "file", "by")
    for v in store.versions(name):
        table.add_row(str(v["created_at"])[:19], v["snapshot_date"] or "", f"{v['count']:,}",
                      "yes" if v["changes"] else "", v["source_file"] or "", v["created_by"] or "")
    console.print(table)


@lists_app.command("rm")
def remove_list(name: str) -> None:
    """Remove a list, its snapshots and its manual entries."""
    from ..lists import ListStore

    info = ListStore(settings()).remove_list(name, who=who())
    console.print(f"removed list {info.name} ({info.kind}, {info.count:,} entries)")


@dnc_app.command("add")
def dnc_add(
    phone: str,
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the entry)"),
    expires: str | None = typer.Option(None, "--expires",
                                       help="Last day the entry applies (lapses after it, UTC)"),
    list_name: str = typer.Option("internal", "--list", help="Internal or litigator list"),
) -> None:
    """Add a number to the internal DNC list (an opt-out)."""
    from ..lists import ListStore
    from ..optouts import add_optout
    from ..phones import mask

    day = parse_date(expires, "--expires")
    when = datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) if day else None
    e164 = add_optout(ListStore(settings()), phone, list_name=list_name, reason=reason,
                      expires=when, who=who())
    console.print(f"added {mask(e164)} to {list_name}"
                  + (f" through {day.isoformat()}" if day else ""))


@dnc_app.command("remove")
def dnc_remove(
    phone: str,
    list_name: str = typer.Option("internal", "--list", help="Internal or litigator list"),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the change log)"),
) -> None:
    """Remove a number from the internal DNC list."""
    from ..lists import ListStore
    from ..optouts import remove_optout
    from ..phones import mask

    e164, was = remove_optout(ListStore(settings()), phone, list_name=list_name, who=who(),
                              why=reason)
    console.print(f"removed {mask(e164)} from {list_name}" if was
                  else f"{mask(e164)} was not on {list_name}; nothing to remove")
