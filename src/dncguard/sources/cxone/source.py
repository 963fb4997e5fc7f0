"""The CXone check: synced DNC groups checked locally, with a freshness guard.

* A fresh group (synced within ``max_sync_age_hours``) is checked through its local index: a
  record blocks while its ``expiredDate`` is empty or after the dial time.
* An inactive or removed group does not block.
* A stale or never-synced group fails closed (``error`` / ``SOURCE_ERROR``), or, with
  ``stale_policy = "live_search"``, each number is searched live on CXone (up to
  ``live_search_max`` per batch; the rest fail closed). A number whose search fails gets
  ``SOURCE_ERROR``: nothing unchecked is allowed. With no group synced, a hit in a group the
  group list left out is confirmed with ``GET /dnc-groups/{id}`` (:class:`_ActiveGroups`).
* With the pre-filter enabled (``[prefilter]``), numbers a live search recently found on a
  group (a record without an expiry date) are answered locally, without a search; only misses
  and a sample of hits are searched (:mod:`dncguard.sources.remote.prefilter`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from ...config import Settings
from ...errors import SourceError
from ...lists.store import ListIndex, ListInfo, ListStore
from ...models import DataVersions, Decision, Reason, ReasonCode
from ...phones import mask
from ...store import utcnow
from ..protocol import Batch, CheckBase, CheckContext
from ..remote.prefilter import Hit, Prefilter
from ._client import CxoneClient, group_on
from ._records import list_name, parse_time, to_cxone_phone
from .settings import CxoneSettings, load_cxone

log = logging.getLogger("dncguard.sources.cxone")

ClientFactory = Callable[[], CxoneClient]


def _error(detail: str, lst: str | None = None) -> Reason:
    return Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source="cxone",
                  list=lst, detail=detail)


def _hit(info_name: str, group_name: str | None, detail: str) -> Reason:
    return Reason(code=ReasonCode.DNC_CXONE, decision=Decision.BLOCK, source="cxone",
                  list=info_name, detail=f"on CXone DNC group {group_name or info_name}{detail}")


def unsynced_groups(cx: CxoneSettings, infos: list[ListInfo]) -> list[str]:
    """The ids of the configured ``groups`` that no synced list of ``infos`` holds."""
    have = {str(i.meta.get("group_id")) for i in infos}
    return sorted({str(g) for g in cx.groups or ()} - have)


def never_synced(group_id: str, now: datetime) -> ListInfo:
    """A configured group that has no list yet, as a list that was never synced."""
    return ListInfo(name=list_name(group_id), kind="cxone", jurisdiction=None,
                    snapshot_date=None, count=0, current_file=None, salt=None, created_at=now,
                    updated_at=now, synced_at=None, meta={"group_id": group_id})


def _relevant(results: list[dict[str, Any]], groups: dict[str, ListInfo] | None,
              active: set[str] | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group id, record) of the search results in the groups checked (``None``: all).
    ``active`` holds every group of the results that is active (see :class:`_ActiveGroups`)."""
    for r in results:
        gid = str(r.get("dncGroupId"))
        if (groups is None or gid in groups) and (active is None or gid in active):
            yield gid, r


class _ActiveGroups:
    """Which groups of live search results count, with no group synced: the active groups of
    the group list (and of ``GROUPS``, when set). A group a result names that the list left
    out is asked for on its own (``GET /dnc-groups/{id}``): the list may be incomplete (no
    content, an empty or short list); gone (404), inactive or removed, it does not count;
    any other answer, it does; a group that cannot be asked about leaves the number
    unverified (:class:`SourceError`)."""

    def __init__(self, client: CxoneClient, listed: list[dict[str, Any]],
                 wanted: set[str] | None) -> None:
        self.client = client
        self.wanted = wanted
        self.names = {str(g.get("dncGroupId")): g.get("dncGroupName") for g in listed}
        self.active = {str(g.get("dncGroupId")) for g in listed if group_on(g)[0]}
        self._asked: dict[str, asyncio.Task[bool]] = {}

    async def _ask(self, gid: str) -> bool:
        group = await self.client.group(gid)
        if group is None or not group_on(group)[0]:
            return False
        self.names[gid] = group.get("dncGroupName")
        return True

    async def of(self, results: list[dict[str, Any]]) -> set[str]:
        """The groups of ``results`` that count (raises :class:`SourceError`)."""
        out: set[str] = set()
        for gid in {str(r.get("dncGroupId")) for r in results
                    if r.get("dncGroupId") not in (None, "")}:
            if self.wanted is not None and gid not in self.wanted:
                continue
            if gid not in self.names:  # left out of the list: ask (once per check)
                task = self._asked.get(gid)
                if task is None:
                    task = self._asked[gid] = asyncio.ensure_future(self._ask(gid))
                if await task:
                    out.add(gid)
            elif gid in self.active:
                out.add(gid)
        return out

    def candidates(self) -> list[str]:
        """The listed groups that count (the pre-filter's candidates)."""
        return sorted(self.active if self.wanted is None else self.active & self.wanted)


class CxoneCheck(CheckBase):
    """Check numbers against the synced CXone DNC groups (name ``cxone``)."""

    name = "cxone"

    def __init__(
        self,
        settings: Settings,
        cx: CxoneSettings | None = None,
        *,
        store: ListStore | None = None,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], datetime] = utcnow,
        prefilter: Prefilter | None = None,
    ) -> None:
        self.settings = settings
        self.cx = cx or load_cxone(settings)
        self.store = store or ListStore(settings)
        self.clock = clock
        self.client_factory: ClientFactory = client_factory or (lambda: CxoneClient(self.cx))
        self._indexes: dict[str, ListIndex] | None = None
        self.live_searches = 0
        self._prefilter = prefilter
        self._prefilter_opened = prefilter is not None

    @property
    def prefilter(self) -> Prefilter | None:
        """The live-search pre-filter (opened on first use), or None when disabled."""
        if not self._prefilter_opened:
            self._prefilter_opened = True
            namespace = "|".join(x or "" for x in (self.cx.issuer, self.cx.api_endpoint,
                                                  self.cx.tenant_id))
            self._prefilter = Prefilter.open(self.settings, self.name, namespace=namespace)
        return self._prefilter

    def prefilter_stats(self) -> dict[str, Any] | None:
        """The pre-filter's counts since this check was built (None if it never ran)."""
        pf = self._prefilter
        return pf.stats() if pf is not None else None

    def _infos(self) -> list[ListInfo]:
        """The groups checked: the synced ones, and with ``groups`` configured only those,
        each configured group that has never been synced standing in as a list never synced
        (a configured group is checked or fails closed, never skipped)."""
        infos = [i for i in self.store.all() if i.kind == "cxone"]
        if self.cx.groups:
            wanted = {str(g) for g in self.cx.groups}
            infos = [i for i in infos if str(i.meta.get("group_id")) in wanted]
            infos += [never_synced(gid, self.clock()) for gid in unsynced_groups(self.cx, infos)]
        return infos

    def versions(self) -> DataVersions:
        return DataVersions(lists={i.name: i.synced_at.isoformat() if i.synced_at else None
                                   for i in self._infos()})

    def _stale(self, info: ListInfo) -> bool:
        if info.synced_at is None:
            return True
        return self.clock() - info.synced_at > timedelta(hours=self.cx.max_sync_age_hours)

    def _index(self, info: ListInfo) -> ListIndex:
        if self._indexes is None:
            self._indexes = {}
        ix = self._indexes.get(info.name)
        if ix is None or ix.info.synced_at != info.synced_at:
            ix = self._indexes[info.name] = ListIndex(self.store, info)
        return ix

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        out: list[list[Reason]] = [[] for _ in range(len(batch))]
        infos = [i for i in await asyncio.to_thread(self._infos)
                 if ctx.selects(i.name) or ctx.selects(self.name)]
        if not infos:  # configured (or selected) but nothing synced: fail closed
            why = "no CXone DNC group has been synced (run: dncguard cxone sync)"
            if self.cx.stale_policy == "live_search":
                await self._live(batch, ctx, out, None, why)
            else:
                for reasons in out:
                    reasons.append(_error(why))
            return out
        stale: list[ListInfo] = []
        for info in infos:
            if not info.meta.get("active", True):
                continue  # inactive groups do not block
            if self._stale(info):
                stale.append(info)
                continue
            try:
                hits = await asyncio.to_thread(self._index(info).contains, batch.digits,
                                               at=ctx.at)
            except Exception as exc:  # a database error: fail closed for this group
                log.warning("CXone list %s could not be read: %s", info.name, exc)
                for reasons in out:
                    reasons.append(_error(f"CXone list {info.name} could not be read "
                                          f"({type(exc).__name__})", info.name))
                continue
            for i in np.flatnonzero(hits):
                out[int(i)].append(_hit(info.name, info.meta.get("group_name"),
                                        f" (synced {info.synced_at:%Y-%m-%d %H:%M}Z)"
                                        if info.synced_at else ""))
        if stale:
            never = [i.name for i in stale if i.synced_at is None]
            old = [i.name for i in stale if i.synced_at is not None]
            why = "; ".join(
                ([f"CXone list {', '.join(never)} has never been synced (run: dncguard cxone "
                  f"sync)"] if never else []) +
                ([f"CXone list {', '.join(old)} is stale (synced longer than "
                  f"{self.cx.max_sync_age_hours:g} h ago)"] if old else []))
            if self.cx.stale_policy == "live_search":
                await self._live(batch, ctx, out, stale, why)
            else:
                for reasons in out:
                    reasons.extend(_error(why, i.name) for i in stale)
        return out

    async def _live(self, batch: Batch, ctx: CheckContext, out: list[list[Reason]],
                    infos: list[ListInfo] | None, why: str) -> None:
        """Search each number live; ``infos`` None means every active group counts."""
        groups = None if infos is None else {str(i.meta.get("group_id")): i for i in infos}
        names = {gid: i.meta.get("group_name") for gid, i in (groups or {}).items()}
        limit = self.cx.live_search_max
        todo = list(range(len(batch)))
        pf = self.prefilter
        if pf is None:  # without a pre-filter the limit applies before anything is asked
            for i in todo[limit:]:
                out[i].append(_error(f"{why}; too many numbers for a live search "
                                     f"({len(batch)} > {limit})"))
            todo = todo[:limit]
        if not todo:
            return
        try:
            client = self.client_factory()
        except Exception as exc:  # not configured
            for i in todo:
                out[i].append(_error(f"{why}; live search unavailable ({exc})"))
            return
        async with client:
            every: _ActiveGroups | None = None
            if groups is None:
                try:
                    every = _ActiveGroups(client, await client.groups(), {
                        str(g) for g in self.cx.groups} if self.cx.groups else None)
                except SourceError as exc:
                    for i in todo:
                        out[i].append(_error(f"{why}; live search failed ({exc})"))
                    return
                names = every.names
            plan = None
            if pf is not None:
                candidates = sorted(groups) if groups is not None else (
                    every.candidates() if every is not None else [])
                plan = await asyncio.to_thread(pf.plan, batch.e164, candidates)
                todo = plan.remote
                for i in todo[limit:]:
                    if i not in plan.sampled:
                        out[i].append(_error(f"{why}; too many numbers for a live search "
                                             f"({len(todo)} > {limit})"))
                todo = todo[:limit]
            answers: dict[int, list[str] | None] = {}
            lasting: dict[int, list[str]] = {}
            failed: dict[int, Reason] = {}

            async def one(i: int) -> None:
                e164 = batch.e164[i]
                try:
                    results = await client.search(to_cxone_phone(e164))
                    active = None if every is None else await every.of(results)
                except SourceError as exc:
                    log.info("CXone live search of %s failed: %s", mask(e164), exc)
                    failed[i] = _error(f"{why}; live search failed ({exc})")
                    return
                self.live_searches += 1
                hits = self._search_hits(results, ctx, groups, active)
                out[i].extend(hits)
                unnamed = sum(1 for r in results if r.get("dncGroupId") in (None, ""))
                if unnamed:  # a record of no group: it may be one of the groups checked
                    failed[i] = _error(f"{why}; live search answered {unnamed} record(s) "
                                       "without a group id; not verified")
                    return
                answers[i] = [str(r.list).removeprefix("cxone:") for r in hits]
                lasting[i] = self._lasting(results, groups, active)

            await asyncio.gather(*(one(i) for i in todo))
        kept: dict[int, Hit] = {}
        if plan is not None and pf is not None:
            kept = await asyncio.to_thread(pf.settle, plan, answers, lasting)
            for i, hit in plan.local.items():
                out[i].extend(self._prefilter_hits(hit, names))
            for i, hit in kept.items():  # re-verification failed: the recent positive stands
                log.info("CXone re-verification of %s failed; the pre-filter hit stands",
                         mask(batch.e164[i]))
                out[i].extend(self._prefilter_hits(hit, names))
        for i, error in failed.items():
            if i not in kept:
                out[i].append(error)

    @staticmethod
    def _prefilter_hits(hit: Hit, names: dict[str, Any]) -> list[Reason]:
        return [_hit(f"cxone:{gid}", names.get(gid), f" (live search {hit.describe()})")
                for gid in hit.lists]

    @staticmethod
    def _lasting(results: list[dict[str, Any]], groups: dict[str, ListInfo] | None,
                 active: set[str] | None) -> list[str]:
        """Groups whose record of the number has no expiry date: what the pre-filter may keep
        (a record that expires later blocks now, but is never cached)."""
        return [gid for gid, r in _relevant(results, groups, active)
                if r.get("expiredDate") in (None, "")]

    @staticmethod
    def _search_hits(results: list[dict[str, Any]], ctx: CheckContext,
                     groups: dict[str, ListInfo] | None, active: set[str] | None
                     ) -> list[Reason]:
        found: list[Reason] = []
        seen: set[str] = set()
        for gid, r in _relevant(results, groups, active):
            expired = parse_time(r.get("expiredDate"))
            if expired is not None and expired <= ctx.at:
                continue
            if gid in seen:
                continue
            seen.add(gid)
            found.append(_hit(f"cxone:{gid}", r.get("dncGroupName"), " (live search)"))
        return found


async def search_number(client: CxoneClient, e164: str, at: datetime, *,
                        groups: bool = False) -> list[dict[str, Any]]:
    """Live search of one number: its group records, each ``blocking`` when it blocks at
    ``at`` by its expiry. With ``groups`` (as the check reads it), each also says whether its
    group is active (``groupActive``, from the group list, a group left out of it asked
    about), and a record of an inactive, removed or gone group does not block."""
    results = await client.search(to_cxone_phone(e164))
    active: set[str] | None = None
    if groups:
        active = await _ActiveGroups(client, await client.groups(), None).of(results)
    out = []
    for r in results:
        expired = parse_time(r.get("expiredDate"))
        on = {} if active is None else {"groupActive": str(r.get("dncGroupId")) in active}
        out.append({**r, **on, "blocking": on.get("groupActive", True)
                    and (expired is None or expired > at)})
    return out
