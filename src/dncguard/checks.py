"""The one interface every check plugs into: local lists, remote sources, rules.

A :class:`Check` receives a :class:`Batch` of unique, valid numbers (with the first row's
per-row context) and returns, for each number, the reasons it found. A check that raises
makes every number of its batch ``error`` / ``SOURCE_ERROR``: nothing unverified is allowed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .config import CampaignProfile, Settings
from .lists import INFO_KINDS, ListIndex, ListInfo, ListStore
from .models import DataVersions, Decision, Reason, ReasonCode
from .phones import state_for

log = logging.getLogger("dncguard.checks")


@dataclass(frozen=True)
class CheckContext:
    """What the numbers are checked for: the dial time and the campaign."""

    at: datetime
    campaign: str = "default"
    purpose: str = "telemarketing"
    call_type: str = "manual"
    profile: CampaignProfile = field(default_factory=CampaignProfile)

    def selects(self, name: str) -> bool:
        """Whether the campaign profile selects this list or source (all, by default)."""
        return self.profile.lists is None or name in self.profile.lists


@dataclass
class Batch:
    """Unique valid numbers to check, with the context of the first row of each."""

    e164: list[str]
    digits: npt.NDArray[np.uint64]
    region: list[str]
    state: list[str | None]
    extra: list[dict[str, str]]  # optional per-row columns: state, zip, timezone, line_type

    def __len__(self) -> int:
        return len(self.e164)

    @classmethod
    def of(cls, e164: list[str], region: list[str], state: list[str | None],
           extra: list[dict[str, str]] | None = None) -> Batch:
        digits = np.array([int(e[1:]) for e in e164], dtype=np.uint64)
        return cls(e164, digits, region, state, extra or [{} for _ in e164])


@runtime_checkable
class Check(Protocol):
    """A source of reasons. ``name`` appears in reasons and in campaign profiles."""

    name: str

    def versions(self) -> DataVersions:
        """The data versions this check relies on (list snapshot dates, ruleset)."""
        ...

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        """Reasons per number of ``batch`` (same order); raise to fail the batch closed."""
        ...


def applies_to(jurisdiction: str, batch: Batch) -> npt.NDArray[np.bool_]:
    """Which numbers a national or state list applies to.

    A national registry applies to the numbers of its country. A state list (``US-FL``)
    applies to numbers of that state by area code or by the row's address (``state``
    column or flag): both are candidates, as for the calling rules. A number whose state is
    unknown either way gets every state list of its country (the safe side).
    """
    country, _, state = jurisdiction.partition("-")
    out = np.zeros(len(batch), dtype=bool)
    for i, (region, e164, extra) in enumerate(zip(batch.region, batch.e164, batch.extra,
                                                  strict=True)):
        if region != country:
            continue
        if not state:
            out[i] = True
            continue
        candidates = {s for s in (state_for(e164), (extra.get("state") or "").upper(),
                                  (batch.state[i] or "").upper()) if s}
        out[i] = not candidates or state in candidates
    return out


class LocalListsCheck:
    """Every local list (snapshots plus database entries), checked vectorised.

    Lists of kind ``cxone`` are left to the CXone check, which also knows their freshness.
    """

    name = "local"

    def __init__(self, store: ListStore, infos: list[ListInfo] | None = None) -> None:
        self.store = store
        infos = [i for i in (store.all() if infos is None else infos)
                 if i.kind != "cxone" and i.kind not in INFO_KINDS]
        self.indexes = [ListIndex(store, i) for i in infos]

    def versions(self) -> DataVersions:
        return DataVersions(lists={ix.info.name: ix.info.snapshot_date for ix in self.indexes})

    def used(self, ctx: CheckContext) -> list[ListIndex]:
        return [ix for ix in self.indexes if ctx.selects(ix.info.name)]

    def _check_sync(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        out: list[list[Reason]] = [[] for _ in range(len(batch))]
        for ix in self.used(ctx):
            try:
                hits = ix.contains(batch.digits, batch.e164, at=ctx.at)
            except Exception as exc:  # a damaged file or database error: fail closed
                log.warning("list %s could not be checked: %s", ix.info.name, exc)
                error = Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR,
                               source=self.name, list=ix.info.name,
                               detail=f"list {ix.info.name} could not be read "
                               f"({type(exc).__name__}: {str(exc)[:160]})")
                for reasons in out:
                    reasons.append(error)
                continue
            if ix.info.kind in ("national", "state") and ix.info.jurisdiction:
                hits &= applies_to(ix.info.jurisdiction, batch)
            for i in np.flatnonzero(hits):
                out[int(i)].append(ix.reason(batch.e164[int(i)]))
        return out

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        return await asyncio.to_thread(self._check_sync, batch, ctx)


class LineTypes:
    """Marks numbers found on ``wireless`` lists as mobile lines for the rules (a row's own
    ``line_type`` wins), before the checks run."""

    def __init__(self, store: ListStore, infos: list[ListInfo] | None = None) -> None:
        infos = store.all() if infos is None else infos
        self.indexes = [ListIndex(store, i) for i in infos if i.kind == "wireless"]

    def versions(self) -> dict[str, str | None]:
        return {ix.info.name: ix.info.snapshot_date for ix in self.indexes}

    def mark(self, batch: Batch, ctx: CheckContext) -> None:
        for ix in self.indexes:
            if not ctx.selects(ix.info.name):
                continue
            for i in np.flatnonzero(ix.contains(batch.digits, batch.e164, at=ctx.at)):
                batch.extra[int(i)].setdefault("line_type", "mobile")


def default_checks(settings: Settings, store: ListStore | None = None) -> list[Check]:
    """The checks a scrub runs when none are given: every configured list and source."""
    # Imported here: the source modules import this one.
    from .cxone.settings import load_cxone
    from .remote.http_batch import HttpBatchCheck, load_http_batch

    store = store or ListStore(settings)
    infos = store.all()
    checks: list[Check] = [LocalListsCheck(store, infos)]
    cx = load_cxone(settings)
    if cx.configured or any(i.kind == "cxone" for i in infos):
        from .cxone.check import CxoneCheck

        checks.append(CxoneCheck(settings, cx, store=store))
    hb = load_http_batch(settings)
    if hb.configured:
        checks.append(HttpBatchCheck(hb))
    from .config import load_section
    from .rules import RulesCheck, RulesSettings

    rules_settings = load_section(RulesSettings, settings)
    if rules_settings.enabled:
        checks.append(RulesCheck(settings, rules_settings=rules_settings, store=store))
    return checks
