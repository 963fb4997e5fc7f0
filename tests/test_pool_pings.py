"""A pooled PostgreSQL connection is pinged before it is used only when it sat in the pool for
more than a second (dncguard.store.ping_when_idle): one that died there is replaced, one back
a moment ago goes out without a round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dncguard import store
from dncguard.config import load_settings
from tests.conftest import postgres_engine


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
           ) -> Any:
    clock = Clock()
    monkeypatch.setattr(store, "monotonic", clock)
    engine = store.make_engine(load_settings(home=tmp_path, database_url=postgres_url))
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    yield engine, clock, pings
    engine.dispose()


def _backend(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("select pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = postgres_engine()
    try:
        with admin.begin() as conn:
            assert conn.execute(sa.text("select pg_terminate_backend(:p)"), {"p": pid}).scalar()
    finally:
        admin.dispose()


def test_a_connection_back_a_moment_ago_is_not_pinged(engine: Any) -> None:
    eng, clock, pings = engine
    first = _backend(eng)
    clock.now += store.PING_AFTER_IDLE_SECONDS  # not more
    assert _backend(eng) == first  # the same connection, taken again
    assert pings == []


def test_a_connection_idle_longer_is_pinged_and_kept_when_alive(engine: Any) -> None:
    eng, clock, pings = engine
    first = _backend(eng)
    clock.now += store.PING_AFTER_IDLE_SECONDS + 0.5
    assert _backend(eng) == first
    assert pings == [1]


def test_a_connection_that_died_in_the_pool_is_replaced(engine: Any) -> None:
    eng, clock, pings = engine
    first = _backend(eng)
    _terminate(first)  # a server restart, an idle timeout on the way
    clock.now += store.PING_AFTER_IDLE_SECONDS + 0.5
    second = _backend(eng)  # no error: the ping found it gone, the pool connected anew
    assert second != first
    assert pings == [1]
