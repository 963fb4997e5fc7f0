"""Each replica keeps its local snapshots equal to the database's versions (PostgreSQL).

A daemon thread listens on :data:`dncguard.lists.share.CHANNEL` (an import notifies it when
its transaction commits) and runs :meth:`dncguard.lists.sync.ListSync.sync_all` on each
notification, and every :data:`POLL_SECONDS` whatever happens: a lost notification, a listener
that cannot connect, or a local file damaged on disk is caught by the next poll. Until a list's
current version is held and verified, its checks answer ``error`` (SOURCE_ERROR) and ``/readyz``
names it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

from ..config import Settings
from ..lists.share import CHANNEL
from ..lists.store import ListStore
from ..lists.sync import ListSync

log = logging.getLogger("dncguard.lists.snapshots")

#: Seconds between sync passes when no notification arrives.
POLL_SECONDS = 2.0
_SLICE = 0.5  # how long one wait for a notification lasts (bounds the stop latency)


class SnapshotSyncer:
    """Fetches every list's current snapshot into this replica's home as soon as it changes."""

    def __init__(self, settings: Settings, engine: Engine, *, poll: float = POLL_SECONDS,
                 listen: bool = True) -> None:
        self.lists = ListSync(ListStore(settings, engine))
        self.engine = engine
        self.poll = poll
        #: Listen for notifications (False: poll only, e.g. behind a pooler that cannot LISTEN).
        self.listen = listen
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: Any = None
        #: Lists not synced at the last pass, with why.
        self.problems: dict[str, str] = {}
        #: Set once the first pass has run (the job runner waits for it).
        self.first_pass = threading.Event()

    @property
    def listening(self) -> bool:
        """Whether notifications wake this syncer (else it polls only)."""
        return self._listener is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dncguard-snapshots",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    def sync_once(self) -> None:
        try:
            self.problems = self.lists.sync_all()
        except Exception as exc:  # the database went away: the next pass tries again
            log.warning("snapshot sync pass failed: %s", type(exc).__name__)
            return
        self.first_pass.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._listen()  # before the pass: a change committed during it is not missed
            self.sync_once()
            deadline = time.monotonic() + self.poll
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self._notified(min(_SLICE, max(deadline - time.monotonic(), 0.01))):
                    break

    def _listen(self) -> None:
        if self._listener is not None or not self.listen:
            return
        try:
            import psycopg

            args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
            conn = psycopg.connect(*args, **{**kwargs, "autocommit": True})
            conn.execute(f"LISTEN {CHANNEL}")
            self._listener = conn
        except Exception as exc:  # polling goes on without notifications
            log.warning("snapshot notifications unavailable (polling every %gs): %s",
                        self.poll, type(exc).__name__)

    def _notified(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for a notification; True when one came."""
        if self._listener is None:
            self._stop.wait(timeout)
            return False
        try:
            return any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
        except Exception as exc:
            log.warning("snapshot notifications lost (%s); listening again", type(exc).__name__)
            self._close()
            return True

    def _close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except Exception:  # already gone
                pass
            self._listener = None
