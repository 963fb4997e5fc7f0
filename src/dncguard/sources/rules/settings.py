"""Settings of the rules engine: ``DNCGUARD_RULES_*`` variables and the ``[rules]`` TOML table.

The defaults follow the issue: registries are required and must be fresh. Operators whose
registry scrub happens elsewhere turn that off::

    [rules]
    require_registries = false        # or DNCGUARD_RULES_REQUIRE_REGISTRIES=false
    registry_optional = ["US-FL"]     # or only for some jurisdictions ("*" for all)
    check_freshness = false           # also skip REGISTRY_STALE on loaded lists
    max_age_days = { US-FL = 90 }     # stricter freshness per jurisdiction (lists.freshness)
    default_max_age_days = 31         # dated lists whose jurisdiction has no registry rule
    enabled = false                   # no rules at all (list scrubbing only)
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ...config import SectionSettings

if TYPE_CHECKING:
    from ._loader import Ruleset


class EmergencyDeclaration(BaseModel):
    """An operator-supplied state of emergency: a state (optionally some ZIP prefixes) and dates."""

    model_config = ConfigDict(extra="forbid")  # a misspelt ``zips`` must not go statewide

    jurisdiction: str = Field(description="US-XX")
    start: date
    end: date | None = Field(default=None, description="Last day (inclusive); None: open")
    zips: list[str] = Field(default_factory=list, description="ZIP prefixes; empty: statewide")
    note: str = ""

    @field_validator("jurisdiction")
    @classmethod
    def _jur(cls, value: str) -> str:
        from ...places import subdivision_codes

        value = value.strip().upper()
        if not (len(value) == 5 and value.startswith("US-")
                and value[3:] in subdivision_codes("US")):
            raise ValueError(f"{value!r} is not a US state or territory; an emergency's "
                             "jurisdiction is written like US-LA")
        return value

    @field_validator("zips")
    @classmethod
    def _zips(cls, value: list[str]) -> list[str]:
        out = [z.strip() for z in value]
        bad = [z for z in out if not (z.isdigit() and z.isascii() and 1 <= len(z) <= 5)]
        if bad:  # a prefix no ZIP starts with would leave the whole declaration unused
            raise ValueError(f"ZIP prefixes are 1 to 5 digits ({', '.join(map(repr, bad[:5]))})")
        return out

    @model_validator(mode="after")
    def _dates_and_zips(self) -> EmergencyDeclaration:
        """The last day is not before the first (such a declaration covered no day: calls
        went on), and each ZIP prefix is that of some ZIP code of the declared state: a
        prefix of another state's (``100``, New York, on a US-LA declaration) matched none of
        the state's numbers, and those with a ZIP code were then allowed."""
        if self.end is not None and self.end < self.start:
            raise ValueError(f"the end {self.end} is before the start {self.start}: the "
                             "declaration would cover no day; give the last day of the "
                             "emergency (inclusive), or no end while it lasts")
        state = self.jurisdiction[3:]
        foreign = [z for z in self.zips if not _prefix_in_state(z, state)]
        if foreign:
            raise ValueError(f"ZIP prefix{'es' if len(foreign) > 1 else ''} "
                             f"{', '.join(foreign[:5])} {'are' if len(foreign) > 1 else 'is'} "
                             f"not that of any ZIP code of {self.jurisdiction}: give prefixes "
                             f"of {self.jurisdiction}'s ZIP codes, or none for the whole state")
        return self

    def covers(self, on: date) -> bool:
        return self.start <= on and (self.end is None or on <= self.end)


def _prefix_in_state(prefix: str, state: str) -> bool:
    """Whether some known ZIP code starting with ``prefix`` (1 to 5 digits) is in ``state``
    (a USPS code), by the shipped ZIP table (:func:`dncguard.places.zip_state`)."""
    from ...places import zip_state

    free = 5 - len(prefix)
    return any(zip_state(f"{prefix}{n:0{free}d}" if free else prefix) == state
               for n in range(10 ** free))


class RulesSettings(SectionSettings):
    """Rules engine settings (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="DNCGUARD_RULES_", extra="ignore")
    toml_table: ClassVar[str | None] = "rules"
    _ruleset: Ruleset | None = PrivateAttr(default=None)

    enabled: bool = Field(
        default=True, description="Run the rules at all (default_checks skips RulesCheck if off)")
    require_registries: bool = Field(
        default=True, description="A number whose registry is not loaded is error/REGISTRY_MISSING")
    registry_optional: list[str] = Field(
        default_factory=list,
        description="Jurisdictions (US, CA, GB, AU, US-XX, or '*') whose registry is not required")
    check_freshness: bool = Field(default=True, description="Stale loaded registries give errors")
    max_age_days: dict[str, int] = Field(
        default_factory=dict, description="Per-jurisdiction freshness override in days: "
        "stricter than the registry rule, never longer (a longer one is refused; see "
        "dncguard.sources.rules.freshness)")
    default_max_age_days: int = Field(
        default=31, ge=1, description="Freshness of national and state lists whose "
        "jurisdiction has no registry rule (reported stale, never an error)")
    unknown_timezone: Literal["region", "error"] = Field(
        default="region",
        description="No zone found: hours legal in every zone of the region, or TIMEZONE_UNKNOWN")
    unknown_line_type: Literal["any", "mobile", "ignore"] = Field(
        default="any",
        description="Line type unknown: judge it by the rules of either kind, wireless and "
                    "residential, as a VoIP line (any: the strict reading), by the wireless "
                    "rules only (mobile), or as a landline (ignore: the wireless rules do not "
                    "apply); the verdict says so by LINE_TYPE_ASSUMED")
    emergencies: list[EmergencyDeclaration] = Field(default_factory=list)
    emergencies_file: Path | None = Field(
        default=None, description="CSV with jurisdiction,start,end,zips,note (zips ';'-joined)")
    data_dir: Path | None = Field(default=None, description="Use another rules data folder")

    @field_validator("registry_optional")
    @classmethod
    def _optional(cls, value: list[str]) -> list[str]:
        """Each entry a jurisdiction a registry can have (as ``max_age_days`` keys are), or
        ``*``: one not understood (``FL``, ``us_tx``) matched no registry, which then stayed
        required without a word."""
        from ...lists.store import jurisdiction_problem
        from ...places import subdivision

        out = [j.strip().upper() for j in value]
        for j in out:
            if j != "*" and jurisdiction_problem("national", j) and \
                    jurisdiction_problem("state", j):
                named = subdivision(j) if j else None
                hint = f" (did you mean {named[0]}-{named[1]}?)" if named else ""
                raise ValueError(f"{j!r} is not a jurisdiction{hint}: give US, CA, GB, AU, a "
                                 "state or province such as US-FL or CA-ON, or '*' for all")
        return out

    @field_validator("max_age_days")
    @classmethod
    def _max_ages(cls, value: dict[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for k, v in value.items():
            key = k.strip().upper()
            if key in out:  # "US-FL" and "us-fl": which one was meant is not known
                raise ValueError(f"max_age_days names {key} twice ({k!r} and another "
                                 "spelling of it): give it once")
            out[key] = v
        bad = [k for k, v in out.items() if v < 1]
        if bad:
            raise ValueError(f"max_age_days must be at least 1 day ({', '.join(bad)})")
        return out

    @model_validator(mode="after")
    def _overrides_only_stricter(self) -> RulesSettings:
        """Each override names a jurisdiction a list can have, and is at most the maximum of
        every registry rule of that jurisdiction in the ruleset: the registries' maxima are the
        law's, so an override may only be stricter. (Freshness is switched off, where that is
        meant, by ``check_freshness`` or ``registry_optional``, which say so.) The ruleset is
        read only when there are overrides."""
        if not self.max_age_days:
            return self
        from ...lists.store import jurisdiction_problem
        from .schema import RegistryRule

        rules = self.ruleset()
        for key, days in self.max_age_days.items():
            if jurisdiction_problem("national", key) and jurisdiction_problem("state", key):
                raise ValueError(f"max_age_days: {key!r} is not a jurisdiction a list can "
                                 "have (US, CA, GB, AU, or a state or province such as "
                                 "US-FL or CA-ON)")
            found = [r for _, r in rules.of_kind(RegistryRule, [key])]
            if found:
                rule = min(found, key=lambda r: r.max_age_days)
                if days > rule.max_age_days:
                    raise ValueError(
                        f"max_age_days for {key} is {days} days, longer than the "
                        f"{rule.max_age_days} days of its registry rule {key}:{rule.id} "
                        f"({rule.citation}); an override may only be stricter (to stop "
                        "judging freshness, set check_freshness = false)")
        return self

    @model_validator(mode="after")
    def _emergencies_have_a_ban(self) -> RulesSettings:
        """Each declared emergency is in a state whose rules ban calls in one (else the
        declaration would change nothing, without a word). The ruleset is read only when
        emergencies are declared here."""
        if self.emergencies:
            problem = emergencies_problem(self.ruleset(), self.emergencies)
            if problem:
                raise ValueError(problem)
        return self

    def registry_required(self, jurisdiction: str) -> bool:
        if not self.require_registries:
            return False
        optional = {j.strip().upper() for j in self.registry_optional}
        return "*" not in optional and jurisdiction.upper() not in optional

    def ruleset(self) -> Ruleset:
        """The ruleset these settings name (``data_dir``, else the packaged one), read once
        per settings object: the checks, the freshness policy behind ``/readyz`` and the
        CLI all judge by the same rules until the settings are loaded again."""
        if self._ruleset is None:
            from ._loader import load_ruleset

            self._ruleset = load_ruleset(self.data_dir)
        return self._ruleset


def emergencies_problem(ruleset: Ruleset, declared: list[EmergencyDeclaration]) -> str | None:
    """Why some of ``declared`` would have no effect under ``ruleset`` (their state has no
    emergency ban rule), or None."""
    from .schema import EmergencyBanRule

    idle = sorted({d.jurisdiction for d in declared
                   if not ruleset.of_kind(EmergencyBanRule, [d.jurisdiction])})
    if not idle:
        return None
    return (f"emergencies declared for {', '.join(idle)}, whose rules have no emergency ban "
            f"(ruleset {ruleset.version}): such a declaration would change no verdict; "
            "remove it, or add the state's rule to the rules data")
