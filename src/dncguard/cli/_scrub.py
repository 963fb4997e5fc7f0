"""``dncguard scrub``, ``check``, ``demo`` and ``config show``."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import ContextError
from ._common import JSON_HELP, console, err_console, parse_instant, print_json, settings, who

# The library is imported by the commands that use it, not here: `dncguard --help` and the
# other commands start without it (issue 12; tests/test_cli_startup.py).
if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    from ..config import Settings
    from ..engine.scrubber import Scrubber
    from ..engine.summary import ScrubSummary
    from ..models import Verdict

config_app = typer.Typer(help="Show the effective settings.", no_args_is_help=True)

_COLOURS = {"allow": "green", "defer": "yellow", "error": "magenta", "block": "red",
            "invalid": "dim"}

AT_HELP = "Dial time: ISO 8601 instant with an offset or Z (default: now)"


def _context_flags(state: str | None, zip_code: str | None, line_type: str | None,
                   region: str | None, timezone: str | None = None,
                   subject: str | None = None) -> dict[str, str]:
    flags = {"state": state, "zip": zip_code, "line_type": line_type, "region": region,
             "timezone": timezone, "subject": subject}
    return {k: v for k, v in flags.items() if v}


def scrub(
    input_path: Path = typer.Argument(..., metavar="INPUT",
                                      help="CSV, Parquet or Excel (.xlsx) file"),
    output: Path = typer.Option(..., "-o", "--output",
                                help="Verdict file (.csv, .parquet or .xlsx)"),
    at: str | None = typer.Option(None, "--at", help=AT_HELP),
    phone_column: list[str] | None = typer.Option(
        None, "--phone-column", help="Phone column (default: the only phone-like column); "
        "repeat to check several, each getting its own verdict columns"),
    campaign: str = typer.Option("default", "--campaign", help="Campaign profile name"),
    purpose: str | None = typer.Option(None, "--purpose",
                                       help="telemarketing | informational | collections"),
    call_type: str | None = typer.Option(None, "--call-type",
                                         help="manual | autodialed | prerecorded"),
    state: str | None = typer.Option(None, "--state", help="Default state for rows without one"),
    zip_code: str | None = typer.Option(None, "--zip", help="Default ZIP/postal code"),
    line_type: str | None = typer.Option(None, "--line-type", help="mobile | landline | voip"),
    region: str | None = typer.Option(None, "--region", help="Default region (US, CA, GB, AU)"),
    timezone: str | None = typer.Option(None, "--timezone",
                                        help="Default IANA time zone for rows without one"),
    subject: str | None = typer.Option(None, "--subject",
                                       help="Frequency-cap subject (default: the campaign)"),
    raw: bool = typer.Option(False, "--raw", help="Do not defuse spreadsheet formulas"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or table"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (no table)"),
) -> None:
    """Scrub a contact file: one verdict per row, written in input order, plus a summary."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ..engine.scrubber import Scrubber, check_output, count_rows

    check_output(input_path, output)  # before the input is read (one line, exit 2)
    cfg = settings()
    dial_time = parse_instant(at)
    scrubber = Scrubber(cfg, who=who())
    total = (count_rows(input_path) if input_path.is_file() and not quiet and not as_json
             else None)
    show = not quiet and total is not None and total >= cfg.progress_min_rows
    flags = _context_flags(state, zip_code, line_type, region, timezone, subject)
    columns: str | list[str] | None = phone_column[0] if phone_column and \
        len(phone_column) == 1 else phone_column or None
    try:
        if show:
            with Progress(TextColumn("scrubbing"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err_console, transient=True) as bar:
                task = bar.add_task("rows", total=total)
                summary = scrubber.scrub_file(
                    input_path, output, phone_column=columns, at=dial_time,
                    campaign=campaign, purpose=purpose, call_type=call_type, raw=raw,
                    progress=lambda n: bar.update(task, completed=n), defaults=flags)
        else:
            summary = scrubber.scrub_file(
                input_path, output, phone_column=columns, at=dial_time, campaign=campaign,
                purpose=purpose, call_type=call_type, raw=raw, defaults=flags)
    except Exception:
        # a verdict file appears only with its audit record (see Scrubber.scrub_file)
        err_console.print(f"no verdict file was written to {escape(str(output))}",
                          highlight=False)
        raise
    if as_json:
        from ..engine.scrubber import summary_path
        from ..engine.summary import summary_dict

        for warning in summary.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)

        print_json({"output": str(output), "summaryFile": str(summary_path(output)),
                    "auditJobs": summary.audit_jobs, "summary": summary_dict(summary)})
    elif not quiet:
        print_summary(summary, output)
        print_jobs(summary)
    else:  # quiet: no table, but what went unread is still said
        for warning in summary.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if summary.by_decision.get("error", 0):
        raise typer.Exit(3)


def print_jobs(summary: ScrubSummary) -> None:
    """The audit job id(s) the scrub was recorded under."""
    for name, job_id in summary.audit_jobs.items():
        what = f" ({name})" if name else ""
        console.print(f"audit job id{what}: {job_id} (dncguard report {job_id} -o report.html)",
                      soft_wrap=True)


def print_summary(summary: ScrubSummary, output: Path) -> None:
    from ..engine.scrubber import summary_path

    for warning in summary.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)

    table = Table("decision", "rows", title=f"{summary.total_rows:,} rows scrubbed")
    for decision, n in summary.by_decision.items():
        table.add_row(f"[{_COLOURS[decision]}]{decision}[/]", f"{n:,}")
    console.print(table)
    if summary.by_reason:
        reasons = Table("reason", "rows")
        for code, n in sorted(summary.by_reason.items(), key=lambda kv: -kv[1]):
            reasons.add_row(code, f"{n:,}")
        console.print(reasons)
    rate = summary.suppression_rate
    console.print(
        f"unique valid numbers: {summary.unique_valid:,}; duplicates: {summary.duplicates:,}; "
        f"suppression rate: {'n/a' if rate is None else f'{rate:.1%}'}; "
        f"{summary.rows_per_second or 0:,.0f} rows/s")
    if summary.row_error_count:
        console.print(f"[yellow]{summary.row_error_count:,} rows had bad input[/] "
                      "(see the detail column and rowErrors in the summary)")
    if summary.source_errors:
        console.print(f"[magenta]{summary.source_errors:,} rows could not be verified[/] "
                      "(decision error): fix the source and re-check them")
    console.print(f"verdicts: {output}\nsummary:  {summary_path(output)}")


def check(
    phone: str = typer.Argument(..., help="Phone number, E.164 or national format"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    at: str | None = typer.Option(None, "--at", help=AT_HELP),
    campaign: str = typer.Option("default", "--campaign", help="Campaign profile name"),
    purpose: str | None = typer.Option(None, "--purpose",
                                       help="telemarketing | informational | collections"),
    call_type: str | None = typer.Option(None, "--call-type",
                                         help="manual | autodialed | prerecorded"),
    state: str | None = typer.Option(None, "--state", help="The called party's state"),
    zip_code: str | None = typer.Option(None, "--zip", help="The called party's ZIP/postal code"),
    line_type: str | None = typer.Option(None, "--line-type", help="mobile | landline | voip"),
    region: str | None = typer.Option(None, "--region", help="Region for a national number"),
    timezone: str | None = typer.Option(None, "--timezone", help="The called party's IANA zone"),
    subject: str | None = typer.Option(None, "--subject",
                                       help="Frequency-cap subject, e.g. a debt id"),
) -> None:
    """Check one number and print its verdict."""
    from ..engine.scrubber import Scrubber

    cfg = settings()
    flags = _context_flags(state, zip_code, line_type, region, timezone, subject)
    _refuse_foreign_place(phone, flags, cfg.default_region)
    verdict = Scrubber(cfg, who=who()).check(  # recorded in the audit trail
        phone, at=parse_instant(at), campaign=campaign, purpose=purpose, call_type=call_type,
        **flags)
    if as_json:
        console.print_json(verdict.model_dump_json())
    else:
        print_verdict(verdict)


def _refuse_foreign_place(phone: str, flags: dict[str, str], default_region: str) -> None:
    """Refuse (:class:`ContextError`: exit 2 naming the flag, as ``rules when`` does) a flag
    that cannot be read, or a ``--state`` or ``--zip`` that cannot be read for the number's
    country (:func:`dncguard.engine.context.clean_context`: a UK postcode on a US number).
    Given to the check, such a flag gave an ``error`` verdict (CONTEXT_INVALID) and exit 0.
    A number that cannot be read is left to the check (an ``invalid`` verdict)."""
    from ..engine.context import clean_context
    from ..phones import normalise

    cleaned = clean_context(flags)
    number = normalise(phone, cleaned.get("region") or default_region)
    if number.ok and number.region is not None:
        clean_context(flags, country=number.region)


def print_verdict(v: Verdict) -> None:
    colour = _COLOURS[v.decision.value]
    console.print(f"[bold {colour}]{v.decision.value.upper()}[/]  {v.e164 or v.input}"
                  f"  region={v.region or '-'} state={v.state or '-'}"
                  + (f" zones={v.timezone} ({v.timezone_source})" if v.timezone else ""))
    for r in v.reasons:
        where = " ".join(x for x in (r.source and f"source={r.source}", r.list and f"list={r.list}",
                                     r.rule and f"rule={r.rule}") if x)
        console.print(f"  {r.code}: {r.detail} {where}".rstrip())
        if r.citation:
            console.print(f"    citation: {r.citation}")
    if v.next_allowed_at:
        console.print(f"  next allowed at: {v.next_allowed_at.isoformat()}")
    console.print(f"  dial time {v.dial_time.isoformat()}; data: "
                  + (", ".join(f"{k}@{d or 'undated'}" for k, d in v.versions.lists.items())
                     or "no lists")
                  + (f"; ruleset {v.versions.ruleset}" if v.versions.ruleset else ""))


def demo_dial_time(now: datetime) -> datetime:
    """The demo's default dial time: 14:00 in New York on the last Wednesday before ``now``
    that is no US federal holiday (a weekday afternoon: every decision shows, whatever the
    hour the demo is run)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    import holidays

    ny = ZoneInfo("America/New_York")
    day = now.astimezone(ny).date() - timedelta(days=1)
    federal = holidays.country_holidays("US", years=range(day.year - 1, day.year + 1))
    while day.weekday() != 2 or day in federal:
        day -= timedelta(days=1)
    return datetime(day.year, day.month, day.day, 14, 0, tzinfo=ny).astimezone(UTC)


def demo(
    home: Path | None = typer.Option(None, "--home", help="Folder for the demo (default: temp)"),
    at: str | None = typer.Option(None, "--at", help="Dial time (default: 14:00 New York "
                                  "time on the last Wednesday that is no federal holiday)"),
) -> None:
    """Create fictional demo lists and contacts in a fresh home, scrub them, show the result."""
    import asyncio

    from ..config import load_settings
    from ..demo import build_demo, sandbox_seed
    from ..engine.scrubber import Scrubber
    from ..lists.store import ListStore
    from ..sandbox import run_sandbox
    from ..sources.cxone import CxoneClient, CxoneSync, load_cxone

    folder = home or Path(tempfile.mkdtemp(prefix="dncguard-demo-"))
    for name in [k for k in os.environ if k.upper() == "DNCGUARD_HOME"]:
        del os.environ[name]  # (any case: two spellings of one variable are refused)
    os.environ["DNCGUARD_HOME"] = str(folder)
    today = datetime.now(UTC).date()
    output = folder / "verdicts.csv"
    # A CXone-compatible sandbox on loopback plays the tenant and an http-batch service.
    with run_sandbox(data=sandbox_seed()) as sandbox:
        os.environ.update(sandbox.env())
        cfg = load_settings(home=folder)
        files = build_demo(ListStore(cfg), folder / "data", today)
        cx = load_cxone(cfg)

        async def sync() -> None:
            async with CxoneClient(cx) as client:
                await CxoneSync(cfg, cx, client).sync()

        asyncio.run(sync())
        dial = parse_instant(at) or demo_dial_time(datetime.now(UTC))
        summary = Scrubber(cfg, who="demo").scrub_file(files.contacts, output, at=dial)
        for name in list(sandbox.env()):
            os.environ.pop(name, None)
    job_id = summary.audit_jobs[""]
    shown = Table("row", "phone", "decision", "reasons", title="demo verdicts")
    for column in shown.columns:  # reason codes wrap, never end in "…"
        column.overflow = "fold"
    with output.open(encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh), 1):
            d = row["decision"]
            shown.add_row(str(n), row["phone"], f"[{_COLOURS[d]}]{d}[/]", row["reason_codes"])
    console.print(shown)
    console.print(f"dial time: {dial.isoformat()} (--at to choose another)")
    print_summary(summary, output)
    # soft wrap: each command stays one line to copy, whatever the terminal width
    console.print(f"\ndemo home: {folder}\ntry: DNCGUARD_HOME={folder} dncguard lists ls\n"
                  f"     DNCGUARD_HOME={folder} dncguard report {job_id} -o report.html",
                  soft_wrap=True, highlight=False)


def campaign_checks(scrubber: Scrubber) -> dict[str, dict[str, object]]:
    """What each campaign really checks: its DNC lists and sources, the wireless lists the
    rules read, and that consent and attempts apply (a profile cannot switch those off)."""
    cfg = scrubber.settings
    names = ["default", *sorted(n for n in cfg.campaigns if n != "default")]
    always = {c.name for c in scrubber.checks if c.always}  # the local lists, the rules
    sources = sorted(scrubber.known_names() - set(scrubber.line_types.versions()) - always)
    out: dict[str, dict[str, object]] = {}
    for name in names:
        try:
            ctx = scrubber.context(campaign=name)
        except ContextError as exc:
            out[name] = {"error": exc.why}
            continue
        out[name] = {
            "purpose": ctx.purpose, "call_type": ctx.call_type,
            "dnc_lists": [n for n in sources if ctx.selects(n)],
            "wireless_lists": [n for n in scrubber.line_types.versions()
                               if ctx.reads_wireless(n)],
            "consent": True, "attempts": True,
        }
    return out


#: Secrets with a file default: (section, field) -> the file under the home.
_SECRET_FILES = {("audit", "hmac_key"): "audit/hmac.key", ("prefilter", "salt"): "prefilter/salt"}


def _is_secret(annotation: object) -> bool:
    from typing import get_args

    from pydantic import SecretStr

    return annotation is SecretStr or SecretStr in get_args(annotation)


def secret_state(cfg: Settings, section: BaseSettings, table: str | None, name: str
                 ) -> dict[str, object]:
    """Whether a secret is set and where from, never its value: ``source`` is ``env`` (the
    variable in ``where``), ``config`` (the TOML file and table), ``file`` (a key file under
    the home) or None (not set)."""
    value = getattr(section, name)
    if value is not None and value.get_secret_value():
        prefix = str(section.model_config.get("env_prefix", ""))
        var = (prefix + name).upper()
        if any(k.upper() == var and v for k, v in os.environ.items()):
            return {"set": True, "source": "env", "where": var}
        where = f"{cfg.config_file} [{table}]" if table else str(cfg.config_file)
        return {"set": True, "source": "config", "where": where}
    default = _SECRET_FILES.get((table or "core", name))
    if default is not None and (cfg.home / default).is_file():
        return {"set": True, "source": "file", "where": str(cfg.home / default)}
    return {"set": False, "source": None, "where": None}


def _secret_text(cfg: Settings, table: str, name: str, state: dict[str, object]) -> str:
    if state["set"]:
        return f"set, from {state['source']} {state['where']}"
    default = _SECRET_FILES.get((table, name))
    return f"not set (generated into {cfg.home / default} on first use)" if default \
        else "not set"


def effective(cfg: Settings, table: str | None, section: BaseSettings) -> dict[str, object]:
    """A settings section as it is in effect: secrets as :func:`secret_state`, URLs with
    their passwords masked, the database URL as used (the default spelled out)."""
    from ..config import mask_url

    values: dict[str, object] = json.loads(section.model_dump_json())
    for name, field in type(section).model_fields.items():
        if _is_secret(field.annotation):
            values[name] = secret_state(cfg, section, table, name)
        elif isinstance(values.get(name), str):
            values[name] = mask_url(str(values[name]))
    if table is None:
        values["database_url"] = mask_url(cfg.db_url)
    return values


@config_app.command("show")
def config_show(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Print the effective settings (secrets: only whether they are set and from where;
    passwords in URLs masked). What each campaign checks needs the database (the lists it
    holds): while it is unavailable, the settings are still printed, ``campaign_checks``
    says so, and the command ends with the database error (exit 2)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..config import all_sections
    from ..engine.scrubber import Scrubber

    cfg = settings()
    data: dict[str, object] = {"core": effective(cfg, None, cfg)}
    for name, section in all_sections(cfg).items():
        data[name] = effective(cfg, name, section)
    failed: SQLAlchemyError | None = None
    try:
        data["campaign_checks"] = campaign_checks(Scrubber(cfg))
    except SQLAlchemyError as exc:  # e.g. an unreachable PostgreSQL
        failed = exc
        data["campaign_checks"] = {"unavailable": "the database is unavailable: what each "
                                   "campaign checks depends on the lists it holds"}
    _print_settings(cfg, data, as_json)
    if failed is not None:
        raise failed  # the command line's one line about the database, and exit 2


def _print_settings(cfg: Settings, data: dict[str, object], as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    console.print(f"config file: {cfg.config_file or '(none)'}", soft_wrap=True)
    for name, values in data.items():
        table = Table("setting", "value", title=name)
        assert isinstance(values, dict)
        for k, v in values.items():
            if isinstance(v, dict) and set(v) == {"set", "source", "where"}:
                text = _secret_text(cfg, name, k, v)
            else:
                text = v if isinstance(v, str) else json.dumps(v)
            table.add_row(k, escape(text))
        console.print(table)
