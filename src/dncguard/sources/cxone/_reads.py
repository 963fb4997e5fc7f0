"""Reading a DNC group's records from CXone for a sync: a full read that is saved only when
it is consistent and the group did not change while it was read, and the newest-first walk
of an incremental sync, trusted only when it proves it saw every change since the cursor."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...errors import SourceError
from ._client import CxoneClient
from ._records import ORDER_NEWEST, parse_time, record_key

log = logging.getLogger("dncguard.sources.cxone")

#: Reads of a whole group a full sync makes before it gives up on a group that keeps changing
#: (or keeps sending inconsistent pages) while it is read.
FULL_READS = 3


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


def agree(gid: str, records: list[dict[str, Any]] | None, total: int, valid: Any
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


class GroupReader:
    """Reads groups through a :class:`CxoneClient`, ``page_size`` records a page."""

    def __init__(self, client: CxoneClient, page_size: int) -> None:
        self.client = client
        self.page_size = page_size
        self._unordered: set[str] = set()  # groups whose records the server will not order

    async def read_full(self, gid: str) -> tuple[int, list[dict[str, Any]], Probe]:
        """(the server's total, every record of the group (checked by :func:`agree`), the
        group as probed after the read). A read whose pages are not consistent, or during
        which the group changed, is read again, up to :data:`FULL_READS` times; then
        :class:`SourceError`."""
        before: Probe | None = None
        for attempt in range(1, FULL_READS + 1):
            before = before or await self.probe(gid)
            total, read, problem = await self.read_group(gid)
            after = await self.probe(gid)
            if problem is None and after.key != before.key:
                problem = "the group changed while it was read"
            if problem is None:
                return total, agree(gid, read, total, after.group.get("validRecords")), after
            before = after
            # a page missing, repeated or shifted, or the group changed while it was read: the
            # records read are not the group, so nothing is saved; read it again, and after
            # FULL_READS such reads give up (the last sync stands)
            log.warning("CXone group %s: read %d of %d was not consistent (%s)", gid, attempt,
                        FULL_READS, problem)
        raise SourceError(
            f"CXone group {gid} changed or sent inconsistent pages during the sync "
            f"{FULL_READS} times ({problem}); nothing was saved: sync again", source="cxone")

    async def probe(self, gid: str) -> Probe:
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

    async def read_group(self, gid: str
                         ) -> tuple[int, list[dict[str, Any]] | None, str | None]:
        """Every record of a group, page by page: (total, records, what was inconsistent or
        None); records None when the first page had no content (204). Consistent means every
        page gave the same total and the distinct records (record id, else number) are
        exactly that many."""
        top = self.page_size
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
        distinct = len({record_key(r) for r in records})
        if len(totals) > 1 or distinct != total:
            return total, records, f"{distinct} distinct of {max(totals)} records"
        return total, records, None

    async def walk_newest(self, gid: str, cursor: str
                          ) -> tuple[int, list[dict[str, Any]]] | str:
        """(the server's total, every record updated at or after ``cursor``), read newest
        first; or why the walk cannot be trusted to hold every change since the cursor."""
        cursor_at = parse_time(cursor)
        if cursor_at is None:
            return f"the cursor {cursor!r} is not a time"
        fresh: list[dict[str, Any]] = []
        skip, top, total = 0, self.page_size, 0
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
