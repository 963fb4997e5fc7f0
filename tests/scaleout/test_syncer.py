"""The replica's syncer: woken by a notification, or by its poll alone."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.server._snapshot_sync import SnapshotSyncer
from dncguard.store import get_engine

pytestmark = pytest.mark.postgres


def _held(store: ListStore, name: str) -> bool:
    return store.snapshot_problem(store.get(name)) is None


def _wait(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "not synced in time"
        time.sleep(0.02)


@pytest.mark.parametrize("notifications", [True, False])
def test_a_new_version_is_fetched(tmp_path: Path, scaleout_db: str,
                                  write_lines: Callable[..., Path], notifications: bool) -> None:
    a = ListStore(load_settings(home=tmp_path / "a", database_url=scaleout_db))
    a.import_file(write_lines(["+12025550101"]), kind="internal", name="main")
    settings_b = load_settings(home=tmp_path / "b", database_url=scaleout_db)
    # notified: a poll longer than the test, so only the notification can wake it in time;
    # not listening: polling alone keeps B in sync
    syncer = SnapshotSyncer(settings_b, get_engine(settings_b), listen=notifications,
                            poll=600.0 if notifications else 0.2)
    syncer.start()
    try:
        _wait(syncer.first_pass.is_set)
        assert syncer.listening is notifications
        b = ListStore(settings_b)
        assert _held(b, "main")
        a.import_file(write_lines(["+12025550102"], name="v2.txt"), kind="internal",
                      name="main")
        _wait(lambda: _held(b, "main"))
    finally:
        syncer.stop()

