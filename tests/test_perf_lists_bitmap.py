"""National-scale import into a NANP bitmap snapshot, and change lists on it, through the
list store. Skipped until lists/store.py uses the bitmap layout (NATIONAL_SCALE_BYTES)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.lists import snapshots as S
from dncguard.lists import store as L

pytestmark = pytest.mark.skipif(not hasattr(L, "NATIONAL_SCALE_BYTES"),
                                reason="lists/store.py does not build bitmap snapshots yet")


def test_national_bitmap_import_and_changes(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "NATIONAL_SCALE_BYTES", 0)
    store = L.ListStore(load_settings(home=tmp_path / "home"))
    registry = tmp_path / "reg.txt"
    registry.write_text("202,5550100\n202,5550101\n305,5550100\n")
    store.import_file(registry, kind="national", name="us", jurisdiction="US",
                      snapshot_date=date(2026, 11, 1))
    info = store.get("us")
    assert info.count == 3
    path = store.snapshot_path(info)
    assert path is not None and S.is_bitmap(S.open_snapshot(path))
    assert store.index(info).contains_numbers(
        ["+12025550100", "+12025550102"]).tolist() == [True, False]
    changes = tmp_path / "changes.txt"
    changes.write_text("2025550102,A\n2025550100,D\n")
    result = store.import_file(changes, kind="national", name="us", jurisdiction="US",
                               snapshot_date=date(2026, 11, 2), changes=True)
    assert (result.added, result.deleted) == (1, 1)
    info = store.get("us")
    assert info.count == 3
    assert store.index(info).contains_numbers(
        ["+12025550100", "+12025550102", "+13055550100"]).tolist() == [False, True, True]
