"""One definition of list freshness, used by the rules, ``/readyz``, ``GET /v1/lists``,
``dncguard lists ls``, the metrics and the compliance report.

A national or state list (:data:`dncguard.lists.store.DATED_KINDS`) may be used for
:attr:`Freshness.max_age_days` days after its snapshot date. That maximum is, in order:

1. the operator's ``[rules] max_age_days`` override for the list's jurisdiction;
2. the ``registry`` rule of the jurisdiction for the list's kind in the ruleset
   (``rules/data/*.yaml``: US national 31 days, Florida 122, Texas 152, GB 28, ...); when
   several are in force on the day, the strictest;
3. otherwise ``[rules] default_max_age_days`` (31, the FTC's safe-harbor period).

A list is fresh while its age in days on the day judged (``day - snapshot_date``) is at most
that maximum. A dated kind without a readable snapshot date is never fresh. Other kinds
(internal, litigator, hashed, prefix, wireless, cxone) have no snapshot date to age:
they are always fresh here (CXone groups have their own sync age).

Lists with a registry rule are *enforced*: the rules answer ``error`` / ``REGISTRY_STALE`` for
numbers of that jurisdiction when the newest such list is stale, so ``/readyz`` fails for them
(:func:`blocking`). Lists that only fall back on the default are reported stale but do not fail
readiness: no verdict depends on their age.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal, Protocol

from ...lists.store import DATED_KINDS
from ...store import utcnow

if TYPE_CHECKING:
    from ...config import Settings
    from ._loader import Ruleset
    from .schema import RegistryRule
    from .settings import RulesSettings

DEFAULT_MAX_AGE_DAYS = 31

Basis = Literal["rule", "override", "default", "undated"]


class ListLike(Protocol):
    """What freshness needs of a list (:class:`dncguard.lists.store.ListInfo` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def jurisdiction(self) -> str | None: ...
    @property
    def snapshot_date(self) -> str | None: ...


@dataclass(frozen=True)
class ListRef:
    """A list known only by these fields (e.g. from a job's audit record)."""

    name: str
    kind: str
    jurisdiction: str | None
    snapshot_date: str | None


@dataclass(frozen=True)
class Freshness:
    """How old one list is on ``day`` and how old it may be."""

    name: str
    kind: str
    jurisdiction: str | None
    snapshot_date: str | None
    day: date
    age_days: int | None  # None: no (readable) snapshot date
    max_age_days: int | None  # None: not a dated kind
    fresh: bool
    basis: Basis  # where max_age_days comes from
    rule: str | None = None  # "US:national_dnc": the registry rule that governs this list
    citation: str | None = None
    registry: str | None = None  # the rule's name of the registry
    cadence: str | None = None

    @property
    def enforced(self) -> bool:
        """Whether the rules answer ``error`` for numbers of this list's jurisdiction when it
        is stale (it has a registry rule)."""
        return self.rule is not None

    @property
    def days_over(self) -> int | None:
        """Days past the maximum age (0 or less: fresh; None: no date or not dated)."""
        if self.age_days is None or self.max_age_days is None:
            return None
        return self.age_days - self.max_age_days

    def limit_text(self) -> str:
        """Where the maximum comes from, for messages."""
        if self.basis == "undated":
            return "not a dated list"
        where = self.jurisdiction or "its jurisdiction"
        if self.basis == "override":
            text = f"[rules] max_age_days for {where}"
            return f"{text} (overriding {self.rule})" if self.rule else text
        if self.basis == "rule":
            cited = f", {self.citation}" if self.citation else ""
            return f"rule {self.rule}{cited}"
        return f"the default for lists without a registry rule ({where})"

    def problem(self) -> str | None:
        """Why the list is stale, in one sentence (None when fresh)."""
        if self.fresh:
            return None
        if self.age_days is None:
            what = (f"snapshot date {self.snapshot_date!r} cannot be read"
                    if self.snapshot_date else "no snapshot date")
            return (f"list {self.name} is stale: {what}, so its age against the "
                    f"{self.max_age_days} days allowed by {self.limit_text()} cannot be shown")
        over = self.days_over or 0
        return (f"list {self.name} is stale: snapshot {self.snapshot_date} is {self.age_days} "
                f"days old on {self.day.isoformat()}, {over} day{'s' if over != 1 else ''} past "
                f"the {self.max_age_days} days allowed by {self.limit_text()}")


def today() -> date:
    """The day the service and the CLI judge freshness on (UTC), as the rules do for a
    dial time of now."""
    return utcnow().date()


def _parse(snapshot: str | None) -> date | None:
    if not snapshot:
        return None
    try:
        return date.fromisoformat(snapshot)
    except ValueError:
        return None


class FreshnessPolicy:
    """The maxima of one ruleset and one operator's overrides (see the module docstring)."""

    def __init__(self, ruleset: Ruleset | None, overrides: Mapping[str, int] | None = None,
                 default_days: int = DEFAULT_MAX_AGE_DAYS) -> None:
        self.ruleset = ruleset
        self.overrides = {k.strip().upper(): int(v) for k, v in (overrides or {}).items()}
        self.default_days = default_days

    @classmethod
    def of(cls, settings: Settings, rules: RulesSettings | None = None) -> FreshnessPolicy:
        """The policy of a home: its ``[rules]`` settings and the ruleset they load."""
        from .settings import RulesSettings

        rules = rules or settings.section(RulesSettings)
        return cls(rules.ruleset(), rules.max_age_days, rules.default_max_age_days)

    def registry_rule(self, kind: str, jurisdiction: str | None,
                      day: date) -> tuple[str, RegistryRule] | None:
        """The registry rule governing lists of this kind and jurisdiction on ``day`` (the
        strictest when several are in force), or None."""
        if self.ruleset is None or not jurisdiction:
            return None
        from .schema import RegistryRule

        j = jurisdiction.upper()
        found = [(jj, r) for jj, r in self.ruleset.of_kind(RegistryRule, [j])
                 if r.list_kind == kind and r.active(day)]
        return min(found, key=lambda jr: jr[1].max_age_days) if found else None

    def judge(self, info: ListLike, day: date,
              rule: tuple[str, RegistryRule] | None = None) -> Freshness:
        """The freshness of ``info`` on ``day``; ``rule`` forces the registry rule (the rules
        engine passes the one it is applying)."""
        snap = _parse(info.snapshot_date)
        age = (day - snap).days if snap is not None else None
        found = rule or self.registry_rule(info.kind, info.jurisdiction, day)
        override = self.overrides.get((info.jurisdiction or "").upper())
        basis: Basis
        max_age: int | None
        if info.kind not in DATED_KINDS:
            max_age, basis, found = None, "undated", None
        elif override is not None:
            max_age, basis = override, "override"
        elif found is not None:
            max_age, basis = found[1].max_age_days, "rule"
        else:
            max_age, basis = self.default_days, "default"
        fresh = max_age is None or (age is not None and age <= max_age)
        return Freshness(
            name=info.name, kind=info.kind, jurisdiction=info.jurisdiction,
            snapshot_date=info.snapshot_date, day=day, age_days=age, max_age_days=max_age,
            fresh=fresh, basis=basis, rule=f"{found[0]}:{found[1].id}" if found else None,
            citation=found[1].citation if found else None,
            registry=found[1].registry if found else None,
            cadence=found[1].cadence if found else None)

    def judge_all(self, infos: Iterable[ListLike], day: date) -> list[Freshness]:
        return [self.judge(i, day) for i in infos]


def blocking(statuses: Iterable[Freshness]) -> list[Freshness]:
    """The stale lists that make verdicts ``error``: for each enforced registry (kind and
    jurisdiction), its newest list, when that one is stale (an older list beside a fresh one
    is not used by the rules)."""
    newest: dict[tuple[str, str], Freshness] = {}
    for f in statuses:
        if not f.enforced:
            continue
        key = (f.kind, (f.jurisdiction or "").upper())
        best = newest.get(key)
        if best is None or (f.snapshot_date or "") > (best.snapshot_date or ""):
            newest[key] = f
    return [f for f in newest.values() if not f.fresh]


__all__ = ["DEFAULT_MAX_AGE_DAYS", "Freshness", "FreshnessPolicy", "ListRef", "blocking",
           "today"]
