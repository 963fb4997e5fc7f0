"""``dncguard rules ...``, ``dncguard consent ...`` and ``dncguard attempts ...``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from ..errors import InputError
from ._common import (
    JSON_HELP,
    console,
    e164,
    err_console,
    iso,
    parse_date,
    plural,
    print_json,
    settings,
    who,
)

# The rules engine is imported by the commands, not here, so that `dncguard --help` starts fast.
if TYPE_CHECKING:
    from ..sources.rules.schema import RuleBase
    from ..sources.rules.stores import ConsentRecord, ImportReport

#: ``dncguard.sources.rules.schema``'s PURPOSES, CALL_TYPES, LINE_TYPES and CONSENT_TYPES,
#: spelled out for the help texts (building the command tree must not import the rules
#: engine); the commands validate against the schema's own tuples, and
#: tests/test_cli_startup.py checks that they agree.
PURPOSES_HELP = ("telemarketing", "informational", "collections")
CALL_TYPES_HELP = ("manual", "autodialed", "prerecorded")
LINE_TYPES_HELP = ("mobile", "landline", "voip")
CONSENT_TYPES_HELP = ("express", "express_written", "ebr_purchase", "ebr_inquiry")

rules_app = typer.Typer(help="Show the regulatory rules and when a number may be called.",
                        no_args_is_help=True)
consent_app = typer.Typer(help="Consent and established-business-relationship records.",
                          no_args_is_help=True)
attempts_app = typer.Typer(help="The call-attempt log that frequency caps count.",
                           no_args_is_help=True)


def _choice(value: str | None, allowed: tuple[str, ...], flag: str) -> str | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v not in allowed:
        from ..sources.rules.stores import quoted  # masked: it may be a phone number

        raise typer.BadParameter(f"{quoted(value)} is not one of {', '.join(allowed)}",
                                 param_hint=flag)
    return v


def _instant(value: str | None, flag: str = "--at") -> datetime | None:
    """:func:`._common.parse_instant`, the value quoted masked in a refusal (a phone number
    given in the wrong place is still personal data)."""
    from ..sources.rules.stores import quoted
    from ._common import parse_instant

    try:
        return parse_instant(value, flag)
    except typer.BadParameter as exc:
        assert value is not None
        raise typer.BadParameter(exc.message.replace(repr(value), quoted(value)),
                                 param_hint=flag) from None


def _day(value: str | None, flag: str) -> date | None:
    """:func:`._common.parse_date`, the value quoted masked in a refusal."""
    from ..sources.rules.stores import quoted

    try:
        return parse_date(value, flag)
    except typer.BadParameter:
        assert value is not None
        raise typer.BadParameter(f"{quoted(value)} is not a date (YYYY-MM-DD)",
                                 param_hint=flag) from None


def _summary(rule: RuleBase) -> str:
    from ..sources.rules.schema import (
        CallingWindowRule,
        ConsentRequiredRule,
        EbrRule,
        FrequencyCapRule,
        HolidayBanRule,
        RegistryRule,
        WirelessRestrictedRule,
    )

    scope = f"[{', '.join(rule.applies_to)}; {', '.join(rule.call_types)}"
    scope += f"; {', '.join(rule.line_types)}]" if rule.line_types else "]"
    if isinstance(rule, CallingWindowRule):
        def w(x: object) -> str:
            return "none" if x is None else str(x)
        text = f"Mon-Fri {w(rule.weekday)}, Sat {w(rule.saturday)}, Sun {w(rule.sunday)}"
        if rule.extra_zones:
            text += f"; also in {', '.join(rule.extra_zones)}"
    elif isinstance(rule, HolidayBanRule):
        text = f"no calls on {rule.holiday_set}"
    elif isinstance(rule, FrequencyCapRule):
        text = f"max {rule.max_attempts} per {rule.window_hours} h per subject"
        if rule.cooldown_after:
            text += f"; {rule.cooldown_hours} h pause after {', '.join(rule.cooldown_after)}"
    elif isinstance(rule, ConsentRequiredRule):
        text = "; ".join(f"{p}: {' or '.join(v)}" for p, v in rule.accepted.items())
    elif isinstance(rule, WirelessRestrictedRule):
        text = f"no calls to wireless without {' or '.join(rule.lifted_by)} consent"
    elif isinstance(rule, RegistryRule):
        text = f"{rule.registry} ({rule.list_kind}), {rule.cadence}, fresh {rule.max_age_days} d"
    elif isinstance(rule, EbrRule):
        text = (f"purchase {rule.window('purchase') or 'none'}, "
                f"inquiry {rule.window('inquiry') or 'none'}")
    else:
        text = "no calls during a declared state of emergency"
    return f"{text} {scope}"


@rules_app.command("show")
def show(jurisdiction: str = typer.Argument(..., help="US, US-FL, CA, GB or AU"),
         as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Print a jurisdiction's rules with citations, dates and confidence."""
    from ..sources.rules.settings import RulesSettings

    cfg = settings()
    ruleset = cfg.section(RulesSettings).ruleset()
    key = jurisdiction.strip().upper()
    rf = ruleset.files.get(key)
    if rf is None:
        raise typer.BadParameter(f"no rules for {jurisdiction!r}; known: "
                                 f"{', '.join(ruleset.jurisdictions())}",
                                 param_hint="JURISDICTION")
    if as_json:
        console.print_json(json.dumps({"ruleset": ruleset.version,
                                       **rf.model_dump(mode="json", exclude_none=True)}))
        return
    console.print(f"[bold]{rf.jurisdiction}[/] {rf.name}  (ruleset {ruleset.version})")
    if rf.notes:
        console.print(rf.notes)
    for g in rf.applies:
        console.print(f"applies {', '.join(g.rules)}: {g.citation} ({g.confidence})")
    if not rf.rules:
        console.print("no rules of its own: the federal/national rules apply")
        return
    table = Table("rule", "kind", "what", "citation", "effective", "confidence")
    for column in table.columns:  # an id or a citation wraps, never ends in "…"
        column.overflow = "fold"
    for r in rf.rules:
        period = f"{r.effective}" + (f" to {r.expires}" if r.expires else "")
        table.add_row(f"{rf.jurisdiction}:{r.id}", r.kind, _summary(r), r.citation, period,
                      r.confidence)
    console.print(table)
    for name, hs in rf.holiday_sets.items():
        console.print(f"[bold]{name}[/] ({hs.confidence}; {hs.source}): "
                      + ", ".join(d.name for d in hs.days))


@rules_app.command("when")
def when(
    phone: str = typer.Argument(..., help="Phone number (E.164 or national format)"),
    at: str | None = typer.Option(None, "--at", help="Start: ISO 8601 instant (default: now)"),
    campaign: str = typer.Option("default", "--campaign", help="Campaign profile name"),
    state: str | None = typer.Option(None, "--state", help="The contact's state"),
    zip_code: str | None = typer.Option(None, "--zip", help="The contact's ZIP/postal code"),
    purpose: str | None = typer.Option(None, "--purpose", help=" | ".join(PURPOSES_HELP)),
    call_type: str | None = typer.Option(None, "--call-type", help=" | ".join(CALL_TYPES_HELP)),
    line_type: str | None = typer.Option(None, "--line-type", help=" | ".join(LINE_TYPES_HELP)),
    region: str | None = typer.Option(None, "--region", help="Default region (US, CA, GB, AU)"),
    timezone: str | None = typer.Option(None, "--timezone", help="Known IANA time zone"),
    days: int = typer.Option(7, "--days", min=1, max=14, help="How many days ahead"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Print the next legal calling windows of a number (time rules, all candidate zones)."""
    from ..engine.context import clean_context
    from ..phones import mask, normalise
    from ..sources.protocol import CheckContext
    from ..sources.rules.schema import CALL_TYPES, PURPOSES
    from ..sources.rules.source import RulesCheck

    cfg = settings()
    n = normalise(phone, region or cfg.default_region)
    if not n.ok or n.e164 is None or n.region is None:
        raise typer.BadParameter(f"not a usable number: {n.message}", param_hint="PHONE")
    profile = cfg.campaign(campaign)
    start = _instant(at) or datetime.now(UTC)
    ctx = CheckContext(at=start.astimezone(UTC), campaign=campaign,
                       purpose=_choice(purpose, PURPOSES, "--purpose") or profile.purpose,
                       call_type=_choice(call_type, CALL_TYPES, "--call-type")
                       or profile.call_type, profile=profile)
    extra = clean_context({"state": state, "zip": zip_code, "timezone": timezone,
                           "line_type": line_type}, country=n.region)
    check = RulesCheck(cfg)
    result = check.when(n.e164, n.region, extra.get("state"), extra, ctx, days=days)
    if as_json:
        doc = result.document(n.e164, ruleset=check.ruleset.version, ctx=ctx, days=days,
                              rules_enabled=check.config.enabled)
        console.print_json(doc.model_dump_json(by_alias=True))
        return
    zones = [ZoneInfo(z) for z in result.location.zones]
    console.print(f"[bold]{mask(n.e164)}[/] zones {', '.join(result.location.zones)} "
                  f"(from {result.location.how}); jurisdictions {', '.join(result.jurisdictions)}"
                  f"; {ctx.purpose}, {ctx.call_type}")
    if not result.windows:
        console.print(f"[red]no legal window in the next {days} days[/]")
    table = Table("from (UTC)", "to (UTC)", *[z.key for z in zones])
    for a, b in result.windows:
        table.add_row(f"{a:%a %Y-%m-%d %H:%M}", f"{b:%a %Y-%m-%d %H:%M}",
                      *[f"{a.astimezone(z):%a %H:%M}-{b.astimezone(z):%H:%M}" for z in zones])
    if result.windows:
        console.print(table)
    for r in result.reasons:
        console.print(f"  {r.code} ({r.decision.value}): {r.detail}", highlight=False)


def _print_report(report: ImportReport, what: str, as_json: bool) -> None:
    rejected = len({e.line for e in report.errors})
    if as_json:
        print_json({"rows": report.rows, "added": report.added, "updated": report.updated,
                    "duplicates": report.duplicates, "rejectedRows": rejected,
                    "errors": [{"line": e.line, "field": e.field, "message": e.message}
                               for e in report.errors]})
        return
    if report.errors:  # an import is all or nothing: a bad row writes nothing
        console.print(f"{what}: nothing imported, {rejected:,} rows rejected of "
                      f"{report.rows:,}; correct them and import the whole file again")
    else:
        updated = f"{report.updated:,} updated (outcome added), " if report.updated else ""
        console.print(f"{what}: {report.added:,} added, {updated}{report.duplicates:,} "
                      f"already stored, 0 rows rejected of {report.rows:,}")
    for e in report.errors[:50]:
        err_console.print(f"  {e}", highlight=False)
    if len(report.errors) > 50:
        err_console.print(f"  ... and {len(report.errors) - 50} more")


@consent_app.command("import")
def consent_import(
    file: Path = typer.Argument(..., help="CSV with phone,type,date[,expires][,revoked]"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import consent / EBR records, all or nothing: bad rows are reported with the file's
    line number and the field, and then nothing is imported (exit 1)."""
    from ..sources.rules.stores import ConsentStore

    report = ConsentStore(settings()).import_csv(file, who=who())
    _print_report(report, "consent records", as_json)
    if report.errors:
        raise typer.Exit(1)


@consent_app.command("add")
def consent_add(
    phone: str = typer.Argument(...),
    type_: str = typer.Option(..., "--type", help=" | ".join(CONSENT_TYPES_HELP)),
    granted: str = typer.Option(..., "--date", help="Date of consent / purchase / inquiry"),
    expires: str | None = typer.Option(None, "--expires", help="Expiry date"),
    revoked: str | None = typer.Option(None, "--revoked", help="Revocation date"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Add one consent / EBR record."""
    from ..phones import mask
    from ..sources.rules.schema import CONSENT_TYPES
    from ..sources.rules.stores import ConsentStore

    kind = _choice(type_, CONSENT_TYPES, "--type")
    when_ = _day(granted, "--date")
    assert kind is not None and when_ is not None
    store = ConsentStore(settings())
    number = e164(phone, store.region)
    until, gone = _day(expires, "--expires"), _day(revoked, "--revoked")
    try:
        added = store.add(number, kind, when_, expires=until, revoked=gone, source="cli",
                          who=who())
    except InputError as exc:  # a date that cannot be right: one line naming its flag
        field, _, why = str(exc).partition(": ")
        flag = {"consent date": "--date", "expires": "--expires", "revoked": "--revoked"}
        if field not in flag:
            raise
        raise typer.BadParameter(why, param_hint=flag[field]) from None
    if as_json:
        print_json({"number": mask(number), "type": kind, "date": when_.isoformat(),
                    "expires": iso(until), "revoked": iso(gone), "added": added})
        return
    console.print("added" if added else "already stored")


def consent_status(records: list[ConsentRecord], rec: ConsentRecord, on: date) -> str:
    """``revocation`` (a revocation-only record: ``consent revoke`` of a number that held
    nothing to revoke), ``revoked`` (it carries a revocation date on or before ``on``, or a
    revocation then covers it: a revocation revokes every consent granted on or before it),
    ``expired`` (its expiry date has come), else ``current``. EBR records also lapse after
    their jurisdiction's window, and after any revocation, which only the rules apply
    (``dncguard check``, ``rules when``)."""
    from ..sources.rules.stores import REVOCATION

    if rec.type == REVOCATION:
        return "revocation"
    revocations = [r.revoked for r in records if r.revoked is not None and r.revoked <= on]
    if (rec.revoked is not None and rec.revoked <= on) or (
            revocations and rec.granted <= max(revocations)):
        return "revoked"
    if rec.expires is not None and on >= rec.expires:
        return "expired"
    return "current"


@consent_app.command("ls")
def consent_ls(
    phone: str = typer.Argument(..., help="Phone number (E.164 or national format)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """A number's consent and EBR records, oldest first, with their status today (UTC)."""
    from ..phones import mask
    from ..sources.rules.stores import ConsentStore
    from ..store import utcnow

    store = ConsentStore(settings())
    number = e164(phone, store.region)
    records = store.records(number)
    today = utcnow().date()
    if as_json:
        print_json({"number": mask(number), "asOf": today.isoformat(), "records": [
            {"type": r.type, "date": r.granted.isoformat(), "expires": iso(r.expires),
             "revoked": iso(r.revoked), "status": consent_status(records, r, today)}
            for r in records]})
        return
    if not records:
        console.print(f"{mask(number)}: no consent or EBR records")
        return
    table = Table("type", "date", "expires", "revoked", "status",
                  title=f"{mask(number)}: consent records (status on {today.isoformat()}, UTC)")
    for r in records:
        table.add_row(r.type, r.granted.isoformat(), iso(r.expires) or "",
                      iso(r.revoked) or "", consent_status(records, r, today))
    console.print(table)


@consent_app.command("revoke")
def consent_revoke(
    phone: str = typer.Argument(..., help="Phone number (E.164 or national format)"),
    type_: str | None = typer.Option(None, "--type", help="Only this consent type: "
                                     + " | ".join(CONSENT_TYPES_HELP) + " (default: every type)"),
    on: str | None = typer.Option(None, "--on", help="Revocation date (default: today, UTC)"),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit trail)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Revoke a number's consents as of a date (a revocation record is added for each
    consent type held then; the history stays). With none held, the revocation is stored on
    its own: a consent dated on or before it that arrives later is revoked too."""
    from ..phones import mask
    from ..sources.rules.schema import CONSENT_TYPES
    from ..sources.rules.stores import ConsentStore
    from ..store import utcnow

    kind = _choice(type_, CONSENT_TYPES, "--type")
    day = _day(on, "--on") or utcnow().date()
    store = ConsentStore(settings())
    number = e164(phone, store.region)
    done = store.revoke(number, day, type_=kind, who=who(), why=reason)
    if as_json:
        print_json({"number": mask(number), "type": kind, "on": day.isoformat(),
                    "revoked": done})
        return
    what = f"{kind} consent" if kind else "consent"
    if done:
        console.print(f"revoked {plural(done, what + ' record')} of {mask(number)} as of "
                      f"{day.isoformat()}")
    else:
        console.print(f"{mask(number)} holds no {what} not yet revoked on {day.isoformat()}; "
                      f"the revocation is on file: every consent of the number dated on or "
                      f"before then is revoked, also one recorded later")


@attempts_app.command("record")
def attempts_record(
    phone: str = typer.Argument(...),
    at: str = typer.Option(..., "--at", help="When the attempt was made (ISO 8601 instant)"),
    campaign: str = typer.Option("default", "--campaign",
                                 help="Campaign profile name (default, or a configured "
                                      "\\[campaigns.NAME])"),
    purpose: str = typer.Option(..., "--purpose", help=" | ".join(PURPOSES_HELP)
                                + " (required: the caps count attempts by purpose)"),
    subject: str | None = typer.Option(None, "--subject",
                                       help="Same-subject key (default: the campaign; a debt "
                                            "id for collections)"),
    outcome: str | None = typer.Option(None, "--outcome",
                                       help="conversation | voicemail | no_answer | busy | "
                                            "failed (any case)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Record one call attempt (an attempt stamped more than 5 minutes ahead of now, a
    campaign that names no campaign profile and a blank subject are refused)."""
    from ..phones import mask
    from ..sources.rules.schema import OUTCOMES, PURPOSES
    from ..sources.rules.stores import DUPLICATE, UPDATED, AttemptStore, subject_key

    instant = _instant(at)
    assert instant is not None
    outcome = _choice(outcome, OUTCOMES, "--outcome") if outcome and outcome.strip() else None
    store = AttemptStore(settings())
    number = e164(phone, store.region)
    why = _choice(purpose, PURPOSES, "--purpose")
    assert why is not None
    try:
        done = store.record_status(number, instant, campaign=campaign, purpose=why,
                                   subject=subject, outcome=outcome, who=who())
    except InputError as exc:  # one line naming the flag of the field refused
        field, _, reason = str(exc).partition(": ")
        flag = {"at": "--at", "campaign": "--campaign", "purpose": "--purpose",
                "subject": "--subject", "outcome": "--outcome"}
        if field not in flag:
            raise
        raise typer.BadParameter(reason, param_hint=flag[field]) from None
    if as_json:
        print_json({"number": mask(number), "at": instant.astimezone(UTC).isoformat(),
                    "campaign": campaign.strip(), "purpose": why,
                    "subject": subject_key(campaign if subject is None else subject),
                    "outcome": outcome or None, "added": done != DUPLICATE})
        return
    console.print("already recorded" if done == DUPLICATE else
                  "outcome recorded on the stored attempt" if done == UPDATED else "recorded")


@attempts_app.command("import")
def attempts_import(
    file: Path = typer.Argument(
        ..., help="CSV with phone,at[,campaign][,purpose][,subject][,outcome]"),
    purpose: str | None = typer.Option(
        None, "--purpose", help="The purpose of the rows whose purpose cell is empty (or of "
                                "every row, without a purpose column): "
                                + " | ".join(PURPOSES_HELP) + " (default: none; such a row "
                                "is rejected)"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import call attempts, all or nothing: bad rows are reported with the file's line
    number and the field, and then nothing is imported (exit 1). Every row needs its
    purpose; a campaign must name a campaign profile."""
    from ..sources.rules.schema import PURPOSES
    from ..sources.rules.stores import AttemptStore

    default = _choice(purpose, PURPOSES, "--purpose")
    report = AttemptStore(settings()).import_csv(file, who=who(), purpose=default)
    _print_report(report, "attempts", as_json)
    if report.errors:
        raise typer.Exit(1)
