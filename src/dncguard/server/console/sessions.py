"""Console sessions: a random id in a cookie, the session in the database.

The cookie carries 256 random bits; the table holds only their SHA-256, so a copy of the
database cannot be replayed as a cookie. Every worker and replica reads the same table, so a
session made by one is honoured by all. A session ends after 30 minutes without a request
(idle), 12 hours after sign-in (absolute), at sign-out, or when its API key is revoked or loses
the scopes to sign in (checked on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, DateTime, Engine, String, Table, delete, insert, select, update

from ...store import as_utc, metadata, utcnow
from ..keys import ApiKey
from ..tables import api_keys_table

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
#: last_seen is written at most this often (a page view is not a write each time).
TOUCH_EVERY = timedelta(seconds=60)

#: Scopes that may sign in to the console.
SIGN_IN_SCOPES = ("admin", "console")

console_sessions_table = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # SHA-256 hex of the cookie's session id
    Column("key_id", String(32), nullable=False),  # the API key signed in with
    Column("csrf", String(64), nullable=False),  # the session's form token
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def may_sign_in(key: ApiKey) -> bool:
    return any(s in key.scopes for s in SIGN_IN_SCOPES)


@dataclass(frozen=True)
class Session:
    key: ApiKey
    csrf: str
    created_at: datetime

    def may(self, scope: str) -> bool:
        """What the key may do in the console: viewing and checking need a sign-in scope;
        any other action needs the API's scope for it too (``admin`` has every scope)."""
        if scope == "console":
            return may_sign_in(self.key)
        return self.key.allows(scope)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())


class SessionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, key: ApiKey) -> str:
        """A new session for ``key``; returns the id for the cookie (never stored)."""
        session_id = secrets.token_urlsafe(32)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(delete(console_sessions_table).where(
                (console_sessions_table.c.last_seen < now - IDLE)
                | (console_sessions_table.c.created_at < now - ABSOLUTE)))
            conn.execute(insert(console_sessions_table).values(
                id_hash=_hash(session_id), key_id=key.id, csrf=secrets.token_urlsafe(32),
                created_at=now, last_seen=now))
        return session_id

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this cookie value, else None (an expired one is deleted)."""
        if not session_id or len(session_id) > 100:
            return None
        t, k = console_sessions_table, api_keys_table
        digest = _hash(session_id)
        now = utcnow()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.csrf, t.c.created_at, t.c.last_seen, k.c.id, k.c.name, k.c.scopes,
                       k.c.created_at.label("key_created"), k.c.created_by, k.c.revoked_at)
                .join(k, k.c.id == t.c.key_id).where(t.c.id_hash == digest)).first()
        if row is None:
            return None
        created, seen = as_utc(row.created_at), as_utc(row.last_seen)
        assert created is not None and seen is not None
        key = ApiKey(id=row.id, name=row.name, scopes=tuple(row.scopes or ()),
                     created_at=as_utc(row.key_created) or now, created_by=row.created_by,
                     revoked_at=as_utc(row.revoked_at))
        if (now - seen > IDLE or now - created > ABSOLUTE or key.revoked_at is not None
                or not may_sign_in(key)):
            self.delete(session_id)
            return None
        if now - seen > TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(t).where(t.c.id_hash == digest).values(last_seen=now))
        return Session(key=key, csrf=str(row.csrf), created_at=created)

    def delete(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(console_sessions_table).where(
                console_sessions_table.c.id_hash == _hash(session_id)))
