"""The one interface every check plugs into: local lists, remote sources, rules.

A :class:`Check` receives a :class:`Batch` of unique, valid numbers (with the first row's
per-row context) and returns, for each number, the reasons it found. A check that raises
makes every number of its batch ``error`` / ``SOURCE_ERROR``: nothing unverified is allowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from ._lazy import lazy_import
from .config import CampaignProfile, Settings
from .engine.findings import Findings
from .lists import INFO_KINDS, ListIndex, ListInfo, ListStore
from .models import DataVersions, Decision, Reason, ReasonCode
from .phones import npa_state_index, npa_state_table

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

log = logging.getLogger("dncguard.checks")

#: :meth:`Batch.ids` of a batch up to this size is computed in Python (the same ids as
#: PyArrow's dictionary encoding), so that checking a few numbers does not import PyArrow.
_SMALL_BATCH = 256


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

    def reads_wireless(self, name: str) -> bool:
        """Whether the rules read this wireless list: always, unless the profile names it in
        ``skip_wireless`` (``lists`` narrows the DNC lists only, never a rule input)."""
        return name not in self.profile.skip_wireless


@dataclass
class Batch:
    """Unique valid numbers to check, with the context of the first row of each.

    ``extra`` holds each number's optional per-row columns (state, zip, timezone, line_type,
    subject). Numbers with the same columns may share one dict: checks must not change it
    (use :meth:`with_default`). :meth:`contexts` gives the distinct dicts and an index.
    """

    e164: list[str]
    digits: npt.NDArray[np.uint64]
    region: list[str]
    state: list[str | None]
    extra: list[dict[str, str]]  # optional per-row columns: state, zip, timezone, line_type
    _contexts: tuple[list[dict[str, str]], npt.NDArray[np.int64]] | None = field(
        default=None, repr=False, compare=False)
    _ids: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict, repr=False,
                                                   compare=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.e164)

    @classmethod
    def of(cls, e164: list[str], region: list[str], state: list[str | None],
           extra: list[dict[str, str]] | None = None) -> Batch:
        digits = np.array([int(e[1:]) for e in e164], dtype=np.uint64)
        return cls(e164, digits, region, state, extra or [{} for _ in e164])

    @classmethod
    def shared(cls, e164: list[str], digits: npt.NDArray[np.uint64], region: list[str],
               state: list[str | None], contexts: list[dict[str, str]],
               index: npt.NDArray[np.int64]) -> Batch:
        """A batch whose numbers' ``extra`` are ``contexts[index[i]]`` (shared dicts)."""
        extra = [contexts[k] for k in index.tolist()]
        return cls(e164, digits, region, state, extra, (contexts, index))

    def ids(self, name: str) -> npt.NDArray[np.int64]:
        """Small integer ids of the ``region`` or ``state`` values (equal values, equal ids)."""
        found = self._ids.get(name)
        if found is None:
            values: list[str] | list[str | None] = self.region if name == "region" \
                else self.state
            if len(values) <= _SMALL_BATCH:  # the same ids, without importing PyArrow
                first: dict[str | None, int] = {}
                found = self._ids[name] = np.array(
                    [first.setdefault(v, len(first)) for v in values], dtype=np.int64)
                return found
            encoded = pc.dictionary_encode(pa.array(values, pa.string()),
                                           null_encoding="encode")
            found = self._ids[name] = np.asarray(
                encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        return found

    def ids_known(self, name: str, ids: npt.NDArray[np.int64]) -> None:
        """Give :meth:`ids` of ``name`` (the caller's own codes of the values)."""
        self._ids[name] = ids

    def distinct(self, name: str) -> tuple[list[Any], npt.NDArray[np.int64]]:
        """The distinct ``region`` or ``state`` values (by :meth:`ids`) and each number's
        index into them: work per value instead of per number."""
        ids = self.ids(name)
        values: list[str] | list[str | None] = self.region if name == "region" else self.state
        table: list[Any] = [None] * (int(ids.max()) + 1 if ids.size else 0)
        if ids.size:
            seen, first = np.unique(ids, return_index=True)
            for k, i in zip(seen.tolist(), first.tolist(), strict=True):
                table[k] = values[i]
        return table, ids

    def contexts(self) -> tuple[list[dict[str, str]], npt.NDArray[np.int64]]:
        """The distinct ``extra`` dicts and, per number, the index of its own."""
        if self._contexts is None:
            found: dict[tuple[tuple[str, str], ...], int] = {}
            distinct: list[dict[str, str]] = []
            index = np.empty(len(self.extra), dtype=np.int64)
            for i, extra in enumerate(self.extra):
                key = tuple(sorted(extra.items()))
                k = found.get(key)
                if k is None:
                    k = found[key] = len(distinct)
                    distinct.append(extra)
                index[i] = k
            self._contexts = (distinct, index)
        return self._contexts

    def with_default(self, which: npt.NDArray[np.bool_], key: str, value: str) -> None:
        """Set ``extra[key] = value`` for the numbers in ``which`` that have no ``key``."""
        if not which.any():
            return
        distinct, index = self.contexts()
        distinct = list(distinct)
        index = index.copy()
        moved: dict[int, int] = {}
        for k in np.unique(index[which]).tolist():
            if key not in distinct[k]:
                moved[k] = len(distinct)
                distinct.append({**distinct[k], key: value})
        if not moved:
            return
        old = index.copy()
        for k, new in moved.items():
            index[which & (old == k)] = new
        self._contexts = (distinct, index)
        self._memo.clear()  # anything derived from the contexts
        self.extra = [distinct[k] for k in index.tolist()]


@runtime_checkable
class Check(Protocol):
    """A source of reasons: everything the engine asks of one (see :class:`CheckBase` for
    the defaults a simple source can inherit). ``name`` appears in reasons and in campaign
    profiles."""

    name: str
    #: True: runs whatever a campaign profile's ``lists`` select (it applies the selection
    #: to its own lists itself, as the local lists and the rules do); False: runs only when
    #: the profile selects ``name``.
    always: bool

    def versions(self) -> DataVersions:
        """The data versions this check relies on (list snapshot dates, ruleset)."""
        ...

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        """Reasons per number of ``batch`` (same order); raise to fail the batch closed."""
        ...

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        """The same reasons as :class:`~dncguard.engine.findings.Findings` (what the engine calls;
        shared reason lists, no list per number)."""
        ...

    def timezones(self, batch: Batch) -> list[tuple[str, str]] | None:
        """Candidate IANA zones of each number and how they were found, or None when this
        check does not locate numbers (the verdict's ``timezone`` comes from one that does)."""
        ...


class CheckBase:
    """Defaults for a :class:`Check`: selected by name, findings from :meth:`check`, no
    time zones. A source implements ``name``, ``versions`` and ``check``."""

    name: str
    always: bool = False

    def versions(self) -> DataVersions:
        raise NotImplementedError

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        raise NotImplementedError

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        return Findings.from_lists(await self.check(batch, ctx))

    def timezones(self, batch: Batch) -> list[tuple[str, str]] | None:
        return None


def locate(checks: Sequence[Check], batch: Batch) -> list[tuple[str, str]] | None:
    """The candidate zones of the numbers of ``batch`` from the first check that locates
    numbers (None: none does)."""
    for check in checks:
        found = check.timezones(batch)
        if found is not None:
            return found
    return None


def applies_to(jurisdiction: str, batch: Batch) -> npt.NDArray[np.bool_]:
    """Which numbers a national or state list applies to.

    A national registry applies to the numbers of its country. A state list (``US-FL``)
    applies to numbers of that state by area code or by the row's address (``state``
    column or flag): both are candidates, as for the calling rules. A number whose state is
    unknown either way gets every state list of its country (the safe side).
    """
    country, _, state = jurisdiction.partition("-")
    key = f"country:{country}"
    out = batch._memo.get(key)
    if out is None:
        regions, ids = batch.distinct("region")
        out = batch._memo[key] = np.array([r == country for r in regions], dtype=bool)[ids]
    if not state or not out.any():
        return np.array(out, dtype=bool)
    names, candidates = _state_candidates(batch)
    known = (candidates != 0).any(axis=0)
    code = names.get(state)  # None: no number has this state by any account
    matches = (candidates == code).any(axis=0) if code is not None else False
    return np.asarray(out & (~known | matches), dtype=bool)


def _state_candidates(batch: Batch) -> tuple[dict[str, int], npt.NDArray[np.int64]]:
    """Each number's candidate states (area code, row address, batch state) as codes into
    one table (0: none), computed once per batch."""
    found = batch._memo.get("states")
    if found is not None:
        return cast(tuple[dict[str, int], npt.NDArray[np.int64]], found)
    names: dict[str, int] = {"": 0}

    def coded(table: list[str], index: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``table[index]`` as codes into ``names`` (one dict lookup per distinct value)."""
        codes = np.array([names.setdefault(v, len(names)) for v in table], dtype=np.int64)
        return codes[index] if codes.size else np.zeros(index.size, dtype=np.int64)

    npa_names, npa_index = npa_state_table()[0], npa_state_index(batch.digits)
    distinct, index = batch.contexts()
    given, ids = batch.distinct("state")
    candidates = np.stack([
        coded(npa_names, npa_index),
        coded([(c.get("state") or "").upper() for c in distinct], index),
        coded([(g or "").upper() for g in given], ids),
    ]) if len(batch) else np.zeros((3, 0), dtype=np.int64)
    batch._memo["states"] = (names, candidates)
    return names, candidates


class LocalListsCheck(CheckBase):
    """Every local list (snapshots plus database entries), checked vectorised.

    Lists of kind ``cxone`` are left to the CXone check, which also knows their freshness.
    """

    name = "local"
    always = True  # applies a campaign's list selection to its own lists

    def __init__(self, store: ListStore, infos: list[ListInfo] | None = None) -> None:
        self.store = store
        infos = [i for i in (store.all() if infos is None else infos)
                 if i.kind != "cxone" and i.kind not in INFO_KINDS]
        self.indexes = [ListIndex(store, i) for i in infos]

    def versions(self) -> DataVersions:
        return DataVersions(lists={ix.info.name: ix.info.snapshot_date for ix in self.indexes})

    def used(self, ctx: CheckContext) -> list[ListIndex]:
        return [ix for ix in self.indexes if ctx.selects(ix.info.name)]

    def _findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        masks: list[npt.NDArray[np.bool_]] = []
        reasons: list[Reason] = []
        for ix in self.used(ctx):
            try:
                hits = self._hits(ix, batch, ctx)
            except Exception as exc:  # a damaged file or database error: fail closed
                log.warning("list %s could not be checked: %s", ix.info.name, exc)
                masks.append(np.ones(len(batch), dtype=bool))
                reasons.append(Reason(
                    code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source=self.name,
                    list=ix.info.name, detail=f"list {ix.info.name} could not be read "
                    f"({type(exc).__name__}: {str(exc)[:160]})"))
                continue
            masks.append(hits)
            reasons.append(ix.reason())
        return Findings.from_masks(masks, reasons, len(batch))

    @staticmethod
    def _hits(ix: ListIndex, batch: Batch, ctx: CheckContext) -> npt.NDArray[np.bool_]:
        """The numbers on the list, looking up only those its jurisdiction applies to."""
        if not (ix.info.kind in ("national", "state") and ix.info.jurisdiction):
            return ix.contains(batch.digits, batch.e164, at=ctx.at)
        applies = applies_to(ix.info.jurisdiction, batch)
        if applies.all():
            return ix.contains(batch.digits, batch.e164, at=ctx.at)
        hits = np.zeros(len(batch), dtype=bool)
        at = np.flatnonzero(applies)
        if at.size:
            hits[at] = ix.contains(batch.digits[at], [batch.e164[i] for i in at.tolist()],
                                   at=ctx.at)
        return hits

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        return await asyncio.to_thread(self._findings, batch, ctx)

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        return (await self.findings(batch, ctx)).per_number()


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
            if not ctx.reads_wireless(ix.info.name):
                continue
            batch.with_default(ix.contains(batch.digits, batch.e164, at=ctx.at),
                               "line_type", "mobile")


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
        checks.append(HttpBatchCheck(hb, settings=settings))
    from .config import load_section
    from .rules import RulesCheck, RulesSettings

    rules_settings = load_section(RulesSettings, settings)
    if rules_settings.enabled:
        checks.append(RulesCheck(settings, rules_settings=rules_settings, store=store))
    return checks
