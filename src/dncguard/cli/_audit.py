"""``dncguard audit ...`` (verify, export, outbox, prune, prove, jobs, search) and
``dncguard report``."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from ..errors import DncGuardError, InputError
from ._common import JSON_HELP, console, err_console, plural, print_json, settings, who

# The audit trail is imported by the commands, not here, so that `dncguard --help` starts fast.
if TYPE_CHECKING:
    from ..audit import AuditLog
    from ..audit.export import DeliveryReport
    from ..audit.search import Hit, SearchResult

audit_app = typer.Typer(help="The tamper-evident audit trail: verify, export, prove, prune.",
                        no_args_is_help=True)


def _log() -> AuditLog:
    from ..audit import AuditLog

    return AuditLog(settings())


def _key_note(log: AuditLog) -> None:
    from ..audit.settings import key_path

    if log.key_generated:
        err_console.print(f"[yellow]note:[/] no audit HMAC key was configured; generated one in "
                          f"{key_path(log.settings)} (mode 0600). Back it up with the database, "
                          "or set DNCGUARD_AUDIT_HMAC_KEY.", highlight=False)


@audit_app.command("verify")
def verify(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Check the whole hash chain; name the first record edited, deleted, reordered or
    truncated (exit 1 when the chain is broken)."""
    res = _log().verify()
    if as_json:
        console.print_json(json.dumps({
            "ok": res.ok, "checked": res.checked, "first": res.first_seq, "last": res.last_seq,
            "head": res.head_seq, "anchoredAt": res.anchored_at, "problem": res.problem,
            "badRecord": res.bad_seq, "message": res.message}))
    elif res.ok:
        console.print(f"[green]OK[/] {res.message}")
    else:
        err_console.print(f"[red]TAMPERED[/] ({res.problem}, record {res.bad_seq}): "
                          f"{res.message}", highlight=False)
    if not res.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    output: Path = typer.Option(..., "-o", "--output", help="File to write"),
    since: str | None = typer.Option(None, "--since", help="From this date or instant"),
    until: str | None = typer.Option(None, "--until", help="Before this date or instant"),
    fmt: str | None = typer.Option(None, "--format",
                                   help="ndjson | csv (default: from the file name)"),
) -> None:
    """Export audit records in [since, until) as NDJSON or CSV."""
    from ..audit.export import export_file
    from ..audit.search import parse_bound

    if fmt is not None and fmt not in ("ndjson", "csv"):
        raise typer.BadParameter("use ndjson or csv", param_hint="--format")
    if output.is_dir():
        raise InputError(f"-o: {output} is a folder; give the name of the file to write")
    n = export_file(_log(), output, since=parse_bound(since, "--since"),
                    until=parse_bound(until, "--until"), fmt=fmt)  # refuses an empty range
    console.print(f"{n:,} records written to {output}")


@audit_app.command("outbox")
def outbox(
    deliver: bool = typer.Option(False, "--deliver", help="Send every due item now"),
    follow: bool = typer.Option(False, "--follow",
                                help="With --deliver: keep delivering until interrupted"),
    requeue: bool = typer.Option(False, "--requeue", help="Make dead items pending again"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    show: int = typer.Option(10, "--show", min=0, help="List up to this many failing items"),
) -> None:
    """The export outbox: backlog, failures; optionally deliver or requeue (exit 3 when a
    delivery of this run failed)."""
    from ..audit import ExportWorker, outbox_metrics
    from ..audit.export import EXPORT_TOPIC, outbox_for

    if follow and not deliver:
        raise typer.BadParameter("--follow keeps delivering, so it needs --deliver "
                                 "(give --deliver --follow)", param_hint="--follow")
    log = _log()
    # With --json, stdout holds the JSON document alone: the lines for people go to stderr.
    say = err_console.print if as_json else console.print
    requeued: int | None = None
    ran: DeliveryReport | None = None
    if requeue:
        requeued = outbox_for(log).requeue(EXPORT_TOPIC)
        say(f"{requeued} dead items requeued")
    if deliver:
        worker = ExportWorker(log)
        try:
            ran = worker.run(until_idle=not follow)
        finally:
            worker.close()
        say(f"delivered {ran.sent}, failed {ran.failed} (now dead: {ran.dead})"
            + (f", {ran.lost} taken over by another worker" if ran.lost else ""))
    m = outbox_metrics(log)
    if as_json:
        print_json(_outbox_json(m, requeued, ran))
    else:
        _print_outbox(log, m, show)
    if ran is not None and ran.failed:
        raise typer.Exit(3)


def _outbox_json(metrics: dict[str, float], requeued: int | None,
                 ran: DeliveryReport | None) -> dict[str, Any]:
    """``audit outbox --json``: the outbox's numbers, then what this run did (``requeued``
    with --requeue; ``delivery`` with --deliver: ``delivered``, ``failed``, ``dead``,
    ``lost``: taken over by another worker when this one's lease ran out)."""
    # counts are whole numbers (the metrics hold them as floats, as Prometheus does); the
    # oldest pending item's age keeps its fraction
    out: dict[str, Any] = {k: v if k == "oldest_pending_age_seconds" else int(v)
                           for k, v in metrics.items()}
    if requeued is not None:
        out["requeued"] = requeued
    if ran is not None:
        out["delivery"] = {"delivered": ran.sent, "failed": ran.failed, "dead": ran.dead,
                           "lost": ran.lost}
    return out


def _print_outbox(log: AuditLog, metrics: dict[str, float], show: int) -> None:
    """The outbox's numbers, its endpoint and up to ``show`` failing items, as tables."""
    from ..audit.export import EXPORT_TOPIC, outbox_for
    from ..config import mask_url

    table = Table("metric", "value", title=f"audit export outbox ({EXPORT_TOPIC})")
    for k, v in metrics.items():
        table.add_row(k, f"{v:,.0f}" if k != "oldest_pending_age_seconds" else f"{v:,.1f}")
    console.print(table)
    url = log.audit.export_url
    console.print(f"endpoint: {escape(mask_url(url)) if url else '(none configured)'}")
    failing = outbox_for(log).failing(EXPORT_TOPIC, limit=show) if show else []
    if failing:
        ft = Table(Column("key", overflow="fold"), "status", "attempts", "next attempt",
                   Column("last error", overflow="fold"), title="failing")
        for i in failing:
            ft.add_row(escape(i.key), i.status, str(i.attempts), i.next_attempt_at.isoformat(),
                       escape((i.last_error or "")[:200]))
        console.print(ft)


@audit_app.command("jobs")
def jobs(limit: int = typer.Option(20, "--limit", min=1, help="Show the latest this many jobs"),
         as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Recorded scrub jobs, newest first (their ids are what report and prove take)."""
    from collections import deque

    recs = list(deque(_log().records(kind="job"), maxlen=limit))[::-1]
    found = []
    for r in recs:
        summary = r.data.get("summary", {})
        counts = summary.get("byDecision", {})
        found.append({"jobId": r.subject, "seq": r.seq, "at": r.at.isoformat(), "who": r.who,
                      "rows": summary.get("totalRows"),
                      "byDecision": {k: int(counts.get(k, 0)) for k in
                                     ("allow", "defer", "block", "error", "invalid")},
                      "file": r.data.get("results", {}).get("file")})
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("no scrub jobs recorded yet")
        return
    width = max(len(j["jobId"] or "") for j in found)
    # The job id is what `report` and `audit prove` take: never wrapped or cut, whatever
    # the terminal's width; the other columns wrap instead, and on a terminal too narrow for
    # the table each job is two lines.
    if console.width < width + 42:
        for j in found:
            d = j["byDecision"]
            rows = "?" if j["rows"] is None else f"{j['rows']:,}"
            console.print(j["jobId"] or "", soft_wrap=True, highlight=False)
            console.print(f"    {j['at'][:19].replace('T', ' ')} UTC by "
                          f"{escape(j['who'] or '(unknown)')}; {rows} rows: "
                          f"{d['block']:,} block, {d['defer']:,} defer, {d['error']:,} error",
                          soft_wrap=True, highlight=False)
        return
    table = Table(Column("job id", no_wrap=True, min_width=width),
                  Column("when (UTC)", min_width=10), Column("who", overflow="fold"),
                  Column("rows", overflow="fold"), title="scrub jobs, newest first")
    for j in found:
        d = j["byDecision"]
        rows = "" if j["rows"] is None else f"{j['rows']:,}"
        table.add_row(j["jobId"] or "", j["at"][:19].replace("T", " "), escape(j["who"] or ""),
                      f"{rows} rows: {d['block']:,} block, {d['defer']:,} defer, "
                      f"{d['error']:,} error")
    console.print(table)


@audit_app.command("prune")
def prune(
    retention_days: int | None = typer.Option(None, "--retention-days", min=1,
                                              help="Override the retention setting"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would go"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Delete records older than the retention period, up to the newest checkpoint; a chain
    that does not verify is not pruned (exit 1)."""
    from ..audit import ChainBroken

    try:
        out = _log().prune(retention_days=retention_days, who=who(), dry_run=dry_run)
    except ChainBroken as exc:  # it carries the verification
        res = exc.result
        err_console.print(f"[red]TAMPERED[/] ({res.problem}, record {res.bad_seq}): "
                          f"{escape(res.message)}; nothing pruned (investigate with 'dncguard "
                          "audit verify' and restore the database from a backup)",
                          highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        print_json({"dryRun": dry_run, "cutoff": out["cutoff"], "through": out["through"],
                    "deleted": out["deleted"], "jobs": out["jobs"]})
        return
    verb = "would delete" if dry_run else "deleted"
    if not out["through"]:
        console.print(f"nothing to prune (no checkpoint with every record up to it older "
                      f"than {out['cutoff']})")
        return
    console.print(f"{verb} {out['deleted']:,} records (through record {out['through']}, "
                  f"{len(out['jobs'])} jobs' retained files); cutoff {out['cutoff']}")


@audit_app.command("prove")
def prove(
    job_id: str = typer.Argument(..., help="The scrub job's id"),
    row: int = typer.Argument(..., help="1-based data row of the results file"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the proof here"),
) -> None:
    """An inclusion proof that a row's verdict is under the job's recorded Merkle root."""
    from ..audit import prove as prove_row
    from ..audit import verify_proof

    log = _log()
    proof = prove_row(log, job_id, row)
    if not verify_proof(proof):
        raise DncGuardError(f"the proof for row {row} of job {job_id} does not verify")
    text = proof_json(proof)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"proof written to {output} (root {proof['root']})")
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    _key_note(log)


@audit_app.command("search")
def search(
    phone: str = typer.Option(..., "--phone", help="The number (E.164 or national format)"),
    since: str | None = typer.Option(None, "--from", help="From this date (UTC day) or "
                                     "ISO 8601 instant"),
    until: str | None = typer.Option(None, "--to", help="Through this date (UTC day, "
                                     "included) or before this instant"),
    limit: int = typer.Option(100, "--limit", min=1, max=10_000,
                              help="Most records shown (newest first)"),
    no_jobs: bool = typer.Option(False, "--no-jobs", help="Do not read the scrub jobs' "
                                 "results files"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """What the audit trail holds about one number: checks, list changes, consents,
    attempts and the scrub jobs whose results hold it, newest first (number masked)."""
    from ..audit.search import parse_bound, search_number

    log = _log()
    result = search_number(log, phone, since=parse_bound(since, "--from"),
                           until=parse_bound(until, "--to", end=True), limit=limit,
                           jobs=not no_jobs)
    if as_json:
        print_json(result.to_json())
        return
    print_search(result)


def print_search(result: SearchResult) -> None:
    """The records as two lines each (the first what, when, who and the decision; the
    second the details), written out in full: no table column cuts a job id."""
    span = " ".join(x for x in (
        result.since and f"from {result.since.isoformat()}",
        result.until and f"before {result.until.isoformat()}") if x)
    say = functools.partial(console.print, soft_wrap=True, highlight=False)
    say(f"audit records about {result.number_masked}" + (f" {span}" if span else "")
        + f", newest first: {plural(len(result.hits), 'record')}")
    for h in result.hits:
        head = " ".join(x for x in (f"#{h.seq}", h.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                                    f"{h.kind} {h.action}", f"by {h.who or '(unknown)'}",
                                    h.decision or "", ", ".join(h.reason_codes)) if x)
        say(escape(head))
        say("    " + escape(_detail(h)))
    if result.truncated:
        say("[yellow]more records than --limit:[/] narrow --from/--to or raise --limit")
    notes = [plural(result.jobs_searched, "scrub job") + " searched"]
    if result.jobs_left:
        notes.append(f"{plural(result.jobs_left, 'older job')} of the range not read "
                     "(narrow --from)")
    say("; ".join(notes))
    for j in result.jobs_not_searched:
        err_console.print(f"[yellow]job {escape(j.job_id)} not searched:[/] {escape(j.why)}",
                          soft_wrap=True, highlight=False)


def _detail(h: Hit) -> str:
    """What a record says besides its decision, on one line."""
    d = h.data
    if h.kind == "job":
        rows = h.rows or []
        where = ", ".join(f"row {r.row} {r.decision} {';'.join(r.reason_codes)}".rstrip()
                          for r in rows)
        return (f"job {h.subject} ({d.get('file')}, {d.get('rows')} rows): {where}; prove "
                f"with: dncguard audit prove {h.subject} {rows[0].row if rows else 'ROW'}")
    if h.kind == "check":
        parts = [f"dial time {d.get('dial_time')}"]
        if d.get("lists"):
            parts.append(f"lists matched: {', '.join(d['lists'])}")
        if d.get("next_allowed_at"):
            parts.append(f"next allowed at {d['next_allowed_at']}")
        lists = (h.versions or {}).get("lists") or {}
        parts.append("data: " + (", ".join(f"{k}@{v or 'undated'}" for k, v in lists.items())
                                 or "no lists"))
        if (h.versions or {}).get("ruleset"):
            parts.append(f"ruleset {h.versions['ruleset']}")
        return "; ".join(parts)
    extra = ", ".join(f"{k} {v}" for k, v in d.items()
                      if v not in (None, "", [], {}) and k != "why")
    text = f"{h.subject}" + (f": {d['why']}" if d.get("why") else "")
    return text + (f" ({extra})" if extra else "")


def proof_json(proof: dict[str, Any]) -> str:
    """A proof as indented JSON, the rows of its block (format v2) one to a line."""
    block = proof.get("block")
    if not isinstance(block, dict) or not isinstance(block.get("rows"), list):
        return json.dumps(proof, indent=2)
    marker = "@@rows@@"
    text = json.dumps({**proof, "block": {**block, "rows": marker}}, indent=2)
    rows = ",\n".join(f"      {json.dumps(row)}" for row in block["rows"])
    return text.replace(json.dumps(marker), f"[\n{rows}\n    ]", 1)


def report(
    job_id: str = typer.Argument(..., help="The scrub job's id"),
    output: Path = typer.Option(..., "-o", "--output", help="HTML file to write"),
    sample: int = typer.Option(40, "--sample", min=0,
                               help="Rows shown in the sample of decisions"),
) -> None:
    """Write a self-contained HTML compliance report for one scrub job."""
    from ..audit.report import write_report

    log = _log()
    write_report(log, job_id, output, sample_size=sample)
    console.print(f"report written to {output}")
    _key_note(log)
