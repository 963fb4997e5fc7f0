"""SQLite connections commit durably: the write-ahead log is fsynced at each commit
(synchronous=FULL), so an answered verdict's audit record survives a power loss."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from dncguard.config import load_settings
from dncguard.store import dispose_engines, get_engine


def test_sqlite_commits_are_fsynced(tmp_path: Path) -> None:
    engine = get_engine(load_settings(home=tmp_path / "home"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2  # FULL
    finally:
        dispose_engines()
