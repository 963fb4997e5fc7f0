"""The rules' per-number reference evaluator: the test oracle of the grouped evaluation.

It finds each number's reasons on its own, straight from the rule parts of
:class:`~dncguard.sources.rules.RulesCheck` (location, plan, time reasons, consent, caps,
registry, a US number's by its own area code) with no location or reason shared between
numbers, so that
``tests/rules/test_grouped_equivalence.py`` can require the grouped evaluation that scrubs use
(:meth:`RulesCheck.evaluate_groups`) to give exactly these reasons. It is test code, kept
out of the package (issue 13): nothing in the product takes this road.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from dncguard.lists.store import ListInfo
from dncguard.models import Reason
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.rules import RulesCheck, resolve_location
from dncguard.sources.rules._engine import TimePlan
from dncguard.sources.rules.stores import (
    Attempt,
    ConsentRecord,
    attempts_table,
    consent_table,
    subject_key,
)
from dncguard.store import as_utc

#: Consent that lifts the registry reasons (written consent or an established business
#: relationship; oral express consent does not), as the rules define it.
LIFTS_REGISTRY = frozenset({"express_written", "ebr_purchase", "ebr_inquiry"})


def reference_reasons(check: RulesCheck, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
    """Every number's rule reasons, each number found on its own."""
    if not check.config.enabled:
        return [[] for _ in range(len(batch))]
    at = ctx.at.astimezone(UTC)
    consents, attempts, every = _records(check, batch.e164, at)
    infos = check.store.all()
    out = []
    for i, e164 in enumerate(batch.e164):
        extra = batch.extra[i] if i < len(batch.extra) else {}
        mine = attempts.get(e164, [])
        subject = subject_key(extra.get("subject"))
        if subject:  # a subject the row names: its attempts to the holder's other numbers too
            mine = sorted([*mine, *(a for n, a in every if a.subject == subject and n != e164)],
                          key=lambda a: a.at)
        out.append(_one(check, e164, batch.region[i], batch.state[i], extra, ctx,
                        consents.get(e164, []), mine, infos))
    return out


def _records(check: RulesCheck, e164s: list[str], at: datetime) -> tuple[
        dict[str, list[ConsentRecord]], dict[str, list[Attempt]], list[tuple[str, Attempt]]]:
    """Every consent record, and every attempt inside the longest cap's window, of these
    numbers, and every attempt inside it to any number: read with plain queries of their
    own, not the product's batch lookups."""
    wanted = set(e164s)
    consents: dict[str, list[ConsentRecord]] = {}
    attempts: dict[str, list[Attempt]] = {}
    every: list[tuple[str, Attempt]] = []
    c, a = consent_table.c, attempts_table.c
    since = at - timedelta(hours=check._max_cap_hours)
    with check.consents.engine.connect() as conn:
        for row in conn.execute(select(c.e164, c.type, c.granted, c.expires, c.revoked)):
            if row.e164 in wanted:
                consents.setdefault(row.e164, []).append(
                    ConsentRecord(row.type, row.granted, row.expires, row.revoked))
        if check._max_cap_hours:
            rows = conn.execute(select(a.e164, a.at, a.campaign, a.purpose, a.subject,
                                       a.outcome).order_by(a.at, a.id))
            for row in rows:
                when = as_utc(row.at)
                if when is None or when < since:
                    continue
                attempt = Attempt(when, row.campaign, row.purpose,
                                  subject_key(row.subject) or "", row.outcome)
                every.append((row.e164, attempt))
                if row.e164 in wanted:
                    attempts.setdefault(row.e164, []).append(attempt)
    return consents, attempts, every


def _one(check: RulesCheck, e164: str, region: str | None, state: str | None,
         extra: Mapping[str, str], ctx: CheckContext, records: list[ConsentRecord],
         attempts: list[Attempt], infos: list[ListInfo]) -> list[Reason]:
    at = ctx.at.astimezone(UTC)
    region = (region or check.settings.default_region).upper()
    loc = resolve_location(e164, region, state, extra, check.ruleset)
    days = _calling_dates(at, loc.zones)
    jur = check.jurisdictions(region, loc)
    line = check._line(extra)
    reasons: list[Reason] = []
    plan: TimePlan | None = None
    if not loc.known and check.config.unknown_timezone == "error":
        reasons.append(check._unknown_zone(e164, loc))
    else:
        plan = check.plan(loc, check.time_jurisdictions(region, loc), ctx, line)
        reasons.extend(check._time_reasons(plan, at))
    valid, exempt = check._exempting(records, at, jur, loc)
    reasons.extend(exempt)
    reasons.extend(check._assumed(ctx, line, days, jur))
    reasons.extend(check._consent_rules(valid, ctx, line, days, jur))
    reasons.extend(check._caps(attempts, ctx, line, days, jur, at, extra, plan))
    if not (valid & LIFTS_REGISTRY):
        npa = int(e164[2:5]) if region == "US" and e164.startswith("+1") else None
        # a registry's age counts on the latest calling date (the party's own, when ahead of UTC)
        reasons.extend(check._registry(infos, ctx, line, days, jur, days[1], npa=npa)[0])
    return reasons


def _calling_dates(at: datetime, zones: tuple[str, ...]) -> tuple[date, date]:
    """The earliest and latest date at ``at`` in UTC and in each zone that loads: the dates
    a rule's effective and expiry dates are read in."""
    found = {at.astimezone(UTC).date()}
    for name in zones:
        try:
            found.add(at.astimezone(ZoneInfo(name)).date())
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return min(found), max(found)
