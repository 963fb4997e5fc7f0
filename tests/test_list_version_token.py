"""The list version token: every list change that commits moves it, in whatever order the
changes started (several replicas on PostgreSQL), so no replica keeps checks that miss an
opt-out; every transaction that writes list data counts one change (``list_changes``)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dncguard import audit
from dncguard.config import Settings, load_settings
from dncguard.lists.store import ListStore
from dncguard.migrations import upgrade
from dncguard.models import Decision
from dncguard.optouts import add_optout
from dncguard.sandbox import SandboxServer, run_sandbox
from dncguard.server._checker import CheckerProvider, list_version
from dncguard.sources.cxone import CxoneSync
from dncguard.store import get_engine, list_changes_table

from .cxone.conftest import cx_settings, make_client
from .fakes import FakeSleep

OPTED = "+12025550111"  # opted out by the transaction that commits last
OTHER = "+13055550122"  # opted out on another list by the one that commits first
LISTED = ["+12125550100", "+12125550101"]  # an imported list's numbers


def _settings(home: Path, url: str | None) -> Settings:
    return load_settings(home=home, **({"database_url": url} if url else {}))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend_store(request: pytest.FixtureRequest, tmp_path: Path) -> ListStore:
    """A list store on SQLite, then on PostgreSQL (a schema of its own)."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return ListStore(_settings(tmp_path / "home", url))


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> ListStore:
    return ListStore(_settings(tmp_path / "home", postgres_url))


def _counted(store: ListStore) -> int:
    """The count of committed list changes, as the token reads it (its first value)."""
    return int(list_version(store.engine)[0])


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the race: a change that commits after a later-started one has committed --------------------


class HeldBeforeAudit:
    """Holds the first list change made in another thread just before its audit append: its
    list writes are done, its transaction is open (the window in which a change started later
    can commit first) until :meth:`release`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()
        self.main = threading.get_ident()
        real = audit.record_list_change

        def record(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.main and not self.reached.is_set():
                self.reached.set()
                assert self.released.wait(60), "never released"
            return real(*args, **kwargs)

        monkeypatch.setattr(audit, "record_list_change", record)

    def run(self, pool: ThreadPoolExecutor, change: Callable[[], object]) -> Future[object]:
        """Start ``change`` in ``pool`` and return once it is held."""
        future = pool.submit(change)
        while not self.reached.wait(0.5):  # an event, not a clock: ends when it is held
            if future.done():
                future.result()  # it failed (or finished) without reaching the audit append
                raise AssertionError("the change committed without being held")
        return future

    def release(self, future: Future[object]) -> None:
        self.released.set()
        future.result(timeout=60)


def _decision(provider: CheckerProvider, phone: str) -> Decision:
    (verdict,) = provider.refresh().scrubber.scrub([phone])
    return verdict.decision


@pytest.mark.postgres
def test_an_opt_out_committed_after_a_later_change_reaches_every_replica(
        pg_store: ListStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """T1 opts a number out and is held before its audit append (list writes done, not
    committed); T2, started later, opts out another number on another list and commits; a
    replica prepares its checks; then T1 commits. Its entry id and list time are below T2's,
    so a token of maxima did not change and the replica kept answering allow for the number
    T1 opted out; the count of list changes moves with T1's commit, and the replica blocks it."""
    store = pg_store
    store.ensure("internal", "internal")
    store.ensure("other", "internal")
    replica = CheckerProvider(store.settings, store.engine)
    assert _decision(replica, OPTED) is Decision.ALLOW
    held = HeldBeforeAudit(monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        t1 = held.run(pool, lambda: store.add_number(OPTED, reason="never call me"))
        store.add_number(OTHER, list_name="other", reason="stop")  # T2, committed first
        between = list_version(store.engine)
        assert _decision(replica, OPTED) is Decision.ALLOW  # T1 is not committed yet
        assert _decision(replica, OTHER) is Decision.BLOCK
        held.release(t1)
    after = list_version(store.engine)
    assert after != between
    assert after[0] == between[0] + 1
    assert _decision(replica, OPTED) is Decision.BLOCK


def _import(store: ListStore, tmp_path: Path, lines: list[str], **kw: Any) -> None:
    store.import_file(_lines(tmp_path / f"in-{len(list(tmp_path.iterdir()))}.txt", lines),
                      kind="internal", name="imported", **kw)


Racing = Callable[[ListStore, Path], object]

#: Changes that commit last in the race, each with what is done before it (not held).
RACING: dict[str, tuple[Racing, Racing]] = {
    "opt-out": (lambda s, p: s.ensure("internal", "internal"),
                lambda s, p: s.add_number(OPTED)),
    "removal": (lambda s, p: s.add_number(OPTED),
                lambda s, p: s.remove_number(OPTED)),
    "re-import": (lambda s, p: _import(s, p, LISTED[:1]),
                  lambda s, p: _import(s, p, LISTED)),
    "change list": (lambda s, p: _import(s, p, LISTED[:1]),
                    lambda s, p: _import(s, p, [f"{LISTED[1]},A"], changes=True)),
}


@pytest.mark.postgres
@pytest.mark.parametrize("change", list(RACING))
def test_a_change_committed_after_a_later_one_moves_the_token(
        change: str, pg_store: ListStore, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kind of change, held before its audit append while an opt-out on another list
    starts later and commits first, moves the token when it commits (a token of maxima did
    not: an import's list time and event id, a removal's event id, are below the other's)."""
    store = pg_store
    before, racing = RACING[change]
    before(store, tmp_path)
    store.ensure("other", "internal")
    held = HeldBeforeAudit(monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        t1 = held.run(pool, lambda: racing(store, tmp_path))
        store.add_number(OTHER, list_name="other")
        between = list_version(store.engine)
        held.release(t1)
    assert list_version(store.engine) != between


# -- every list-changing path counts its change -----------------------------------------------

_LIST_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(lists|list_entries)"
                         r"\"?[\s(]", re.I)
_COUNT = re.compile(r"^\s*UPDATE\s+\"?list_changes\"?\s", re.I)


@dataclass
class Watch:
    """What the committed transactions of an engine did to list data."""

    committed: int = 0  # transactions that wrote list data and committed
    uncounted: list[str] = field(default_factory=list)  # their first list write, if uncounted


@contextlib.contextmanager
def watching(engine: sa.Engine) -> Iterator[Watch]:
    """Watch every transaction on ``engine``: one that writes ``lists`` or ``list_entries``
    and commits must count a list change (``UPDATE list_changes``) too."""
    watch = Watch()

    def statement(conn: sa.Connection, cursor: Any, sql: str, *args: Any) -> None:
        if _LIST_WRITE.match(sql):
            conn.info.setdefault("list_write", sql.split("\n")[0][:80])
        elif _COUNT.match(sql):
            conn.info["counted"] = True

    def commit(conn: sa.Connection) -> None:
        wrote = conn.info.pop("list_write", None)
        if wrote is not None:
            watch.committed += 1
            if not conn.info.get("counted"):
                watch.uncounted.append(wrote)
        conn.info.pop("counted", None)

    def rollback(conn: sa.Connection) -> None:
        conn.info.pop("list_write", None)
        conn.info.pop("counted", None)

    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    sa.event.listen(engine, "rollback", rollback)
    try:
        yield watch
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)
        sa.event.remove(engine, "rollback", rollback)


@dataclass
class World:
    """A list store, a folder for files and (for CXone) a sandbox with one group."""

    store: ListStore
    folder: Path
    sandbox: SandboxServer
    group: int
    sleep: FakeSleep = field(default_factory=FakeSleep)

    def sync(self) -> None:
        cx = cx_settings(self.sandbox)

        async def run() -> None:
            async with make_client(cx, self.sleep) as client:
                await CxoneSync(self.store.settings, cx, client).sync()

        asyncio.run(run())

    def later(self, seconds: int) -> None:
        """Move the sandbox's clock (records' update times) on."""
        at = datetime(2026, 11, 19, 15, tzinfo=UTC) + timedelta(seconds=seconds)
        self.sandbox.state.now = lambda: at


def _deactivate(w: World) -> None:
    w.sandbox.state.groups[w.group]["isActive"] = False


def _new_record(w: World) -> None:
    w.later(60)
    w.sandbox.state.add_record(w.group, "2025550177")


Step = Callable[[World], object]
_nothing: Step = lambda w: None  # noqa: E731

#: Every path that writes list data: (what is done before it, the change itself).
PATHS: dict[str, tuple[Step, Step]] = {
    "make a list": (_nothing, lambda w: w.store.ensure("fresh", "internal")),
    "opt-out on a new list": (_nothing, lambda w: w.store.add_number(
        OPTED, list_name="new", create=True)),
    "opt-out": (lambda w: w.store.ensure("internal", "internal"),
                lambda w: w.store.add_number(OPTED, reason="stop")),
    "opt-out again": (lambda w: w.store.add_number(OPTED),
                      lambda w: w.store.add_number(OPTED, reason="again")),
    "opt-out through optouts": (lambda w: w.store.ensure("internal", "internal"),
                                lambda w: add_optout(w.store, OPTED)),
    "remove an opt-out": (lambda w: w.store.add_number(OPTED),
                          lambda w: w.store.remove_number(OPTED)),
    "remove an unlisted number": (lambda w: w.store.ensure("internal", "internal"),
                                  lambda w: w.store.remove_number(OPTED)),
    "remove a snapshot number": (lambda w: _import(w.store, w.folder, LISTED),
                                 lambda w: w.store.remove_number(LISTED[0],
                                                                 list_name="imported")),
    "import a new list": (_nothing, lambda w: _import(w.store, w.folder, LISTED)),
    "re-import": (lambda w: _import(w.store, w.folder, LISTED[:1]),
                  lambda w: _import(w.store, w.folder, LISTED)),
    "change list": (lambda w: _import(w.store, w.folder, LISTED[:1]),
                    lambda w: _import(w.store, w.folder, [f"{LISTED[1]},A"], changes=True)),
    "registry import": (_nothing, lambda w: w.store.import_file(
        _lines(w.folder / "ftc.txt", LISTED), kind="national", name="us-ftc",
        jurisdiction="US", snapshot_date=datetime(2026, 11, 1).date())),
    "remove a list": (lambda w: _import(w.store, w.folder, LISTED),
                      lambda w: w.store.remove_list("imported")),
    "cxone first sync": (_nothing, World.sync),
    "cxone sync, nothing changed": (World.sync, World.sync),
    "cxone incremental sync": (lambda w: (w.sync(), _new_record(w)), World.sync),
    "cxone group made inactive": (lambda w: (w.sync(), _deactivate(w)), World.sync),
}


@pytest.fixture
def world(backend_store: ListStore, tmp_path: Path) -> Iterator[World]:
    folder = tmp_path / "files"
    folder.mkdir()
    with run_sandbox(data={}) as sandbox:
        group = sandbox.state.add_group("Opt-outs")
        sandbox.state.bulk_records(group, ["2025550150", "2025550151"])
        yield World(backend_store, folder, sandbox, group)


@pytest.mark.parametrize("path", list(PATHS))
def test_every_list_change_counts_one_change(path: str, world: World) -> None:
    """Each path that writes list data counts one list change in each of its transactions
    that writes lists or list entries, as part of that transaction, so the token moves with
    each commit; a missed writer (a transaction writing list data without counting) fails."""
    before, change = PATHS[path]
    before(world)
    engine = world.store.engine
    token = list_version(engine)
    with watching(engine) as watch:
        change(world)
    assert watch.committed >= 1, "the path wrote no list data"
    assert watch.uncounted == [], "transactions wrote list data without counting a change"
    after = list_version(engine)
    assert after[0] == token[0] + watch.committed
    assert after != token


# -- the migration ----------------------------------------------------------------------------


def test_a_home_migrated_before_the_count_gets_it(tmp_path: Path) -> None:
    """A SQLite home at the revision before gets ``list_changes`` with its one row at 0, and
    its list changes count from there (a first opt-out: the list made, then the number)."""
    settings = _settings(tmp_path / "home", None)
    settings.home.mkdir(parents=True)
    old = sa.create_engine(settings.db_url)
    upgrade(old, "0009_server_job_chunks")
    assert "list_changes" not in sa.inspect(old).get_table_names()
    old.dispose()
    store = ListStore(settings, get_engine(settings))  # upgraded on first use
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(list_changes_table)).all() == [(1, 0)]
    store.add_number(OPTED)
    assert _counted(store) == 2


def test_a_lost_count_row_is_made_again(store: ListStore) -> None:
    """A database without the row (made by hand, or emptied) gets it at the next change, and
    the token reads it again."""
    store.ensure("internal", "internal")
    with store.engine.begin() as conn:
        conn.execute(sa.delete(list_changes_table))
    assert list_version(store.engine)[0] is None
    store.add_number(OPTED)
    assert _counted(store) == 1
