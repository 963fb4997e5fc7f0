"""Who an action is recorded as in list changes and audit records."""

from __future__ import annotations

import getpass
import os


def acting_user(kind: str) -> str:
    """``DNCGUARD_USER`` when set, else ``<kind>:<login name>`` (``cli:alice``,
    ``library:alice``; ``<kind>:unknown`` when the system cannot say)."""
    named = os.environ.get("DNCGUARD_USER")
    if named:
        return named
    try:
        return f"{kind}:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"{kind}:unknown"


__all__ = ["acting_user"]
