"""API keys while the database cannot answer: an answer verified within ``key_cache_seconds``
still stands, an older one does not. A key revoked after its last request is never accepted
again for the length of an outage: past ``key_cache_seconds`` the service answers 503, as it
does for a key it never saw (docs/service.md: replicas stop accepting a revoked key within
``key_cache_seconds``). Time is a fake clock; the outage is an engine whose every connection
attempt fails at once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from dncguard.config import load_settings
from dncguard.server.keys import KeyStore
from dncguard.store import get_engine, metadata

from .conftest import make_key

PHONE = "+12025550123"
CACHE = 2.0


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def refusing_engine(before: Callable[[], None] = lambda: None) -> sa.Engine:
    """An engine on a database that refuses every connection (``before`` runs first: e.g. a
    connection attempt that takes a while)."""

    def refuse() -> Any:
        before()
        raise sqlite3.OperationalError("unable to open database file (the test's outage)")

    return sa.create_engine("sqlite://", creator=refuse)


def _engine(tmp_path: Path) -> sa.Engine:
    engine = get_engine(load_settings(home=tmp_path / "home"))
    metadata.create_all(engine)
    return engine


def _key_id(text: str) -> str:
    return text.split("_")[1]


# -- KeyStore.verify -------------------------------------------------------------------------


def test_a_key_revoked_before_the_outage_is_not_trusted_past_the_cache_time(
        tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    clock = Clock()
    keys = KeyStore(engine, CACHE, clock=clock)
    key, text = keys.create("dialer", ["check"])
    assert keys.verify(text) == key  # its last request before the revocation
    KeyStore(engine).revoke(key.id)  # by `dncguard keys revoke` (another process)
    keys.engine = refusing_engine()  # then the database goes away

    clock.now += CACHE / 2  # within the cache time: the cached answer still stands
    assert keys.verify(text) == key and keys.verify(text, refresh=True) == key
    clock.now += CACHE / 2  # exactly key_cache_seconds later: no longer
    assert keys.cached(text) is None
    with pytest.raises(OperationalError):
        keys.verify(text)
    with pytest.raises(OperationalError):  # the fast path's background refresh
        keys.verify(text, refresh=True)
    clock.now += 3600  # however long the outage lasts
    with pytest.raises(OperationalError):
        keys.verify(text)

    keys.engine = engine  # the database is back: refused, and that is cached
    assert keys.verify(text) is None and keys.cached(text) == (None,)


def test_a_key_never_seen_fails_as_before(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    keys = KeyStore(engine, CACHE, clock=Clock())
    _, text = keys.create("dialer", ["check"])
    keys.engine = refusing_engine()
    with pytest.raises(OperationalError):
        keys.verify(text)
    assert keys.verify("not-a-key") is None  # malformed: refused without the database


def test_a_refused_key_is_refused_then_unavailable(tmp_path: Path) -> None:
    """A cached refusal stands within the cache time (401); past it, 503: never a success."""
    engine = _engine(tmp_path)
    clock = Clock()
    keys = KeyStore(engine, CACHE, clock=clock)
    key, text = keys.create("dialer", ["check"])
    keys.revoke(key.id)
    assert keys.verify(text) is None
    keys.engine = refusing_engine()
    clock.now += CACHE / 2
    assert keys.verify(text, refresh=True) is None
    clock.now += CACHE
    with pytest.raises(OperationalError):
        keys.verify(text, refresh=True)


def test_the_age_is_taken_after_the_failed_lookup(tmp_path: Path) -> None:
    """A lookup that waits on the dead database (a connect timeout) and fails after the
    cached answer expired does not answer from the cache."""
    engine = _engine(tmp_path)
    clock = Clock()
    keys = KeyStore(engine, CACHE, clock=clock)
    key, text = keys.create("dialer", ["check"])
    assert keys.verify(text) == key
    clock.now += CACHE * 0.75  # due for a refresh, still fresh when it starts

    def slow() -> None:
        clock.now += CACHE  # the connection attempt takes its time before failing

    keys.engine = refusing_engine(slow)
    with pytest.raises(OperationalError):
        keys.verify(text, refresh=True)


# -- the service: the fast path and the route --------------------------------------------------


def test_the_service_answers_503_for_a_revoked_key_during_an_outage(tmp_path: Path) -> None:
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    settings = load_settings(home=home)
    text = make_key(home, "check")
    other = make_key(home, "check")  # never used before the outage
    app = create_app(settings, run_jobs=False)
    svc = app.state.service
    clock = Clock()
    svc.keys.clock = clock
    svc.keys.cache_seconds = CACHE

    async def scenario() -> list[httpx.Response]:
        out: list[httpx.Response] = []
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test") as client:

            async def check(key: str) -> httpx.Response:
                return await client.post("/v1/check", json={"phone": PHONE},
                                         headers={"Authorization": f"Bearer {key}"})

            out.append(await check(text))  # verified at t0
            KeyStore(get_engine(settings)).revoke(_key_id(text))  # `dncguard keys revoke`
            svc.keys.engine = refusing_engine()  # the database refuses connections
            clock.now += CACHE * 0.75  # within key_cache_seconds (and due: refreshed behind)
            out.append(await check(text))
            clock.now += CACHE  # past it, with no request between
            out.append(await check(text))
            out.append(await client.get("/v1/lists", headers={"Authorization": f"Bearer {text}"}))
            out.append(await check(other))  # a key this process never saw
            out.append(await check(text))  # and it stays so
        return out

    try:
        first, within, revoked, routed, unknown, still = asyncio.run(scenario())
    finally:
        svc.keys.engine.dispose()
    assert first.status_code == 200, first.text
    assert within.status_code == 200, within.text  # the documented key_cache_seconds
    for response in (revoked, routed, unknown, still):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "unavailable"
        assert response.headers["retry-after"] == "5"
