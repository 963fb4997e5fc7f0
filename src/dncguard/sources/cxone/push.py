"""Write-back: opt-outs queued durably and pushed to a CXone DNC group.

:func:`enqueue_optout` (call it after ``ListStore.add_number``) and :func:`enqueue_expire`
store an item in the outbox (topic ``cxone.push``). Each opt-out and each removal is its own
item: its key names the number's previous item, so opting a number out again after a removal
queues a new add, while queuing the same change twice in a row (a retried call) does not.
:func:`push` drains the queue: items are sent in batches (``add`` as ``POST records``,
``expire`` as ``DELETE records``). A number's items in one batch are coalesced to its last:
only that is written, the earlier ones are settled with it (superseded, not sent; parked with
it when it is parked), so an expiry then an opt-out is one add, never a removal followed by an
add that may fail. An item overtaken by a later one for the same number that was delivered
already, or is pending outside this pusher's batch (waiting for its retry, or held by another
pusher), is not sent (it would undo the later change), so CXone ends in the state of the
number's last change.
Before each attempt of a write (the client retries it) the pusher renews its lease on the
write's items and gives the write up when another pusher has taken one of them over (its lease
ran out during a long retry): a stale attempt never follows a later pusher's writes. Each
attempt is bounded as a whole (connecting, sending, reading the whole answer) by the client's
timeout, which the lease outlasts (:func:`_lease`): an answer that trickles in is cut off
there, a failed attempt (retried, never delivered).
CXone answers 200 with per-record results, so each item is acknowledged, retried later with
backoff, or (for a permanent refusal such as an invalid number) parked as ``dead`` and
reported. An expiry CXone refuses is looked up (``POST /dnc-groups/search``): when the group
holds no record of the number that would still block after the expiry, there is nothing to
expire, and the item is settled as such (counted and logged, not retried forever). Nothing is
dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from ... import audit
from ...config import Settings
from ...errors import ConfigError, DncGuardError, SourceError
from ...outbox import DEAD, DELIVERED, PENDING, Outbox, OutboxItem
from ...phones import mask, mask_numbers
from ._answers import match_results, record_verdict
from ._client import CxoneClient
from ._records import parse_time, to_cxone_phone
from .settings import load_cxone
from .source import search_number

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("dncguard.sources.cxone")

TOPIC = "cxone.push"
PERMANENT = ("invalid", "not valid", "malformed")
#: Seconds a pusher's lease on a write's items outlasts the attempt and the wait before the
#: next one (the database's and the hosts' clocks may differ a little).
LEASE_MARGIN = 60.0


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
    #: not sent: a later change of the number is delivered or on its way, or was sent in
    #: their place (a number's changes in one batch are coalesced to its last)
    superseded: int = 0
    #: items given up unsent or unsettled: another pusher took them over when this one's
    #: lease ran out (they are that pusher's now)
    lease_lost: int = 0
    #: expiries CXone refused for a number the group holds no blocking record of (settled)
    nothing_to_expire: list[str] = field(default_factory=list)  # masked numbers
    dead: list[tuple[str, str]] = field(default_factory=list)
    pending_after: int = 0
    dead_total: int = 0
    #: why a write got no usable answer at all (sign-in, network, 5xx after the retries, a
    #: body without per-record results), the last time it happened in this push; its items
    #: are retried later
    write_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.retrying and not self.dead

    def fail(self, outbox: Outbox, item: OutboxItem, error: str, *,
             permanent: bool = False) -> str:
        """Fail ``item`` in the queue and count it as parked or to be retried, as the
        queue's answer says (or as lost: another pusher holds or settled it now); returns
        the queue's answer (:meth:`Outbox.fail`)."""
        status = outbox.fail(item.id, error, permanent=permanent)
        if status not in (PENDING, DEAD):
            self.lease_lost += 1
            return status
        (self.dead if status == DEAD else self.retrying).append(
            (mask(str(item.payload["e164"])), error))
        return status


def _permanent(error: str) -> bool:
    low = error.lower()
    return any(word in low for word in PERMANENT)


async def push(client: CxoneClient, outbox: Outbox, group_id: str, *, batch_size: int = 100,
               max_batches: int | None = None, settings: Settings | None = None,
               stop: Callable[[], bool] | None = None,
               stop_on_write_error: bool = False) -> PushReport:
    """Send due items for ``group_id`` (and items without a group) until none is due.

    With ``settings``, a push that sent anything appends one audit record with its counts.
    ``stop`` is asked before each batch is claimed (true: the push ends there); with
    ``stop_on_write_error`` it also ends after a write that got no usable answer (the rest
    stay due for the next push, instead of each batch waiting out the retries).
    """
    report = PushReport(group_id)
    lease = _lease(client)
    batches = 0
    while max_batches is None or batches < max_batches:
        if (stop is not None and stop()) or (stop_on_write_error and report.write_error):
            break
        # in order: a number's changes are held by one pusher at a time (see docs/cxone.md)
        items = outbox.claim(TOPIC, batch_size, where=lambda it: it.payload.get("group_id")
                             in (None, group_id), in_order=True, lease=lease)
        if not items:
            break
        batches += 1
        if not await _send_batch(client, outbox, group_id, items, report, lease):
            # a write was given up: its numbers' later changes in this batch must not go out
            # before it; what this pusher still holds goes back to the queue, due now
            outbox.release([it.id for it in items])
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


async def _send_batch(client: CxoneClient, outbox: Outbox, group_id: str,
                      items: list[OutboxItem], report: PushReport, lease: float) -> bool:
    """Send a claimed batch: each number's last change (:func:`_plan`), the opt-outs in one
    write and the expiries in another; False when a write was given up (lease lost)."""
    send, carried = _plan(outbox, group_id, items, report)
    for action in ("add", "expire"):
        chunk = [it for it in send if it.payload.get("action", "add") == action]
        if chunk and not await _send(client, outbox, group_id, chunk, action == "expire",
                                     report, lease, carried):
            return False
    return True


#: The last change of a number (an item's id) -> the number's earlier changes of the same
#: batch, which it carries: not sent, and settled as it is (:func:`_carry`).
Carried = dict[int, list[OutboxItem]]


def _plan(outbox: Outbox, group_id: str, items: list[OutboxItem], report: PushReport
          ) -> tuple[list[OutboxItem], Carried]:
    """The items of a claimed batch to send, so that CXone ends in each number's last
    change, and the earlier items each one carries.

    An item for which a later item of the same number (for this group) was delivered
    already, or is pending outside this batch (waiting for its retry, or held by another
    pusher: it goes out after this one, or went out already and its answer was lost), is not
    sent: it is acknowledged as superseded. Sent alone, a removal's retry would undo a later
    opt-out on CXone until that opt-out's own retry. One whose number's last item is parked
    (dead) is parked with it, so that a requeue sends both. Of the rest, each number's last
    item in the batch is sent, alone: it is the number's final state (an opt-out with its
    expiry, or an expiry), and the number's earlier items in the batch are carried by it, not
    sent. So an expiry then an opt-out is one add: never a removal followed by an add that
    may fail, leaving CXone not blocking the number until the add's retry.
    """
    mine = [it for it in sorted(items, key=lambda it: it.id)
            if it.payload.get("group_id") in (None, group_id)]
    if not mine:
        return [], {}
    batch = {it.id for it in items}
    numbers = {str(it.payload["e164"]) for it in mine}
    later: dict[str, list[OutboxItem]] = {n: [] for n in numbers}
    for it in outbox.items(TOPIC, limit=None, after=mine[0].id):
        n = str(it.payload.get("e164"))
        if n in later and it.payload.get("group_id") in (None, group_id):
            later[n].append(it)
    changes: dict[str, list[OutboxItem]] = {}  # each number's items to send, in order
    for it in mine:
        n = str(it.payload["e164"])
        after = [x for x in later[n] if x.id > it.id]
        ahead = [x for x in after if x.status == DELIVERED
                 or (x.status == PENDING and x.id not in batch)]
        if ahead:
            how = "delivered already" if ahead[-1].status == DELIVERED else "pending"
            report.superseded += outbox.ack(
                [it.id], note=f"superseded by item {ahead[-1].id}, {how}; not sent")
            continue
        if after and after[-1].status == DEAD:
            error = f"superseded by item {after[-1].id}, which is parked; requeue both"
            outbox.fail(it.id, error, permanent=True)
            report.dead.append((mask(n), error))
            continue
        changes.setdefault(n, []).append(it)
    return ([its[-1] for its in changes.values()],
            {its[-1].id: its[:-1] for its in changes.values() if len(its) > 1})


#: :func:`_carry`'s status for a last change settled as nothing to expire.
SETTLED = "settled"


def _carry(outbox: Outbox, report: PushReport, last: OutboxItem, carried: Carried,
           status: str) -> None:
    """Settle the items ``last`` carries (:func:`_plan`) as ``last`` was: superseded (not
    sent) when it was delivered, settled, or failed and is to be retried (its retry carries
    the number's final state); parked with it when it was parked, so a requeue sends them
    together; given back when another pusher holds ``last`` now."""
    items = carried.get(last.id, [])
    if not items:
        return
    if status == DEAD:
        error = f"superseded by item {last.id}, which is parked; requeue both"
        for it in items:
            report.fail(outbox, it, error, permanent=True)
        return
    how = {DELIVERED: "delivered in its place", SETTLED: "settled in its place (nothing to "
           "expire)", PENDING: "sent in its place and to be retried"}.get(status)
    if how is None:  # another pusher took ``last`` over: these go back to the queue
        outbox.release([it.id for it in items])
        return
    report.superseded += outbox.ack([it.id for it in items],
                                    note=f"superseded by item {last.id}, {how}; not sent")


def _ack(outbox: Outbox, report: PushReport, items: list[OutboxItem], carried: Carried,
         status: str, note: str | None = None) -> int:
    """Acknowledge ``items`` (``note`` kept as their last message) and settle what each
    carries as ``status``, or as lost when another pusher holds the item now; returns how
    many were acknowledged."""
    done = outbox.ack([it.id for it in items if it.id not in carried], note=note)
    for it in items:
        if it.id in carried:
            got = outbox.ack([it.id], note=note)
            done += got
            _carry(outbox, report, it, carried, status if got else "lost")
    return done


def _lease(client: CxoneClient) -> float:
    """Seconds a pusher leases a write's items for: one attempt, the longest wait before
    the next (a ``Retry-After`` or the backoff), and a margin. Renewed before each attempt.
    An attempt lasts at most ``policy.timeout`` as a whole: the client's resilience layer
    bounds connecting, sending and reading the whole answer together (httpx's own timeouts
    are per read, which an answer sent a byte at a time never trips)."""
    policy = client.resilient.policy
    return policy.timeout + max(policy.max_retry_after, policy.max_delay) + LEASE_MARGIN


class LeaseLost(Exception):
    """Another pusher took over an item of the write being sent: the write is given up."""


@contextmanager
def _renewing(client: CxoneClient, outbox: Outbox, group_id: str, items: list[OutboxItem],
              lease: float, carried: Carried) -> Iterator[list[int]]:
    """While in the block, each attempt of the group's record write (the client retries it)
    first renews this pusher's lease on ``items`` (and on the items they carry) and raises
    :class:`LeaseLost` instead of sending when one of ``items`` is no longer this pusher's.
    Yields a list that gets one entry per attempt let through. (The renewal is an ``httpx``
    request hook: it runs right before each attempt goes on the wire, after any sign-in and
    wait.)"""
    ids = [it.id for it in items]
    riders = [c.id for it in items for c in carried.get(it.id, ())]
    path = f"/dnc-groups/{group_id}/records"
    attempts: list[int] = []

    async def renew(request: httpx.Request) -> None:
        if request.method in ("POST", "DELETE") and request.url.path.endswith(path):
            if outbox.renew(ids, lease=lease) < len(ids):
                raise LeaseLost(f"{len(ids)} items, group {group_id}")
            if riders:  # settled with them (released when another pusher holds them)
                outbox.renew(riders, lease=lease)
            attempts.append(len(attempts) + 1)

    hooks = client.http.event_hooks["request"]
    hooks.append(renew)
    try:
        yield attempts
    finally:
        hooks.remove(renew)


async def _send(client: CxoneClient, outbox: Outbox, group_id: str, items: list[OutboxItem],
                expire: bool, report: PushReport, lease: float, carried: Carried) -> bool:
    """Write ``items`` and settle each (and the items it carries) by CXone's answer; False
    when the write was given up because another pusher took one of its items over (nothing
    of them is settled)."""
    records: list[dict[str, Any]] = []
    for it in items:
        phone = to_cxone_phone(str(it.payload["e164"]))
        rec: dict[str, Any] = {"phoneNumber": phone if expire else int(phone)}
        if it.payload.get("expires"):
            rec["expiredDate"] = it.payload["expires"]
        records.append(rec)
    with _renewing(client, outbox, group_id, items, lease, carried) as attempts:
        try:
            result = await client.write_records(group_id, records, expire=expire)
        except LeaseLost:
            report.sent += len(items) if attempts else 0
            report.lease_lost += len(items)
            log.warning("CXone write-back to group %s: %d items given up after %d attempts: "
                        "another pusher took them over (this one's lease ran out)", group_id,
                        len(items), len(attempts))
            return False
        except SourceError as exc:
            report.sent += len(items)
            error = mask_numbers(str(exc))[:1000]
            report.write_error = error
            for it in items:
                _carry(outbox, report, it, carried, report.fail(outbox, it, error))
            return True
    report.sent += len(items)
    results: list[Any] = result.get("recordResults") or []
    matched, problem = match_results(result, results, records)
    if problem is not None:
        # the answer contradicts itself or cannot be read: no record of it counts as written
        error = f"CXone's answer cannot be trusted ({problem}); not delivered"
        for it in items:
            _carry(outbox, report, it, carried, report.fail(outbox, it, error))
        log.warning("CXone write-back to group %s: %d records not delivered: %s", group_id,
                    len(items), error)
        return True
    delivered: list[OutboxItem] = []
    settled: list[OutboxItem] = []  # nothing to expire
    for it, mine in zip(items, matched, strict=True):
        masked = mask(str(it.payload["e164"]))
        verdict = record_verdict(mine)
        if verdict is None:
            delivered.append(it)
            continue
        error, refused = verdict
        permanent = refused and _permanent(error)
        if refused and expire and not permanent \
                and await _nothing_to_expire(client, group_id, it):
            settled.append(it)
            report.nothing_to_expire.append(masked)
            log.info("CXone holds no record of %s in group %s that blocks after the "
                     "expiry (%s): nothing to expire", masked, group_id, error)
            continue
        _carry(outbox, report, it, carried, report.fail(outbox, it, error, permanent=permanent))
        log.warning("CXone did not take %s for group %s: %s", masked, group_id, error)
    acked = _ack(outbox, report, delivered, carried, DELIVERED)
    report.delivered += acked
    report.lease_lost += len(delivered) - acked  # another pusher took them over meanwhile
    _ack(outbox, report, settled, carried, SETTLED, note="nothing to expire: the group holds "
         "no record of the number that still blocks after the expiry")
    return True


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

    cx = load_cxone(settings)
    target = group_id or cx.push_group
    if not target:
        raise ConfigError("no CXone push group: give one or set DNCGUARD_CXONE_PUSH_GROUP")
    async with CxoneClient(cx) as client:
        return await push(client, Outbox(get_engine(settings)), target,
                          batch_size=cx.write_batch_size, settings=settings)


# -- the service's write-back --------------------------------------------------------------

#: Seconds between the service's write-back passes.
PUSH_SECONDS = 15.0
#: The longest wait between passes while they fail (the wait doubles from PUSH_SECONDS).
PUSH_MAX_SECONDS = 300.0

#: Held while a background pass runs: one pusher at a time in a process, however many apps it
#: serves (a number's items go out in order within one push). Replicas share the queue
#: through the outbox's claims (each item is leased to one worker).
_ONE_PUSHER = threading.Lock()


def failure_text(exc: BaseException) -> str:
    """What a log line may say about a failed pass: dncguard's own errors (written without
    secrets) with any phone number masked; of anything else, the type only (a driver's or
    library's message may quote statement parameters or credentials)."""
    if isinstance(exc, DncGuardError):
        return f"{type(exc).__name__}: {mask_numbers(str(exc))[:300]}"
    return type(exc).__name__


class BackgroundPush:
    """The service's write-back: drains the queue to ``group_id`` every ``interval`` seconds
    while serving (:meth:`run_forever`, a task of the app's lifespan).

    Each pass (:meth:`run_once`) runs in a worker thread on an event loop of its own, off
    the serving loop, with a new CXone client (it signs in only when an item is due). A pass
    that fails (the database is away, a write gets no usable answer: the pass ends there) is
    logged without phone numbers or secrets and the next one waits twice as long, up to
    ``max_interval``; a pass that goes through sets the wait back to ``interval``. Items
    CXone does not take are retried by the outbox's own backoff. Nothing ends the task but
    cancelling it; :meth:`stop` ends a running pass after its current batch. ``sleep`` (the
    wait between passes) is injectable: tests never wait for real.
    """

    def __init__(self, settings: Settings, group_id: str, *, interval: float = PUSH_SECONDS,
                 max_interval: float = PUSH_MAX_SECONDS,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 engine: Engine | None = None,
                 client_factory: Callable[[], CxoneClient] | None = None) -> None:
        self.settings = settings
        self.group_id = group_id
        self.interval = interval
        self.max_interval = max(max_interval, interval)
        self.sleep = sleep or asyncio.sleep
        self.engine = engine
        self.client_factory = client_factory
        self.failures = 0  # passes failed in a row
        self.last: PushReport | None = None
        self._outbox: Outbox | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        """No new pass starts; a running one ends after its current batch."""
        self._stop.set()

    def delay(self) -> float:
        """The wait before the next pass: ``interval``, doubled per failed pass in a row."""
        return min(self.interval * 2.0 ** min(self.failures, 30), self.max_interval)

    def run_once(self) -> PushReport | None:
        """One pass in the calling thread (not on a running event loop); None when stopped,
        or when another pass of this process is running (it drains the same queue)."""
        if self._stop.is_set():
            return None
        if not _ONE_PUSHER.acquire(blocking=False):
            log.info("CXone write-back: another pass of this process is running; skipped")
            return None
        try:
            return asyncio.run(self._pass())
        finally:
            _ONE_PUSHER.release()

    async def _pass(self) -> PushReport:
        from ...store import get_engine

        if self._outbox is None:
            self._outbox = Outbox(self.engine or get_engine(self.settings))
        cx = load_cxone(self.settings)
        client = self.client_factory() if self.client_factory else CxoneClient(cx)
        async with client:
            return await push(client, self._outbox, self.group_id,
                              batch_size=cx.write_batch_size, settings=self.settings,
                              stop=self._stop.is_set, stop_on_write_error=True)

    async def run_forever(self) -> None:
        """Passes until cancelled; never raises (but cancellation)."""
        import anyio

        while not self._stop.is_set():
            try:
                report = await anyio.to_thread.run_sync(self.run_once, abandon_on_cancel=True)
            except Exception as exc:  # keep serving; the outbox keeps the backlog
                self.failures += 1
                log.warning("CXone write-back pass failed (tried again in %gs): %s",
                            self.delay(), failure_text(exc))
            else:
                if report is not None:
                    self.last = report
                    self.failures = self.failures + 1 if report.write_error else 0
                    self._log(report)
            await self.sleep(self.delay())

    def _log(self, report: PushReport) -> None:
        if not (report.sent or report.superseded or report.dead or report.lease_lost):
            return
        line = (f"CXone write-back to group {report.group_id}: {report.delivered} delivered "
                f"of {report.sent} sent, {len(report.retrying)} to retry, {len(report.dead)} "
                f"parked, {report.superseded} not sent (superseded), "
                f"{len(report.nothing_to_expire)} nothing to expire, "
                f"{report.lease_lost} taken over by another pusher; "
                f"{report.pending_after} pending, {report.dead_total} parked in all")
        if report.write_error:
            log.warning("%s; CXone gave no usable answer (tried again in %gs): %s", line,
                        self.delay(), report.write_error[:300])
        elif report.ok:
            log.info("%s", line)
        else:
            log.warning("%s", line)


def background_push(settings: Settings, **kw: Any) -> BackgroundPush | None:
    """The service's pusher when write-back is configured (the CXone credentials and a push
    group, ``DNCGUARD_CXONE_PUSH_GROUP``), else None. Credentials without a push group queue
    opt-outs that nothing in the service sends: that is logged (and the backlog shows on
    ``dncguard_cxone_outbox``)."""
    cx = load_cxone(settings)
    if not cx.configured:
        return None
    if not cx.push_group:
        log.warning("CXone write-back: opt-outs are queued (topic %s) but "
                    "DNCGUARD_CXONE_PUSH_GROUP is not set, so the service does not send them; "
                    "set it, or run 'dncguard cxone push --group ID'", TOPIC)
        return None
    return BackgroundPush(settings, cx.push_group, **kw)


def outbox_metrics(outbox: Outbox, now: datetime | None = None) -> dict[str, float]:
    """The write-back queue's numbers for a metrics endpoint (:meth:`Outbox.metrics`)."""
    return outbox.metrics(TOPIC, now)
