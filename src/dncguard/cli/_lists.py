"""``dncguard lists ...`` and ``dncguard dnc ...``: local lists and manual opt-outs."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from ..errors import InputError
from ._common import (
    JSON_HELP,
    console,
    err_console,
    iso,
    parse_date,
    plural,
    print_json,
    print_rows,
    settings,
    who,
)

# The library is imported by the commands, not here, so that `dncguard --help` starts fast.
if TYPE_CHECKING:
    from ..lists.store import ListInfo, ListStore
    from ..sources.rules.freshness import Freshness

#: ``dncguard.lists.store.IMPORT_KINDS``, spelled out for the help text so that building the command
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
    jurisdiction: str | None = typer.Option(
        None, "--jurisdiction", help="US, CA, GB, AU, or a state such as US-FL; a change list "
        "keeps the list's own (leave it out, or give that one)"),
    snapshot_date: str | None = typer.Option(
        None, "--snapshot-date", help="Date of the download: national and state lists only "
        "(other kinds do not age; refused)"),
    changes: bool = typer.Option(False, "--changes",
                                 help="The file is a change list (A/D flags), applied in place"),
    salt: str | None = typer.Option(None, "--salt", help="Hashed lists: the salt used (a "
                                    "re-import of a salted list must give it, or --no-salt)"),
    no_salt: bool = typer.Option(False, "--no-salt",
                                 help="Hashed lists: the hashes are unsalted (as --salt \"\")"),
    expect: list[str] | None = typer.Option(
        None, "--expect", help="Hashed lists: a number the file must hold (repeatable); it is "
        "hashed as lookups hash it (E.164 with its '+', after the salt) and the import is "
        "refused, nothing imported, if the file lacks it: proof the file's hash format "
        "matches"),
    allow_shrink: bool = typer.Option(
        False, "--allow-shrink", help="Full re-imports: accept a file with fewer than 90% of "
        "the list's current entries, or with more rejected lines than valid ones (refused "
        "otherwise, the list kept: a truncated or damaged file); not with --changes"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import a list file (replaces the list's content atomically; keeps old snapshots)."""
    from ..lists.store import ListStore

    if no_salt:
        if salt is not None:
            raise InputError("--no-salt and --salt: give one of them")
        if kind.lower() != "hashed":
            raise InputError("--no-salt is for hashed lists only: leave it out")
        salt = ""
    store = ListStore(settings())
    result = store.import_file(
        file, kind=kind.lower(), name=name, jurisdiction=jurisdiction,
        snapshot_date=parse_date(snapshot_date, "--snapshot-date"), changes=changes, salt=salt,
        who=who(), allow_shrink=allow_shrink, expect=expect or ())
    info, report = result.info, result.report
    if as_json:
        print_json({"name": info.name, "kind": info.kind, "jurisdiction": info.jurisdiction,
                    "snapshotDate": info.snapshot_date, "changes": changes,
                    "count": info.count, "lines": report.lines, "added": result.added,
                    "deleted": result.deleted, "rejected": report.rejected,
                    "rejectSamples": report.reject_samples})
        if report.rejected:
            raise typer.Exit(1)
        return
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
        if changes and snapshot_date is not None:
            kept = info.snapshot_date or "none"
            err_console.print(f"[yellow]the snapshot date stays {kept}[/]: the list is not "
                              f"the registry as of {snapshot_date} while records of "
                              "the change list are rejected; correct them and apply it again")
        raise typer.Exit(1)  # imported, but not every line: a cron job must notice


@lists_app.command("ls")
def list_lists(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List every list with its kind, size, snapshot date and freshness (age, maximum age),
    and what makes its checks answer error: a snapshot that fails its integrity check, a
    jurisdiction that is not understood."""
    from ..lists.store import ListStore
    from ..sources.rules.freshness import FreshnessPolicy, today

    cfg = settings()
    store = ListStore(cfg)
    infos = store.all()
    day = today()
    ages = {f.name: f for f in FreshnessPolicy.of(cfg).judge_all(infos, day)}
    # as GET /v1/lists (snapshotError, scopeProblem) and lists stats judge them
    damaged = {i.name: store.snapshot_problem(i) for i in infos}
    if as_json:
        console.print_json(json.dumps([
            {"name": i.name, "kind": i.kind, "jurisdiction": i.jurisdiction,
             "snapshotDate": i.snapshot_date, "count": i.count,
             "manual": store.entry_counts(i.name), "updatedAt": i.updated_at.isoformat(),
             "ageDays": ages[i.name].age_days, "maxAgeDays": ages[i.name].max_age_days,
             "fresh": ages[i.name].fresh, "maxAgeRule": ages[i.name].rule,
             "maxAgeBasis": ages[i.name].basis, "asOf": day.isoformat(),
             "snapshotError": damaged[i.name], "scopeProblem": i.scope_problem}
            for i in infos]))
        return
    if not infos:
        console.print("no lists yet; add one with 'dncguard lists import'")
        return
    rows = []
    for i in infos:
        counts = store.entry_counts(i.name)
        f = ages[i.name]
        broken = damaged[i.name] is not None or i.scope_problem is not None
        rows.append([escape(i.name), i.kind, i.jurisdiction or "", f"{i.count:,}",
                     f"+{counts['added']}/-{counts['removed']}", i.snapshot_date or "",
                     _age_text(f), "[red]ERROR[/] (below)" if broken else _fresh_text(f),
                     i.updated_at.strftime("%Y-%m-%d %H:%M")])
    # a table when it fits, else a list's lines: nothing is cut, at any width
    print_rows(["name", "kind", "jurisdiction", "entries", "manual +/-", "snapshot",
                "age/max", "fresh", "updated (UTC)"], rows)
    console.print(f"age/max: days on {day.isoformat()} (UTC) / days allowed by the "
                  "registry rule (* override, d default: no rule)")
    for i in infos:
        problem = damaged[i.name]
        if problem is not None:
            console.print(_snapshot_line(i.name, problem), soft_wrap=True)
        if i.scope_problem is not None:
            console.print(_scope_line(i.scope_problem), soft_wrap=True)


def _snapshot_line(name: str, problem: str) -> str:
    """A list's snapshot problem, what it does to checks, and what to do about it."""
    return f"[red]list {escape(name)}: snapshot not usable[/] {_unusable(problem)}"


def _unusable(problem: str) -> str:
    """A snapshot problem (:meth:`ListStore.snapshot_problem`), what it does to checks and
    what to do about it (:func:`snapshot_remedy`), as ``lists ls`` and ``lists stats`` say
    it."""
    from ..lists.store import snapshot_remedy

    return (f"({escape(problem)}); checks against this list answer error until then: "
            f"{snapshot_remedy(problem)}")


def _scope_line(problem: str) -> str:
    """A list's jurisdiction problem (:attr:`ListInfo.scope_problem`, which names the list)
    and what it does to checks."""
    return f"[red]{escape(problem)}[/]; checks against this list answer error (SOURCE_ERROR)"


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
def list_stats(name: str,
               as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Show one list's size, snapshot history and manual entries."""
    from ..lists.store import ListStore

    store = ListStore(settings())
    info = store.get(name)
    counts = store.entry_counts(name)
    problem = store.snapshot_problem(info) if info.current_file else None
    versions = store.versions(name)
    if as_json:
        print_json({
            "name": info.name, "kind": info.kind, "jurisdiction": info.jurisdiction,
            "snapshotDate": info.snapshot_date, "count": info.count, "manual": counts,
            "updatedAt": iso(info.updated_at), "syncedAt": iso(info.synced_at),
            "snapshotFile": info.current_file, "snapshotError": problem,
            "scopeProblem": info.scope_problem,
            "versions": [{"importedAt": iso(_utc(v["created_at"])),
                          "snapshotDate": v["snapshot_date"], "count": v["count"],
                          "changes": bool(v["changes"]), "file": v["file"],
                          "sourceFile": v["source_file"], "by": v["created_by"]}
                         for v in versions]})
        return
    console.print(f"[bold]{escape(info.name)}[/]  kind={info.kind}  "
                  f"jurisdiction={info.jurisdiction or '-'}  snapshot={info.snapshot_date or '-'}",
                  soft_wrap=True)
    console.print(f"snapshot entries: {info.count:,}; manual additions: {counts['added']:,}; "
                  f"removals: {counts['removed']:,}")
    if info.synced_at:
        console.print(f"last synced: {info.synced_at.isoformat()}")
    if info.current_file:
        console.print(f"snapshot file: [red]not usable[/] {_unusable(problem)}"
                      if problem else f"snapshot file: verified ({info.current_file})",
                      soft_wrap=True)
    if info.scope_problem:
        console.print(_scope_line(info.scope_problem), soft_wrap=True)
    table = Table("imported (UTC)", "snapshot date", "entries", "change list",
                  Column("file", overflow="fold"), Column("by", overflow="fold"))
    for v in versions:
        table.add_row(str(v["created_at"])[:19], v["snapshot_date"] or "", f"{v['count']:,}",
                      "yes" if v["changes"] else "", escape(v["source_file"] or ""),
                      escape(v["created_by"] or ""))
    console.print(table)


def _utc(value: Any) -> datetime | None:
    from ..store import as_utc

    return as_utc(value) if isinstance(value, datetime) else None


@lists_app.command("sync")
def sync_lists(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Fetch every list's current snapshot from the database into this home.

    For a home on a PostgreSQL database that replicas share (docs/service.md): a host that
    runs `dncguard scrub` or `check` without a server keeping its home in step syncs first;
    until then its lists answer error. A SQLite home has nothing to fetch. Exits 1 when a
    list could not be synced (its checks answer error)."""
    from ..lists.store import ListStore
    from ..lists.sync import ListSync

    store = ListStore(settings())
    problems = ListSync(store).sync_all() if store.shared else {}
    names = [i.name for i in store.all() if i.current_file] if store.shared else []
    if as_json:
        print_json({"shared": store.shared, "synced": [n for n in names if n not in problems],
                    "problems": problems})
    elif not store.shared:
        console.print("nothing to sync: this home's database is not shared (SQLite); its "
                      "snapshots are the files under the home")
    else:
        done = len(names) - len(problems)
        console.print(f"{plural(done, 'list')} held at the database's current version")
        for name, why in problems.items():
            err_console.print(f"[red]list {escape(name)} not synced:[/] {escape(why)}")
    if problems:
        raise typer.Exit(1)


@lists_app.command("rm")
def remove_list(name: str,
                drop_optouts: bool = typer.Option(
                    False, "--drop-optouts", help="Remove an internal or litigator list that "
                    "holds numbers added by hand (dnc add): their opt-outs are lifted"),
                as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Remove a list, its snapshots and its manual entries."""
    from ..lists.store import MANUAL_KINDS, ListStore

    store = ListStore(settings())
    info = store.get(name)
    held = store.entry_counts(name)["added"]
    if held and info.kind in MANUAL_KINDS and not drop_optouts:
        # the opt-outs would be lifted without a word: every campaign reading the list
        # would call those numbers
        err_console.print(
            f"[red]error:[/] list {escape(name)} holds {plural(held, 'number')} added by hand "
            "(dnc add): removing it lifts those opt-outs, and every campaign reading it would "
            "call them; give --drop-optouts to remove it anyway", highlight=False)
        raise typer.Exit(2)
    info = store.remove_list(name, who=who())
    if as_json:
        print_json({"name": info.name, "kind": info.kind, "count": info.count,
                    "entries": held, "removed": True})
        return
    console.print(f"removed list {info.name} ({info.kind}, {info.count:,} imported entries, "
                  f"{held:,} added by hand)")


@dnc_app.command("add")
def dnc_add(
    phone: str,
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the entry)"),
    expires: str | None = typer.Option(
        None, "--expires", help="Last day the entry applies (it lapses once that day has "
        "ended everywhere: 12:00 UTC the next day)"),
    list_name: str = typer.Option("internal", "--list", help="Internal or litigator list"),
    create: bool = typer.Option(
        False, "--create", help="Make --list as a new internal list if it does not exist "
        "(refused otherwise: an opt-out on a misspelt list would be read by no campaign)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Add a number to the internal DNC list (an opt-out)."""
    from ..lists.store import ListStore
    from ..optouts import add_optout, expiry_after, not_read_by, stored_expiry
    from ..phones import mask

    day = parse_date(expires, "--expires")
    when = expiry_after(day) if day else None
    cfg = settings()
    store = ListStore(cfg)
    e164 = add_optout(store, phone, list_name=list_name, reason=reason, expires=when,
                      who=who(), create=create)
    # what holds: an add keeps the later of two expiries (none is the latest)
    held = stored_expiry(store, list_name, e164)
    unread = not_read_by(cfg, list_name)
    if unread:  # as POST /v1/dnc answers notReadBy
        err_console.print(f"[yellow]warning:[/] campaign(s) {escape(', '.join(unread))} do not "
                          f"read list {escape(list_name)}: their checks do not see this "
                          "opt-out", highlight=False)
    if as_json:
        print_json({"number": mask(e164), "list": list_name, "listed": True,
                    "expires": iso(held), "notReadBy": unread})
        return
    console.print(f"added {mask(e164)} to {list_name}"
                  + (f", in force until {iso(held)}" if held else
                     " for good" + (" (it was listed for good already)" if day else "")))


@dnc_app.command("remove")
def dnc_remove(
    phone: str,
    list_name: str = typer.Option("internal", "--list", help="Internal or litigator list"),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the change log)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Remove a number from the internal DNC list."""
    from ..lists.store import ListStore
    from ..optouts import remove_optout
    from ..phones import mask

    e164, was = remove_optout(ListStore(settings()), phone, list_name=list_name, who=who(),
                              why=reason)
    if as_json:
        print_json({"number": mask(e164), "list": list_name, "listed": False,
                    "wasListed": was})
        return
    console.print(f"removed {mask(e164)} from {list_name}" if was
                  else f"{mask(e164)} was not on {list_name}; nothing to remove")


#: The columns of ``dnc export``, in order.
EXPORT_COLUMNS = ("number", "added_at", "added_by", "reason", "expires", "list", "status")


@dataclass(frozen=True)
class Entry:
    """A number on an internal or litigator list, as ``dnc ls`` and ``dnc export`` show it."""

    list_name: str
    e164: str
    added_at: datetime | None
    added_by: str | None
    reason: str | None
    expires: datetime | None
    status: str  # active | expired | removed

    def to_json(self) -> dict[str, Any]:
        from ..phones import mask

        return {"number": mask(self.e164), "list": self.list_name,
                "addedAt": iso(self.added_at), "addedBy": self.added_by, "reason": self.reason,
                "expires": iso(self.expires), "status": self.status}


def _manual_lists(store: ListStore, name: str | None) -> list[ListInfo]:
    """The list named (an internal or litigator list), else every such list."""
    from ..errors import ListError
    from ..lists.store import MANUAL_KINDS

    if name is None:
        return [i for i in store.all() if i.kind in MANUAL_KINDS]
    info = store.get(name)  # an unknown name: ListError, one line, exit 2
    if info.kind not in MANUAL_KINDS:
        raise ListError(f"list {name!r} is of kind {info.kind}; 'dnc ls' and 'dnc export' read "
                        "internal and litigator lists (see 'dncguard lists stats' for others)")
    return [info]


def _entries(store: ListStore, infos: list[ListInfo], everything: bool) -> list[Entry]:
    """The entries of those lists: in force, or (``everything``) also the expired ones and
    the removals of imported numbers; by list, oldest first."""
    from ..optouts import entry_status
    from ..store import utcnow

    now = utcnow()
    out = []
    for info in infos:
        for e in store.entries(info.name):
            status = entry_status(e, now)
            if status == "active" or everything:
                out.append(Entry(info.name, e["value"], e["added_at"], e["added_by"],
                                 e["reason"], e["expires_at"], status))
    return out


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@dnc_app.command("ls")
def dnc_ls(
    list_name: str | None = typer.Option(
        None, "--list", help="One internal or litigator list (default: all of them)"),
    everything: bool = typer.Option(False, "--all", help="Also expired entries and removals "
                                    "of imported numbers"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Which numbers are on the internal (and litigator) lists, who added them and why
    (numbers masked; 'dnc export' writes them in full)."""
    from ..lists.store import ListStore

    store = ListStore(settings())
    infos = _manual_lists(store, list_name)
    entries = _entries(store, infos, everything)
    if as_json:
        manual = {i.name: store.entry_counts(i.name) for i in infos}
        print_json({"lists": [{"name": i.name, "kind": i.kind, "imported": i.count,
                               "added": manual[i.name]["added"],
                               "removed": manual[i.name]["removed"]} for i in infos],
                    "entries": [e.to_json() for e in entries]})
        return
    if not infos:
        console.print("no internal or litigator lists yet; add a number with 'dncguard dnc add'")
        return
    from ..phones import mask

    # a table when it fits, else each entry's lines: nothing is cut, at any width
    if entries:
        print_rows(["number", "list", "added", "by", "reason", "expires",
                    *(["status"] if everything else [])],
                   [[mask(e.e164), escape(e.list_name), _when(e.added_at),
                     escape(e.added_by or ""), escape(e.reason or ""), _when(e.expires),
                     *([e.status] if everything else [])] for e in entries],
                   caption="times in UTC")
    for info in infos:
        mine = [e for e in entries if e.list_name == info.name]
        counts = store.entry_counts(info.name)
        active = sum(e.status == "active" for e in mine)
        line = f"{info.name}: {plural(active, 'number')} added by hand and in force"
        hidden = counts["added"] + counts["removed"] - len(mine)
        if hidden and not everything:
            more = plural(hidden, "expired or removal entry", "expired or removal entries")
            line += f" ({more}: --all shows them)"
        if info.count:
            line += (f"; its imported file holds {plural(info.count, 'more number')}, with "
                     f"no per-number who or why ('dncguard lists stats {info.name}')")
        console.print(escape(line), soft_wrap=True)


@dnc_app.command("export")
def dnc_export(
    output: Path = typer.Option(..., "-o", "--output", help="CSV file to write (mode 0600)"),
    list_name: str | None = typer.Option(
        None, "--list", help="One internal or litigator list (default: all of them)"),
    everything: bool = typer.Option(False, "--all", help="Also expired entries and removals "
                                    "of imported numbers"),
) -> None:
    """Write the numbers of the internal (and litigator) lists in full, with who added them,
    when and why, to a CSV file (number, added_at, added_by, reason, expires, list, status)."""
    from ..io.verdict_file import defuse
    from ..lists.store import ListStore

    if output.suffix.lower() != ".csv":
        raise InputError(f"-o: {output.name!r}: 'dnc export' writes CSV; name the file *.csv")
    store = ListStore(settings())
    entries = _entries(store, _manual_lists(store, list_name), everything)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EXPORT_COLUMNS)
            for e in entries:
                writer.writerow([e.e164, iso(e.added_at) or "", defuse(e.added_by or ""),
                                 defuse(e.reason or ""), iso(e.expires) or "",
                                 defuse(e.list_name), e.status])
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    console.print(f"{len(entries):,} entries written to {escape(str(output))} (full numbers: "
                  "personal data, keep the file safe)", soft_wrap=True)
