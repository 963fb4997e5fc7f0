"""Write-back: opt-outs queued durably and pushed to a CXone DNC group.

:func:`enqueue_optout` (call it after ``ListStore.add_number``) and :func:`enqueue_expire`
store an item in the outbox (topic ``cxone.push``). Each opt-out and each removal is its own
item: its key names the number's previous item, so opting a number out again after a removal
queues a new add, while queuing the same change twice in a row (a retried call) does not.
:func:`push` drains the queue: items are sent in batches (``add`` as ``POST records``,
``expire`` as ``DELETE records``); a number's items go out in the order they were queued, and
an item overtaken by a later one for the same number that was already delivered is not sent
(it would undo the later change), so CXone ends in the state of the number's last change.
CXone answers 200 with per-record results, so each item is acknowledged, retried later with
backoff, or (for a permanent refusal such as an invalid number) parked as ``dead`` and
reported. An expiry CXone refuses is looked up (``POST /dnc-groups/search``): when the group
holds no record of the number that would still block after the expiry, there is nothing to
expire, and the item is settled as such (counted and logged, not retried forever). Nothing is
dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from ... import audit
from ...config import Settings
from ...errors import ConfigError, SourceError
from ...outbox import DEAD, DELIVERED, Outbox, OutboxItem
from ...phones import mask
from ._client import CxoneClient
from ._sync import _digits, parse_time, to_cxone_phone
from .source import search_number

log = logging.getLogger("dncguard.sources.cxone")

TOPIC = "cxone.push"
PERMANENT = ("invalid", "not valid", "malformed")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _enqueue(engine: Engine, action: str, e164: str, expires: datetime | None,
             group_id: str | None, outbox: Outbox | None, conn: Connection | None) -> bool:
    box = outbox or Outbox(engine)
    payload = {"action": action, "e164": e164, "group_id": group_id, "expires": _iso(expires)}
    # the number is each item's subject: its last item is found by an indexed equality lookup
    last = box.latest(TOPIC, e164, where=lambda it: it.payload.get("e164") == e164, conn=conn)
    if last is not None and all(last.payload.get(k) == v for k, v in payload.items()):
        return False  # the number's last change is this one: already queued (or delivered)
    # the previous item's id makes the key unique per change: a re-add after a removal is a
    # new item, not the delivered one with the same number and expiry
    key = f"{action}:{group_id or '*'}:{e164}:{_iso(expires) or '-'}:{last.id if last else 0}"
    return box.enqueue(TOPIC, key, payload, subject=e164, conn=conn)


def enqueue_optout(engine: Engine, e164: str, expires: datetime | None = None,
                   group_id: str | None = None, *, outbox: Outbox | None = None,
                   conn: Connection | None = None) -> bool:
    """Queue an opt-out for the CXone push group (``group_id``, else the group given at push
    time / ``DNCGUARD_CXONE_PUSH_GROUP``). False when the number's last queued change is this
    same opt-out (group, number, expiry); after any other change it is queued again."""
    return _enqueue(engine, "add", e164, expires, group_id, outbox, conn)


def enqueue_expire(engine: Engine, e164: str, expired_at: datetime,
                   group_id: str | None = None, *, outbox: Outbox | None = None,
                   conn: Connection | None = None) -> bool:
    """Queue the expiry of a number's record in the CXone push group (e.g. after a removal)."""
    return _enqueue(engine, "expire", e164, expired_at, group_id, outbox, conn)


@dataclass
class PushReport:
    group_id: str
    sent: int = 0
    delivered: int = 0
    retrying: list[tuple[str, str]] = field(default_factory=list)  # (masked number, error)
    superseded: int = 0  # not sent: a later change for the number was delivered already
    #: expiries CXone refused for a number the group holds no blocking record of (settled)
    nothing_to_expire: list[str] = field(default_factory=list)  # masked numbers
    dead: list[tuple[str, str]] = field(default_factory=list)
    pending_after: int = 0
    dead_total: int = 0

    @property
    def ok(self) -> bool:
        return not self.retrying and not self.dead


def _permanent(error: str) -> bool:
    low = error.lower()
    return any(word in low for word in PERMANENT)


async def push(client: CxoneClient, outbox: Outbox, group_id: str, *, batch_size: int = 100,
               max_batches: int | None = None, settings: Settings | None = None) -> PushReport:
    """Send due items for ``group_id`` (and items without a group) until none is due.

    With ``settings``, a push that sent anything appends one audit record with its counts.
    """
    report = PushReport(group_id)
    batches = 0
    while max_batches is None or batches < max_batches:
        items = outbox.claim(TOPIC, batch_size, where=lambda it: it.payload.get("group_id")
                             in (None, group_id))
        if not items:
            break
        batches += 1
        for wave in _waves(outbox, group_id, items, report):
            for action in ("add", "expire"):
                chunk = [it for it in wave if it.payload.get("action", "add") == action]
                if chunk:
                    await _send(client, outbox, group_id, chunk, action == "expire", report)
    stats = outbox.stats(TOPIC)
    report.pending_after = stats["pending"]
    report.dead_total = stats[DEAD]
    if settings is not None and report.sent:
        audit.record_list_change(
            settings, "push", f"cxone:{group_id}", who="cxone",
            detail={"sent": report.sent, "delivered": report.delivered,
                    "nothing_to_expire": len(report.nothing_to_expire),
                    "retrying": len(report.retrying), "dead": len(report.dead)})
    return report


def _waves(outbox: Outbox, group_id: str, items: list[OutboxItem], report: PushReport
           ) -> list[list[OutboxItem]]:
    """Order a claimed batch so that CXone ends in each number's last change.

    An item for which a later item of the same number (for this group) was delivered already
    is not sent: it is acknowledged as superseded. One whose number's last item is parked
    (dead) is parked with it, so that a requeue sends both, in order. The rest go out in
    waves, each number at most once per wave and its items in queue order.
    """
    mine = [it for it in sorted(items, key=lambda it: it.id)
            if it.payload.get("group_id") in (None, group_id)]
    if not mine:
        return []
    numbers = {str(it.payload["e164"]) for it in mine}
    later: dict[str, list[OutboxItem]] = {n: [] for n in numbers}
    for it in outbox.items(TOPIC, limit=None, after=mine[0].id):
        n = str(it.payload.get("e164"))
        if n in later and it.payload.get("group_id") in (None, group_id):
            later[n].append(it)
    waves: list[list[OutboxItem]] = []
    depth: dict[str, int] = {}
    for it in mine:
        n = str(it.payload["e164"])
        after = [x for x in later[n] if x.id > it.id]
        done = [x for x in after if x.status == DELIVERED]
        if done:
            report.superseded += outbox.ack(
                [it.id], note=f"superseded by item {done[-1].id}, delivered already; not sent")
            continue
        if after and after[-1].status == DEAD:
            error = f"superseded by item {after[-1].id}, which is parked; requeue both"
            outbox.fail(it.id, error, permanent=True)
            report.dead.append((mask(n), error))
            continue
        w = depth.get(n, 0)
        depth[n] = w + 1
        if w == len(waves):
            waves.append([])
        waves[w].append(it)
    return waves


async def _send(client: CxoneClient, outbox: Outbox, group_id: str, items: list[OutboxItem],
                expire: bool, report: PushReport) -> None:
    records: list[dict[str, Any]] = []
    for it in items:
        phone = to_cxone_phone(str(it.payload["e164"]))
        rec: dict[str, Any] = {"phoneNumber": phone if expire else int(phone)}
        if it.payload.get("expires"):
            rec["expiredDate"] = it.payload["expires"]
        records.append(rec)
    report.sent += len(items)
    try:
        result = await client.write_records(group_id, records, expire=expire)
    except SourceError as exc:
        for it in items:
            masked = mask(str(it.payload["e164"]))
            outbox.fail(it.id, str(exc))
            report.retrying.append((masked, str(exc)))
        return
    results = result.get("recordResults") or []
    # A result is matched to its record by the number it names; by position only when it
    # names none and CXone answered one result per record (matched by position, a
    # reordered answer marked a refused record delivered and a delivered one refused)
    by_phone: dict[str, dict[str, Any]] = {}
    for r in results:
        if isinstance(r, dict):
            for d in _named(r):
                by_phone.setdefault(d, r)
                if len(d) == 11 and d[0] == "1":  # a NANP number with its country code
                    by_phone.setdefault(d[1:], r)
    delivered: list[int] = []
    settled: list[int] = []  # nothing to expire
    for n, (it, rec) in enumerate(zip(items, records, strict=True)):
        r = by_phone.get(_digits(rec["phoneNumber"]))
        if r is None and len(results) == len(items) and isinstance(results[n], dict) \
                and not _named(results[n]):
            r = results[n]
        masked = mask(str(it.payload["e164"]))
        if r is None:
            outbox.fail(it.id, "CXone returned no result for this record")
            report.retrying.append((masked, "no result for this record"))
        elif r.get("success"):
            delivered.append(it.id)
        else:
            error = str(r.get("error") or "refused without a reason")
            permanent = _permanent(error)
            if expire and not permanent and await _nothing_to_expire(client, group_id, it):
                settled.append(it.id)
                report.nothing_to_expire.append(masked)
                log.info("CXone holds no record of %s in group %s that blocks after the "
                         "expiry (%s): nothing to expire", masked, group_id, error)
                continue
            status = outbox.fail(it.id, error, permanent=permanent)
            (report.dead if status == DEAD else report.retrying).append((masked, error))
            log.warning("CXone refused %s for group %s: %s", masked, group_id, error)
    report.delivered += outbox.ack(delivered)
    outbox.ack(settled, note="nothing to expire: the group holds no record of the number "
               "that still blocks after the expiry")


def _named(result: dict[str, Any]) -> list[str]:
    """The digits of the numbers a write result names (``phoneNumber``, ``formattedPhone``)."""
    return [d for k in ("phoneNumber", "formattedPhone") if (d := _digits(result.get(k) or ""))]


async def _nothing_to_expire(client: CxoneClient, group_id: str, item: OutboxItem) -> bool:
    """Whether CXone's search shows no record of the item's number in ``group_id`` that
    still blocks after the expiry asked for (none, or each expired by then), as the check's
    live search reads a record (:func:`.source.search_number`). False when the search fails
    or the item names no expiry: the expiry is then retried as any refusal is."""
    until = parse_time(item.payload.get("expires"))
    if until is None:
        return False
    try:
        found = await search_number(client, str(item.payload["e164"]), until)
    except SourceError:
        return False
    return not any(r["blocking"] for r in found if str(r.get("dncGroupId")) == str(group_id))


async def push_pending(settings: Settings, group_id: str | None = None) -> PushReport:
    """Drain the queue to ``group_id`` (default ``DNCGUARD_CXONE_PUSH_GROUP``) with the
    configured CXone credentials: what the CLI and a background service call."""
    from ...store import get_engine
    from .settings import load_cxone

    cx = load_cxone(settings)
    target = group_id or cx.push_group
    if not target:
        raise ConfigError("no CXone push group: give one or set DNCGUARD_CXONE_PUSH_GROUP")
    async with CxoneClient(cx) as client:
        return await push(client, Outbox(get_engine(settings)), target,
                          batch_size=cx.write_batch_size, settings=settings)
