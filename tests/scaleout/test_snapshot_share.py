"""List snapshots through PostgreSQL, in one process: two homes share one database.

Publishing with the import, fetching into an empty home, failing closed on a missing or
damaged chunk, pruning with ``keep_snapshots``, change lists and removal; a SQLite home is
untouched by any of it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from dncguard import sharedfiles
from dncguard.config import Settings, load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.integrity import SnapshotIntegrityError, read_seal
from dncguard.lists.store import ListStore
from dncguard.lists.sync import ListSync
from dncguard.models import Decision
from dncguard.sharedfiles import (
    shared_chunks_table,
    shared_file_chunks_table,
    shared_files_table,
)
from dncguard.store import get_engine

from ..conftest import AT

pytestmark = pytest.mark.postgres

LISTED = ["+12025550101", "+12025550102", "+13055550103"]
OTHER = "+12025550199"


def _settings(tmp_path: Path, home: str, url: str, **extra: object) -> Settings:
    return load_settings(home=tmp_path / home, database_url=url, **extra)


def _verdicts(settings: Settings, phones: list[str]) -> list[tuple[Decision, list[str]]]:
    verdicts = Scrubber(settings, clock=lambda: AT, audit=False).scrub(phones, at=AT)
    return [(v.decision, [f"{r.code}:{r.list}" for r in v.reasons]) for v in verdicts]


def _files(url_settings: Settings) -> list[str]:
    with get_engine(url_settings).connect() as conn:
        return sorted(conn.execute(sa.select(shared_files_table.c.name)).scalars())


@pytest.fixture
def two_homes(tmp_path: Path, scaleout_db: str,
              write_lines: Callable[..., Path]) -> tuple[ListStore, ListStore]:
    a = ListStore(_settings(tmp_path, "home-a", scaleout_db))
    a.import_file(write_lines(LISTED), kind="internal", name="dnc-main")
    return a, ListStore(_settings(tmp_path, "home-b", scaleout_db))


def test_import_publishes_and_an_empty_home_fetches(two_homes: tuple[ListStore, ListStore]
                                                    ) -> None:
    a, b = two_homes
    info = b.get("dnc-main")
    assert info.seal is not None
    assert _files(a.settings) == [f"lists/dnc-main/{info.current_file}"]
    # B does not hold the version: its checks are error naming the list, never allow
    problem = b.snapshot_problem(info)
    assert problem is not None and "does not hold" in problem
    assert _verdicts(b.settings, [LISTED[0], OTHER]) == [
        (Decision.ERROR, ["SOURCE_ERROR:dnc-main"])] * 2
    assert ListSync(b).sync_all() == {}
    path = b.snapshot_path(info)
    assert path is not None and read_seal(path) == info.seal
    assert b.snapshot_problem(info) is None
    assert _verdicts(b.settings, [LISTED[0], OTHER]) == [
        (Decision.BLOCK, ["DNC_INTERNAL:dnc-main"]), (Decision.ALLOW, [])]
    assert b.sync(info) is False  # held and verified: nothing to fetch


@pytest.mark.parametrize("damage", ["flipped", "missing"])
def test_a_damaged_or_missing_chunk_is_never_not_listed(two_homes: tuple[ListStore, ListStore],
                                                        damage: str) -> None:
    a, b = two_homes
    engine = get_engine(a.settings)
    with engine.begin() as conn:
        if damage == "flipped":
            data = bytearray(conn.execute(sa.select(shared_chunks_table.c.data)).scalar_one())
            data[-1] ^= 0xFF
            conn.execute(sa.update(shared_chunks_table).values(data=bytes(data)))
        else:
            conn.execute(sa.delete(shared_chunks_table))
    problems = ListSync(b).sync_all()
    assert list(problems) == ["dnc-main"]
    assert ("checksum" if damage == "flipped" else "missing") in problems["dnc-main"]
    info = b.get("dnc-main")
    path = b.snapshot_path(info)
    assert path is not None and not path.exists()  # nothing half-fetched in place
    assert [d for d, _ in _verdicts(b.settings, [LISTED[0], OTHER])] == [Decision.ERROR] * 2
    # its checks (and /readyz) say the fetch failed and why, not "not fetched yet"
    with pytest.raises(SnapshotIntegrityError, match="could not fetch snapshot .* from the "
                       "database: .*" + ("checksum" if damage == "flipped" else "missing")):
        b.open_current(info)
    with pytest.raises(SnapshotIntegrityError):
        b.sync(info)


def test_a_corrupted_local_copy_is_fetched_again(two_homes: tuple[ListStore, ListStore]
                                                 ) -> None:
    _, b = two_homes
    ListSync(b).sync_all()
    info = b.get("dnc-main")
    path = b.snapshot_path(info)
    assert path is not None
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert "checksum mismatch" in (b.snapshot_problem(info) or "")
    assert [d for d, _ in _verdicts(b.settings, [LISTED[-1]])] == [Decision.ERROR]
    assert b.sync(info) is True
    assert b.snapshot_problem(info) is None
    assert _verdicts(b.settings, [LISTED[-1]]) == [(Decision.BLOCK, ["DNC_INTERNAL:dnc-main"])]


def test_versions_are_pruned_with_keep_snapshots(tmp_path: Path, scaleout_db: str,
                                                 write_lines: Callable[..., Path]) -> None:
    a = ListStore(_settings(tmp_path, "home-a", scaleout_db, keep_snapshots=2))
    for i in range(4):
        a.import_file(write_lines([*LISTED, f"+1202555{i:04d}"], name=f"v{i}.txt"),
                      kind="internal", name="dnc-main")
    kept = [v["file"] for v in a.versions("dnc-main")]
    assert len(kept) == 2
    assert _files(a.settings) == sorted(f"lists/dnc-main/{f}" for f in kept)
    engine = get_engine(a.settings)
    with engine.connect() as conn:
        used = set(conn.execute(sa.select(shared_file_chunks_table.c.chunk)).scalars())
        stored = set(conn.execute(sa.select(shared_chunks_table.c.sha256)).scalars())
    assert stored == used  # chunks of pruned versions were collected
    a.remove_list("dnc-main")
    assert _files(a.settings) == []
    assert sharedfiles.collect_garbage(engine) == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(shared_chunks_table)
                            ).scalar_one() == 0


def test_a_change_list_on_a_home_that_never_fetched(two_homes: tuple[ListStore, ListStore],
                                                    write_lines: Callable[..., Path]) -> None:
    a, b = two_homes
    changes = write_lines([f"{LISTED[0]},D", "+12025550177,A"], name="changes.txt")
    b.import_file(changes, kind="internal", name="dnc-main", changes=True)
    assert ListSync(a).sync_all() == {}
    assert _verdicts(a.settings, [LISTED[0], "+12025550177"]) == [
        (Decision.ALLOW, []), (Decision.BLOCK, ["DNC_INTERNAL:dnc-main"])]


def test_a_big_bitmap_stores_its_chunks_once(tmp_path: Path, scaleout_db: str) -> None:
    """A dense +1 list is a NANP bitmap; re-importing it unchanged sends no chunk again."""
    rng = np.random.default_rng(7)
    numbers = np.unique(rng.integers(12025550000, 12025550000 + 9_000_000, 600_000))
    src = tmp_path / "dense.txt"
    src.write_text("\n".join(f"+{n}" for n in numbers.tolist()) + "\n")
    a = ListStore(_settings(tmp_path, "home-a", scaleout_db))
    a.import_file(src, kind="internal", name="dense")
    engine = get_engine(a.settings)
    with engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(shared_chunks_table)
                              ).scalar_one()
    a.import_file(src, kind="internal", name="dense")
    with engine.connect() as conn:
        after = conn.execute(sa.select(sa.func.count()).select_from(shared_chunks_table)
                             ).scalar_one()
    assert before == after >= 2
    b = ListStore(_settings(tmp_path, "home-b", scaleout_db))
    assert ListSync(b).sync_all() == {}
    assert _verdicts(b.settings, [f"+{numbers[17]}"]) == [
        (Decision.BLOCK, ["DNC_INTERNAL:dense"])]


def test_a_sqlite_home_shares_nothing(store: ListStore, write_lines: Callable[..., Path]
                                      ) -> None:
    assert store.shared is False
    store.import_file(write_lines(LISTED), kind="internal", name="dnc-main")
    assert ListSync(store).sync_all() == {}
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(shared_files_table)
                            ).scalar_one() == 0


def test_local_files_of_versions_no_longer_named_are_dropped(
        two_homes: tuple[ListStore, ListStore], write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two_homes
    monkeypatch.setattr("dncguard.lists.sync.STALE_AFTER_SECONDS", 0.0)  # no grace period
    ListSync(b).sync_all()
    first = b.get("dnc-main").current_file
    a.import_file(write_lines(LISTED[:2], name="smaller.txt"), kind="internal", name="dnc-main",
                  allow_shrink=True)  # a smaller list, on purpose
    ListSync(b).sync_all()
    folder = b.folder("dnc-main")
    assert (folder / str(first)).exists()  # still named by a kept version
    assert (folder / str(b.get("dnc-main").current_file)).exists()
    a.remove_list("dnc-main")
    ListSync(b).sync_all()
    assert [f.name for f in folder.iterdir() if not f.name.startswith(".")] == []
