"""Sync CXone DNC groups into the local store, incrementally.

Each group becomes a list of kind ``cxone`` named ``cxone:<groupId>``; its records become
``list_entries`` rows (origin ``sync``, ``value`` = E.164, ``expires_at`` = ``expiredDate``,
``meta`` = record id and update time). The list's ``meta`` keeps the group id, name, active
flag, scrubbed skills and the incremental cursor; ``synced_at`` says when it was last synced.

Incremental refresh (the records endpoint has no ``updatedSince``):

1. one probe per group: ``GET records?top=1&orderBy=lastUpdateTime desc``. If the total and the
   newest update time equal what the last sync saw (and the group's own ``lastUpdateTime`` and
   ``validRecords`` too), nothing changed: only ``synced_at`` moves.
2. otherwise page newest-first until a record older than the cursor (the newest update time
   seen before; records updated in the cursor's own millisecond are read again, since one may
   have changed after the last sync read it): new, re-added and expired records (an expiry
   updates the record) are upserted;
3. then the totals must agree: last total + new records == the server's total, where a record
   is new when no earlier sync read it (each stored row names its record and the number's
   other records read, ``meta.others``: a change to a number's other record is not new). If
   not (records were removed on the CXone side), or a full sync is due (``full_sync_hours``),
   or the server refuses ``orderBy``, every page is downloaded again and the list is replaced
   atomically.

A full read is saved only when the group did not change while it was read: the group
(``GET /dnc-groups/{id}``: ``lastUpdateTime``, ``validRecords``) and its newest record (total,
id, update time) are probed before and after the read and must agree, besides the pages' own
consistency; else it is read again, up to ``FULL_READS`` times. A records answer with no content
(204) is an empty group only when the group's ``validRecords`` is 0, and a read of fewer records
than ``validRecords`` is refused. Each group is synced on its own: one that fails keeps its last
sync, and :class:`SyncFailed` names it once every group was tried.

An incremental walk is trusted only when it proves it saw every change: the newest record is
not older than the cursor, the records come newest first with an update time each, and the walk
ends at a record older than the cursor or after every record. Otherwise (``orderBy`` ignored, an
empty page before the end, a record without a time) the group is downloaded in full.

A number with several records keeps the one that blocks longest (no expiry, else the latest
expiry), whatever their update times: a number blocks while any of its records does, as the live
search reads it; of records that block alike, the most recently updated. An incremental sync
keeps the stored record of a number when it blocks longer than the new ones and is not among
them (it is still in the group: a removal changes the total). When a stored record is among
the new ones but now blocks less (it expired, or expires sooner) and may not be its number's
only record (each row's ``meta.alone`` says whether it is, as far as the syncs saw), the group
is read in full: another record of the number, older than the cursor, may still block it. A
group with a record whose number cannot be read is not saved (the sync fails for it; the last
sync stands).

A sync saves a group's entries and its state (cursor, total, ``synced_at``) in one transaction
(:mod:`._save`): a crash leaves both as the last sync left them. The modules: :mod:`._records`
(reading a record), :mod:`._reads` (reading a group from CXone), :mod:`._rows` (records as
rows), :mod:`._save` (the transaction); this one decides, group by group, what to read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update

from ...config import Settings
from ...errors import SourceError
from ...lists.store import ListInfo, ListStore
from ...store import count_list_change, lists_table, utcnow
from ._client import CxoneClient, group_on
from ._reads import FULL_READS, GroupReader, Probe
from ._records import ORDER_NEWEST, list_name, parse_time, to_cxone_phone, to_e164
from ._rows import build_rows, known_ids, merge_stored, refuse_unreadable
from ._save import replace_all, save_group, upsert
from .settings import CxoneSettings

__all__ = ["FULL_READS", "ORDER_NEWEST", "CxoneSync", "GroupFailure", "GroupResult", "Probe",
           "SyncFailed", "SyncReport", "list_name", "parse_time", "to_cxone_phone", "to_e164"]

log = logging.getLogger("dncguard.sources.cxone")


@dataclass
class GroupResult:
    group_id: str
    name: str
    mode: str  # unchanged | incremental | full
    records: int  # the server's total
    fetched: int  # records downloaded this time
    skipped: int = 0  # records whose phone number could not be read
    active: bool = True


@dataclass
class GroupFailure:
    group_id: str
    name: str
    error: str


@dataclass
class SyncReport:
    groups: list[GroupResult] = field(default_factory=list)
    requests: int = 0
    failed: list[GroupFailure] = field(default_factory=list)  # groups not synced, and why


class SyncFailed(SourceError):
    """Some groups could not be synced; every other group was (``report`` says which). Raised
    once the sync is over, so the command still exits non-zero."""

    def __init__(self, report: SyncReport) -> None:
        self.report = report
        why = "; ".join(f"group {f.group_id}: {f.error}" for f in report.failed)
        synced = ", ".join(g.group_id for g in report.groups) or "none"
        super().__init__(f"{len(report.failed)} CXone DNC group(s) could not be synced (the "
                         f"last sync of each stands): {why}; synced: {synced}", source="cxone")


class CxoneSync:
    """Syncs groups through a :class:`CxoneClient` into a :class:`ListStore`."""

    def __init__(self, settings: Settings, cx: CxoneSettings, client: CxoneClient,
                 store: ListStore | None = None, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.cx = cx
        self.client = client
        self.store = store or ListStore(settings)
        self.engine: Engine = self.store.engine
        self.clock = clock
        self.region = settings.default_region
        self.reader = GroupReader(client, cx.page_size)

    async def _skills(self, group: dict[str, Any]) -> list[Any] | SourceError:
        try:
            return await self.client.skills(str(group["dncGroupId"]))
        except SourceError as exc:
            return exc

    async def select_groups(self, group_ids: list[str] | None = None,
                            skill: str | None = None
                            ) -> list[tuple[dict[str, Any], list[Any] | SourceError]]:
        """(group, scrubbed skills) of the groups to sync: the given ids, else those scrubbing
        ``skill``, else every active, non-removed group. A group whose skills could not be
        read comes with the error instead (with ``skill``, it may be one that scrubs it)."""
        groups = await self.client.groups()
        by_id = {str(g.get("dncGroupId")): g for g in groups}
        wanted = group_ids or self.cx.groups
        if wanted:
            missing = [g for g in wanted if str(g) not in by_id]
            if missing:
                raise SourceError(f"CXone has no DNC group {', '.join(missing)}", source="cxone")
            chosen = [by_id[str(g)] for g in wanted]
        else:
            chosen = [g for g in groups if group_on(g)[0]]
        skills = await asyncio.gather(*(self._skills(g) for g in chosen))
        pairs = list(zip(chosen, skills, strict=True))
        skill = skill or (None if wanted else self.cx.skill)
        if skill:
            pairs = [(g, s) for g, s in pairs if isinstance(s, SourceError)
                     or str(skill) in {str(k.get("skillId")) for k in s}]
            if not pairs:
                raise SourceError(f"no CXone DNC group scrubs skill {skill}", source="cxone")
        # Groups synced before that are now inactive or removed on CXone stop blocking.
        await self._mark_inactive(by_id)
        return pairs

    async def _mark_inactive(self, by_id: dict[str, dict[str, Any]]) -> None:
        """Turn off the synced groups CXone now lists as inactive or removed, and those it
        no longer lists once CXone confirms they are gone (``GET /dnc-groups/{id}`` answers
        404, or the group as removed or inactive). A group left out of the list that CXone
        still has means the list was incomplete (an empty list or no content while groups
        exist): the sync fails and no group is turned off."""
        off: list[tuple[ListInfo, bool]] = []  # (list, removed)
        for info in self.store.all():
            if info.kind != "cxone" or not info.meta.get("active", True):
                continue
            gid = str(info.meta.get("group_id"))
            g = by_id.get(gid)
            if g is None:
                g = await self.client.group(gid)
                if g is not None and group_on(g)[0]:
                    raise SourceError(
                        f"CXone group list left out DNC group {gid}, which CXone still has: "
                        "the list is incomplete; refused (no group was turned off)",
                        source="cxone")
            if g is None or not group_on(g)[0]:
                off.append((info, g is None or group_on(g)[1]))
        for info, removed in off:
            meta = {**info.meta, "active": False, "removed": removed}
            with self.engine.begin() as conn:
                conn.execute(update(lists_table).where(lists_table.c.name == info.name)
                             .values(meta=meta, updated_at=self.clock()))
                count_list_change(conn)

    async def sync(self, group_ids: list[str] | None = None, skill: str | None = None, *,
                   full: bool = False) -> SyncReport:
        """Sync the groups chosen (:meth:`select_groups`), each on its own: a group that
        cannot be synced (its last sync stands) does not stop the others; once every group
        was tried, :class:`SyncFailed` names those that failed."""
        before = self.client.resilient.stats.requests
        report = SyncReport()
        for group, skills in await self.select_groups(group_ids, skill):
            gid, name = str(group["dncGroupId"]), str(group.get("dncGroupName") or "")
            try:
                if isinstance(skills, SourceError):
                    raise skills
                report.groups.append(await self.sync_group(group, skills, full=full))
            except SourceError as exc:
                log.warning("CXone group %s was not synced: %s", gid, exc)
                report.failed.append(GroupFailure(gid, name, str(exc)))
        report.requests = self.client.resilient.stats.requests - before
        if report.failed:
            raise SyncFailed(report)
        return report

    # -- one group ----------------------------------------------------------------------------
    async def sync_group(self, group: dict[str, Any], skills: list[Any], *,
                         full: bool = False) -> GroupResult:
        gid = str(group["dncGroupId"])
        name = list_name(gid)
        info = self.store.ensure(name, kind="cxone", meta={"group_id": gid})
        meta = dict(info.meta)
        now = self.clock()
        active, removed = group_on(group)
        group_meta = {
            "group_id": gid, "group_name": group.get("dncGroupName"),
            "description": group.get("dncGroupDescription"),
            "active": active, "removed": removed,
            "scrubbed_skills": [str(s.get("skillId")) for s in skills],
            "group_updated": group.get("lastUpdateTime"),
            "valid_records": group.get("validRecords"),
        }
        last_full = parse_time(meta.get("full_synced_at"))
        due = last_full is None or now - last_full > timedelta(hours=self.cx.full_sync_hours)
        cursor = meta.get("cursor")
        if full or due or cursor is None or info.synced_at is None:
            return await self._full(info, group_meta, now)
        try:
            page = await self.client.records_page(gid, 0, 1, ORDER_NEWEST)
        except SourceError as exc:
            if "HTTP 400" not in str(exc):
                raise
            return await self._full(info, group_meta, now)
        total, newest = page if page is not None else (-1, [])  # 204: nothing proven
        newest_at = newest[0].get("lastUpdateTime") if newest else None
        if (page is not None and total == meta.get("total") and newest_at == cursor
                and group_meta["group_updated"] == meta.get("group_updated")
                and group_meta["valid_records"] == meta.get("valid_records")):
            save_group(self.engine, self.settings, name, {**meta, **group_meta}, now)
            return GroupResult(gid, str(group_meta["group_name"]), "unchanged", total, 0,
                               active=bool(group_meta["active"]))
        return await self._incremental(info, group_meta, now, cursor)

    async def _incremental(self, info: ListInfo, group_meta: dict[str, Any], now: datetime,
                           cursor: str) -> GroupResult:
        gid = group_meta["group_id"]
        walked = await self.reader.walk_newest(gid, cursor)
        if isinstance(walked, str):
            log.info("CXone group %s: the newest-first walk is not trusted (%s); full re-sync",
                     gid, walked)
            return await self._full(info, group_meta, now)
        total, fresh = walked
        with self.engine.connect() as conn:
            known = known_ids(conn, info.name, fresh, self.region)
        new = sum(1 for r in fresh if str(r.get("recordId")) not in known)
        expected = int(info.meta.get("total") or 0) + new
        if expected != total:
            log.info("CXone group %s: %d records expected, server has %d; full re-sync",
                     gid, expected, total)
            return await self._full(info, group_meta, now)
        rows, skipped = build_rows(info.name, fresh, now, self.region)
        refuse_unreadable(gid, fresh, skipped, self.region)
        with self.engine.connect() as conn:
            rows, kept, weaker = merge_stored(conn, info.name, fresh, rows, self.region)
        if weaker:
            log.info("CXone group %s: a record of a number with several records now blocks "
                     "less than it did; full re-sync", gid)
            return await self._full(info, group_meta, now)
        cursor_new = max((str(r.get("lastUpdateTime")) for r in fresh
                          if r.get("lastUpdateTime")), default=cursor,
                         key=lambda v: parse_time(v) or now)
        meta = {**info.meta, **group_meta, "total": total, "cursor": cursor_new}
        save_group(self.engine, self.settings, info.name, meta, now,
                   entries=upsert(info.name, rows, kept),
                   event={"mode": "incremental", "fetched": len(fresh)})
        return GroupResult(gid, str(group_meta["group_name"]), "incremental", total, len(fresh),
                           skipped, bool(group_meta["active"]))

    async def _full(self, info: ListInfo, group_meta: dict[str, Any], now: datetime
                    ) -> GroupResult:
        gid = group_meta["group_id"]
        total, records, after = await self.reader.read_full(gid)
        group_meta = {**group_meta, "group_updated": after.group.get("lastUpdateTime"),
                      "valid_records": after.group.get("validRecords")}
        rows, skipped = build_rows(info.name, records, now, self.region)
        refuse_unreadable(gid, records, skipped, self.region)
        cursor = max((str(r.get("lastUpdateTime")) for r in records if r.get("lastUpdateTime")),
                     default="", key=lambda v: parse_time(v) or now) or None
        meta = {**info.meta, **group_meta, "total": len(records), "cursor": cursor,
                "full_synced_at": now.isoformat()}
        save_group(self.engine, self.settings, info.name, meta, now,
                   entries=replace_all(info.name, rows), count=len(rows),
                   event={"mode": "full", "fetched": len(records)})
        return GroupResult(gid, str(group_meta["group_name"]), "full", total, len(records),
                           skipped, bool(group_meta["active"]))
