"""Who an action is recorded as in list changes and audit records."""

from __future__ import annotations

import getpass


def acting_user(kind: str) -> str:
    """``DNCGUARD_USER`` when set (in any case, as every ``DNCGUARD_`` variable is read:
    :func:`dncguard.config.environment_variable`), else ``<kind>:<login name>``
    (``cli:alice``, ``library:alice``; ``<kind>:unknown`` when the system cannot say)."""
    # (imported here: the command line imports this module before it needs the settings)
    from .config import environment_variable

    named = environment_variable("DNCGUARD_USER")
    if named:
        return named
    try:
        return f"{kind}:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"{kind}:unknown"


__all__ = ["acting_user"]
