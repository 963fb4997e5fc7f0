"""``lists import`` refuses what it would store but never use, or store over what it should
keep: a ``--snapshot-date`` on a kind that never ages (only national and state registry
snapshots are judged by their age), and a change list's ``--jurisdiction`` other than its
list's (a change list applies to the list as it is: it is read in the list's jurisdiction and
never changes it). And a list made on first use (``ListStore.ensure``, e.g. by two first
``dnc add`` at once) is made once, whoever inserts it first."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

import dncguard.lists.store as L
from dncguard.config import Settings, load_settings
from dncguard.errors import ListError
from dncguard.lists import snapshots
from dncguard.lists.store import ListInfo, ListStore
from dncguard.store import lists_table

from .conftest import cli

D = date(2026, 11, 1)
LONDON = "+442079460123"
LONDON_2 = "+442079460124"
WAIT = 20  # seconds a thread waits for the other at the barrier


def _listed(store: ListStore, name: str, *numbers: str) -> list[bool]:
    return [bool(x) for x in store.index(store.get(name)).contains_numbers(list(numbers))]


# -- --snapshot-date on kinds that never age ------------------------------------------------

@pytest.mark.parametrize("kind", ["internal", "litigator", "wireless", "hashed", "prefix"])
def test_snapshot_date_is_refused_for_kinds_that_do_not_age(
        store: ListStore, write_lines: Callable[..., Path], kind: str) -> None:
    line = {"hashed": hashlib.sha256(b"+13055550152").hexdigest(),
            "prefix": "1305555"}.get(kind, "13055550152")
    with pytest.raises(ListError, match=f"^an? {kind} list does not age: --snapshot-date is "
                                        "only for national and state registry snapshots"):
        store.import_file(write_lines([line]), kind=kind, name="x", snapshot_date=D)
    assert store.all() == []


def test_snapshot_date_on_a_change_list_of_an_internal_list_is_refused(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """Not stored over the list's (empty) date either: nothing changes."""
    store.import_file(write_lines(["2025550100"], "base.txt"), kind="internal", name="mine")
    with pytest.raises(ListError, match="an internal list does not age: --snapshot-date"):
        store.import_file(write_lines(["2025550101,A"], "chg.txt"), kind="internal",
                          name="mine", snapshot_date=D, changes=True)
    info = store.get("mine")
    assert info.snapshot_date is None
    assert len(store.versions("mine")) == 1
    assert _listed(store, "mine", "+12025550100", "+12025550101") == [True, False]


def test_cli_refuses_snapshot_date_for_an_internal_list(
        capsys: pytest.CaptureFixture[str], write_lines: Callable[..., Path]) -> None:
    code, _, err = cli(capsys, "lists", "import", str(write_lines(["3055550152"])),
                       "--kind", "internal", "--name", "x", "--snapshot-date", "2026-11-01")
    assert code == 2
    assert ("an internal list does not age: --snapshot-date is only for national and state "
            "registry snapshots") in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli(capsys, "lists", "ls", "--json")
    assert code == 0 and out.strip() == "[]"


# -- a change list applies to the list as it is ---------------------------------------------

def test_change_list_without_jurisdiction_is_read_in_the_lists_own(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """A GB internal list's change list in GB national format: read as GB numbers (not in
    the default region's format, where they are no numbers), and the list stays GB; giving
    the same jurisdiction again (any spelling) is accepted."""
    store.import_file(write_lines(["020 7946 0123"], "base.txt"), kind="internal",
                      name="uk-optouts", jurisdiction="GB")
    result = store.import_file(write_lines(["02079460124,A"], "chg.txt"), kind="internal",
                               name="uk-optouts", changes=True)
    assert (result.added, result.report.rejected) == (1, 0)
    assert result.info.jurisdiction == "GB"
    assert _listed(store, "uk-optouts", LONDON, LONDON_2) == [True, True]
    result = store.import_file(write_lines(["02079460123,D"], "chg2.txt"), kind="internal",
                               name="uk-optouts", jurisdiction="uk", changes=True)
    assert result.deleted == 1 and result.info.jurisdiction == "GB"
    assert _listed(store, "uk-optouts", LONDON, LONDON_2) == [False, True]


def test_change_list_with_another_jurisdiction_is_refused(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["3055550152"], "base.txt"), kind="state", name="us-fl",
                      jurisdiction="US-FL", snapshot_date=D)
    with pytest.raises(ListError, match=r"^--jurisdiction US-TX: list 'us-fl' is of "
                                        r"jurisdiction US-FL, and a change list applies"):
        store.import_file(write_lines(["3055550153,A"], "chg.txt"), kind="state",
                          name="us-fl", jurisdiction="US-TX", snapshot_date=date(2026, 11, 2),
                          changes=True)
    info = store.get("us-fl")
    assert (info.jurisdiction, info.snapshot_date) == ("US-FL", D.isoformat())
    assert len(store.versions("us-fl")) == 1
    assert _listed(store, "us-fl", "+13055550152", "+13055550153") == [True, False]


def test_change_list_with_a_jurisdiction_onto_a_list_without_one_is_refused(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["2025550100"], "base.txt"), kind="internal", name="mine")
    with pytest.raises(ListError, match="--jurisdiction GB: list 'mine' is of jurisdiction "
                                        "none"):
        store.import_file(write_lines(["02079460124,A"], "chg.txt"), kind="internal",
                          name="mine", jurisdiction="GB", changes=True)
    info = store.get("mine")
    assert info.jurisdiction is None and len(store.versions("mine")) == 1


def test_change_list_on_a_dated_list_keeps_its_jurisdiction_when_left_out(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """A national list's change list needs no --jurisdiction: the list's own is used (it
    was refused as missing, or, on other kinds, stored as none)."""
    store.import_file(write_lines(["2025550100"], "base.txt"), kind="national", name="us",
                      jurisdiction="US", snapshot_date=D)
    result = store.import_file(write_lines(["2025550101,A"], "chg.txt"), kind="national",
                               name="us", snapshot_date=date(2026, 11, 2), changes=True)
    assert result.added == 1
    info = store.get("us")
    assert (info.jurisdiction, info.snapshot_date) == ("US", "2026-11-02")


def test_change_list_onto_a_list_of_a_jurisdiction_not_understood_is_refused(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """A state list stored as US-FA before such jurisdictions were refused fails closed; a
    change list, which keeps that jurisdiction, cannot mend it: refused, naming it."""
    store.import_file(write_lines(["3055550152"], "base.txt"), kind="state", name="us-fa",
                      jurisdiction="US-FL", snapshot_date=D)
    with store.engine.begin() as conn:  # as an import before the check would have stored it
        conn.execute(update(lists_table).where(lists_table.c.name == "us-fa")
                     .values(jurisdiction="US-FA"))
    with pytest.raises(ListError, match=r"^list us-fa: jurisdiction US-FA: FA is not a US "
                                        r"state .*\(a change list cannot fix it\)$"):
        store.import_file(write_lines(["3055550153,A"], "chg.txt"), kind="state",
                          name="us-fa", snapshot_date=date(2026, 11, 2), changes=True)
    assert len(store.versions("us-fa")) == 1


def test_a_jurisdiction_changed_meanwhile_refuses_the_change_list(
        settings: Settings, write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another import replaces the list with one of another jurisdiction while the change
    list is applied: it is not redone on that list (it was read in the old jurisdiction), nor
    is the old jurisdiction written back over the new."""
    a, b = ListStore(settings), ListStore(settings)
    a.import_file(write_lines(["020 7946 0123"], "base.txt"), kind="internal", name="mine",
                  jurisdiction="GB")
    real = snapshots.apply_changes
    done: list[bool] = []

    def apply_then_replace(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not done:
            done.append(True)
            b.import_file(write_lines(["2025550100"], "us.txt"), kind="internal", name="mine",
                          jurisdiction="US")
        return result

    monkeypatch.setattr(L, "apply_changes", apply_then_replace)
    with pytest.raises(ListError, match="another import changed its jurisdiction from GB to "
                                        "US while this change list was applied"):
        a.import_file(write_lines(["02079460124,A"], "chg.txt"), kind="internal",
                      name="mine", changes=True)
    info = a.get("mine")
    assert info.jurisdiction == "US"
    assert _listed(a, "mine", "+12025550100", LONDON_2) == [True, False]
    assert len(list(a.folder("mine").glob("*.npy"))) == 2  # the change list's file is gone


def test_cli_refuses_a_change_list_of_another_jurisdiction(
        capsys: pytest.CaptureFixture[str], write_lines: Callable[..., Path]) -> None:
    code, _, err = cli(capsys, "lists", "import", str(write_lines(["3055550152"], "b.txt")),
                       "--kind", "state", "--jurisdiction", "US-FL", "--snapshot-date",
                       "2026-11-01", "--name", "us-fl")
    assert code == 0, err
    code, _, err = cli(capsys, "lists", "import", str(write_lines(["3055550153,A"], "c.txt")),
                       "--kind", "state", "--jurisdiction", "US-TX", "--snapshot-date",
                       "2026-11-02", "--name", "us-fl", "--changes")
    assert code == 2
    assert "--jurisdiction US-TX: list 'us-fl' is of jurisdiction US-FL" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli(capsys, "lists", "stats", "us-fl", "--json")
    assert code == 0 and '"jurisdiction": "US-FL"' in out


# -- a list made on first use, by two at once -----------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def settings_of(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A home on SQLite (a file, as the CLI's) or on PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        return load_settings(home=tmp_path / "home")
    return load_settings(home=tmp_path / "home-pg",
                         database_url=request.getfixturevalue("postgres_url"))


@pytest.fixture
def meet_before_insert(settings_of: Settings) -> Iterator[ListStore]:
    """A store whose first two inserts into ``lists`` wait for each other: both callers have
    looked for the list and found none before either inserts it."""
    store = ListStore(settings_of)
    barrier = threading.Barrier(2, timeout=WAIT)
    met: list[int] = []
    lock = threading.Lock()

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("INSERT INTO LISTS "):
            return
        with lock:
            first_two = len(met) < 2
            met.append(1)
        if first_two:
            barrier.wait()

    event.listen(store.engine, "before_cursor_execute", before)
    yield store
    event.remove(store.engine, "before_cursor_execute", before)


def _at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads at once; their results, or the exception each raised."""
    results: list[Any] = [None] * len(calls)

    def go(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    return results


def test_ensure_of_one_new_list_twice_at_once_makes_it_once(
        meet_before_insert: ListStore) -> None:
    store = meet_before_insert
    results = _at_once(lambda: store.ensure("optouts", "internal"),
                       lambda: ListStore(store.settings).ensure("optouts", "internal"))
    assert [type(r) for r in results] == [ListInfo, ListInfo], results
    assert results[0].name == results[1].name == "optouts"
    assert results[0].created_at == results[1].created_at  # the one row, read by both
    assert [(i.name, i.kind) for i in store.all()] == [("optouts", "internal")]


def test_ensure_of_another_kind_made_meanwhile_is_refused(
        meet_before_insert: ListStore) -> None:
    """The loser of the race reads the winner's list: of another kind, it is refused (as if
    it had been there all along), never taken for its own."""
    store = meet_before_insert
    results = _at_once(lambda: store.ensure("x", "internal"),
                       lambda: ListStore(store.settings).ensure("x", "litigator"))
    kind = store.get("x").kind
    winner, loser = (0, 1) if kind == "internal" else (1, 0)
    assert isinstance(results[winner], ListInfo), results
    assert isinstance(results[loser], ListError), results
    other = "litigator" if kind == "internal" else "internal"
    assert str(results[loser]) == f"list 'x' is of kind {kind}, not {other}"


def test_first_dnc_add_by_two_at_once_both_succeed(meet_before_insert: ListStore) -> None:
    """The reported case: two processes' first ``dnc add`` on a fresh home, both making the
    internal list."""
    store = meet_before_insert
    results = _at_once(lambda: store.add_number("2025550100", who="a"),
                       lambda: ListStore(store.settings).add_number("2025550101", who="b"))
    assert results == ["+12025550100", "+12025550101"]
    assert _listed(store, "internal", "+12025550100", "+12025550101") == [True, True]
