"""The real-time check: concurrent requests of a worker checked and recorded together.

``POST /v1/check`` hands its number to :class:`Realtime` and awaits the verdict. A flush task
on the worker's event loop takes every request waiting, reads the list version once (one
query, see :mod:`.checker`), checks them all in one batch with the checks prepared for that
version (the local lists and the rules run in the loop's thread: no hand-off per request),
and hands their audit records to the group-commit writer
(:class:`~dncguard.audit.AuditWriter`), whose thread commits them. A verdict is answered
only once its record is committed; when the commit fails it is ``error`` /
AUDIT_UNAVAILABLE instead. While one batch is checked, the next one gathers, so the batch
size follows the load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from .. import audit
from ..audit import AuditUnavailable, AuditWriter, Pending
from ..config import Settings
from ..engine.run import slice_of_rows
from ..engine.scrubber import Scrubber
from ..errors import ContextError
from ..models import Decision, Reason, ReasonCode, Verdict
from ..sources.protocol import CheckContext
from ..store import utcnow
from ._checker import CheckerProvider, audit_unavailable, unavailable_verdict

log = logging.getLogger("dncguard.server")

#: The per-request context fields, as columns of the rows the engine reads.
FIELDS = ("region", "state", "zip", "timezone", "line_type", "subject")
_HEADER = ["phone", *FIELDS]
#: Numbers of a batch request checked between two yields to the event loop: a few ms of work
#: here, the longest a single check waits behind a batch.
SLICE = 100
#: A batch request's records are appended once this many have gathered (and the previous
#: append is done): few transactions, none long enough to hold single checks' records back.
APPEND_EVERY = 200


@dataclass(slots=True)
class Ask:
    """One waiting request."""

    phone: str
    ctx: CheckContext
    fields: dict[str, str]
    fixed_at: bool  # the request named its dial time (else: the moment it is checked)
    who: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Verdict]


Observe = Callable[[list[Verdict]], None]


#: Event-loop turns a batch request gives away between two slices (a turn with nothing to
#: run costs microseconds). Measured, not derived: single checks beside 10,000-number
#: batches, six alternated pairs, p99 41-70 ms with four turns against 59-74 ms with one, the
#: four-turn run lower in each pair (the checks' ``gather`` already gives the loop a few turns
#: within each slice; see docs/performance.md).
TURNS = 4


#: Event-loop turns a flush waits before it takes the waiting requests: a worker's
#: connections are answered together (one commit), so their next requests arrive together,
#: a little apart. Measured, not derived: ``/v1/check`` with 2 workers, six alternated
#: pairs, 3 turns ahead of 1 in five (2,571-3,396 req/s against 2,300-3,345); 6 turns no
#: better than 3 (docs/performance.md).
GATHER_TURNS = 3


async def let_others_run() -> None:
    """Give the event loop :data:`TURNS` turns (between two slices of a batch request)."""
    for _ in range(TURNS):
        await asyncio.sleep(0)


def _settle(pairs: list[tuple[asyncio.Future[Verdict], Verdict]], observe: Observe) -> None:
    for fut, verdict in pairs:
        if not fut.done():
            fut.set_result(verdict)
    _count(observe, [v for _, v in pairs])


def _count(observe: Observe, verdicts: list[Verdict]) -> None:
    try:
        observe(verdicts)
    except Exception:  # counting must never keep an answer back
        log.exception("counting verdicts failed")


class Realtime:
    """The per-process checker thread (see the module docstring)."""

    def __init__(self, settings: Settings, provider: CheckerProvider, writer: AuditWriter,
                 *, max_batch: int = 512, offload: bool | None = None,
                 observe: Observe = lambda verdicts: None) -> None:
        self.settings = settings
        #: called with each batch's answered verdicts, on the event loop (metrics, counts)
        self.observe = observe
        self.provider = provider
        self.writer = writer
        self.max_batch = max_batch
        self._queue: deque[Ask] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._stopped = False
        # A database across the network (PostgreSQL): the batch's queries (list version,
        # consents, attempts) would stall the event loop, so batches are checked on a thread
        # of their own; SQLite answers in microseconds and the loop checks them itself.
        self.offload = (provider.engine.dialect.name != "sqlite" if offload is None
                        else offload)
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()

    # -- the request side ---------------------------------------------------------------------
    async def check(self, phone: str, ctx: CheckContext, fields: dict[str, str], *,
                    fixed_at: bool, who: str) -> Verdict:
        if self._stopped:
            raise RuntimeError("the checker is stopped")
        loop = asyncio.get_running_loop()
        ask = Ask(phone, ctx, fields, fixed_at, who, loop, loop.create_future())
        self._queue.append(ask)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush(loop))
        return await ask.future

    async def check_many(self, phones: list[str], ctx: CheckContext,
                         defaults: dict[str, str], who: str) -> list[Verdict]:
        """A batch request's verdicts, in order, duplicates marked and counted (``observe``)
        (SQLAlchemyError: the lists could not be read, nothing was checked).

        Checked on the event loop :data:`SLICE` numbers at a time, giving the loop
        :data:`TURNS` turns between slices, so single checks beside a large batch wait for
        about one slice. The audit records are appended while later slices are checked,
        once :data:`APPEND_EVERY` have gathered and one append in the writer at a time, so
        the single checks' records join the next transaction instead of waiting behind the
        whole batch. A verdict is answered as checked only when its records were committed;
        those of an append that failed are ``error`` (AUDIT_UNAVAILABLE)."""
        scrubber = self.provider.refresh().direct
        run = scrubber.run(["phone"], ctx, defaults=defaults, zones=True)
        versions = scrubber.versions(ctx)
        verdicts: list[Verdict] = []
        parts: list[tuple[int, int]] = []  # the verdicts each append covers
        appends: list[asyncio.Task[None]] = []
        records: list[Pending] = []
        for start in range(0, len(phones), SLICE):
            found = await run.scrub(slice_of_rows([[p] for p in phones[start:start + SLICE]],
                                                  start, 1))
            checked = utcnow()  # the slice's numbers are checked together
            part = [scrubber.verdict_of(r, ctx, versions, checked_at=checked)
                    for r in found.results()]
            records.extend(audit.check_fields(self.settings, part, who=who))
            verdicts.extend(part)
            # one append in the writer at a time (see above); records gather meanwhile
            if len(records) >= APPEND_EVERY and (not appends or appends[-1].done()):
                self._append_part(records, verdicts, parts, appends)
                records = []
            await let_others_run()
        if appends:
            await asyncio.wait([appends[-1]])
        if records:
            self._append_part(records, verdicts, parts, appends)
        if appends:
            await asyncio.wait(appends)
        for (lo, hi), task in zip(parts, appends, strict=True):
            exc = task.exception()
            if exc is not None:
                why = str(exc) if isinstance(exc, AuditUnavailable) else type(exc).__name__
                verdicts[lo:hi] = [audit_unavailable(v, why) for v in verdicts[lo:hi]]
        for start in range(0, len(verdicts), SLICE * 10):  # counted as answered
            _count(self.observe, verdicts[start:start + SLICE * 10])
            await let_others_run()
        return verdicts

    def _append_part(self, records: list[Pending], verdicts: list[Verdict],
                     parts: list[tuple[int, int]], appends: list[asyncio.Task[None]]) -> None:
        """Append the records of the verdicts not covered yet (the last ``len(records)``)."""
        lo = parts[-1][1] if parts else 0
        parts.append((lo, len(verdicts)))
        appends.append(asyncio.ensure_future(self.writer.append_async(records)))

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- the batches --------------------------------------------------------------------------
    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Check everything waiting, as one batch, until nothing waits. Runs on the event
        loop: while a batch is checked no request is read, so the next batch gathers every
        request that arrived meanwhile (no thread, no lock, no GIL hand-off per request)."""
        for _ in range(GATHER_TURNS):  # let the requests already readable join this batch
            await asyncio.sleep(0)
        while self._queue:
            n = min(len(self._queue), self.max_batch)
            asks = [self._queue.popleft() for _ in range(n)]
            try:
                await self._batch(loop, asks)
            except Exception as exc:  # never leave a request waiting
                log.exception("real-time check batch failed")
                self._answer(asks, [audit_unavailable(
                    unavailable_verdict(a.phone, a.ctx, a.fields.get("region"),
                                        type(exc).__name__, utcnow()), type(exc).__name__)
                    for a in asks])

    async def _batch(self, loop: asyncio.AbstractEventLoop, asks: list[Ask]) -> None:
        if self.offload:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="dncguard-check")
            verdicts = await loop.run_in_executor(self._pool, self._compute_here, asks)
        else:
            verdicts = await self._compute(asks)
        try:
            records = audit.check_records(self.settings, verdicts, [a.who for a in asks])
        except Exception as exc:  # a record that cannot be built cannot be written
            log.error("audit records could not be built: %s", type(exc).__name__)
            self._answer(asks, [audit_unavailable(v, type(exc).__name__) for v in verdicts])
            return

        def done(exc: BaseException | None) -> None:
            if exc is None:
                self._answer(asks, verdicts)
            else:
                self._answer(asks, [audit_unavailable(v, str(exc)) for v in verdicts])

        try:
            self.writer.submit(records, done)
        except AuditUnavailable as exc:
            done(exc)

    async def _compute(self, asks: list[Ask]) -> list[Verdict]:
        now = utcnow()
        try:
            prepared = self.provider.refresh()
        except SQLAlchemyError as exc:
            log.warning("checks failed closed: database unavailable (%s)", type(exc).__name__)
            return [unavailable_verdict(a.phone, a.ctx if a.fixed_at else
                                        dataclasses.replace(a.ctx, at=now),
                                        a.fields.get("region"), type(exc).__name__, now)
                    for a in asks]
        return await self._verdicts(prepared.direct, asks, now)

    def _compute_here(self, asks: list[Ask]) -> list[Verdict]:
        """:meth:`_compute` on the offload thread, in that thread's own event loop."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(self._compute(asks))

    def _answer(self, asks: Sequence[Ask], verdicts: Sequence[Verdict]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Verdict],
                                                          Verdict]]] = {}
        for a, v in zip(asks, verdicts, strict=True):
            by_loop.setdefault(a.loop, []).append((a.future, v))
        for loop, pairs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, pairs, self.observe)
            except RuntimeError:  # that loop is closed: its requests are gone
                pass

    async def _verdicts(self, scrubber: Scrubber, asks: list[Ask], now: datetime
                        ) -> list[Verdict]:
        """Verdicts in order; asks sharing a context are checked as one batch."""
        out: list[Verdict | None] = [None] * len(asks)
        groups: dict[tuple[object, ...], list[int]] = {}
        ctxs: list[CheckContext] = []
        # the contexts dated now: one per campaign, purpose, call type and profile object
        # (held by the asks meanwhile)
        dated: dict[tuple[object, ...], CheckContext] = {}
        for i, a in enumerate(asks):
            ctx = a.ctx
            if not a.fixed_at:
                same = (ctx.campaign, ctx.purpose, ctx.call_type, id(ctx.profile))
                now_ctx = dated.get(same)
                if now_ctx is None:
                    now_ctx = dated[same] = dataclasses.replace(ctx, at=now)
                ctx = now_ctx
            ctxs.append(ctx)
            groups.setdefault((ctx.at, ctx.campaign, ctx.purpose, ctx.call_type), []).append(i)
        for idx in groups.values():
            ctx = ctxs[idx[0]]
            group = [asks[i] for i in idx]
            try:
                found = await self._group(scrubber, ctx, group)
            except Exception as exc:  # fail closed for this group
                log.warning("check failed for %d numbers: %s", len(group), type(exc).__name__)
                # a profile the current checks refuse (a list removed since the request was
                # read) says so; other failures give their kind only
                why = exc.why if isinstance(exc, ContextError) else type(exc).__name__
                found = [_failed(a.phone, ctx, why) for a in group]
            for i, v in zip(idx, found, strict=True):
                out[i] = v
        return [v for v in out if v is not None]

    @staticmethod
    async def _group(scrubber: Scrubber, ctx: CheckContext, asks: list[Ask]) -> list[Verdict]:
        """One group's verdicts: each request a row of the engine, its fields the row's
        context; a request for a number another request of the group asked is answered in
        full (no DUPLICATE)."""
        rows = [[a.phone, *(a.fields.get(f, "") for f in FIELDS)] for a in asks]
        run = scrubber.run(_HEADER, ctx, zones=True)
        found = await run.scrub(slice_of_rows(rows, 0, len(_HEADER)))
        versions = scrubber.versions(ctx)
        checked = utcnow()
        out = []
        for r in found.results():
            if r.duplicate_of is not None:
                r.reasons = [x for x in r.reasons if x.code != ReasonCode.DUPLICATE]
            v = scrubber.verdict_of(r, ctx, versions, checked_at=checked)
            v.row = None
            out.append(v)
        return out


def _failed(phone: str, ctx: CheckContext, why: str) -> Verdict:
    reason = Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source="service",
                    detail=f"the check failed ({why}); not verified")
    return Verdict(input=phone, decision=Decision.ERROR, reasons=[reason], dial_time=ctx.at,
                   checked_at=utcnow())


__all__ = ["FIELDS", "Realtime"]
