"""Console sessions in the database: idle and absolute expiry, revocation, sign-out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from dncguard.config import load_settings
from dncguard.server.console.sessions import (
    ABSOLUTE,
    IDLE,
    SessionStore,
    console_sessions_table,
)
from dncguard.server.keys import KeyStore
from dncguard.store import get_engine, utcnow


def _store(tmp_path: Path) -> tuple[SessionStore, KeyStore]:
    engine = get_engine(load_settings(home=tmp_path / "home"))
    return SessionStore(engine), KeyStore(engine, cache_seconds=0)


def _age(store: SessionStore, **delta: timedelta) -> None:
    t = console_sessions_table
    with store.engine.begin() as conn:
        conn.execute(update(t).values({k: utcnow() - v for k, v in delta.items()}))


def test_a_session_lives_in_the_database_hashed(tmp_path: Path) -> None:
    store, keys = _store(tmp_path)
    key, _ = keys.create("me", ["console"])
    sid = store.create(key)
    with store.engine.connect() as conn:
        stored = conn.execute(select(console_sessions_table.c.id_hash)).scalar_one()
    assert sid not in stored and len(stored) == 64
    sess = SessionStore(store.engine).get(sid)  # another worker's store: same session
    assert sess is not None and sess.key.id == key.id
    assert sess.may("console") and not sess.may("dnc:write") and not sess.may("admin")
    assert sess.csrf_ok(sess.csrf) and not sess.csrf_ok("x") and not sess.csrf_ok(None)
    store.delete(sid)
    assert store.get(sid) is None


def test_idle_and_absolute_expiry(tmp_path: Path) -> None:
    store, keys = _store(tmp_path)
    key, _ = keys.create("me", ["console"])
    sid = store.create(key)
    _age(store, last_seen=IDLE - timedelta(minutes=1))
    assert store.get(sid) is not None  # and touched: last_seen is now again
    _age(store, last_seen=IDLE + timedelta(seconds=1))
    assert store.get(sid) is None
    sid = store.create(key)
    _age(store, created_at=ABSOLUTE + timedelta(seconds=1), last_seen=timedelta(0))
    assert store.get(sid) is None


def test_a_revoked_key_ends_its_sessions(tmp_path: Path) -> None:
    store, keys = _store(tmp_path)
    key, _ = keys.create("me", ["admin"])
    sid = store.create(key)
    assert store.get(sid) is not None
    keys.revoke(key.id)
    assert store.get(sid) is None
    assert store.get("") is None and store.get("x" * 500) is None
