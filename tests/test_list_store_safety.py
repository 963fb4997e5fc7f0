"""The list store never lets a listed number through, and one list's operation never destroys
another list's data:

* a change list with no usable record is refused whole (nothing applied, the snapshot date
  unchanged: a stale registry stays stale); one with some rejected records is applied but
  does not move the snapshot date;
* a number a change list adds is listed again even after an earlier ``dnc remove`` of it;
* a re-import of a salted hashed list must say its salt (``--salt``, or ``--no-salt``);
* two names that differ only in characters a folder name cannot hold get folders of their
  own, lists stored before keep theirs, and removing a list unlinks only its own files;
* a new list needs a name the command line and a campaign can give (an import too);
* a national-scale number file keeps the numbers a NANP bitmap cannot hold.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

import dncguard.lists.store as L
from dncguard.config import Settings, load_settings
from dncguard.errors import ListError
from dncguard.lists import snapshots as S
from dncguard.lists.store import ListStore
from dncguard.lists.sync import ListSync
from dncguard.sources.rules._loader import load_ruleset
from dncguard.sources.rules.freshness import FreshnessPolicy, ListRef
from dncguard.store import lists_table, utcnow

from .conftest import cli

NUMBER = "+12025550148"
OTHER = "+12025550149"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings_of(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A home on SQLite (a file, as the CLI's) or on PostgreSQL (a fresh schema, shared
    snapshots)."""
    if request.param == "sqlite":
        return load_settings(home=tmp_path / "home")
    return load_settings(home=tmp_path / "home-pg",
                         database_url=request.getfixturevalue("postgres_url"))


def _listed(store: ListStore, name: str, *numbers: str) -> list[bool]:
    return [bool(x) for x in store.index(store.get(name)).contains_numbers(list(numbers))]


def _fresh(store: ListStore, name: str, day: date) -> bool:
    info = store.get(name)
    ref = ListRef(info.name, info.kind, info.jurisdiction, info.snapshot_date)
    return FreshnessPolicy(load_ruleset()).judge(ref, day).fresh


# -- 1. a change list that cannot be applied whole does not make a list fresh ----------------

def _stale_registry(store: ListStore, write_lines: Callable[..., Path]) -> tuple[date, date]:
    """A US registry downloaded 60 days ago (stale: 31 days allowed); (its date, today)."""
    today = utcnow().date()
    old = today - timedelta(days=60)
    store.import_file(write_lines(["2025550100"], "ftc.txt"), kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=old)
    assert not _fresh(store, "us-ftc", today)
    return old, today


def test_a_change_list_with_no_usable_record_is_refused(
        settings_of: Settings, write_lines: Callable[..., Path]) -> None:
    """The reported case: two space-separated records, both rejected. Refused whole: the
    registry is still stale (its checks answer error), nothing was applied."""
    store = ListStore(settings_of)
    old, today = _stale_registry(store, write_lines)
    changes = write_lines(["2025550148 A 2026-12-03", "2025550149 A 2026-12-03"], "chg.txt")
    with pytest.raises(ListError, match=r"chg.txt: no usable change records \(2 records "
                                        r"rejected; first: chg.txt:1: no add/delete flag"):
        store.import_file(changes, kind="national", name="us-ftc", jurisdiction="US",
                          snapshot_date=today, changes=True)
    info = store.get("us-ftc")
    assert info.snapshot_date == old.isoformat() and not _fresh(store, "us-ftc", today)
    assert len(store.versions("us-ftc")) == 1 and info.count == 1
    assert _listed(store, "us-ftc", "+12025550100", NUMBER) == [True, False]


def test_an_empty_change_list_is_refused(store: ListStore,
                                         write_lines: Callable[..., Path]) -> None:
    old, today = _stale_registry(store, write_lines)
    with pytest.raises(ListError, match=r"no usable change records \(the file holds no "
                                        r"records\)"):
        store.import_file(write_lines(["npa,number,flag"], "chg.txt"), kind="national",
                          name="us-ftc", snapshot_date=today, changes=True)
    assert store.get("us-ftc").snapshot_date == old.isoformat()


def test_cli_refuses_a_change_list_with_no_usable_record_in_one_line(
        capsys: pytest.CaptureFixture[str], write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the CLI and a check with the rules on: the stale registry still answers
    error (REGISTRY_STALE), never allow."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    today = utcnow().date()
    code, _, err = cli(capsys, "lists", "import", str(write_lines(["2025550100"], "ftc.txt")),
                       "--kind", "national", "--jurisdiction", "US", "--snapshot-date",
                       (today - timedelta(days=60)).isoformat(), "--name", "us-ftc")
    assert code == 0, err
    changes = write_lines(["2025550148 A 2026-12-03", "2025550149 A 2026-12-03"], "chg.txt")
    code, out, err = cli(capsys, "lists", "import", str(changes), "--changes", "--kind",
                         "national", "--snapshot-date", today.isoformat(), "--name", "us-ftc")
    assert code == 2, out
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "2 records rejected; first: " in err and "chg.txt:1: " in err
    code, out, _ = cli(capsys, "check", NUMBER, "--json")
    verdict = json.loads(out)
    assert verdict["decision"] == "error"
    assert "REGISTRY_STALE" in [r["code"] for r in verdict["reasons"]]


def test_a_change_list_with_a_rejected_record_does_not_move_the_snapshot_date(
        settings_of: Settings, write_lines: Callable[..., Path]) -> None:
    """The usable records are applied (as documented), but the list is not said to be as of
    the change list's date: one of its records was not applied."""
    store = ListStore(settings_of)
    old, today = _stale_registry(store, write_lines)
    changes = write_lines([f"{NUMBER},A", "2025550149 A"], "chg.txt")
    result = store.import_file(changes, kind="national", name="us-ftc", jurisdiction="US",
                               snapshot_date=today, changes=True)
    assert (result.added, result.report.rejected) == (1, 1)
    info = store.get("us-ftc")
    assert info.snapshot_date == old.isoformat() and not _fresh(store, "us-ftc", today)
    assert store.versions("us-ftc")[0]["snapshot_date"] == old.isoformat()
    assert _listed(store, "us-ftc", NUMBER) == [True]
    # a change list every record of which applies moves it
    store.import_file(write_lines([f"{OTHER},A"], "chg2.txt"), kind="national",
                      name="us-ftc", snapshot_date=today, changes=True)
    assert store.get("us-ftc").snapshot_date == today.isoformat()


# -- 2. a change list's addition lifts an earlier removal ------------------------------------

def test_a_change_list_adds_back_a_removed_number(
        settings_of: Settings, write_lines: Callable[..., Path]) -> None:
    store = ListStore(settings_of)
    store.import_file(write_lines(["2025550148", "2025550149", "2025550150"], "int.txt"),
                      kind="internal", name="internal")
    store.remove_number(NUMBER, who="agent")
    store.remove_number("+12025550150", who="agent")
    assert _listed(store, "internal", NUMBER, "+12025550150") == [False, False]
    result = store.import_file(write_lines(["2025550148,A,2026-11-20"], "readd.txt"),
                               kind="internal", name="internal", changes=True)
    assert result.added == 1  # listed again, though the file held it all along
    assert _listed(store, "internal", NUMBER, OTHER, "+12025550150") == [True, True, False]
    assert [e["value"] for e in store.entries("internal") if e["removed"]] == ["+12025550150"]
    # and the removal stays lifted through the next change list
    store.import_file(write_lines(["2025550151,A"], "more.txt"), kind="internal",
                      name="internal", changes=True)
    assert _listed(store, "internal", NUMBER) == [True]


def test_cli_change_list_adds_back_a_removed_number(
        capsys: pytest.CaptureFixture[str], write_lines: Callable[..., Path]) -> None:
    code, _, err = cli(capsys, "lists", "import",
                       str(write_lines(["2025550148", "2025550149"], "int.txt")),
                       "--kind", "internal", "--name", "internal")
    assert code == 0, err
    assert cli(capsys, "dnc", "remove", NUMBER)[0] == 0
    code, out, err = cli(capsys, "lists", "import",
                         str(write_lines(["2025550148,A,2026-11-20"], "readd.txt")),
                         "--changes", "--kind", "internal", "--name", "internal")
    assert code == 0, err
    assert "+1 added, -0 deleted" in out
    code, out, _ = cli(capsys, "check", NUMBER, "--json")
    assert json.loads(out)["decision"] == "block"


# -- 3. a hashed list's re-import says its salt ----------------------------------------------

def _hashes(*numbers: str, salt: str = "") -> list[str]:
    return [hashlib.sha256((salt + n).encode()).hexdigest() for n in numbers]


def test_a_salted_hashed_list_is_not_reimported_without_its_salt(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(_hashes(OTHER, salt="pepper"), "s.txt"), kind="hashed",
                      name="h", salt="pepper")
    plain = write_lines(_hashes(NUMBER), "p.txt")
    with pytest.raises(ListError, match=r"^list 'h' holds hashes salted with its stored "
                                        r"salt; .*--salt, or --no-salt \(--salt \"\"\)"):
        store.import_file(plain, kind="hashed", name="h")
    info = store.get("h")
    assert info.salt == "pepper" and len(store.versions("h")) == 1
    assert _listed(store, "h", OTHER, NUMBER) == [True, False]
    # saying "no salt" imports the unsalted hashes, which then match
    info = store.import_file(plain, kind="hashed", name="h", salt="").info
    assert info.salt is None
    assert _listed(store, "h", OTHER, NUMBER) == [False, True]
    # an unsalted list is re-imported as before, without --salt
    store.import_file(plain, kind="hashed", name="h")
    assert _listed(store, "h", NUMBER) == [True]


def test_cli_no_salt(capsys: pytest.CaptureFixture[str],
                     write_lines: Callable[..., Path]) -> None:
    salted = write_lines(_hashes(OTHER, salt="pepper"), "s.txt")
    plain = write_lines(_hashes(NUMBER), "p.txt")
    code, _, err = cli(capsys, "lists", "import", str(salted), "--kind", "hashed", "--name",
                       "h", "--salt", "pepper")
    assert code == 0, err
    code, _, err = cli(capsys, "lists", "import", str(plain), "--kind", "hashed", "--name", "h")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "--no-salt" in err
    code, _, err = cli(capsys, "lists", "import", str(plain), "--kind", "hashed", "--name",
                       "h", "--no-salt", "--salt", "x")
    assert code == 2 and "--no-salt and --salt" in err
    code, _, err = cli(capsys, "lists", "import", str(plain), "--kind", "hashed", "--name",
                       "h", "--no-salt")
    assert code == 0, err
    code, out, _ = cli(capsys, "check", NUMBER, "--json")
    assert "DNC_HASHED" in [r["code"] for r in json.loads(out)["reasons"]]


# -- 4. one folder per list; removing a list removes only its own files ----------------------

def test_names_that_share_a_safe_form_get_their_own_folders(
        settings_of: Settings, tmp_path: Path, write_lines: Callable[..., Path]) -> None:
    """'optouts:web' and 'optouts_web': two folders; removing one leaves the other whole,
    here and (PostgreSQL) for a replica that fetches it after the removal."""
    store = ListStore(settings_of)
    store.import_file(write_lines(["2025550148"], "a.txt"), kind="internal", name="optouts:web")
    store.import_file(write_lines(["2025550149"], "b.txt"), kind="internal", name="optouts_web")
    colon, plain = store.folder("optouts:web"), store.folder("optouts_web")
    assert plain.name == "optouts_web"  # a name that is a folder name keeps it
    assert colon != plain and colon.name.startswith("optouts_web-")
    store.import_file(write_lines(["2025550100"], "us.txt"), kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=date(2026, 11, 1))
    assert store.folder("us-ftc").name == "us-ftc"
    store.remove_list("optouts:web")
    assert not colon.exists()
    info = store.get("optouts_web")
    assert store.snapshot_problem(info) is None
    assert _listed(store, "optouts_web", OTHER) == [True]
    if store.shared:  # its shared copy was not dropped with the other list's
        replica = ListStore(load_settings(home=tmp_path / "replica",
                                          database_url=settings_of.database_url))
        assert ListSync(replica).sync_all() == {}
        assert _listed(replica, "optouts_web", OTHER) == [True]


def test_a_list_stored_before_folders_were_recorded_keeps_its_folder(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """Two lists stored before: 'optouts:web' in the folder 'optouts_web' that
    'optouts_web' uses too. Neither is moved, and removing one leaves the other's files."""
    store.import_file(write_lines(["2025550149"], "b.txt"), kind="internal", name="optouts_web")
    store.import_file(write_lines(["2025550148"], "a.txt"), kind="internal", name="optouts:web")
    shared = store.settings.lists_dir / "optouts_web"
    own = store.folder("optouts:web")
    if own != shared:  # as the old store kept it: in the shared folder, not recorded
        for f in own.iterdir():
            shutil.move(str(f), shared / f.name)
        own.rmdir()
    with store.engine.begin() as conn:
        meta = conn.execute(select(lists_table.c.meta).where(
            lists_table.c.name == "optouts:web")).scalar_one()
        conn.execute(update(lists_table).where(lists_table.c.name == "optouts:web").values(
            meta={k: v for k, v in meta.items() if k != "folder"}))
    assert store.folder("optouts:web") == shared
    assert _listed(store, "optouts:web", NUMBER) == [True]
    # a change list and a re-import of the old list stay in its folder
    store.import_file(write_lines(["2025550150,A"], "c.txt"), kind="internal",
                      name="optouts:web", changes=True)
    assert store.snapshot_path(store.get("optouts:web")).parent == shared  # type: ignore[union-attr]
    store.remove_list("optouts:web")
    info = store.get("optouts_web")
    assert store.snapshot_problem(info) is None
    assert _listed(store, "optouts_web", OTHER) == [True]
    assert sorted(p.name for p in shared.glob("*.npy")) == [info.current_file]
    # a list made again under the old name gets a folder of its own
    store.import_file(write_lines(["2025550148"], "a.txt"), kind="internal", name="optouts:web")
    assert store.folder("optouts:web") != shared



@pytest.mark.parametrize("name", ["", "..", "a b/../c", "-lead", "x" * 101])
def test_an_import_refuses_a_name_no_list_may_have(
        store: ListStore, write_lines: Callable[..., Path], name: str) -> None:
    """A new list gets the name rule of a first ``dnc add`` or a CXone sync: an import took
    '', '..' and 'a b/../c', lists no command line or campaign could name again."""
    with pytest.raises(ListError, match="start with a letter or digit"):
        store.import_file(write_lines(["2025550148"]), kind="internal", name=name)
    assert store.all() == []
    assert not store.settings.lists_dir.exists() or not any(store.settings.lists_dir.iterdir())


def test_a_list_made_before_the_name_rule_can_be_imported_again(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """The rule is for new lists: one stored under an odd name keeps working."""
    store.import_file(write_lines(["2025550148"]), kind="internal", name="ok")
    with store.engine.begin() as conn:
        conn.execute(update(lists_table).where(lists_table.c.name == "ok").values(
            name="old list"))
    store.import_file(write_lines(["2025550149"]), kind="internal", name="old list")
    assert _listed(store, "old list", OTHER) == [True]


# -- 5. a national-scale number file keeps every number --------------------------------------

def test_a_national_scale_file_keeps_numbers_a_bitmap_cannot_hold(
        store: ListStore, write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "NATIONAL_SCALE_BYTES", 10)  # as if over 1 GiB
    path = write_lines(["2025550148", "+442079460018", "+1 202 555 0147"], "big.txt")
    result = store.import_file(path, kind="internal", name="big-internal", jurisdiction="US")
    assert (result.info.count, result.report.accepted, result.report.rejected) == (3, 3, 0)
    assert _listed(store, "big-internal", NUMBER, "+442079460018", "+12025550147",
                   "+12025550149") == [True, True, True, False]


def test_a_national_scale_file_of_nanp_numbers_is_still_a_bitmap(
        store: ListStore, write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "NATIONAL_SCALE_BYTES", 10)
    store.import_file(write_lines(["2025550148", "3055550100"], "ftc.txt"), kind="national",
                      name="us-ftc", jurisdiction="US", snapshot_date=date(2026, 11, 1))
    info = store.get("us-ftc")
    path = store.snapshot_path(info)
    assert path is not None and S.is_bitmap(S.open_snapshot(path)) and info.count == 2
    assert _listed(store, "us-ftc", NUMBER, "+13055550100", OTHER) == [True, True, False]


def test_build_number_snapshot_merges_the_others_in_order(tmp_path: Path) -> None:
    import numpy as np

    chunks = [np.array([12025550148, 442079460018, 12025550148], np.uint64),
              np.array([61298765999, 5, 19995550100, 33123456789], np.uint64)]
    name, count = S.build_number_snapshot(tmp_path, chunks)
    snap = S.open_snapshot(tmp_path / name)
    want = sorted({5, 12025550148, 19995550100, 33123456789, 61298765999, 442079460018})
    assert not S.is_bitmap(snap) and count == len(want)
    assert S.snapshot_values(snap).tolist() == want


def test_a_registry_that_shrinks_by_more_than_a_tenth_is_refused(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """A truncated or partial download read as a smaller registry: every number it lost was
    callable after the import. A full import of a national or state list leaving fewer than
    90% of its entries is refused (nothing imported, its file discarded) unless the caller
    says the registry shrank; so is a full import of any other kind
    (tests/test_list_reimport_guards.py); change lists are not held to it."""
    numbers = [f"20255501{i:02d}" for i in range(100)]
    store.import_file(write_lines(numbers, "full.txt"), kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=date(2026, 11, 20))
    folder = store.folder("us-ftc")
    files = sorted(p.name for p in folder.iterdir())
    half = write_lines(numbers[:50], "half.txt")
    with pytest.raises(ListError, match=r"50 entries against 100 in list 'us-ftc' now \(50% "
                                        r"fewer\).*--allow-shrink"):
        store.import_file(half, kind="national", name="us-ftc", jurisdiction="US",
                          snapshot_date=date(2026, 11, 25))
    assert store.get("us-ftc").count == 100 and sorted(p.name for p in folder.iterdir()) == files
    store.import_file(write_lines(numbers[:91], "most.txt"), kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=date(2026, 11, 25))
    store.import_file(half, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date(2026, 11, 26), allow_shrink=True)
    assert store.get("us-ftc").count == 50
    store.import_file(write_lines(numbers, "lit.txt"), kind="litigator", name="lit")
    with pytest.raises(ListError, match=r"50 entries against 100 in list 'lit' now"):
        store.import_file(half, kind="litigator", name="lit")
    assert store.get("lit").count == 100
    store.import_file(half, kind="litigator", name="lit", allow_shrink=True)
    assert store.get("lit").count == 50
