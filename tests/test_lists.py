"""Local lists: every kind, every import format, change lists, re-import, removal, entries."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from dncguard.config import Settings
from dncguard.errors import ListError
from dncguard.lists.store import ListStore
from dncguard.store import list_events_table

from .conftest import AT

D = date(2026, 11, 1)


def hits(store: ListStore, name: str, numbers: list[str]) -> list[bool]:
    index = store.index(store.get(name))
    return [bool(x) for x in index.contains_numbers(numbers, at=AT)]


class TestNumberFormats:
    def test_e164_national_and_ftc_csv(self, store: ListStore,
                                       write_lines: Callable[..., Path]) -> None:
        """One number per line in E.164 or national format, or NPA,NXXXXXX; a header is
        skipped; junk lines are rejected with their line numbers."""
        path = write_lines(["phone", "+12025550100", "(212) 555-0101", "305,5550102",
                            "13125550103", "", "not-a-number", "555"])
        result = store.import_file(path, kind="national", name="us", jurisdiction="US",
                                   snapshot_date=D)
        assert result.info.count == 4
        assert result.report.rejected == 2
        assert any(":7:" in s for s in result.report.reject_samples)
        assert any(":8:" in s for s in result.report.reject_samples)
        assert hits(store, "us", ["+12025550100", "+12125550101", "+13055550102",
                                  "+13125550103", "+12025550199"]) == [True] * 4 + [False]

    def test_gb_and_au_national_formats(self, store: ListStore,
                                        write_lines: Callable[..., Path]) -> None:
        gb = write_lines(["020 7946 0123", "+44 20 7946 0124", "442079460125"], "gb.txt")
        store.import_file(gb, kind="national", name="tps", jurisdiction="GB", snapshot_date=D)
        assert hits(store, "tps", ["+442079460123", "+442079460124", "+442079460125",
                                   "+442079460126"]) == [True, True, True, False]
        au = write_lines(["02 5550 1234", "+61 2 5550 1235"], "au.txt")
        store.import_file(au, kind="national", name="dncr", jurisdiction="AU", snapshot_date=D)
        assert hits(store, "dncr", ["+61255501234", "+61255501235"]) == [True, True]

    def test_zipped_file_with_several_members(self, store: ListStore, tmp_path: Path) -> None:
        """A zip archive's members are all read (the FTC ships one file per area code)."""
        path = tmp_path / "ftc.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("202.txt", "202,5550100\n202,5550101\n")
            zf.writestr("212.txt", "212,5550102\n")
        result = store.import_file(path, kind="national", name="us", jurisdiction="US",
                                   snapshot_date=D)
        assert result.info.count == 3
        assert hits(store, "us", ["+12125550102"]) == [True]

    def test_large_file_is_parsed_in_blocks(self, store: ListStore, tmp_path: Path) -> None:
        """A file larger than one parse block gives exactly its numbers."""
        numbers = np.arange(2_025_550_000, 2_025_550_000 + 1_200_000, dtype=np.int64)
        path = tmp_path / "big.txt"
        path.write_text("\n".join(map(str, numbers.tolist())) + "\n")
        result = store.import_file(path, kind="national", name="big", jurisdiction="US",
                                   snapshot_date=D)
        assert result.info.count == numbers.size - np.sum(
            (numbers // 10_000) % 1000 < 200)  # exchanges 0xx/1xx are not valid NANP
        assert hits(store, "big", ["+12025550000", "+12026749999"]) == [True, True]


class TestRules:
    def test_dated_kinds_need_jurisdiction_and_date(self, store: ListStore,
                                                    write_lines: Callable[..., Path]) -> None:
        path = write_lines(["2025550100"])
        with pytest.raises(ListError, match="--snapshot-date"):
            store.import_file(path, kind="national", name="us", jurisdiction="US")
        with pytest.raises(ListError, match="--jurisdiction"):
            store.import_file(path, kind="national", name="us", snapshot_date=D)
        with pytest.raises(ListError, match="names the state"):
            store.import_file(path, kind="state", name="fl", jurisdiction="US", snapshot_date=D)
        with pytest.raises(ListError, match="jurisdiction"):
            store.import_file(path, kind="national", name="x", jurisdiction="FR",
                              snapshot_date=D)
        with pytest.raises(ListError, match="unknown kind|cannot be imported"):
            store.import_file(path, kind="bogus", name="x")

    def test_file_without_valid_entries_is_refused(self, store: ListStore,
                                                   write_lines: Callable[..., Path]) -> None:
        with pytest.raises(ListError, match="no valid entries"):
            store.import_file(write_lines(["hello", "world"]), kind="internal", name="x")
        assert store.all() == []

    def test_missing_file(self, store: ListStore, tmp_path: Path) -> None:
        with pytest.raises(ListError, match="no such file"):
            store.import_file(tmp_path / "nope.txt", kind="internal", name="x")


class TestReimportAndChanges:
    def test_reimport_replaces_and_keeps_a_few_snapshots(
            self, settings: Settings, write_lines: Callable[..., Path]) -> None:
        store = ListStore(settings.model_copy(update={"keep_snapshots": 2}))
        for i in range(4):
            path = write_lines([f"202555010{i}"], f"v{i}.txt")
            store.import_file(path, kind="national", name="us", jurisdiction="US",
                              snapshot_date=D + timedelta(days=i))
        info = store.get("us")
        assert info.snapshot_date == (D + timedelta(days=3)).isoformat()
        assert hits(store, "us", ["+12025550100", "+12025550103"]) == [False, True]
        assert len(store.versions("us")) == 2
        assert len(list(store.folder("us").glob("*.npy"))) == 2

    def test_change_list_adds_and_deletes(self, store: ListStore,
                                          write_lines: Callable[..., Path]) -> None:
        base = write_lines(["2025550100", "2025550101"], "base.txt")
        store.import_file(base, kind="national", name="us", jurisdiction="US", snapshot_date=D)
        changes = write_lines(["number,flag", "202,5550102,A,2026-11-02", "2025550100,D",
                               "+12025550103,ADD", "2025550104"], "changes.txt")
        result = store.import_file(changes, kind="national", name="us", jurisdiction="US",
                                   snapshot_date=D + timedelta(days=1), changes=True)
        assert (result.added, result.deleted) == (2, 1)
        assert result.report.rejected == 1  # the record without a flag
        assert hits(store, "us", ["+12025550100", "+12025550101", "+12025550102",
                                  "+12025550103"]) == [False, True, True, True]
        # a record was rejected: the list is not the registry as of 2026-11-02, so its
        # snapshot date stays (the good records are applied)
        assert store.get("us").snapshot_date == "2026-11-01"

    def test_changes_need_a_base(self, store: ListStore,
                                 write_lines: Callable[..., Path]) -> None:
        with pytest.raises(ListError, match="import it first"):
            store.import_file(write_lines(["2025550100,A"]), kind="national", name="us",
                              jurisdiction="US", snapshot_date=D, changes=True)

    def test_remove_list(self, store: ListStore, write_lines: Callable[..., Path]) -> None:
        store.import_file(write_lines(["2025550100"]), kind="litigator", name="lit")
        folder = store.folder("lit")
        assert folder.is_dir()
        store.remove_list("lit", who="tester")
        assert store.all() == []
        assert not folder.exists()
        with pytest.raises(ListError, match="no list named"):
            store.get("lit")


class TestEntries:
    def test_add_remove_and_expiry(self, store: ListStore) -> None:
        """Manual opt-outs apply at once; an expiry lapses at its moment; removal works."""
        store.add_number("(202) 555-0100", reason="asked", who="agent-7")
        soon = datetime.now(UTC) + timedelta(hours=1)
        store.add_number("2025550101", expires=soon)
        with pytest.raises(ListError, match="already passed"):  # would lift nothing
            store.add_number("2025550102", expires=datetime.now(UTC) - timedelta(seconds=1))
        assert hits(store, "internal", ["+12025550100", "+12025550101", "+12025550102"]) == [
            True, True, False]
        index = store.index(store.get("internal"))
        assert [bool(x) for x in index.contains_numbers(
            ["+12025550101"], at=soon + timedelta(seconds=1))] == [False]  # lapsed
        e164, was = store.remove_number("202-555-0100")
        assert (e164, was) == ("+12025550100", True)
        assert hits(store, "internal", ["+12025550100"]) == [False]
        assert store.remove_number("2025550199")[1] is False

    def test_a_later_opt_out_never_shortens_one_in_force(self, store: ListStore) -> None:
        """'Never call me again' then 'call back later' (with an expiry): the number stayed
        listed only until that expiry, then was allow. The later expiry of the two stands
        (none is the latest); a lapsed one is replaced; a removal first shortens on purpose.
        An expiry with an offset is the instant it names (it was stored as its wall time,
        read as UTC: five hours early for -05:00)."""
        now = datetime.now(UTC)
        index = lambda: store.index(store.get("internal"))  # noqa: E731

        def listed(at: datetime, number: str = "+12025550100") -> bool:
            return bool(index().contains_numbers([number], at=at)[0])

        store.add_number("2025550100", reason="never call me again")
        store.add_number("2025550100", reason="callback later", expires=now + timedelta(days=30))
        assert listed(now + timedelta(days=3650))
        store.add_number("2025550101", expires=now + timedelta(days=60))
        store.add_number("2025550101", expires=now + timedelta(days=10))
        assert listed(now + timedelta(days=59), "+12025550101")
        assert not listed(now + timedelta(days=61), "+12025550101")
        store.add_number("2025550101", reason="never")  # longer: taken
        assert listed(now + timedelta(days=3650), "+12025550101")
        store.remove_number("2025550100")
        store.add_number("2025550100", expires=now + timedelta(days=30))  # on purpose
        assert not listed(now + timedelta(days=31))
        eastern = timezone(timedelta(hours=-5))
        ends = (now + timedelta(days=2)).astimezone(eastern)
        store.add_number("2025550102", expires=ends)
        assert listed(ends - timedelta(hours=1), "+12025550102")
        assert not listed(ends + timedelta(seconds=1), "+12025550102")

    def test_removing_a_lapsed_opt_out_was_not_listed(self, store: ListStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        """DELETE of an opt-out whose expiry passed answered wasListed: true (and queued a
        write-back): it listed nothing any more."""
        store.add_number("2025550100", expires=datetime.now(UTC) + timedelta(hours=1))
        store.add_number("2025550101")
        later = datetime.now(UTC) + timedelta(hours=2)
        monkeypatch.setattr("dncguard.lists.store.utcnow", lambda: later)
        assert store.remove_number("2025550100") == ("+12025550100", False)
        assert store.remove_number("2025550101") == ("+12025550101", True)
        assert store.entry_counts("internal") == {"added": 0, "removed": 0}

    def test_remove_a_snapshot_number_and_reimport(self, store: ListStore,
                                                   write_lines: Callable[..., Path]) -> None:
        """A removal hides an imported number; a re-import is the new truth; manual
        additions survive re-imports."""
        store.import_file(write_lines(["2025550100", "2025550101"]), kind="internal",
                          name="internal")
        store.add_number("2025550199")
        store.remove_number("2025550100")
        assert hits(store, "internal", ["+12025550100", "+12025550199"]) == [False, True]
        store.import_file(write_lines(["2025550100"], "v2.txt"), kind="internal",
                          name="internal", allow_shrink=True)  # half the list: said so
        assert hits(store, "internal", ["+12025550100", "+12025550101", "+12025550199"]) == [
            True, False, True]

    def test_change_log_masks_numbers(self, store: ListStore) -> None:
        store.add_number("2025550123", reason="complaint", who="agent-7")
        with store.engine.connect() as conn:
            events = conn.execute(select(list_events_table)).all()
        assert [(e.action, e.who, e.why) for e in events] == [("add", "agent-7", "complaint")]
        assert "0123" not in str(events[0].detail)

    def test_manual_entries_only_on_internal_kinds(self, store: ListStore,
                                                   write_lines: Callable[..., Path]) -> None:
        store.import_file(write_lines(["2025550100"]), kind="national", name="us",
                          jurisdiction="US", snapshot_date=D)
        with pytest.raises(ListError, match="kind national"):
            store.add_number("2025550101", list_name="us")
        with pytest.raises(ListError, match="not a valid number"):
            store.add_number("12345")


class TestHashedAndPrefix:
    def test_hashed_plain_and_salted(self, store: ListStore,
                                     write_lines: Callable[..., Path]) -> None:
        plain = hashlib.sha256(b"+12025550100").hexdigest()
        store.import_file(write_lines([plain.upper()], "h.txt"), kind="hashed", name="h")
        assert hits(store, "h", ["+12025550100", "+12025550101"]) == [True, False]
        salted = hashlib.sha256(b"pepper+12025550101").hexdigest()
        store.import_file(write_lines([salted], "s.txt"), kind="hashed", name="s",
                          salt="pepper")
        assert hits(store, "s", ["+12025550100", "+12025550101"]) == [False, True]

    def test_prefixes(self, store: ListStore, write_lines: Callable[..., Path]) -> None:
        """A prefix blocks every number that starts with it (a whole area code, an exchange)."""
        store.import_file(write_lines(["+1900", "1202555", "44"]), kind="prefix", name="p")
        assert hits(store, "p", ["+19005550100", "+12025550100", "+12025560100",
                                 "+442079460123", "+61255501234"]) == [
            True, True, False, True, False]


def test_lists_work_on_postgresql(postgres_url: str, tmp_path: Path,
                                  write_lines: Callable[..., Path]) -> None:
    """The same list store runs on PostgreSQL (for several replicas)."""
    from dncguard.config import load_settings

    store = ListStore(load_settings(home=tmp_path / "pg", database_url=postgres_url))
    store.import_file(write_lines(["2025550100"]), kind="internal", name="internal")
    store.add_number("2025550101", expires=datetime.now(UTC) + timedelta(days=1))
    store.remove_number("2025550100")
    assert hits(store, "internal", ["+12025550100", "+12025550101"]) == [False, True]
    assert store.entry_counts("internal") == {"added": 1, "removed": 1}


def test_a_file_that_is_not_text_is_named(store: ListStore, tmp_path: Path) -> None:
    """Bytes that are not UTF-8 refuse the import with the file (and member) named."""
    plain = tmp_path / "bad.txt"
    plain.write_bytes(b"+12025550100\n+1202555\xff\xfe0101\n(202) 555-0102\n")
    with pytest.raises(ListError, match=r"^bad\.txt \(lines from 1\): cannot read as text"):
        store.import_file(plain, kind="internal", name="x")
    packed = tmp_path / "bad.zip"
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("a.txt", plain.read_bytes())
    with pytest.raises(ListError, match=r"^bad\.zip!a\.txt \(lines from 1\): cannot read"):
        store.import_file(packed, kind="internal", name="x")
    assert all(info.name != "x" for info in store.all())
