"""Group commit: the appends of one process share transactions.

Threads and coroutines hand their encoded records (:class:`~.chain.Pending`) to one writer
thread, which appends everything that is waiting in one transaction (one lock of the chain
head, one chain step per record, one multi-row insert or COPY), then tells every caller. It
takes the records once it holds the chain head's lock, so those handed over while it waited
for another process's transaction join its own. A caller returns its verdicts only after
that commit; when it fails, every caller of that transaction gets :class:`AuditUnavailable`
and :mod:`.health` marks the process unready. Should the thread itself end, everything
handed to it is answered :class:`AuditUnavailable` and later submissions are refused.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from ._chain import Pending
from ._log import AuditLog
from .health import AuditHealth, describe

log = logging.getLogger("dncguard.audit")

Done = Callable[[BaseException | None], None]


class AuditUnavailable(Exception):
    """The records could not be written (the reason is the message)."""


class AuditWriter:
    """One writer thread per process and database; see the module docstring."""

    def __init__(self, log: AuditLog, health: AuditHealth, *, max_records: int = 50_000,
                 ) -> None:
        self.log = log
        self.health = health
        self.max_records = max_records
        self._queue: deque[tuple[list[Pending], Done]] = deque()
        self._cv = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None

    # -- submitting ---------------------------------------------------------------------------
    def submit(self, records: list[Pending], done: Done) -> None:
        """Queue ``records``; ``done(None)`` runs (on the writer thread) once they are
        committed, ``done(AuditUnavailable)`` when they cannot be."""
        with self._cv:
            if self._stopped:
                raise AuditUnavailable("the audit writer is stopped")
            self._queue.append((records, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dncguard-audit",
                                                daemon=True)
                self._thread.start()
            self._cv.notify()

    def append(self, records: list[Pending]) -> None:
        """Append and wait for the commit (raises :class:`AuditUnavailable`)."""
        fut: Future[None] = Future()
        self.submit(records, lambda exc: fut.set_exception(exc) if exc else fut.set_result(None))
        fut.result()

    async def append_async(self, records: list[Pending]) -> None:
        """Append and wait for the commit without blocking the event loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def settle(exc: BaseException | None) -> None:
            if not fut.done():
                if exc is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(exc)

        def done(exc: BaseException | None) -> None:
            loop.call_soon_threadsafe(settle, exc)

        self.submit(records, done)
        await fut

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the thread."""
        with self._cv:
            self._stopped = True
            self._cv.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the writer thread --------------------------------------------------------------------
    def _wait(self) -> bool:
        """Wait until something is queued (False: stopped with nothing left)."""
        with self._cv:
            while not self._queue and not self._stopped:
                self._cv.wait()
            return bool(self._queue)

    def _take(self) -> list[tuple[list[Pending], Done]]:
        """What is queued, up to :attr:`max_records` records (at least one submission)."""
        with self._cv:
            if not self._queue:
                return []
            taken = [self._queue.popleft()]
            size = len(taken[0][0])
            while self._queue and size + len(self._queue[0][0]) <= self.max_records:
                item = self._queue.popleft()
                size += len(item[0])
                taken.append(item)
            return taken

    def _run(self) -> None:
        try:
            while self._wait():
                self._commit()
        except BaseException as exc:  # the thread ends: nobody may be left waiting on it
            self.health.failed(exc)
            with self._cv:
                self._stopped = True
                left = list(self._queue)
                self._queue.clear()
            _tell(left, AuditUnavailable(f"the audit writer stopped ({describe(exc)})"))
            raise

    def _commit(self) -> None:
        """One transaction: what is queued once the chain head is locked (what was handed
        over while the lock was awaited joins it); then every caller of it is told."""
        taken: list[tuple[list[Pending], Done]] = []

        def take() -> list[Pending]:
            taken.extend(self._take())
            return [r for many, _ in taken for r in many]

        error: BaseException | None = None
        try:
            self.log.append_gathered(take)
        except Exception as exc:  # every caller of this transaction answers error
            self.health.failed(exc)
            error = AuditUnavailable(describe(exc))
            if not taken:  # failed before taking: those waiting are told now
                taken = self._take()
        except BaseException as exc:  # the thread is ending: those taken are told first
            _tell(taken, AuditUnavailable(describe(exc)))
            raise
        else:
            if taken:
                self.health.succeeded()
            else:  # an append that returned without taking wrote nothing for anyone
                error = AuditUnavailable("the append took no records")
                taken = self._take()
        _tell(taken, error)


def _tell(taken: list[tuple[list[Pending], Done]], error: BaseException | None) -> None:
    for _, done in taken:
        try:
            done(error)
        except Exception:  # a caller's callback must not stop the writer
            log.exception("audit writer callback failed")


__all__ = ["AuditUnavailable", "AuditWriter"]
