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


def _two_in_the_pool(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as a, engine.connect() as b:
        return (int(a.execute(sa.text("select pg_backend_pid()")).scalar_one()),
                int(b.execute(sa.text("select pg_backend_pid()")).scalar_one()))


def _both_killed(engine: sa.Engine, clock: Clock) -> tuple[int, int]:
    """Two connections back in the pool, then both gone (a server restart) a moment later."""
    first, second = _two_in_the_pool(engine)
    _terminate(first)
    _terminate(second)
    clock.now += 0.1
    return first, second


def test_after_a_connection_is_found_broken_the_others_are_pinged(
        engine: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A server restart under load: the connections went back to the pool a moment ago, so
    none is pinged, and the first query fails (as any query in flight would). That failure
    is the sign: every other connection back in the pool since before it is pinged, so the
    next group of checks does not fail as well."""
    eng, clock, pings = engine
    first, second = _both_killed(eng, clock)
    with pytest.raises(sa.exc.OperationalError), eng.connect() as conn:
        store.driver_row(conn, "select 1")
    assert pings == []  # nothing to foresee it by
    clock.now += 0.1
    fresh = _backend(eng)  # the other dead one is pinged and replaced, not used
    assert fresh not in (first, second)
    assert pings == [1]
    # the broken one was invalidated, not put back (a reset of it would log a traceback)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


def test_a_failed_statement_that_is_no_disconnect_pings_nothing(engine: Any) -> None:
    eng, clock, pings = engine
    first, second = _two_in_the_pool(eng)
    clock.now += 0.1
    with pytest.raises(sa.exc.ProgrammingError), eng.connect() as conn:
        store.driver_row(conn, "select * from no_such_table")
    clock.now += 0.1
    assert _backend(eng) in (first, second)
    assert pings == []


def test_the_audit_append_reports_a_lost_connection_too(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's group commit runs on the driver's own connection (not through
    SQLAlchemy's statements): a lost connection there also has the others pinged."""
    from dncguard import audit
    from tests.audit.test_audit_group_commit import verdicts

    clock = Clock()
    monkeypatch.setattr(store, "monotonic", clock)
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    log = audit.audit_log(settings)
    pings: list[int] = []
    ping = log.engine.dialect.do_ping
    monkeypatch.setattr(log.engine.dialect, "do_ping",
                        lambda c: bool(pings.append(1) or ping(c)))

    def records() -> list[Any]:
        return audit.check_fields(settings, verdicts(2), who="api:test")

    try:
        log.append_gathered(records)
        _both_killed(log.engine, clock)
        with pytest.raises(sa.exc.DBAPIError):
            log.append_gathered(records)
        assert pings == []
        clock.now += 0.1
        seq, _ = log.append_gathered(records)  # on a new connection, the other was pinged
        assert seq == 4 and pings == [1]
        assert log.verify().ok
    finally:
        store.dispose_engines()


def test_after_a_lost_connection_in_a_statement_of_sqlalchemy_the_pool_is_renewed(
        engine: Any) -> None:
    """SQLAlchemy's own statements: it replaces every connection the pool held itself."""
    eng, clock, pings = engine
    first, second = _both_killed(eng, clock)
    with pytest.raises(sa.exc.OperationalError), eng.connect() as conn:
        conn.execute(sa.text("select 1"))
    clock.now += 0.1
    assert _backend(eng) not in (first, second)


def test_a_connection_in_use_when_another_is_found_broken_is_pinged_too(engine: Any) -> None:
    """Under load most connections are out when the server goes away: one held across the
    first failure goes back to the pool after it, and is pinged at its next checkout (it
    failed a second group)."""
    eng, clock, pings = engine
    first, second = _two_in_the_pool(eng)
    # the pre-dial path's reads run on the AUTOCOMMIT engine: a group ending on a dead
    # connection sends nothing more (no ROLLBACK to fail) and puts it back
    with store.read_engine(eng).connect() as held:
        held_pid = int(held.execute(sa.text("select pg_backend_pid()")).scalar_one())
        _terminate(first)
        _terminate(second)
        clock.now += 0.1
        with pytest.raises(sa.exc.OperationalError), \
                store.read_engine(eng).connect() as conn:
            store.driver_row(conn, "select 1")  # the first sign
        clock.now += 0.05  # the held group ends a little after
    clock.now += 0.1
    # both pooled connections taken again: the broken one was replaced when it failed, the
    # held one is pinged and replaced, so neither group uses a dead connection
    assert not {first, second, held_pid} & set(_two_in_the_pool(eng))
    assert pings == [1]
