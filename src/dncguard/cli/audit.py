"""``dncguard audit ...`` (verify, export, outbox, prune, prove) and ``dncguard report``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ..errors import DncGuardError
from .common import console, err_console, settings, who

# The audit trail is imported by the commands, not here, so that `dncguard --help` starts fast.
if TYPE_CHECKING:
    from ..audit import AuditLog

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


def parse_bound(value: str | None, flag: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 instant with an offset."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date or an ISO 8601 instant",
                                 param_hint=flag) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{value!r} has no UTC offset; add one or Z", param_hint=flag)
    return parsed.astimezone(UTC)


@audit_app.command("verify")
def verify(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON")
           ) -> None:
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

    if fmt is not None and fmt not in ("ndjson", "csv"):
        raise typer.BadParameter("use ndjson or csv", param_hint="--format")
    n = export_file(_log(), output, since=parse_bound(since, "--since"),
                    until=parse_bound(until, "--until"), fmt=fmt)
    console.print(f"{n:,} records written to {output}")


@audit_app.command("outbox")
def outbox(
    deliver: bool = typer.Option(False, "--deliver", help="Send every due item now"),
    follow: bool = typer.Option(False, "--follow",
                                help="With --deliver: keep delivering until interrupted"),
    requeue: bool = typer.Option(False, "--requeue", help="Make dead items pending again"),
    as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON"),
    show: int = typer.Option(10, "--show", help="List up to this many failing items"),
) -> None:
    """The export outbox: backlog, failures; optionally deliver or requeue."""
    from ..audit import ExportWorker, outbox_metrics
    from ..audit.export import EXPORT_TOPIC, outbox_for

    log = _log()
    if requeue:
        n = outbox_for(log).requeue(EXPORT_TOPIC)
        console.print(f"{n} dead items requeued")
    if deliver:
        worker = ExportWorker(log)
        try:
            rep = worker.run(until_idle=not follow)
        finally:
            worker.close()
        console.print(f"delivered {rep.sent}, failed {rep.failed} (now dead: {rep.dead})")
    m = outbox_metrics(log)
    if as_json:
        console.print_json(json.dumps(m))
        return
    table = Table("metric", "value", title=f"audit export outbox ({EXPORT_TOPIC})")
    for k, v in m.items():
        table.add_row(k, f"{v:,.0f}" if k != "oldest_pending_age_seconds" else f"{v:,.1f}")
    console.print(table)
    console.print(f"endpoint: {log.audit.export_url or '(none configured)'}")
    failing = [i for i in outbox_for(log).items(EXPORT_TOPIC, limit=100_000)
               if i.status != "delivered" and i.attempts > 0][:show]
    if failing:
        ft = Table("key", "status", "attempts", "next attempt", "last error", title="failing")
        for i in failing:
            ft.add_row(i.key, i.status, str(i.attempts), i.next_attempt_at.isoformat(),
                       (i.last_error or "")[:80])
        console.print(ft)


@audit_app.command("jobs")
def jobs(limit: int = typer.Option(20, "--limit", help="Show the latest this many jobs")
         ) -> None:
    """Recorded scrub jobs, newest first (their ids are what report and prove take)."""
    recs = list(_log().records(kind="job"))[-limit:]
    table = Table("seq", "when", "job id", "who", "rows", "block", "defer", "error",
                  title="scrub jobs")
    for r in reversed(recs):
        d = r.data.get("summary", {}).get("byDecision", {})
        table.add_row(str(r.seq), r.at.isoformat(timespec="seconds"), r.subject or "",
                      r.who or "", str(r.data.get("summary", {}).get("totalRows", "")),
                      str(d.get("block", 0)), str(d.get("defer", 0)), str(d.get("error", 0)))
    console.print(table)


@audit_app.command("prune")
def prune(
    retention_days: int | None = typer.Option(None, "--retention-days",
                                              help="Override the retention setting"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would go"),
) -> None:
    """Delete records older than the retention period, up to the newest checkpoint."""
    out = _log().prune(retention_days=retention_days, who=who(), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    if not out["through"]:
        console.print(f"nothing to prune (no checkpoint before {out['cutoff']})")
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
    from ..audit import verify_proof

    log = _log()
    proof = log.prove(job_id, row)
    if not verify_proof(proof):
        raise DncGuardError(f"the proof for row {row} of job {job_id} does not verify")
    text = proof_json(proof)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        console.print(f"proof written to {output} (root {proof['root']})")
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    _key_note(log)


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
    sample: int = typer.Option(40, "--sample", help="Rows shown in the sample of decisions"),
) -> None:
    """Write a self-contained HTML compliance report for one scrub job."""
    from ..audit.report import write_report

    log = _log()
    write_report(log, job_id, output, sample_size=sample)
    console.print(f"report written to {output}")
    _key_note(log)
