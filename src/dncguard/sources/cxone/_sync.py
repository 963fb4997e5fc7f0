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
3. then the totals must agree: last total + new records == the server's total. If not (records
   were removed on the CXone side), or a full sync is due (``full_sync_hours``), or the server
   refuses ``orderBy``, every page is downloaded again and the list is replaced atomically.

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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from ... import audit
from ...config import Settings
from ...errors import SourceError
from ...lists.store import ListInfo, ListStore
from ...phones import mask, normalise
from ...store import (
    count_list_change,
    list_entries_table,
    list_events_table,
    lists_table,
    utcnow,
)
from ._client import CxoneClient, group_on
from .settings import CxoneSettings

log = logging.getLogger("dncguard.sources.cxone")

ORDER_NEWEST = "lastUpdateTime desc"


def list_name(group_id: Any) -> str:
    return f"cxone:{group_id}"


def parse_time(value: Any) -> datetime | None:
    """A CXone timestamp (ISO 8601, usually with ``Z``) as an aware UTC datetime."""
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    # an offset other than Z is kept as the same instant in UTC (stored as such: SQLite
    # keeps no offset)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


#: Reads of a whole group a full sync makes before it gives up on a group that keeps changing
#: (or keeps sending inconsistent pages) while it is read.
FULL_READS = 3


def _digits(raw: Any) -> str:
    """The digits of a CXone phone number, in order (whatever punctuation it came with)."""
    return "".join(ch for ch in str(raw) if ch.isdigit())


def _record_key(record: dict[str, Any]) -> str:
    """What tells two records of a group apart: the record id, else the number."""
    rid = record.get("recordId")
    return f"id:{rid}" if rid not in (None, "") else f"phone:{_digits(record.get('phoneNumber'))}"


def to_e164(raw: Any, region: str) -> str | None:
    """A CXone phone number as E.164, or None when it cannot be read.

    CXone (and :func:`to_cxone_phone`, dncguard's own write-back) stores national digits
    for NANP numbers and the full digits, country code first and no ``+``, for the others.
    So a number that is not a number of the default region is read again: ten digits as a
    NANP number, then the digits as an international number (``+`` and the digits): a UK
    number in a US home, or a NANP number in a UK or Australian home, is still read."""
    digits = _digits(raw)
    if not digits:
        return None
    if region in ("US", "CA") and len(digits) == 10 and digits[0] in "23456789":
        return "+1" + digits
    if len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
        return "+" + digits
    text = str(raw).strip()
    result = normalise(text if text.startswith("+") else digits, region)
    if result.e164 is not None or text.startswith("+"):
        return result.e164
    if len(digits) == 10 and digits[0] in "23456789":
        nanp = normalise("+1" + digits, region)
        if nanp.e164 is not None:
            return nanp.e164
    return normalise("+" + digits, region).e164


def _blocks_longer(kept: datetime | None, other: datetime | None) -> bool:
    """Whether a record expiring at ``kept`` blocks at least as long as one expiring at
    ``other`` (None: never expires)."""
    if kept is None:
        return True
    return other is not None and kept >= other


def _agree(gid: str, records: list[dict[str, Any]] | None, total: int, valid: Any
           ) -> list[dict[str, Any]]:
    """The records of a full read, checked against the group's ``validRecords`` (how many of
    its records have not expired, so never more than it holds): no content (204) is an
    empty group only when ``validRecords`` is 0; a read holding fewer records than that, or
    no content beside any other ``validRecords``, is a :class:`SourceError` (read as it is,
    it would unblock numbers the group still holds)."""
    count = valid if isinstance(valid, int) and not isinstance(valid, bool) else None
    if records is None:
        if count == 0:
            return []
        raise SourceError(f"CXone sent no content (204) for the records of DNC group {gid}, "
                          f"whose validRecords is {str(valid)[:20]}; not read as an empty "
                          "group (nothing was saved)", source="cxone")
    if count is not None and total < count:
        raise SourceError(f"CXone DNC group {gid} sent {total} records but says it holds "
                          f"{count} valid records; nothing was saved", source="cxone")
    return records


def to_cxone_phone(e164: str) -> str:
    """What CXone stores: national digits for NANP numbers, else the full digits."""
    return e164[2:] if e164.startswith("+1") and len(e164) == 12 else e164.lstrip("+")


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


@dataclass
class Probe:
    """What shows whether a group changed while it was read: the group itself
    (``GET /dnc-groups/{id}``: ``lastUpdateTime``, ``validRecords``) and, where the server
    orders records, its total and newest record (id and update time)."""

    group: dict[str, Any]
    newest: tuple[Any, ...]

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.group.get("lastUpdateTime"), self.group.get("validRecords"), *self.newest)


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
        self._unordered: set[str] = set()  # groups whose records the server will not order

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
            self._save(name, {**meta, **group_meta}, now)
            return GroupResult(gid, str(group_meta["group_name"]), "unchanged", total, 0,
                               active=bool(group_meta["active"]))
        return await self._incremental(info, group_meta, now, cursor)

    async def _incremental(self, info: ListInfo, group_meta: dict[str, Any], now: datetime,
                           cursor: str) -> GroupResult:
        gid = group_meta["group_id"]
        walked = await self._walk_newest(gid, cursor)
        if isinstance(walked, str):
            log.info("CXone group %s: the newest-first walk is not trusted (%s); full re-sync",
                     gid, walked)
            return await self._full(info, group_meta, now)
        total, fresh = walked
        known = self._known_ids(info.name, fresh)
        new = sum(1 for r in fresh if str(r.get("recordId")) not in known)
        expected = int(info.meta.get("total") or 0) + new
        if expected != total:
            log.info("CXone group %s: %d records expected, server has %d; full re-sync",
                     gid, expected, total)
            return await self._full(info, group_meta, now)
        rows, skipped = self._rows(info.name, fresh, now)
        self._refuse_unreadable(gid, fresh, skipped)
        rows, kept, weaker = self._outlasted(info.name, fresh, rows)
        if weaker:
            log.info("CXone group %s: a record of a number with several records now blocks "
                     "less than it did; full re-sync", gid)
            return await self._full(info, group_meta, now)
        with self.engine.begin() as conn:
            values = [r["value"] for r in rows]
            for i in range(0, len(values), 500):
                conn.execute(delete(list_entries_table).where(
                    list_entries_table.c.list_name == info.name,
                    list_entries_table.c.value.in_(values[i:i + 500])))
            if rows:
                conn.execute(insert(list_entries_table), rows)
            for value, kept_meta in kept.items():  # no longer known as the number's only one
                conn.execute(update(list_entries_table).where(
                    list_entries_table.c.list_name == info.name,
                    list_entries_table.c.value == value).values(meta=kept_meta))
            count_list_change(conn)
        cursor_new = max((str(r.get("lastUpdateTime")) for r in fresh
                          if r.get("lastUpdateTime")), default=cursor,
                         key=lambda v: parse_time(v) or now)
        meta = {**info.meta, **group_meta, "total": total, "cursor": cursor_new}
        self._save(info.name, meta, now, event={"mode": "incremental", "fetched": len(fresh)})
        return GroupResult(gid, str(group_meta["group_name"]), "incremental", total, len(fresh),
                           skipped, bool(group_meta["active"]))

    async def _walk_newest(self, gid: str, cursor: str
                           ) -> tuple[int, list[dict[str, Any]]] | str:
        """(the server's total, every record updated at or after ``cursor``), read newest
        first; or why the walk cannot be trusted to hold every change since the cursor."""
        cursor_at = parse_time(cursor)
        if cursor_at is None:
            return f"the cursor {cursor!r} is not a time"
        fresh: list[dict[str, Any]] = []
        skip, top, total = 0, self.cx.page_size, 0
        previous: datetime | None = None
        while True:
            answer = await self.client.records_page(gid, skip, top, ORDER_NEWEST)
            if answer is None:
                return f"no content (204) after {skip} records"
            total, page = answer
            if not page:
                return (f"an empty page after {skip} of {total} records, before one older "
                        "than the cursor") if skip < total else (total, fresh)
            for rec in page:
                at = parse_time(rec.get("lastUpdateTime"))
                if at is None:
                    return f"record {rec.get('recordId')} has no update time"
                if previous is None and at < cursor_at:
                    return "the newest record is older than the last sync's newest"
                if previous is not None and at > previous:
                    return "the records do not come newest first (orderBy ignored?)"
                previous = at
                if at < cursor_at:
                    return total, fresh
                fresh.append(rec)
            skip += len(page)
            if skip >= total:
                return total, fresh

    def _outlasted(self, name: str, fresh: list[dict[str, Any]], rows: list[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], bool]:
        """Merge the ``rows`` of an incremental sync with the stored ones: (the rows to write,
        the stored rows kept (value: their meta, now marked not alone), whether a stored record
        now blocks less and may not be its number's only record).

        A stored record that blocks longer and is not among the ``fresh`` records is kept
        (another record of the number, still in the group, which keeps blocking it). One that
        is among them but now blocks less is trusted only when it was its number's only record
        (``alone``, from the last full read on): else another record of the number, older than
        the cursor and so not read, may block it longer, which only a full read can tell."""
        ids: dict[str, set[str]] = {}
        for rec in fresh:
            e164 = self._number(rec)
            if e164 is not None:
                ids.setdefault(e164, set()).add(str(rec.get("recordId")))
        by_value = {r["value"]: r for r in rows}
        t = list_entries_table
        keep: dict[str, dict[str, Any]] = {}
        weaker = False
        values = list(by_value)
        with self.engine.connect() as conn:
            for i in range(0, len(values), 500):
                for row in conn.execute(select(t.c.value, t.c.expires_at, t.c.meta).where(
                        t.c.list_name == name, t.c.value.in_(values[i:i + 500]))):
                    stored_meta = dict(row.meta or {})
                    among = str(stored_meta.get("record_id")) in ids.get(row.value, set())
                    alone = among and stored_meta.get("alone") is True
                    written = by_value[row.value]
                    written["meta"]["alone"] = alone and written["meta"]["alone"]
                    expires = row.expires_at
                    if expires is not None and expires.tzinfo is None:
                        expires = expires.replace(tzinfo=UTC)
                    new = written["expires_at"]
                    if new == expires or not _blocks_longer(expires, new):
                        continue
                    if not among:
                        keep[row.value] = {**stored_meta, "alone": False}
                    elif not alone:
                        weaker = True
        return [r for r in rows if r["value"] not in keep], keep, weaker

    def _known_ids(self, name: str, records: list[dict[str, Any]]) -> set[str]:
        phones = [e for e in map(self._number, records) if e]
        out: set[str] = set()
        t = list_entries_table
        with self.engine.connect() as conn:
            for i in range(0, len(phones), 500):
                for row in conn.execute(select(t.c.meta).where(
                        t.c.list_name == name, t.c.value.in_(phones[i:i + 500]))):
                    out.add(str((row.meta or {}).get("record_id")))
        return out

    async def _full(self, info: ListInfo, group_meta: dict[str, Any], now: datetime
                    ) -> GroupResult:
        gid = group_meta["group_id"]
        before: Probe | None = None
        for attempt in range(1, FULL_READS + 1):
            before = before or await self._probe(gid)
            total, read, problem = await self._read_group(gid)
            after = await self._probe(gid)
            if problem is None and after.key != before.key:
                problem = "the group changed while it was read"
            if problem is None:
                break
            before = after
            # a page missing, repeated or shifted, or the group changed while it was read: the
            # records read are not the group, so nothing is saved; read it again, and after
            # FULL_READS such reads give up (the last sync stands)
            log.warning("CXone group %s: read %d of %d was not consistent (%s)", gid, attempt,
                        FULL_READS, problem)
        else:
            raise SourceError(
                f"CXone group {gid} changed or sent inconsistent pages during the sync "
                f"{FULL_READS} times ({problem}); nothing was saved: sync again",
                source="cxone")
        records = _agree(gid, read, total, after.group.get("validRecords"))
        group_meta = {**group_meta, "group_updated": after.group.get("lastUpdateTime"),
                      "valid_records": after.group.get("validRecords")}
        rows, skipped = self._rows(info.name, records, now)
        self._refuse_unreadable(gid, records, skipped)
        with self.engine.begin() as conn:
            conn.execute(delete(list_entries_table).where(
                list_entries_table.c.list_name == info.name))
            for i in range(0, len(rows), 20_000):
                conn.execute(insert(list_entries_table), rows[i:i + 20_000])
            count_list_change(conn)
        cursor = max((str(r.get("lastUpdateTime")) for r in records if r.get("lastUpdateTime")),
                     default="", key=lambda v: parse_time(v) or now) or None
        meta = {**info.meta, **group_meta, "total": len(records), "cursor": cursor,
                "full_synced_at": now.isoformat()}
        self._save(info.name, meta, now, count=len(rows),
                   event={"mode": "full", "fetched": len(records)})
        return GroupResult(gid, str(group_meta["group_name"]), "full", total, len(records),
                           skipped, bool(group_meta["active"]))

    async def _probe(self, gid: str) -> Probe:
        """The group and its newest record now (see :class:`Probe`), taken before and after
        each full read."""
        group = await self.client.group(gid)
        if group is None:
            raise SourceError(f"CXone DNC group {gid} is gone (404) while it was synced",
                              source="cxone")
        newest: tuple[Any, ...] = ()
        if gid not in self._unordered:
            try:
                page = await self.client.records_page(gid, 0, 1, ORDER_NEWEST)
            except SourceError as exc:
                if "HTTP 400" not in str(exc):
                    raise
                self._unordered.add(gid)  # orderBy refused: the group's own fields must do
            else:
                newest = ("no content",) if page is None else (page[0], *(
                    (r.get("recordId"), r.get("lastUpdateTime")) for r in page[1][:1]))
        return Probe(group, newest)

    async def _read_group(self, gid: str
                          ) -> tuple[int, list[dict[str, Any]] | None, str | None]:
        """Every record of a group, page by page: (total, records, what was inconsistent or
        None); records None when the first page had no content (204). Consistent means every
        page gave the same total and the distinct records (record id, else number) are
        exactly that many."""
        top = self.cx.page_size
        answer = await self.client.records_page(gid, 0, top)
        if answer is None:
            return 0, None, None
        total, first = answer
        if total and not first:
            raise SourceError(f"CXone group {gid} reports {total} records but sent none",
                              source="cxone")
        pages: list[list[dict[str, Any]]] = [first]
        totals = {total}  # what every page says the group holds
        if first and len(first) < total:
            top = len(first)  # the server may cap the page size below ours
            skips = list(range(len(first), total, top))
            rest = await asyncio.gather(*(self.client.records_page(gid, s, top) for s in skips))
            if any(r is None for r in rest):
                return total, [], "a page after the first had no content (204)"
            pages.extend(p for _, p in filter(None, rest))
            totals.update(n for n, _ in filter(None, rest))
        records = [r for p in pages for r in p]
        distinct = len({_record_key(r) for r in records})
        if len(totals) > 1 or distinct != total:
            return total, records, f"{distinct} distinct of {max(totals)} records"
        return total, records, None

    def _number(self, rec: dict[str, Any]) -> str | None:
        """A record's number as E.164 (its ``phoneNumber``, else its ``formattedPhone``), or
        None when it cannot be read: what every step of a sync reads the record as."""
        return to_e164(rec.get("phoneNumber") or rec.get("formattedPhone") or "", self.region)

    def _rows(self, name: str, records: list[dict[str, Any]], now: datetime
              ) -> tuple[list[dict[str, Any]], int]:
        best: dict[str, tuple[datetime, dict[str, Any]]] = {}
        seen: dict[str, int] = {}  # records read of each number
        skipped = 0
        floor = datetime.min.replace(tzinfo=now.tzinfo)
        for rec in records:
            e164 = self._number(rec)
            if e164 is None:
                skipped += 1
                log.warning("CXone record %s has an unreadable number %s", rec.get("recordId"),
                            mask(str(rec.get("phoneNumber"))))
                continue
            seen[e164] = seen.get(e164, 0) + 1
            updated = parse_time(rec.get("lastUpdateTime")) or floor
            expires = parse_time(rec.get("expiredDate"))
            prev = best.get(e164)
            # the record that blocks longest (no expiry, else the later expiry) wins; of
            # records that block alike, the most recently updated, whatever order they came in
            if prev is not None and (not _blocks_longer(expires, prev[1]["expires_at"]) or (
                    prev[1]["expires_at"] == expires and prev[0] >= updated)):
                continue
            best[e164] = (updated, {
                "list_name": name, "value": e164, "origin": "sync", "removed": False,
                "reason": None, "added_by": "cxone",
                "added_at": parse_time(rec.get("dateCollected")) or now,
                "expires_at": expires,
                "meta": {"record_id": rec.get("recordId"),
                         "updated": rec.get("lastUpdateTime")},
            })
        for e164, (_, row) in best.items():
            row["meta"]["alone"] = seen[e164] == 1  # the number's only record read
        return [row for _, row in best.values()], skipped

    def _refuse_unreadable(self, gid: str, records: list[dict[str, Any]], skipped: int
                           ) -> None:
        """A group with records whose number cannot be read is not saved: saved without
        them, it would look complete and fresh while those numbers are not blocked. The
        last sync stands (and goes stale); the message names how many, masked."""
        if not skipped:
            return
        bad = [r for r in records if self._number(r) is None]
        example = bad[0] if bad else {}
        raise SourceError(
            f"CXone group {gid}: {skipped} of {len(records)} records have a phone number "
            f"dncguard cannot read (e.g. record {example.get('recordId')}, "
            f"{mask(str(example.get('phoneNumber') or example.get('formattedPhone') or ''))}); "
            "nothing was saved for the group: fix or expire those records in CXone",
            source="cxone")

    def _save(self, name: str, meta: dict[str, Any], now: datetime, *, count: int | None = None,
              event: dict[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            if count is None:
                count = int(conn.execute(select(func.count()).select_from(list_entries_table)
                                         .where(list_entries_table.c.list_name == name))
                            .scalar_one())
            conn.execute(update(lists_table).where(lists_table.c.name == name).values(
                meta=meta, synced_at=now, updated_at=now, count=count))
            if event is not None:
                conn.execute(insert(list_events_table).values(
                    at=now, list_name=name, action="sync", who="cxone", detail=event))
                audit.record_list_change(self.settings, "sync", name, who="cxone",
                                         detail={**event, "count": count}, conn=conn)
            count_list_change(conn)
