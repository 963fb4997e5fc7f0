"""The schema of the rules data files (``dncguard/sources/rules/data/*.yaml``), validated at load.

One file per jurisdiction (``US.yaml`` federal, ``US-XX.yaml`` per state and DC, ``CA.yaml``,
``GB.yaml``, ``AU.yaml``) holds a list of rules, each with its citation, effective date, optional
expiry and confidence. A rule's ``kind`` selects its shape (reason codes in brackets):

* ``calling_window``: local weekday / Saturday / Sunday windows, ``null`` for none
  [OUTSIDE_CALLING_WINDOW, DAY_PROHIBITED]
* ``holiday_ban``: no calls on the days of a holiday set [HOLIDAY]
* ``emergency_ban``: no calls into an area under a declared emergency [STATE_OF_EMERGENCY]
* ``frequency_cap``: at most N attempts per rolling window, per subject [FREQUENCY_CAP]
* ``consent_required``: consent of the listed types needed for the call [CONSENT_REQUIRED]
* ``wireless_restricted``: no solicitation to wireless numbers without consent
  [WIRELESS_RESTRICTED]
* ``registry``: a DNC registry that must be loaded and fresh [REGISTRY_MISSING, REGISTRY_STALE]
* ``ebr``: how long an established business relationship lasts [EXEMPT_EBR]

A file may also say which rules of its country apply to its numbers and why (``applies``): the
US territories' files (``US-PR.yaml``, ...) list every federal rule with the statute that makes
it reach the territory. The engine applies the country's rules to every number of the country,
so the loader requires such a list to name all of them.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, time, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Purpose = Literal["telemarketing", "informational", "collections"]
CallType = Literal["manual", "autodialed", "prerecorded"]
LineType = Literal["mobile", "landline", "voip"]
#: The line types whose rules a VoIP line is judged by: it may be a residential line (the
#: TCPA's 64.1200(a)(3)) or one whose user pays for the call (227(b)(1)(A)(iii), the wireless
#: rules); nothing in a number says which, so both apply.
VOIP_IS: tuple[str, ...] = ("voip", "mobile", "landline")
ConsentType = Literal["express", "express_written", "ebr_purchase", "ebr_inquiry"]
Confidence = Literal["high", "medium", "low"]

PURPOSES: tuple[str, ...] = ("telemarketing", "informational", "collections")
CALL_TYPES: tuple[str, ...] = ("manual", "autodialed", "prerecorded")
LINE_TYPES: tuple[str, ...] = ("mobile", "landline", "voip")

#: The outcomes an attempt may record, the one list that ``attempts record``, ``attempts
#: import``, ``POST /v1/attempts`` and the rules' ``cooldown_after`` are held to (a rules file
#: naming another outcome is refused when the rules load,
#: :func:`~dncguard.sources.rules._loader.parse_texts`): ``conversation`` (spoke with the person:
#: Reg F's 7-day pause), ``voicemail`` (a message was left), ``no_answer``, ``busy`` and
#: ``failed`` (the call did not connect). Given in any case, spaces around ignored; a
#: missing or blank outcome is no outcome. Anything else is refused: an outcome the caps do
#: not understand would silently skip a cooldown.
OUTCOMES: tuple[str, ...] = ("conversation", "voicemail", "no_answer", "busy", "failed")


def outcome_key(text: str | None) -> str | None:
    """An outcome as it is compared: spaces around removed, lower case; None when blank."""
    key = (text or "").strip().lower()
    return key or None
CONSENT_TYPES: tuple[str, ...] = ("express", "express_written", "ebr_purchase", "ebr_inquiry")

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_JURISDICTION = re.compile(r"^(US|CA|GB|AU)(-[A-Z]{2})?$")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,60}$")


class Window(BaseModel):
    """A local-time window, start inclusive, end exclusive (``"08:00-21:00"``)."""

    model_config = ConfigDict(frozen=True)

    start: time
    end: time | None  # None: midnight at the end of the day

    @classmethod
    def parse(cls, text: str) -> Window:
        m = _WINDOW.match(text.strip())
        if not m:
            raise ValueError(f"{text!r} is not a window such as '08:00-21:00'")
        sh, sm, eh, em = (int(g) for g in m.groups())
        if eh == 24 and em:
            raise ValueError(f"{text!r}: the end cannot be after 24:00")
        start = time(sh, sm)
        end = None if eh == 24 else time(eh, em)
        if end is not None and end <= start:
            raise ValueError(f"{text!r}: the window ends before it starts")
        return cls(start=start, end=end)

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


def _default_purposes() -> list[Purpose]:
    return ["telemarketing"]


def _all_call_types() -> list[CallType]:
    return ["manual", "autodialed", "prerecorded"]


def _consents() -> list[ConsentType]:
    return ["express", "express_written"]


def _window(value: object) -> object:
    if value is None or isinstance(value, Window):
        return value
    if isinstance(value, str):
        return Window.parse(value)
    raise ValueError("a window is a string such as '08:00-21:00', or null for no calls")


class RuleBase(BaseModel):
    """What every rule carries: identity, source, validity period, scope."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Unique inside its file; reasons name it as JURISDICTION:id")
    citation: str = Field(min_length=3)
    effective: date
    expires: date | None = Field(default=None, description="First day it no longer applies")
    confidence: Confidence
    applies_to: list[Purpose] = Field(default_factory=_default_purposes)
    call_types: list[CallType] = Field(default_factory=_all_call_types)
    line_types: list[LineType] | None = Field(default=None, description="None: any line")
    notes: str = ""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("rule ids are lower_snake_case")
        return value

    @model_validator(mode="after")
    def _period(self) -> RuleBase:
        if self.expires is not None and self.expires <= self.effective:
            raise ValueError(f"rule {self.id}: expires before it is effective")
        if not self.applies_to or not self.call_types:
            raise ValueError(f"rule {self.id}: applies_to and call_types cannot be empty")
        return self

    def active(self, on: date) -> bool:
        return self.effective <= on and (self.expires is None or on < self.expires)

    def active_during(self, first: date, last: date) -> bool:
        """Whether the rule is in force on some day from ``first`` to ``last`` (inclusive):
        how a rule that restricts a call is read when the called party's date may be any of
        them (the strictest reading)."""
        return self.effective <= last and (self.expires is None or first < self.expires)

    def scoped(self, purpose: str, call_type: str, line_type: str | None,
               unknown_line_is: str | None = None) -> bool:
        """Whether the rule covers this kind of call (line type unknown: see settings)."""
        if purpose not in self.applies_to or call_type not in self.call_types:
            return False
        if self.line_types is None:
            return True
        line = line_type or unknown_line_is
        if line == "voip":  # residential, or charged per call: both kinds of rule reach it
            return any(t in self.line_types for t in VOIP_IS)
        return line is not None and line in self.line_types


class CallingWindowRule(RuleBase):
    kind: Literal["calling_window"]
    weekday: Window | None
    saturday: Window | None
    sunday: Window | None
    extra_zones: list[str] = Field(
        default_factory=list,
        description="Fixed zones also evaluated, e.g. Etc/GMT+6 for 'Central Standard Time'")

    _w = field_validator("weekday", "saturday", "sunday", mode="before")(_window)

    def window_for(self, weekday: int) -> Window | None:
        if weekday == 5:
            return self.saturday
        if weekday == 6:
            return self.sunday
        return self.weekday


class HolidayBanRule(RuleBase):
    kind: Literal["holiday_ban"]
    holiday_set: str


class EmergencyBanRule(RuleBase):
    kind: Literal["emergency_ban"]


class FrequencyCapRule(RuleBase):
    kind: Literal["frequency_cap"]
    max_attempts: int = Field(ge=1)
    window_hours: int = Field(ge=1)
    cooldown_after: list[str] = Field(default_factory=list,
                                      description="Outcomes that start a cooldown")
    cooldown_hours: int = Field(default=0, ge=0)


class ConsentRequiredRule(RuleBase):
    kind: Literal["consent_required"]
    accepted: dict[Purpose, list[ConsentType]] = Field(
        description="Per purpose, the consent types that satisfy the rule")


class WirelessRestrictedRule(RuleBase):
    kind: Literal["wireless_restricted"]
    lifted_by: list[ConsentType] = Field(default_factory=_consents)


class RegistryRule(RuleBase):
    kind: Literal["registry"]
    list_kind: Literal["national", "state"]
    registry: str = Field(description="Human name of the registry, e.g. 'US National DNC'")
    cadence: str = Field(description="How often it is published, e.g. monthly, quarterly")
    max_age_days: int = Field(ge=1, description="Freshness: days a snapshot may be used")


class EbrRule(RuleBase):
    """How long an established business relationship lasts after a purchase and after an
    inquiry: in calendar months where the law counts months (18 months is not 548 days: from
    1 January it ends on 1 July of the next year), in days where it counts days."""

    kind: Literal["ebr"]
    purchase_months: int | None = Field(default=None, ge=1)
    inquiry_months: int | None = Field(default=None, ge=1)
    purchase_days: int | None = Field(default=None, ge=1)
    inquiry_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_unit(self) -> EbrRule:
        for what in ("purchase", "inquiry"):
            if getattr(self, f"{what}_months") is not None and \
                    getattr(self, f"{what}_days") is not None:
                raise ValueError(f"{what}: give {what}_months or {what}_days, not both")
        return self

    def ends(self, what: str, since: date) -> date | None:
        """The first day on which a relationship begun on ``since`` (a purchase or an
        inquiry: ``what``) no longer counts; None when this rule gives that kind no window.
        Both units end the same way: a window of N days ends N days after ``since`` (180 days
        from 1 May 2026 end on 28 October 2026: 1 May is day 1, 27 October day 180), one of
        N months on the same day N months later (or on that month's last day)."""
        months = getattr(self, f"{what}_months")
        if months is not None:
            return add_months(since, months)
        days = getattr(self, f"{what}_days")
        return None if days is None else since + timedelta(days=days)

    def window(self, what: str) -> str | None:
        """The window of ``what`` as written, e.g. ``18 months`` (None: none)."""
        months, days = getattr(self, f"{what}_months"), getattr(self, f"{what}_days")
        return f"{months} months" if months is not None else \
            f"{days} days" if days is not None else None


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months: the same day of the month, or that month's
    last day when it is shorter (31 August plus 6 months is 28 or 29 February)."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


Rule = Annotated[
    CallingWindowRule | HolidayBanRule | EmergencyBanRule | FrequencyCapRule
    | ConsentRequiredRule | WirelessRestrictedRule | RegistryRule | EbrRule,
    Field(discriminator="kind"),
]


class HolidayDay(BaseModel):
    """One holiday: a fixed date, the nth weekday of a month, or an offset from Easter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    date: str | None = Field(default=None, description="MM-DD")
    month: int | None = Field(default=None, ge=1, le=12)
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None
    nth: int | None = Field(default=None, description="1..5, or -1 for the last")
    after: int = Field(default=0, description="Days added after the nth weekday")
    easter: int | None = Field(default=None, description="Days from Western Easter Sunday")

    @model_validator(mode="after")
    def _shape(self) -> HolidayDay:
        fixed = self.date is not None
        nth = self.month is not None and self.weekday is not None and self.nth is not None
        easter = self.easter is not None
        if fixed + nth + easter != 1:
            raise ValueError(f"holiday {self.name}: give exactly one of date, "
                             "month+weekday+nth, easter")
        if fixed:
            assert self.date is not None
            if not re.match(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$", self.date):
                raise ValueError(f"holiday {self.name}: date must be MM-DD")
            month, day = (int(p) for p in self.date.split("-"))
            try:  # a day every year has (02-29 is not: that holiday would fail 3 years in 4)
                date(2001, month, day)
            except ValueError:
                raise ValueError(f"holiday {self.name}: {self.date} is not a day of every "
                                 "year") from None
        if self.nth is not None and self.nth not in (1, 2, 3, 4, 5, -1):
            raise ValueError(f"holiday {self.name}: nth must be 1..5 or -1")
        return self


class HolidaySet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    confidence: Confidence
    days: list[HolidayDay] = Field(min_length=1)
    observed_shift: dict[Literal["saturday", "sunday"], Literal["friday", "monday"]] = Field(
        default_factory=dict, description="Observed-day shift; both days are then banned")
    extra_dates: list[date] = Field(default_factory=list, description="Proclaimed days")


_RULE_REF = re.compile(r"^(US|CA|GB|AU)(-[A-Z]{2})?:[a-z][a-z0-9_]{1,60}$")


class AppliedRules(BaseModel):
    """Rules of another jurisdiction (``US:calling_window``) that apply to this one's numbers,
    with the citation that makes them apply (e.g. a statute defining "State" to include the
    territories)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[str] = Field(min_length=1, description="JURISDICTION:rule_id")
    citation: str = Field(min_length=3)
    confidence: Confidence
    notes: str = ""

    @field_validator("rules")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        for ref in value:
            if not _RULE_REF.match(ref):
                raise ValueError(f"{ref!r} is not a rule reference such as 'US:calling_window'")
        return value


class RulesFile(BaseModel):
    """One jurisdiction's data file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jurisdiction: str
    name: str
    notes: str = ""
    rules: list[Rule] = Field(default_factory=list)
    holiday_sets: dict[str, HolidaySet] = Field(default_factory=dict)
    applies: list[AppliedRules] = Field(
        default_factory=list,
        description="The country's rules that apply here and why (every one, when given)")

    @field_validator("jurisdiction")
    @classmethod
    def _jurisdiction(cls, value: str) -> str:
        if not _JURISDICTION.match(value):
            raise ValueError("jurisdiction is US, CA, GB, AU or US-XX")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RulesFile:
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule ids: {', '.join(dupes)}")
        for rule in self.rules:
            if isinstance(rule, HolidayBanRule) and rule.holiday_set not in self.holiday_sets:
                raise ValueError(f"rule {rule.id}: unknown holiday set {rule.holiday_set!r}")
        refs = [ref for group in self.applies for ref in group.rules]
        twice = sorted({r for r in refs if refs.count(r) > 1})
        if twice:
            raise ValueError(f"applies: listed more than once: {', '.join(twice)}")
        country = self.jurisdiction.split("-")[0]
        foreign = sorted({r for r in refs if r.split(":")[0] != country})
        if foreign or (refs and self.jurisdiction == country):
            raise ValueError(f"applies: only a subdivision lists its country's ({country}) "
                             f"rules{': not ' + ', '.join(foreign) if foreign else ''}")
        return self


class ZoneData(BaseModel):
    """``_zones.yaml``: split-zone area codes, state zones, ZIP prefixes, region fallbacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multi_timezone_npas: dict[str, list[str]]
    subdivision_zones: dict[str, list[str]]
    region_zones: dict[str, list[str]]
    zip3_zones: dict[str, list[str]] = Field(
        default_factory=dict, description="'NNN-NNN' -> zones, for ZIP3s of multi-zone states")


class RulesetMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    reviewed: date
    notes: str = ""
