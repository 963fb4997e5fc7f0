"""Imports of one list, or of one file, at the same time: none is lost, none fails.

Change lists applied to one list at once each end up in it (the later commit is redone on the
version the earlier one made), a complete import replaces whatever is current, two imports
creating one list both succeed, and two imports storing the same new chunk (or the same shared
file) on PostgreSQL both succeed. Each race is made deterministic: the other import runs, or
both importers meet at a barrier, at the point between reading the list and committing.
SQLite (one home, as two processes of one home would) and PostgreSQL (two homes on one
database, as two replicas) alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dncguard import sharedfiles
from dncguard.cli import run
from dncguard.config import load_settings
from dncguard.errors import ListError
from dncguard.lists import snapshots
from dncguard.lists import store as L
from dncguard.lists.store import ListStore
from dncguard.sharedfiles import shared_chunks_table, shared_file_chunks_table
from dncguard.store import get_engine

D = date(2026, 11, 20)
STATE = {"kind": "state", "jurisdiction": "US-FL", "snapshot_date": D}
BASE = ["+13055550100", "+13055550101"]
ONE, TWO = "+13055550121", "+13055550122"
AT = "2026-11-25T15:00:00Z"  # a dial time days after the snapshot date
WAIT = 30  # seconds a barrier waits for the other thread: only reached when a test fails

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def homes(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[ListStore, ListStore]:
    """Two importers of one database: on SQLite two stores of one home (as two processes
    of it), on PostgreSQL two homes (as two replicas). The state list us-fl holds BASE."""
    if request.param == "sqlite":
        settings = load_settings(home=tmp_path / "home")
        a, b = ListStore(settings), ListStore(settings)
    else:
        url = request.getfixturevalue("scaleout_db")
        a = ListStore(load_settings(home=tmp_path / "home-a", database_url=url))
        b = ListStore(load_settings(home=tmp_path / "home-b", database_url=url))
    base = tmp_path / "us-fl.txt"
    base.write_text("\n".join(BASE) + "\n")
    a.import_file(base, name="us-fl", **STATE)  # type: ignore[arg-type]
    return a, b


def _file(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _changes(store: ListStore, path: Path, name: str = "us-fl") -> L.ImportResult:
    return store.import_file(path, name=name, changes=True, **STATE)  # type: ignore[arg-type]


def _listed(store: ListStore, *numbers: str) -> list[bool]:
    info = store.get("us-fl")
    store.sync(info)
    return [bool(x) for x in store.index(info).contains_numbers(list(numbers))]


def _stray_files(store: ListStore, name: str = "us-fl") -> set[str]:
    """Snapshot files in the list's folder that no version names (none may be left)."""
    named = {v["file"] for v in store.versions(name)}
    folder = store.folder(name)
    return {p.name for p in folder.glob("*.npy")} - named if folder.is_dir() else set()


@pytest.fixture
def between(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, Callable[[], object]], None]:
    """``between(point, other)``: run ``other`` once, right after the importer's first call of
    ``point`` (``apply_changes``: the change list is made on the base it read;
    ``write_snapshot``: a complete import's file is written), i.e. after the importer read the
    list and before it commits. Calls made by ``other`` itself pass straight through."""

    def install(point: str, other: Callable[[], object]) -> None:
        real = getattr(L, point)
        state = {"done": False, "inside": False}

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if not state["done"] and not state["inside"]:
                state["done"] = state["inside"] = True
                try:
                    other()
                finally:
                    state["inside"] = False
            return result

        monkeypatch.setattr(L, point, wrapped)

    return install


# -- defect 1: change lists applied at once ---------------------------------------------------
def test_a_change_list_committed_meanwhile_is_kept(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        between: Callable[[str, Callable[[], object]], None]) -> None:
    a, b = homes
    one, two = _file(tmp_path, "one.txt", [f"{ONE},A"]), _file(tmp_path, "two.txt", [f"{TWO},A"])
    seen: list[L.ImportResult] = []
    between("apply_changes", lambda: seen.append(_changes(b, two)))
    first = _changes(a, one)  # read the base, then B's change list committed, then this one
    assert [r.added for r in (*seen, first)] == [1, 1]
    assert first.info.count == len(BASE) + 2
    for store in (a, b):
        assert _listed(store, ONE, TWO, *BASE) == [True] * 4
    versions = a.versions("us-fl")
    assert [v["changes"] for v in versions] == [True, True, False]
    assert versions[0]["file"] == a.get("us-fl").current_file
    assert _stray_files(a) == set()  # the change list made on the old base is gone


def test_two_threads_meet_before_committing(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both change lists have read the same base and made their files before either commits:
    they commit at once (one waits for the other's lock) and both numbers are on the list."""
    a, b = homes
    real = snapshots.apply_changes
    barrier = threading.Barrier(2, timeout=WAIT)
    calls = []

    def meet(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) <= 2:  # the first attempts; a redo goes straight on
            barrier.wait()
        return result

    monkeypatch.setattr(L, "apply_changes", meet)
    results: dict[str, object] = {}

    def apply(store: ListStore, number: str) -> None:
        try:
            results[number] = _changes(store, _file(tmp_path, f"{number}.txt", [f"{number},A"]))
        except BaseException as exc:  # reported below
            results[number] = exc

    threads = [threading.Thread(target=apply, args=(s, n)) for s, n in ((a, ONE), (b, TWO))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert all(isinstance(r, L.ImportResult) for r in results.values()), results
    assert len(results) == 2 and len(calls) == 3  # one of the two was redone once
    for store in (a, b):
        assert _listed(store, ONE, TWO, *BASE) == [True] * 4
    assert a.get("us-fl").count == len(BASE) + 2


def test_a_number_listed_by_a_change_list_is_blocked_by_check(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        between: Callable[[str, Callable[[], object]], None],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The reported case end to end: ``dncguard check`` of the first change list's number."""
    a, b = homes
    between("apply_changes", lambda: _changes(b, _file(tmp_path, "two.txt", [f"{TWO},A"])))
    monkeypatch.setenv("DNCGUARD_HOME", str(a.settings.home))
    if a.engine.dialect.name != "sqlite":
        monkeypatch.setenv("DNCGUARD_DATABASE_URL", a.engine.url.render_as_string(False))
    code = run(["lists", "import", str(_file(tmp_path, "one.txt", [f"{ONE},A"])), "--changes",
                "--kind", "state", "--jurisdiction", "US-FL", "--snapshot-date", D.isoformat(),
                "--name", "us-fl"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for number in (ONE, TWO):
        assert run(["check", number, "--json", "--at", AT]) == 0
        verdict = json.loads(capsys.readouterr().out)
        assert verdict["decision"] == "block"
        assert [(r["code"], r["list"]) for r in verdict["reasons"]] == [("DNC_STATE", "us-fl")]


def test_a_change_list_that_keeps_losing_is_refused_whole(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another change list commits every time this one is about to: after IMPORT_ATTEMPTS it
    is refused with a clear error, changes nothing, and leaves no file behind; every change
    list that did commit is on the list."""
    a, b = homes
    real = snapshots.apply_changes
    others: list[str] = []
    made: list[str] = []  # this importer's attempts
    inside = False

    def race(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside
        result = real(*args, **kwargs)
        if not inside:
            made.append(result[0])
            inside = True
            number = f"+1305555{len(others) + 200:04d}"
            _changes(b, _file(tmp_path, f"other{len(others)}.txt", [f"{number},A"]))
            others.append(number)
            inside = False
        return result

    monkeypatch.setattr(L, "apply_changes", race)
    with pytest.raises(ListError, match=r"list us-fl changed while this change list was "
                       r"applied .*this import changed nothing: run it again"):
        _changes(a, _file(tmp_path, "one.txt", [f"{ONE},A"]))
    assert len(others) == L.IMPORT_ATTEMPTS
    assert _listed(a, ONE) == [False]
    assert _listed(a, *others, *BASE) == [True] * (len(others) + len(BASE))
    assert len(made) == L.IMPORT_ATTEMPTS
    assert [f for f in made if (a.folder("us-fl") / f).exists()] == []


def test_a_change_list_on_a_removed_list_is_refused(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        between: Callable[[str, Callable[[], object]], None]) -> None:
    a, b = homes
    base = a.get("us-fl").current_file
    between("apply_changes", lambda: b.remove_list("us-fl"))
    with pytest.raises(ListError, match="us-fl' was removed while this change list was applied"):
        _changes(a, _file(tmp_path, "one.txt", [f"{ONE},A"]))
    assert [i.name for i in a.all()] == []
    # nothing of this change list is left (the base is left to the replica's sync on PG)
    assert {p.name for p in a.folder("us-fl").glob("*.npy")} <= {base}


# -- complete imports --------------------------------------------------------------------------
def test_a_change_list_is_redone_on_a_complete_import_committed_meanwhile(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        between: Callable[[str, Callable[[], object]], None]) -> None:
    """The new download replaced the list while the change list was made on the old one: the
    change list is applied to the new download (as if run after it), not committed on the old
    base, which would have thrown the new download away."""
    a, b = homes
    fresh = ["+13055550300", BASE[0]]
    between("apply_changes", lambda: b.import_file(_file(tmp_path, "new.txt", fresh),
                                                  name="us-fl", **STATE))  # type: ignore[arg-type]
    _changes(a, _file(tmp_path, "one.txt", [f"{ONE},A", f"{BASE[0]},D"]))
    assert _listed(a, ONE, fresh[0], BASE[0], BASE[1]) == [True, True, False, False]
    assert [v["changes"] for v in a.versions("us-fl")] == [True, False, False]


def test_a_complete_import_replaces_a_change_list_committed_meanwhile(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        between: Callable[[str, Callable[[], object]], None]) -> None:
    """A complete import is the whole list: committed last, it is the current version (as if
    run after the change list), whatever it read before; the change list stays a version."""
    a, b = homes
    between("write_snapshot", lambda: _changes(b, _file(tmp_path, "one.txt", [f"{ONE},A"])))
    result = a.import_file(_file(tmp_path, "new.txt", BASE), name="us-fl",
                           **STATE)  # type: ignore[arg-type]
    versions = a.versions("us-fl")
    assert [v["changes"] for v in versions] == [False, True, False]
    assert result.info.current_file == versions[0]["file"] and result.info.count == len(BASE)


def test_two_imports_creating_one_list_both_succeed(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        between: Callable[[str, Callable[[], object]], None]) -> None:
    """Both read that the list did not exist; the second to commit updates the list the first
    made (it used to fail on the list's name)."""
    a, b = homes
    first, second = ["+13055550400"], ["+13055550401"]
    between("write_snapshot", lambda: b.import_file(_file(tmp_path, "b.txt", first),
                                                   name="us-ga", **{**STATE, "jurisdiction":
                                                                    "US-GA"}))  # type: ignore[arg-type]
    result = a.import_file(_file(tmp_path, "a.txt", second), name="us-ga",
                           **{**STATE, "jurisdiction": "US-GA"})  # type: ignore[arg-type]
    info = a.get("us-ga")
    assert result.info.current_file == info.current_file and info.count == 1
    assert len(a.versions("us-ga")) == 2
    a.sync(info)
    assert [bool(x) for x in a.index(info).contains_numbers(first + second)] == [False, True]


def test_manual_opt_outs_made_meanwhile_are_kept(
        homes: tuple[ListStore, ListStore], tmp_path: Path,
        between: Callable[[str, Callable[[], object]], None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``dnc add``/``dnc remove`` write entries, never the snapshot: one made while a change
    list is applied is kept, and the change list is not redone for it."""
    a, b = homes
    a.import_file(_file(tmp_path, "mine.txt", BASE), kind="internal", name="mine")
    calls = []

    def count(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return snapshots.apply_changes(*args, **kwargs)

    monkeypatch.setattr(L, "apply_changes", count)
    between("apply_changes", lambda: (b.add_number(ONE, list_name="mine"),
                                      b.remove_number(BASE[0], list_name="mine")))
    a.import_file(_file(tmp_path, "chg.txt", [f"{TWO},A"]), kind="internal", name="mine",
                  changes=True)
    info = a.get("mine")
    assert len(calls) == 1
    assert [bool(x) for x in a.index(info).contains_numbers([ONE, TWO, BASE[0], BASE[1]])] == [
        True, True, False, True]


# -- defect 5: one chunk, one shared file stored by two imports at once (PostgreSQL) ------------
@pytest.fixture
def pg_engine(scaleout_db: str, tmp_path: Path) -> sa.Engine:
    return get_engine(load_settings(home=tmp_path / "home-pg", database_url=scaleout_db))


@pytest.fixture
def meet_after_lookup(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The first two writers both look for their chunks (and find them missing) before
    either stores one."""
    real = sharedfiles._present
    barrier = threading.Barrier(2, timeout=WAIT)
    calls = []

    def meet(conn: sa.Connection, addresses: set[str]) -> set[str]:
        found = real(conn, addresses)
        calls.append(1)
        if len(calls) <= 2:
            barrier.wait()
        return found

    monkeypatch.setattr(sharedfiles, "_present", meet)
    yield


def _in_threads(*jobs: Callable[[], object]) -> list[object]:
    """Run the jobs at once; their results, or the exceptions they raised."""
    results: list[object] = [None] * len(jobs)

    def go(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # reported by the caller
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    return results


@pytest.mark.postgres
@pytest.mark.usefixtures("meet_after_lookup")
def test_two_files_with_the_same_new_chunks_are_stored_at_once(pg_engine: sa.Engine,
                                                               tmp_path: Path) -> None:
    data = os.urandom(2 * sharedfiles.CHUNK_BYTES + 12345)  # three chunks
    path = tmp_path / "same.bin"
    path.write_bytes(data)

    def put(name: str) -> sharedfiles.SharedFile:
        with pg_engine.begin() as conn:
            return sharedfiles.put(conn, name, path)

    results = _in_threads(lambda: put("jobs/a/results.csv"), lambda: put("jobs/b/results.csv"))
    assert all(isinstance(r, sharedfiles.SharedFile) for r in results), results
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(shared_chunks_table)
                            ).scalar_one() == 3
    for name in ("jobs/a/results.csv", "jobs/b/results.csv"):
        got = sharedfiles.fetch(pg_engine, name, tmp_path / "got.bin")
        assert got.sha256 == hashlib.sha256(data).hexdigest()
        assert (tmp_path / "got.bin").read_bytes() == data


def _wait_for_a_lock_wait(engine: sa.Engine) -> None:
    """Return once another session of this database waits for a lock (within WAIT)."""
    deadline = time.monotonic() + WAIT
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        while conn.execute(sa.text(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and wait_event_type = 'Lock'")).scalar_one() == 0:
            assert time.monotonic() < deadline, "the second writer never waited"
            time.sleep(0.005)


@pytest.mark.postgres
def test_two_writers_of_one_name_replace_each_other_whole(pg_engine: sa.Engine,
                                                          tmp_path: Path) -> None:
    """The second writer of a name stores its file while the first has stored its own and not
    committed yet: it waits, then replaces the first's file whole (it used to fail on the
    name)."""
    contents = [os.urandom(sharedfiles.CHUNK_BYTES + 10), os.urandom(3 * sharedfiles.CHUNK_BYTES)]
    paths = []
    for i, data in enumerate(contents):
        paths.append(tmp_path / f"v{i}.bin")
        paths[-1].write_bytes(data)
    stored = threading.Event()
    name = "jobs/x/results.csv"

    def first() -> sharedfiles.SharedFile:
        with pg_engine.begin() as conn:
            got = sharedfiles.put(conn, name, paths[0])
            stored.set()
            _wait_for_a_lock_wait(pg_engine)  # the second is waiting for this transaction
        return got

    def second() -> sharedfiles.SharedFile:
        assert stored.wait(WAIT)
        with pg_engine.begin() as conn:
            return sharedfiles.put(conn, name, paths[1])

    results = _in_threads(first, second)
    assert all(isinstance(r, sharedfiles.SharedFile) for r in results), results
    sharedfiles.fetch(pg_engine, name, tmp_path / "got.bin")
    assert (tmp_path / "got.bin").read_bytes() == contents[1]  # the last to commit, whole
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(shared_file_chunks_table)
                            ).scalar_one() == 3


@pytest.mark.postgres
@pytest.mark.usefixtures("meet_after_lookup")
def test_one_file_imported_as_two_lists_at_once(scaleout_db: str, tmp_path: Path) -> None:
    """The reported case: one file imported as two state lists at once, from two replicas."""
    a = ListStore(load_settings(home=tmp_path / "home-a", database_url=scaleout_db))
    b = ListStore(load_settings(home=tmp_path / "home-b", database_url=scaleout_db))
    numbers = [f"+1305{n:07d}" for n in range(2_000_000, 2_300_000)]  # 2.4 MB: three chunks
    path = _file(tmp_path, "same.txt", numbers)
    results = _in_threads(
        lambda: a.import_file(path, name="us-fl", **STATE),  # type: ignore[arg-type]
        lambda: b.import_file(path, name="us-fl-copy", **STATE))  # type: ignore[arg-type]
    assert all(isinstance(r, L.ImportResult) for r in results), results
    c = ListStore(load_settings(home=tmp_path / "home-c", database_url=scaleout_db))
    for name in ("us-fl", "us-fl-copy"):
        info = c.get(name)
        assert c.sync(info) is True
        assert [bool(x) for x in c.index(info).contains_numbers(
            [numbers[0], numbers[-1], "+13051999999"])] == [True, True, False]
