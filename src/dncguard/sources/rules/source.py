"""``RulesCheck``: the regulatory rules as a :class:`dncguard.sources.protocol.Check`.

Per number it finds the candidate zones and states (:mod:`.zones`), the jurisdictions whose
rules apply (the number's country, plus every candidate US state), and returns the rule reasons:
time rules (defer with ``next_allowed_at``), frequency caps (defer), consent and wireless
rules (block), registry freshness and presence (error), and exemptions (allow, lifting
national and state registry hits).
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from ...config import CampaignProfile, Settings
from ...engine.findings import Findings
from ...errors import ConfigError
from ...io.verdict_file import ceil_second
from ...lists.snapshots import NANP_BASE, PER_AREA, nanp_areas
from ...lists.store import ListInfo, ListStore
from ...models import DataVersions, Decision, Reason
from ...phones import mask
from ...places import CA_POSTAL_PROVINCES, postal_state
from ..protocol import CheckBase
from . import codes
from ._engine import CampaignWindow, TimePlan, Violation, local_text
from ._holidays import HolidayCalendar
from ._loader import Ruleset
from ._zones import Location, resolve_location, zone_key_array, zone_keys
from .freshness import FreshnessPolicy
from .schema import (
    CONSENT_TYPES,
    LINE_TYPES,
    OUTCOMES,
    CallingWindowRule,
    ConsentRequiredRule,
    EbrRule,
    EmergencyBanRule,
    FrequencyCapRule,
    HolidayBanRule,
    RegistryRule,
    RuleBase,
    Window,
    WirelessRestrictedRule,
    outcome_key,
)
from .settings import EmergencyDeclaration, RulesSettings, emergencies_problem
from .stores import (
    CLOCK_SKEW,
    PROBE_EMPTY_FROM,
    Attempt,
    AttemptStore,
    ConsentRecord,
    ConsentStore,
    subject_key,
)
from .when import When


def _factorize(values: list[Any]) -> npt.NDArray[np.int64]:
    """Small integer ids of hashable values (equal values, equal ids)."""
    ids: dict[Any, int] = {}
    return np.fromiter((ids.setdefault(v, len(ids)) for v in values), dtype=np.int64,
                       count=len(values))


if TYPE_CHECKING:
    from ..protocol import Batch, CheckContext

log = logging.getLogger(__name__)

SOURCE = "rules"
_PLAN_CACHE_MAX = 20_000
#: (day, call, campaign) combinations whose registry and consent reasons are kept
_DAY_CACHE_MAX = 256
#: The calling dates of a number at a moment: the earliest and the latest calendar date among
#: UTC's and its candidate zones' (:func:`_dates`; every date between them is one of them).
Days = tuple[date, date]
#: The consent that lifts national and state registry hits: a signed written agreement (47 CFR
#: 64.1200(c)(2)(ii), 16 CFR 310.4(b)(1)(iii)(B)(1)). Oral ``express`` consent does not; it
#: still satisfies a ``consent_required`` rule whose ``accepted`` list names it.
#: How a number of unknown line type is judged, by ``rules.unknown_line_type``: ``any`` as a
#: line of either kind (the wireless rules and the residential ones, as a VoIP line: the
#: strict reading), ``mobile`` by the wireless rules only, ``ignore`` as a landline (the
#: residential rules only: "ignore" drops the wireless rules, never the others).
UNKNOWN_LINE_IS = {"any": "voip", "mobile": "mobile", "ignore": "landline"}
_LINE_AS = {"any": "a line of either kind (mobile and residential rules)",
            "mobile": "a mobile line", "ignore": "a landline"}
_WRITTEN = frozenset({"express_written"})
_EBR = frozenset({"ebr_purchase", "ebr_inquiry"})
#: What lifts registry hits: written consent, or an established business relationship
#: within its window (and not ended by a do-not-call request, see ``_valid``).
_LIFTS_REGISTRY = _WRITTEN | _EBR
#: Canada's provinces and territories, as candidate states name them (dncguard.places)
_PROVINCES = frozenset({*CA_POSTAL_PROVINCES.values(), "NU"})


def _starts_cooldown(outcome: str | None, after: set[str | None]) -> bool:
    """Whether an attempt's stored outcome starts a cooldown that follows ``after`` (outcome
    keys): one of them in any case, or a non-blank outcome that is none of OUTCOMES."""
    k = outcome_key(outcome)
    return k in after or (k is not None and k not in OUTCOMES)


#: The countries whose national registry is downloaded per area code: the US National Do Not
#: Call Registry (a seller subscribes to area codes and gets one file each, the territories'
#: included) and Canada's National DNCL (a telemarketer subscribes to area codes, or to all of
#: them). A national list of either vouches only for the area codes it holds.
AREA_CODE_REGISTRIES = frozenset({"US", "CA"})

#: (lists folder, name, snapshot file, last change, count) -> the area codes of that version
#: of a US or CA national list (see :func:`list_area_codes`): each version is read once per process,
#: however often the checks are built again around it.
_AREA_CODES: dict[tuple[object, ...], frozenset[int]] = {}
_AREA_CODES_MAX = 256
#: How many of a list's area codes a REGISTRY_MISSING detail names.
_AREAS_SHOWN = 12


def list_area_codes(store: ListStore, info: ListInfo) -> frozenset[int]:
    """The area codes (NPA, as integers) a US or Canadian national list covers.

    Both registries are downloaded per area code (:data:`AREA_CODE_REGISTRIES`), so a list
    vouches only for the area codes of its numbers: those of its
    snapshot (from the memory map, without reading the numbers:
    :func:`dncguard.lists.snapshots.nanp_areas`) and of its database entries that never expire
    (one that expires vouches for nothing once it has). Found once per version of the list (its
    snapshot file and last change) per process; raises what reading the snapshot or the
    database raises (the caller fails closed)."""
    key = (str(store.settings.lists_dir), info.name, info.current_file, info.updated_at,
           info.count)
    found = _AREA_CODES.get(key)
    if found is not None:
        return found
    areas: set[int] = set()
    if info.current_file is not None:
        areas.update(nanp_areas(store.open_current(info).current()).tolist())
    for entry in store.entries(info.name):
        value = str(entry["value"])
        if not entry["removed"] and entry["expires_at"] is None and len(value) == 12 \
                and value.startswith("+1") and value[1:].isdigit():
            areas.add(int(value[2:5]))
    found = frozenset(areas)
    if len(_AREA_CODES) >= _AREA_CODES_MAX:
        _AREA_CODES.clear()
    _AREA_CODES[key] = found
    return found


def _area_list(areas: frozenset[int]) -> str:
    """A list's area codes as a detail names them (the first few, and how many in all)."""
    shown = sorted(areas)
    if not shown:
        return "none"
    text = ", ".join(f"{a:03d}" for a in shown[:_AREAS_SHOWN])
    return f"{text}, ... ({len(shown)} in all)" if len(shown) > _AREAS_SHOWN else text


def load_emergencies(path: Path) -> list[EmergencyDeclaration]:
    """Read an emergencies CSV: ``jurisdiction,start[,end][,zips][,note]`` (zips ';'-joined).

    Any other column is refused, naming it, as is a column given twice and a row with more
    values than the header has columns: a misspelt ``ends`` or ``zip`` was ignored, and the
    declaration went open-ended or statewide without a word."""
    columns = ("jurisdiction", "start", "end", "zips", "note")
    out: list[EmergencyDeclaration] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [(k or "").strip().lower() for k in reader.fieldnames or ()]
            unknown = [k for k in header if k not in columns]
            if unknown:
                raise ConfigError(
                    f"{path}: unknown column{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(repr(k) for k in unknown)}; the columns are "
                    f"{','.join(columns)} (jurisdiction and start required)")
            twice = sorted({k for k in header if header.count(k) > 1})
            if twice:
                raise ConfigError(f"{path}: column {', '.join(map(repr, twice))} given more "
                                  "than once")
            if header and not {"jurisdiction", "start"} <= set(header):
                missing = [k for k in ("jurisdiction", "start") if k not in header]
                raise ConfigError(f"{path}: no {' or '.join(missing)} column; the columns are "
                                  f"{','.join(columns)}")
            for i, row in enumerate(reader, start=1):
                if row.get(None):  # DictReader puts values past the header under None
                    raise ConfigError(f"{path}: row {i} has more values than the header has "
                                      f"columns ({len(header)}); quote a value holding a comma")
                clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                try:
                    out.append(EmergencyDeclaration(
                        jurisdiction=clean.get("jurisdiction", ""),
                        start=clean.get("start", ""),
                        end=clean.get("end") or None,
                        zips=[z.strip() for z in clean.get("zips", "").split(";") if z.strip()],
                        note=clean.get("note", "")))
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    why = str(first["msg"]).removeprefix("Value error, ")
                    raise ConfigError(f"{path}: row {i}, {where or 'declaration'}: "
                                      f"{why}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read emergencies file {path}: {exc.strerror}") from None
    return out


@dataclass(frozen=True)
class _Group:
    """What the numbers of one group share (see :meth:`RulesCheck.evaluate`)."""

    loc: Location
    jur: tuple[str, ...]
    line: str | None
    plan: TimePlan | None
    time: list[Reason] | None  # None: TIMEZONE_UNKNOWN, which names the number
    registry: list[Reason]
    reasons: list[Reason] | None  # for a number without consent or attempt records
    days: Days  # the calling dates (see :func:`_dates`)


#: What a group's registry and consent reasons depend on besides the day, call and lists:
#: its jurisdictions, line type and calling dates.
_ReasonKey = tuple[tuple[str, ...], str | None, Days]
#: What its registry reasons depend on: those, and a US or CA number's area code (their
#: national lists cover only the area codes they hold, see :func:`list_area_codes`; None for
#: other numbers).
_RegistryKey = tuple[tuple[str, ...], str | None, Days, int | None]


@dataclass
class _DayReasons:
    """Registry and consent reasons by (jurisdictions, line type, calling dates), for one UTC
    day, call and campaign profile and one set of lists: the same for every batch that shares
    those (see :meth:`RulesCheck._day_reasons`). Each batch uses the object it was handed, so
    what it stores always belongs to the lists it checked against."""

    infos: list[ListInfo]
    profile: CampaignProfile  # held, so that its id (in the key) is never another's
    registry: dict[_RegistryKey, list[Reason]] = field(default_factory=dict)
    consent: dict[_ReasonKey, list[Reason]] = field(default_factory=dict)


@dataclass
class _BatchCache:
    """Reasons shared between the groups of one batch."""

    # keyed by plan identity; the plan is kept in the value so its id cannot be reused
    time: dict[int, tuple[TimePlan, list[Reason]]] = field(default_factory=dict)
    registry: dict[_RegistryKey, list[Reason]] = field(default_factory=dict)
    consent: dict[_ReasonKey, list[Reason]] = field(default_factory=dict)


class RulesCheck(CheckBase):
    """The regulatory rules engine as a check (name ``rules``)."""

    name = "rules"
    always = True  # the rules apply to every campaign (a profile narrows DNC lists only)

    def __init__(self, settings: Settings, *, rules_settings: RulesSettings | None = None,
                 ruleset: Ruleset | None = None, store: ListStore | None = None,
                 consents: ConsentStore | None = None,
                 attempts: AttemptStore | None = None) -> None:
        self.settings = settings
        self.config = rules_settings or settings.section(RulesSettings)
        self.ruleset = ruleset or self.config.ruleset()
        self.calendar = HolidayCalendar(self.ruleset.holiday_sets)
        self._store = store
        self._consents = consents
        self._attempts = attempts
        self.emergencies = list(self.config.emergencies)
        if self.config.emergencies_file is not None:
            from_file = load_emergencies(self.config.emergencies_file)
            problem = emergencies_problem(self.ruleset, from_file)
            if problem:
                raise ConfigError(f"{self.config.emergencies_file}: {problem}")
            self.emergencies.extend(from_file)
        self._plans: dict[tuple[Any, ...], TimePlan] = {}
        self._days: dict[tuple[Any, ...], _DayReasons] = {}
        self._minute_memo: tuple[datetime | None, dict[int, tuple[TimePlan, list[Reason]]]] = (
            None, {})
        self._locations: dict[tuple[object, ...], Location] = {}
        self._max_cap_hours = max(
            [max(r.window_hours, r.cooldown_hours)
             for j in self.ruleset.jurisdictions()
             for _, r in self.ruleset.of_kind(FrequencyCapRule, [j])] or [0])

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def store(self) -> ListStore:
        if self._store is None:
            self._store = ListStore(self.settings)
        return self._store

    @property
    def consents(self) -> ConsentStore:
        if self._consents is None:
            self._consents = ConsentStore(self.settings)
        return self._consents

    @property
    def attempts(self) -> AttemptStore:
        if self._attempts is None:
            self._attempts = AttemptStore(self.settings)
        return self._attempts

    def versions(self) -> DataVersions:
        return DataVersions(ruleset=self.ruleset.version)

    def location(self, e164: str, region: str, state: str | None,
                 extra: Mapping[str, str] | None = None, *, zone_key: object = None) -> Location:
        """Candidate zones and states (cached by area code and ``phonenumbers``' zones, see
        :func:`.zones.zone_keys`, plus the row hints)."""
        extra = extra or {}
        if zone_key is None:
            zone_key = zone_keys([e164])[0]
        key = (zone_key, region, state, extra.get("state"), extra.get("zip"),
               extra.get("timezone"), extra.get("region"))
        hit = self._locations.get(key)
        if hit is None:
            hit = resolve_location(e164, region, state, extra, self.ruleset)
            if len(self._locations) > _PLAN_CACHE_MAX:
                self._locations.clear()
            self._locations[key] = hit
        return hit

    def timezones(self, batch: Batch) -> list[tuple[str, str]]:
        """Per number of ``batch``: the candidate zones ';'-joined (for the verdict's
        ``timezone`` field) and how they were found (e.g. ``"npa-table+npa-nxx+zip"``)."""
        keys = zone_keys(batch.e164, batch.digits)
        seen: dict[tuple[object, ...], tuple[str, str]] = {}
        out = []
        for i, e164 in enumerate(batch.e164):
            extra = batch.extra[i] if i < len(batch.extra) else {}
            gkey = (keys[i], batch.region[i], batch.state[i], extra.get("state"),
                    extra.get("zip"), extra.get("timezone"), extra.get("region")) if extra \
                else (keys[i], batch.region[i], batch.state[i])
            hit = seen.get(gkey)
            if hit is None:
                region = (batch.region[i] or self.settings.default_region).upper()
                loc = self.location(e164, region, batch.state[i], extra, zone_key=keys[i])
                hit = seen[gkey] = (";".join(loc.zones), loc.how)
            out.append(hit)
        return out

    def jurisdictions(self, region: str, loc: Location) -> tuple[str, ...]:
        out = [region]
        if region == "US":
            out.extend(f"US-{s}" for s in loc.states if f"US-{s}" in self.ruleset.files)
        return tuple(out)

    def time_jurisdictions(self, region: str, loc: Location) -> tuple[str, ...]:
        """The jurisdictions whose day and hour rules apply: :meth:`jurisdictions`, every
        state of :attr:`Location.time_states` (a US number with no state known), and the
        country of a candidate state or province across the border: a Toronto number with a
        Miami ZIP gets the federal and Florida hours too, a New York number with a Toronto
        postal code Canada's (the called party's location decides; the strictest reading)."""
        jur = list(self.jurisdictions(region, loc))
        files = self.ruleset.files
        for s in loc.states + (loc.time_states if region == "US" else ()):
            if f"US-{s}" in files:
                jur.extend(j for j in ("US", f"US-{s}") if j not in jur and j in files)
            elif s in _PROVINCES and "CA" not in jur and "CA" in files:
                jur.append("CA")
        return tuple(jur)

    def _scoped(self, rule: RuleBase, ctx: CheckContext, line_type: str | None,
                days: Days) -> bool:
        """Whether a rule that restricts the call applies: in force on any of the calling
        dates ``days`` (the called party's date may be any of them: the strictest reading),
        and scoped to this call and line type."""
        unknown = UNKNOWN_LINE_IS[self.config.unknown_line_type]
        return rule.active_during(*days) and rule.scoped(ctx.purpose, ctx.call_type, line_type,
                                                         unknown)

    def plan(self, loc: Location, jurisdictions: tuple[str, ...], ctx: CheckContext,
             line_type: str | None) -> TimePlan:
        """The time rules for a location and call (cached)."""
        hours = ctx.profile.calling_hours
        key = (loc.zones, jurisdictions, ctx.purpose, ctx.call_type, line_type, loc.zip,
               ctx.campaign, hours, ctx.profile.margin_minutes)
        hit = self._plans.get(key)
        if hit is not None:
            return hit
        unknown = UNKNOWN_LINE_IS[self.config.unknown_line_type]

        def scoped(r: RuleBase) -> bool:  # activity is checked per local date by the plan
            return r.scoped(ctx.purpose, ctx.call_type, line_type, unknown)

        campaign = None
        if hours is not None:
            try:
                campaign = CampaignWindow(ctx.campaign, Window.parse(f"{hours[0]}-{hours[1]}"))
            except ValueError as exc:
                raise ConfigError(f"campaign {ctx.campaign!r}: calling_hours: {exc}") from None
        emergencies = []
        for j, er in self.ruleset.of_kind(EmergencyBanRule, jurisdictions):
            if not scoped(er):
                continue
            decls = [d for d in self.emergencies
                     if d.jurisdiction == j and _declared_for(d, loc.zip)]
            if decls:
                emergencies.append((j, er, decls))
        plan = TimePlan(
            zones=loc.zones,
            windows=[(j, r) for j, r in self.ruleset.of_kind(CallingWindowRule, jurisdictions)
                     if scoped(r)],
            holidays=[(j, r) for j, r in self.ruleset.of_kind(HolidayBanRule, jurisdictions)
                      if scoped(r)],
            emergencies=emergencies,
            campaign=campaign,
            margin_minutes=ctx.profile.margin_minutes,
            calendar=self.calendar,
        )
        if len(self._plans) > _PLAN_CACHE_MAX:
            self._plans.clear()
        self._plans[key] = plan
        return plan

    # -- the check ----------------------------------------------------------------------------
    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        return await asyncio.to_thread(self.evaluate, batch, ctx)

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        return await asyncio.to_thread(self.evaluate_groups, batch, ctx)

    def evaluate_groups(self, batch: Batch, ctx: CheckContext) -> Findings:
        """Rule reasons per number of ``batch`` as :class:`Findings`.

        Numbers that share everything the rules look at (area code and ``phonenumbers``'
        zones, region, state, row hints, line type) form a group, found with array keys: its
        location, time plan, time reasons, registry reasons and consent rules are found once
        and its (immutable) reasons shared. Only numbers with consent or attempt records are
        evaluated one by one."""
        n = len(batch)
        if not self.config.enabled or not n:
            return Findings.none(n)
        at = ctx.at.astimezone(UTC)
        consents, attempts = self._records(batch, at)
        infos = self.store.all()
        zone = zone_key_array(batch.digits)
        own = np.flatnonzero(zone < 0)
        zone[own] = -2 - own  # a number that is its own key
        contexts, cindex = batch.contexts()
        hints = [(c.get("state"), c.get("zip"), c.get("timezone"), c.get("region"),
                  c.get("line_type")) for c in contexts]
        columns = [zone, batch.ids("region"), batch.ids("state"), _factorize(hints)[cindex]]
        key = np.unique(columns[0], return_inverse=True)[1].reshape(-1).astype(np.int64)
        for col in columns[1:]:  # mixed radix; re-numbered only when it could overflow
            width = int(col.max()) + 1
            if (int(key.max()) + 1) * width >= 1 << 62:
                key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
            key = key * width + col
        _, first, group = np.unique(key, return_index=True, return_inverse=True)
        group = group.reshape(-1)
        # shared within the UTC day; inside it, keyed by each group's calling dates too
        day = self._day_reasons(infos, ctx, at.date())
        shared = _BatchCache(time=self._time_memo(at), registry=day.registry,
                             consent=day.consent)
        default = self.settings.default_region
        sets: list[tuple[Reason, ...]] = []
        found: list[_Group] = []
        keys = zone_keys([batch.number(i) for i in first.tolist()], batch.digits[first])
        # each group's area code (a US national list covers only its own, see _registry): the
        # zone key of a +1 number holds its area code (NPA * 2**32 + zone id, or the number
        # itself), so every number of a group has its first number's
        lead = batch.digits[first].astype(np.int64)
        npas = np.where((lead >= NANP_BASE) & (lead < 2 * NANP_BASE),
                        (lead - NANP_BASE) // PER_AREA, -1).tolist()
        for i, zkey, npa in zip(first.tolist(), keys, npas, strict=True):
            extra = contexts[int(cindex[i])]
            g = self._group(batch.number(i), (batch.value("region", i) or default).upper(),
                            batch.value("state", i), extra, zkey, ctx, at, infos, shared,
                            None if npa < 0 else npa)
            found.append(g)
            sets.append(tuple(g.reasons) if g.reasons is not None else ())
        index = group.astype(np.int64)
        alone = [i for i, g in enumerate(group.tolist()) if found[g].reasons is None] \
            if any(g.reasons is None for g in found) else []
        if consents or attempts:
            alone.extend(i for i, e in enumerate(batch.e164) if e in consents or e in attempts)
        for i in sorted(set(alone)):
            e164 = batch.number(i)
            index[i] = len(sets)
            sets.append(tuple(self._number(e164, found[int(group[i])], consents.get(e164, []),
                                           attempts.get(e164, []), contexts[int(cindex[i])],
                                           ctx, at)))
        return Findings(sets, index)

    def evaluate(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        """Rule reasons per number of ``batch`` (synchronous), one list per number: the
        grouped evaluation of :meth:`evaluate_groups`. (The per-number reference it is tested
        against lives with the tests, in ``tests/rules/reference.py``.)"""
        return self.evaluate_groups(batch, ctx).per_number()

    def _records(self, batch: Batch, at: datetime) -> tuple[
            dict[str, list[ConsentRecord]], dict[str, list[Attempt]]]:
        """Consent and (recent) attempt records, only for the numbers that have any. A large
        batch first asks whether the tables hold any row, so that a home without records
        never turns a file's numbers into strings (:attr:`Batch.e164`); a small one (a group
        of pre-dial checks) whether any of its numbers has a record in either table, in one
        query through the driver (``with_attempts`` of the consent store)."""
        if not len(batch):
            return {}, {}
        consents: dict[str, list[ConsentRecord]] = {}
        attempts: dict[str, list[Attempt]] = {}
        with self.consents.reads.connect() as conn:
            # the question: is there a record at all (a large batch), or one of these
            # numbers (a small one: both tables in one query)
            if len(batch) >= PROBE_EMPTY_FROM:
                any_consent = self.consents.has_records(conn)
                any_attempt = bool(self._max_cap_hours) and self.attempts.has_records(conn)
            elif self._max_cap_hours:
                any_consent, any_attempt = self.consents.with_attempts(conn, batch.e164)
            else:
                any_consent, any_attempt = self.consents.has_records(conn, batch.e164), False
            if any_consent:
                consents = self.consents.for_numbers(batch.e164, conn)
            since = at - timedelta(hours=self._max_cap_hours)
            if any_attempt:
                attempts = self.attempts.for_numbers(batch.e164, since, conn)
            if self._max_cap_hours:
                _add_subject_attempts(attempts, batch, self.attempts.for_subjects(
                    _subjects(batch), since, conn))
        return consents, attempts

    @staticmethod
    def _line(extra: Mapping[str, str]) -> str | None:
        line = (extra.get("line_type") or "").strip().lower() or None
        return line if line in LINE_TYPES else None

    def _group(self, e164: str, region: str, state: str | None, extra: Mapping[str, str],
               zone_key: object, ctx: CheckContext, at: datetime, infos: list[ListInfo],
               cache: _BatchCache, npa: int | None) -> _Group:
        """What every number of a group shares (``e164`` is its first number, ``npa`` the
        area code of every +1 number of the group)."""
        loc = self.location(e164, region, state, extra, zone_key=zone_key)
        days = _dates(at, loc.zones)
        jur = self.jurisdictions(region, loc)
        line = self._line(extra)
        plan: TimePlan | None = None
        time: list[Reason] | None = None
        if loc.known or self.config.unknown_timezone != "error":
            plan = self.plan(loc, self.time_jurisdictions(region, loc), ctx, line)
            if plan.whole_minutes:
                hit = cache.time.get(id(plan))
                if hit is None:
                    hit = cache.time[id(plan)] = (plan, self._time_reasons(plan, at))
                time = hit[1]
            else:
                time = self._time_reasons(plan, at)
        rkey = (jur, line, days)
        area = npa if region in AREA_CODE_REGISTRIES else None  # see list_area_codes
        registry = cache.registry.get((*rkey, area))
        if registry is None:
            registry, lasting = self._registry(infos, ctx, line, days, jur, days[1], npa=area)
            if lasting:  # not an answer given because a list's area codes could not be read
                cache.registry[(*rkey, area)] = registry
        unconsented = cache.consent.get(rkey)
        if unconsented is None:
            unconsented = cache.consent[rkey] = [*self._assumed(ctx, line, days, jur),
                                                 *self._consent_rules(set(), ctx, line, days,
                                                                      jur)]
        reasons = None if time is None else [*time, *unconsented, *registry]
        return _Group(loc, jur, line, plan, time, registry, reasons, days)

    def _unknown_zone(self, e164: str, loc: Location) -> Reason:
        return Reason(
            code=codes.TIMEZONE_UNKNOWN, decision=Decision.ERROR, source=SOURCE,
            detail=f"no time zone found for {mask(e164)} ({loc.how}); add a timezone, "
                   "state or zip column, or set rules.unknown_timezone = 'region'")

    def _number(self, e164: str, g: _Group, records: list[ConsentRecord],
                attempts: list[Attempt], extra: Mapping[str, str], ctx: CheckContext,
                at: datetime) -> list[Reason]:
        """The reasons of one number of a group that has records (or no shared reasons)."""
        reasons = [self._unknown_zone(e164, g.loc)] if g.time is None else list(g.time)
        valid, exempt = self._exempting(records, at, g.jur, g.loc)
        reasons.extend(exempt)
        reasons.extend(self._assumed(ctx, g.line, g.days, g.jur))
        reasons.extend(self._consent_rules(valid, ctx, g.line, g.days, g.jur))
        reasons.extend(self._caps(attempts, ctx, g.line, g.days, g.jur, at, extra, g.plan))
        if not (valid & _LIFTS_REGISTRY):
            reasons.extend(g.registry)
        return reasons

    # -- time ---------------------------------------------------------------------------------
    def _day_reasons(self, infos: list[ListInfo], ctx: CheckContext, on: date) -> _DayReasons:
        """The registry and consent reasons of one UTC day, call and campaign for these
        lists, shared across batches (a group of pre-dial checks finds them, for each of its
        jurisdictions, line type and calling dates, without working them out again). Kept
        while the lists are the same (equal :class:`ListInfo`), for the same campaign profile
        object. Within the day the reasons are keyed by the calling dates too (a rule's
        effective and expiry dates are read in them, and a list's freshness is judged on the
        latest of them)."""
        key = (on, ctx.campaign, ctx.purpose, ctx.call_type, id(ctx.profile))
        found = self._days.get(key)
        if found is None or found.profile is not ctx.profile or found.infos != infos:
            if len(self._days) > _DAY_CACHE_MAX:
                self._days = {}
            found = self._days[key] = _DayReasons(list(infos), ctx.profile)
        return found

    def _time_memo(self, at: datetime) -> dict[int, tuple[TimePlan, list[Reason]]]:
        """The time reasons found within ``at``'s minute, by plan, shared across batches.

        Every moment at which a plan's answer can change (window starts and ends, margins,
        local midnights) falls on a whole minute, and a reason shows the local time to the
        minute: within one minute a plan gives the same reasons. A plan with a time that is
        not a whole minute is never kept (see :attr:`TimePlan.whole_minutes`)."""
        minute = at.replace(second=0, microsecond=0)
        memo = self._minute_memo
        if memo[0] != minute:
            memo = self._minute_memo = (minute, {})
        return memo[1]

    def _time_reasons(self, plan: TimePlan, at: datetime) -> list[Reason]:
        if plan.empty:
            return []
        found = plan.violations(at)
        if not found:
            return []
        nxt = plan.next_allowed(at)
        return [self._time_reason(v, nxt) for v in found]

    @staticmethod
    def _time_reason(v: Violation, nxt: datetime | None) -> Reason:
        if nxt is None:
            then = "no legal moment within 14 days"
        else:
            then = (f"next allowed {local_text(nxt.astimezone(v.local.tzinfo))} "
                    f"({nxt:%Y-%m-%d %H:%M} UTC)")
        return Reason(code=v.code, decision=Decision.DEFER, source=SOURCE, rule=v.rule,
                      citation=v.citation,
                      detail=f"{v.what} ({v.rule}) in {v.zone}: local time "
                             f"{local_text(v.local)}; {then}",
                      next_allowed_at=nxt)

    # -- assumptions ----------------------------------------------------------------------------
    def _assumed(self, ctx: CheckContext, line: str | None, days: Days,
                 jur: tuple[str, ...]) -> list[Reason]:
        """An informational reason when the line type is unknown and the reading
        ``unknown_line_type`` names brings in rules of a line type: the verdict says which
        assumption it made and what it brought in."""
        if line is not None:
            return []
        setting = self.config.unknown_line_type
        unknown = UNKNOWN_LINE_IS[setting]
        brought = [f"{j}:{r.id}" for j, r in self.ruleset.of_kind(RuleBase, jur)
                   if r.line_types is not None and r.active_during(*days)
                   and r.scoped(ctx.purpose, ctx.call_type, None, unknown)]
        if not brought:
            return []
        return [Reason(code=codes.LINE_TYPE_ASSUMED, decision=Decision.ALLOW, source=SOURCE,
                       detail=f"line type unknown: judged as {_LINE_AS[setting]}, so "
                              f"{', '.join(brought)} apply (rules.unknown_line_type = "
                              f"'{setting}'); give a line_type column or flag to judge it "
                              "otherwise (a wireless list only marks the numbers it holds as "
                              "mobile)")]

    # -- consent and exemptions -----------------------------------------------------------------
    def _ebr_rules(self, days: Days, jur: tuple[str, ...]) -> list[tuple[str, EbrRule]]:
        """The EBR rules in force on any of ``days`` (first, last) among the jurisdictions,
        (jurisdiction, rule)."""
        return [(j, r) for j, r in self.ruleset.of_kind(EbrRule, jur) if r.active_during(*days)]

    @staticmethod
    def _ebr_valid(rules: list[tuple[str, EbrRule]], what: str, since: date, on: date) -> bool:
        """Whether a relationship of kind ``what`` begun on ``since`` counts on ``on``: every
        window the jurisdictions give it must still be open (the shortest decides), and one
        of them must give it a window at all."""
        ends = [e for _, r in rules if (e := r.ends(what, since)) is not None]
        return bool(ends) and on < min(ends)

    def _valid(self, records: list[ConsentRecord], at: datetime, jur: tuple[str, ...],
               zones: tuple[str, ...] = ()) -> set[str]:
        """Consent types valid at ``at``: granted, not expired, not revoked (revoke-all). The
        records' dates are calendar dates, and the called party's date may differ from UTC's:
        among the UTC date and the date in each of ``zones``, a consent counts only from its
        grant on the earliest of them, and stops on its revocation, expiry or the end of its
        EBR window by the latest (a consent revoked on 10 March is gone at 10:30 on 10 March
        in Sydney, 23:30 UTC on 9 March).

        Every record carrying a revocation date that has come revokes every consent granted on
        or before it, and is never valid itself, whatever its grant date (a revocation-only
        record, ``consent revoke`` of a number with nothing to revoke, is never a consent).
        After a revocation an EBR no longer counts, even one begun later: a do-not-call
        request ends the relationship (47 CFR 64.1200(f)(5)(i)); only new consent does.

        An EBR counts only if it counts under the EBR rules in force on each of those dates
        (a rule's effective and expiry dates read in the called party's date, the strictest
        reading): a rule that gives the window must be in force on all of them, and one that
        shortens it, in force on any, decides."""
        if not records:
            return set()
        early, late = _dates(at, zones)
        revocations = [r.revoked for r in records if r.revoked is not None and r.revoked <= late]
        last_revoked = max(revocations) if revocations else None
        ebrs = [self._ebr_rules((d, d), jur)
                for d in (early + timedelta(days=k) for k in range((late - early).days + 1))]
        valid: set[str] = set()
        for r in records:
            if r.type not in CONSENT_TYPES or (r.revoked is not None and r.revoked <= late):
                continue
            if r.granted > early or (last_revoked is not None and r.granted <= last_revoked):
                continue
            if r.type in _EBR and last_revoked is not None:
                continue
            if r.expires is not None and late >= r.expires:
                continue
            if r.type in _EBR and not all(self._ebr_valid(ebr, r.type[4:], r.granted, late)
                                          for ebr in ebrs):
                continue
            valid.add(r.type)
        return valid

    def _list_jurisdictions(self, jur: tuple[str, ...], loc: Location) -> tuple[str, ...]:
        """The jurisdictions whose lists may hit a number (as
        :func:`~dncguard.sources.local.applies_to` reads them): its own (``jur``) and, when
        its row gives no address, every state or province of its country with a rules
        file."""
        if loc.addressed or not jur:
            return jur
        prefix = f"{jur[0]}-"
        return jur + tuple(j for j in self.ruleset.files if j.startswith(prefix) and j not in jur)

    def _exempting(self, records: list[ConsentRecord], at: datetime, jur: tuple[str, ...],
                   loc: Location) -> tuple[set[str], list[Reason]]:
        """The consent types valid for a number at ``at`` in its jurisdictions, and the
        exemptions they give (:meth:`_exemptions`)."""
        valid = self._valid(records, at, jur, loc.zones)
        wide = self._list_jurisdictions(jur, loc)
        everywhere = (self._valid(records, at, wide, loc.zones)
                      if valid & _EBR and wide != jur else valid)
        return valid, self._exemptions(valid, _dates(at, loc.zones), jur, records,
                                       ebr_everywhere=bool(everywhere & _EBR), wide=wide)

    def _exemptions(self, valid: set[str], days: Days, jur: tuple[str, ...],
                    records: list[ConsentRecord], *, ebr_everywhere: bool,
                    wide: tuple[str, ...]) -> list[Reason]:
        """The exemptions valid consent and EBR give. An EBR lifts state registry hits only
        when it is live in every jurisdiction whose list may hit the number (``wide``: a row
        without an address meets every state's list, and a state's shorter window must
        decide its list's hit); live only in the number's own (``jur``), it lifts the
        national registry's hit alone. ``days`` are the calling dates: the rules named are
        those in force on any of them."""
        on = _days_text(days)
        out: list[Reason] = []
        if valid & _WRITTEN:  # oral express consent lifts no registry hit
            out.append(Reason(code=codes.EXEMPT_CONSENT, decision=Decision.ALLOW, source=SOURCE,
                              rule="consent", overrides=list(codes.LIFTED_BY_EXEMPTION),
                              detail=f"valid express written consent on {on}: national and "
                                     "state registry hits do not decide"))
        if valid & _EBR:
            ebr = self._ebr_rules(days, jur)
            ids = ",".join(f"{j}:{r.id}" for j, r in ebr)
            cits = [r.citation for _, r in ebr]

            def windows(what: str) -> str:
                given = [f"{w} ({j})" for j, r in ebr if (w := r.window(what)) is not None]
                return ", ".join(given) or "none"

            lifts = list(codes.LIFTED_BY_EXEMPTION)
            note = ""
            if not ebr_everywhere:
                lifts = [c for c in lifts if c != "DNC_STATE"]
                shorter = sorted({j for j, r in self._ebr_rules(days, wide) if j not in jur})
                note = ("; state registry hits still decide: the row gives no state or ZIP, so "
                        "every state's list applies, and the relationship is past the "
                        "shortest window of the states that set their own "
                        f"({', '.join(shorter[:8])}{', ...' if len(shorter) > 8 else ''})")
            out.append(Reason(code=codes.EXEMPT_EBR, decision=Decision.ALLOW, source=SOURCE,
                              rule=ids or None, citation="; ".join(cits) or None,
                              overrides=lifts,
                              detail=f"established business relationship "
                                     f"({', '.join(sorted(valid & _EBR))}; windows: purchase "
                                     f"{windows('purchase')}, inquiry {windows('inquiry')}) "
                                     f"on {on}{note}"))
        return out

    def _consent_rules(self, valid: set[str], ctx: CheckContext, line: str | None, days: Days,
                       jur: tuple[str, ...]) -> list[Reason]:
        out: list[Reason] = []
        for j, cr in self.ruleset.of_kind(ConsentRequiredRule, jur):
            if not self._scoped(cr, ctx, line, days):
                continue
            accepted = cr.accepted.get(ctx.purpose)  # type: ignore[call-overload]
            if not accepted or valid & set(accepted):
                continue
            need = " or ".join(a.replace("_", " ") for a in accepted)
            out.append(Reason(code=codes.CONSENT_REQUIRED, decision=Decision.BLOCK,
                              source=SOURCE, rule=f"{j}:{cr.id}", citation=cr.citation,
                              detail=f"{ctx.call_type} {ctx.purpose} call to a "
                                     f"{line or 'possibly wireless'} line needs {need} "
                                     "consent; none valid on record"))
        for j, wr in self.ruleset.of_kind(WirelessRestrictedRule, jur):
            if not self._scoped(wr, ctx, line, days) or valid & set(wr.lifted_by):
                continue
            out.append(Reason(code=codes.WIRELESS_RESTRICTED, decision=Decision.BLOCK,
                              source=SOURCE, rule=f"{j}:{wr.id}", citation=wr.citation,
                              detail=f"{j} restricts {ctx.purpose} calls to wireless numbers "
                                     f"without consent (confidence {wr.confidence})"))
        return out

    # -- caps -----------------------------------------------------------------------------------
    def _caps(self, attempts: list[Attempt], ctx: CheckContext, line: str | None, days: Days,
              jur: tuple[str, ...], at: datetime, extra: Mapping[str, str],
              plan: TimePlan | None) -> list[Reason]:
        if not attempts:
            return []
        # compared as the stored subjects are (subject_key); an attempt recorded without a
        # subject is stored under its campaign's name. What a check counts: the attempts on
        # its subject and this number's attempts of its campaign recorded without one (they
        # may have been about that subject); a check naming no subject, those of its campaign
        # and this number's attempts on any named subject (it may be about any of them).
        # Counting too many only delays a call; counting too few lets one through.
        named = subject_key(extra.get("subject"))
        campaign = subject_key(ctx.campaign) or ""
        subject = named or campaign
        campaigns = self._campaign_keys

        anysubject = "" if named else " (or any subject of this number: the check names none)"

        def counted(a: Attempt) -> bool:
            if a.subject == subject or a.subject == campaign:
                return True
            return named is None and a.subject not in campaigns
        # attempts stamped a little after the dial time count too: the dialer's clock may
        # run ahead of ours (fail closed; a later one is refused when recorded)
        until = at + CLOCK_SKEW
        out: list[Reason] = []
        for j, cr in self.ruleset.of_kind(FrequencyCapRule, jur):
            if not self._scoped(cr, ctx, line, days):
                continue
            relevant = [a for a in attempts
                        if counted(a) and a.purpose in cr.applies_to and a.at <= until]
            window = timedelta(hours=cr.window_hours)
            recent = [a for a in relevant if a.at > at - window]
            free: datetime | None = None
            why = ""
            if len(recent) >= cr.max_attempts:
                free = recent[len(recent) - cr.max_attempts].at + window
                why = f"{len(recent)} attempts in the last {cr.window_hours} h (cap " \
                      f"{cr.max_attempts})"
            if cr.cooldown_after and cr.cooldown_hours:
                # compared in lower case; an outcome stored before outcomes were checked that
                # is none of OUTCOMES may have been a conversation, so it starts the pause too
                # (said in the detail): a skipped cooldown is a violation, an extra one a delay
                cool = timedelta(hours=cr.cooldown_hours)
                after = {outcome_key(o) for o in cr.cooldown_after}
                last = [a for a in relevant
                        if a.at > at - cool and _starts_cooldown(a.outcome, after)]
                if last:
                    ends = last[-1].at + cool
                    if free is None or ends > free:
                        free = ends
                        k = outcome_key(last[-1].outcome)
                        what = f"a {k}" if k in OUTCOMES else (
                            f"an attempt with the unknown outcome {last[-1].outcome!r} (counted "
                            f"as {' or '.join(cr.cooldown_after)})")
                        why = f"{what} at {last[-1].at:%Y-%m-%d %H:%M} UTC " \
                              f"starts a {cr.cooldown_hours} h pause"
            if free is None:
                continue
            nxt: datetime | None = free
            if plan is not None and not plan.empty:
                nxt = plan.next_allowed(free)
            out.append(Reason(code=codes.FREQUENCY_CAP, decision=Decision.DEFER, source=SOURCE,
                              rule=f"{j}:{cr.id}", citation=cr.citation, next_allowed_at=nxt,
                              detail=f"{why} on subject {subject!r}{anysubject}; frees up "
                                     f"at {ceil_second(free):%Y-%m-%d %H:%M:%S} UTC"))
        return out

    @cached_property
    def _campaign_keys(self) -> frozenset[str]:
        """The campaign names as attempts store them when recorded without a subject."""
        return frozenset(k for n in [*self.settings.campaigns, "default"]
                         if (k := subject_key(n)))

    # -- registries -----------------------------------------------------------------------------
    @cached_property
    def freshness(self) -> FreshnessPolicy:
        """List freshness (:mod:`dncguard.sources.rules.freshness`): the one definition ``/readyz``,
        ``/v1/lists``, ``lists ls`` and the report use too."""
        return FreshnessPolicy(self.ruleset, self.config.max_age_days,
                               self.config.default_max_age_days)

    def _area_codes(self, info: ListInfo) -> tuple[frozenset[int], str | None]:
        """The area codes a US or CA national list covers (see :func:`list_area_codes`), and why
        none can be shown (its snapshot or entries could not be read: it then covers none,
        and its numbers fail closed; the list check says SOURCE_ERROR too)."""
        try:
            return list_area_codes(self.store, info), None
        except Exception as exc:  # a damaged or missing snapshot, a database error
            log.warning("area codes of list %s could not be read: %s", info.name, exc)
            return frozenset(), f"{type(exc).__name__}: {str(exc)[:120]}"

    def _uncovered(self, rr: RegistryRule, j: str, npa: int, selected: list[ListInfo],
                   matching: list[ListInfo], ctx: CheckContext
                   ) -> tuple[list[ListInfo], Reason | None, bool]:
        """Of the selected national lists (US or CA), those that cover area code ``npa``;
        when none does, the REGISTRY_MISSING reason that says so (the registry was not
        downloaded for that area code: the lists cannot vouch for the number); and whether
        every list's area codes could be read (else the answer holds only until they can:
        a replica that has not fetched a snapshot yet must not keep it)."""
        covered: list[ListInfo] = []
        named: list[str] = []
        read = True
        for i in selected:
            areas, problem = self._area_codes(i)
            read = read and problem is None
            if npa in areas:
                covered.append(i)
            named.append(f"{i.name} (its area codes could not be read: {problem})" if problem
                         else f"{i.name} ({_area_list(areas)})")
        if covered:
            return covered, None, read
        others = [i.name for i in matching
                  if not ctx.selects(i.name) and npa in self._area_codes(i)[0]]
        hint = (f"; list(s) {', '.join(others)} cover it but campaign {ctx.campaign!r} does "
                "not select them" if others else "")
        names = [i.name for i in selected]
        return [], Reason(
            code=codes.REGISTRY_MISSING, decision=Decision.ERROR, source=SOURCE,
            rule=f"{j}:{rr.id}", citation=rr.citation, list=", ".join(names),
            detail=f"area code {npa:03d} is not among the area codes of {' or '.join(named)}: "
                   f"the {rr.registry} was not downloaded for it, so the list cannot show "
                   f"that the number is not registered{hint}; import that area code's file "
                   f"(all area codes in one import, one zip or one file: a later import "
                   f"under the same name replaces the list), or set "
                   f"rules.registry_optional = [\"{j}\"]"), read

    def _registry(self, infos: list[ListInfo], ctx: CheckContext, line: str | None, days: Days,
                  jur: tuple[str, ...], on: date, *, npa: int | None
                  ) -> tuple[list[Reason], bool]:
        """The registry rules in force on any of the calling dates ``days``: a list missing
        or stale, judged on ``on``: the latest of the call's dates (the UTC date and the date in
        each of the number's zones, ``days[1]``), so a list is never read as fresher than on
        the called party's own date (22:30 UTC is already the next day in Sydney and Guam).

        ``npa`` is the area code of a US or CA number (None for any other): their national
        lists cover only the area codes they hold (both registries are downloaded per area
        code, see :func:`list_area_codes`). While the registry is required, a number whose
        area code no selected list covers gets REGISTRY_MISSING, and the freshness of the lists that
        cover it is what counts; when it is optional, the lists are only scrubbed against, as
        any list. Also returns whether the answer lasts (False: a list's area codes could not
        be read, see :meth:`_uncovered`; the caller must not keep it)."""
        out: list[Reason] = []
        lasting = True
        for j, rr in self.ruleset.of_kind(RegistryRule, jur):
            if not self._scoped(rr, ctx, line, days):
                continue
            matching = [i for i in infos
                        if i.kind == rr.list_kind and (i.jurisdiction or "").upper() == j]
            selected = [i for i in matching if ctx.selects(i.name)]
            rid = f"{j}:{rr.id}"
            if not selected:
                if not self.config.registry_required(j):
                    continue
                hint = (f"; list(s) {', '.join(i.name for i in matching)} exist but campaign "
                        f"{ctx.campaign!r} does not select them" if matching else "")
                out.append(Reason(
                    code=codes.REGISTRY_MISSING, decision=Decision.ERROR, source=SOURCE,
                    rule=rid, citation=rr.citation,
                    detail=f"the {rr.registry} is required for {j} numbers but not loaded"
                           f"{hint}; import it with: dncguard lists import FILE --kind "
                           f"{rr.list_kind} --jurisdiction {j} --snapshot-date YYYY-MM-DD "
                           f"--name {j.lower()}-{rr.list_kind} (or set rules.registry_optional "
                           f"= [\"{j}\"])"))
                continue
            if npa is not None and j in AREA_CODE_REGISTRIES and rr.list_kind == "national" and \
                    self.config.registry_required(j):
                selected, missing, read = self._uncovered(rr, j, npa, selected, matching, ctx)
                lasting = lasting and read
                if missing is not None:
                    out.append(missing)
                    continue
            if not self.config.check_freshness:
                continue
            dated = [i for i in selected if i.snapshot_date]
            best = max(dated, key=lambda i: i.snapshot_date or "") if dated else selected[0]
            f = self.freshness.judge(best, on, rule=(j, rr))
            if f.fresh:
                continue
            if not dated:
                names = ", ".join(i.name for i in selected)
                out.append(Reason(code=codes.REGISTRY_STALE, decision=Decision.ERROR,
                                  source=SOURCE, rule=rid, citation=rr.citation, list=names,
                                  detail=f"{names}: no snapshot date, so its freshness "
                                         f"({f.max_age_days} days for {j}) cannot be shown"))
                continue
            age = "of unknown age" if f.age_days is None else f"{f.age_days} days old"
            out.append(Reason(
                code=codes.REGISTRY_STALE, decision=Decision.ERROR, source=SOURCE,
                rule=rid, citation=rr.citation, list=best.name,
                detail=f"{best.name} ({rr.registry}) snapshot of {best.snapshot_date} is "
                       f"{age} at the dial time; {j} allows {f.max_age_days} days "
                       f"({rr.cadence}); import a newer snapshot"))
        return out, lasting

    # -- planning -------------------------------------------------------------------------------
    def when(self, e164: str, region: str, state: str | None, extra: Mapping[str, str],
             ctx: CheckContext, days: int = 7) -> When:
        """Legal windows for the next ``days`` days from ``ctx.at`` (time rules only)."""
        region = region.upper()
        loc = self.location(e164, region, state, extra)
        jur = self.time_jurisdictions(region, loc)
        line = (extra.get("line_type") or "").strip().lower() or None
        plan = self.plan(loc, jur, ctx, line if line in LINE_TYPES else None)
        start = ctx.at.astimezone(UTC)
        end = start + timedelta(days=days)
        windows = [(start, end)] if plan.empty else plan.legal_windows(start, end)
        from ..protocol import Batch

        batch = Batch.of([e164], [region], [state], [dict(extra)])
        reasons = self.evaluate(batch, ctx)[0]
        if any(r.code == codes.TIMEZONE_UNKNOWN for r in reasons):
            windows = []  # the check refuses to judge the number's time: no legal window
        return When(loc, jur, windows, reasons)


def _dates(at: datetime, zones: tuple[str, ...]) -> tuple[date, date]:
    """The earliest and the latest calendar date at ``at`` among UTC and ``zones`` (a zone
    that does not load is left out: the UTC date stays among them)."""
    days = {at.astimezone(UTC).date()}
    for name in zones:
        try:
            days.add(at.astimezone(ZoneInfo(name)).date())
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return min(days), max(days)


def _days_text(days: Days) -> str:
    """The calling dates as a detail shows them: ``2026-12-01`` or ``2026-11-30/2026-12-01``."""
    return str(days[0]) if days[0] == days[1] else f"{days[0]}/{days[1]}"


def _declared_for(decl: EmergencyDeclaration, zip_code: str | None) -> bool:
    """Whether a declaration may cover a party whose row gives ``zip_code``. One limited to
    some ZIP prefixes covers a ZIP code of its state that starts with one of them; a row
    without a ZIP code, or with one that is not of that state (another state's, a military
    post code, an unknown or malformed one), may be anywhere in the state (the number's
    candidate states include it): the declaration applies as if statewide."""
    if not decl.zips or zip_code is None:
        return True
    if postal_state(zip_code) != decl.jurisdiction[3:]:
        return True
    digits = zip_code.strip()
    return any(digits.startswith(z) for z in decl.zips)


def _subjects(batch: Batch) -> list[str]:
    """The subjects (a debt, an offer) the batch's rows name themselves: only those count
    attempts across numbers (the default, the campaign, is counted per number)."""
    contexts, _ = batch.contexts()
    return sorted({s for c in contexts if (s := subject_key(c.get("subject")))})


def _add_subject_attempts(attempts: dict[str, list[Attempt]], batch: Batch,
                          found: dict[str, list[tuple[str, Attempt]]]) -> None:
    """Give each number whose row names a subject the attempts on that subject to its other
    numbers too (Reg F counts calls about a debt, 12 CFR 1006.14(b)(2), on whatever number),
    oldest first; its own attempts are read by number already."""
    if not found:
        return
    contexts, index = batch.contexts()
    done: set[tuple[str, str]] = set()
    touched: set[str] = set()
    for i, e164 in enumerate(batch.e164):
        subject = subject_key(contexts[int(index[i])].get("subject"))
        if not subject or (e164, subject) in done:
            continue
        done.add((e164, subject))
        others = [a for n, a in found.get(subject, ()) if n != e164]
        if others:
            attempts.setdefault(e164, []).extend(others)
            touched.add(e164)
    for e164 in touched:
        attempts[e164].sort(key=lambda a: a.at)
