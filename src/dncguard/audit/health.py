"""Whether this process can append to the audit trail, for ``/readyz``.

A verdict is only returned once its audit record is durable; when an append fails, the
checks answer ``error`` (``AUDIT_UNAVAILABLE``) and ``/readyz`` fails until an append
succeeds again. :func:`readiness_problems` is what ``/readyz`` reads: while the last append
of this process failed it retries a trial append (the whole write path, rolled back), so a
replica that sees no checks still becomes ready once the database takes writes again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from ..config import Settings
from ..store import utcnow

log = logging.getLogger("dncguard.audit")


@dataclass
class AuditHealth:
    """The outcome of this process's latest audit append (shared by its threads)."""

    failing_since: datetime | None = None
    error: str | None = None
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def succeeded(self) -> None:
        if self.failing_since is None:
            return
        with self._lock:
            if self.failing_since is not None:
                log.warning("audit appends succeed again after %d failures", self.failures)
            self.failing_since, self.error, self.failures = None, None, 0

    def failed(self, exc: BaseException) -> None:
        why = describe(exc)
        with self._lock:
            if self.failing_since is None:
                self.failing_since = utcnow()
                log.error("audit append failed; checks answer error (AUDIT_UNAVAILABLE) until "
                          "appends succeed: %s", why)
            self.error = why
            self.failures += 1

    @property
    def ok(self) -> bool:
        return self.failing_since is None


def describe(exc: BaseException) -> str:
    """A short reason without parameters (which could hold numbers)."""
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).splitlines()
    text = lines[0][:200] if lines else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_health: dict[tuple[str, str], AuditHealth] = {}
_guard = threading.Lock()


def _key(settings: Settings) -> tuple[str, str]:
    return (str(settings.home), settings.db_url)


def health(settings: Settings) -> AuditHealth:
    """This process's audit health for the database of ``settings``."""
    key = _key(settings)
    found = _health.get(key)
    if found is None:
        with _guard:
            found = _health.setdefault(key, AuditHealth())
    return found


def readiness_problems(settings: Settings) -> list[str]:
    """Reasons this process is not ready because of the audit trail (empty when ready)."""
    state = _health.get(_key(settings))
    if state is None or state.ok:
        return []
    from . import audit_log

    try:
        audit_log(settings).probe()
    except Exception as exc:  # still failing: stay unready
        state.failed(exc)
        since = state.failing_since.isoformat() if state.failing_since else "now"
        return [f"audit trail: appends fail since {since} ({state.error}); checks answer "
                "error (AUDIT_UNAVAILABLE)"]
    state.succeeded()
    return []


__all__ = ["AuditHealth", "health", "readiness_problems"]
