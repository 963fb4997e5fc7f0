"""API keys: created once (printed once), stored as SHA-256 hashes, checked in constant time.

A key looks like ``dgk_<id>_<secret>``: ``id`` (12 hex digits) finds the row, the whole key's
SHA-256 is compared with :func:`hmac.compare_digest`. The secret has 256 bits of entropy, so an
unsalted fast hash is safe (nothing to brute-force).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..errors import DncGuardError
from ..store import as_utc, utcnow
from .tables import api_keys_table

SCOPES = ("check", "jobs", "dnc:write", "admin", "console")
PREFIX = "dgk_"


class ApiKeyError(DncGuardError):
    """A key operation failed (unknown scope, unknown key)."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _parse(key: str) -> str | None:
    """The id part of a well-formed key, else None."""
    if not key.startswith(PREFIX):
        return None
    parts = key[len(PREFIX):].split("_", 1)
    if len(parts) != 2 or len(parts[0]) != 12 or not parts[1]:
        return None
    return parts[0]


#: The longest name a key may have (the column holds 200 characters).
NAME_MAX = 200
#: Control characters (C0, DEL, C1), tab and line breaks included: a name is one line of
#: ``keys list``, the console and the audit trail's ``api:<name>``.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a key's name (to follow "the key's name"), or None."""
    if not name.strip():
        return "is empty: say who uses the key, e.g. dialer-east"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long; at most {NAME_MAX}"
    found = _CONTROL.search(name)
    if found:
        return f"contains the control character U+{ord(found.group()):04X}; remove it"
    return None


def _row_key(row: object) -> ApiKey:
    return ApiKey(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        scopes=tuple(row.scopes or ()),  # type: ignore[attr-defined]
        created_at=as_utc(row.created_at) or utcnow(),  # type: ignore[attr-defined]
        created_by=row.created_by,  # type: ignore[attr-defined]
        revoked_at=as_utc(row.revoked_at),  # type: ignore[attr-defined]
    )


class KeyStore:
    """Create, list, revoke and verify keys. Verified keys are cached briefly per process."""

    def __init__(self, engine: Engine, cache_seconds: float = 2.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, ApiKey | None, str]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: list[str], who: str | None = None) -> tuple[ApiKey, str]:
        """A new key; returns it and the secret text, which is never stored. The name is
        refused (ApiKeyError) unless :func:`name_problem` finds nothing wrong with it."""
        problem = name_problem(name)
        if problem:
            raise ApiKeyError(f"the key's name {problem}")
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            got = ", ".join(bad) or "none"
            raise ApiKeyError(f"scopes must be among {', '.join(SCOPES)} (got {got})")
        key_id = secrets.token_hex(6)
        text = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(api_keys_table).values(
                id=key_id, name=name, key_hash=hash_key(text), scopes=list(dict.fromkeys(scopes)),
                created_at=now, created_by=who))
        return ApiKey(key_id, name, tuple(dict.fromkeys(scopes)), now, who, None), text

    def all(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys_table).order_by(api_keys_table.c.created_at)).all()
        return [_row_key(r) for r in rows]

    def active_count(self) -> int:
        return sum(1 for k in self.all() if k.revoked_at is None)

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key ``key_id``; ApiKeyError for an unknown key, and for a key revoked
        already (nothing changes: its first revocation time stands, and a second revoke is
        not reported as done, which would hide a mistaken id)."""
        with self.engine.begin() as conn:
            done = conn.execute(update(api_keys_table).where(
                api_keys_table.c.id == key_id, api_keys_table.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())).rowcount
        key = next((k for k in self.all() if k.id == key_id), None)
        if key is None:
            raise ApiKeyError(f"no key with id {key_id!r}")
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[1] is None
                           or v[1].id != key_id}
        if not done and key.revoked_at is not None:
            raise ApiKeyError(f"key {key.id} ({key.name}) was already revoked at "
                              f"{key.revoked_at.isoformat(timespec='seconds')}; nothing "
                              "changed")
        return key

    def cached(self, text: str) -> tuple[ApiKey | None] | None:
        """``(key,)`` when this text was verified less than ``cache_seconds`` ago (``key`` None:
        it was refused), else None: then :meth:`verify` asks the database."""
        found = self._cache.get(hash_key(text))
        if found is not None and self.clock() - found[0] < self.cache_seconds:
            return (found[1],)
        return None

    def due(self, text: str) -> bool:
        """Whether this text's verification is older than half of ``cache_seconds`` (or
        missing): time to verify it again before the cached answer expires."""
        found = self._cache.get(hash_key(text))
        return found is None or self.clock() - found[0] >= self.cache_seconds / 2

    def verify(self, text: str, *, refresh: bool = False) -> ApiKey | None:
        """The active key this text is, or None (``refresh``: ask the database even when a
        recent answer is cached). When the database cannot answer, an answer verified less
        than ``cache_seconds`` ago still stands (the cache would have given it); an older one
        does not, so a key revoked meanwhile is not trusted again for the length of an outage
        (replicas stop accepting a revoked key within ``cache_seconds``, outage or not):
        then, as for a key never seen, SQLAlchemyError is raised (the service answers 503)."""
        digest = hash_key(text)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and now - cached[0] < self.cache_seconds and not refresh:
            return cached[1]
        key_id = _parse(text)
        if key_id is None:
            return None
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(api_keys_table).where(
                    api_keys_table.c.id == key_id)).first()
        except SQLAlchemyError:
            # the database is away: what was verified within cache_seconds (measured now,
            # after the failed attempt) still stands; anything older fails closed
            if cached is not None and self.clock() - cached[0] < self.cache_seconds:
                return cached[1]
            raise
        found: ApiKey | None = None
        if row is not None and hmac.compare_digest(row.key_hash, digest):
            key = _row_key(row)
            found = key if key.revoked_at is None else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, found, key_id)
        return found
