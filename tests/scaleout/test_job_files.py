"""Job files in PostgreSQL (JobStore): stored with a transaction, fetched by another home,
checked chunk by chunk; a SQLite home keeps them on its disk only."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from dncguard import sharedfiles
from dncguard.config import load_settings
from dncguard.errors import SourceError
from dncguard.server._jobs import JobStore
from dncguard.sharedfiles import shared_chunks_table
from dncguard.store import get_engine


def _store(tmp_path: Path, home: str, url: str | None) -> JobStore:
    settings = load_settings(home=tmp_path / home, **({"database_url": url} if url else {}))
    return JobStore(settings, get_engine(settings))


@pytest.mark.postgres
def test_a_file_stored_on_one_home_is_fetched_on_another(tmp_path: Path,
                                                         scaleout_db: str) -> None:
    a, b = _store(tmp_path, "a", scaleout_db), _store(tmp_path, "b", scaleout_db)
    path = a.folder("j1") / "results.csv"
    path.parent.mkdir(parents=True)
    body = b"id,phone,decision\n" + b"".join(b"c%d,+1202555%04d,allow\n" % (i, i)
                                           for i in range(60_000))
    assert len(body) > sharedfiles.CHUNK_BYTES  # more than one chunk
    path.write_bytes(body)
    assert b.results_path("j1").exists() is False  # not stored yet: nothing to fetch
    with a.engine.begin() as conn:
        a.publish(conn, path)
    fetched = b.results_path("j1")
    assert fetched.read_bytes() == body and fetched.parent == b.folder("j1")
    assert not [p for p in fetched.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.postgres
def test_a_damaged_chunk_is_refused_and_nothing_is_left(tmp_path: Path,
                                                        scaleout_db: str) -> None:
    a, b = _store(tmp_path, "a", scaleout_db), _store(tmp_path, "b", scaleout_db)
    path = a.folder("j2") / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"totalRows": 3}')
    with a.engine.begin() as conn:
        a.publish(conn, path)
        conn.execute(sa.update(shared_chunks_table).values(data=b'{"totalRows": 4}'))
    with pytest.raises(SourceError, match="checksum"):
        b.summary_path("j2")
    assert not b.folder("j2").exists() or list(b.folder("j2").iterdir()) == []


def test_a_sqlite_home_keeps_job_files_local(tmp_path: Path) -> None:
    store = _store(tmp_path, "home", None)
    assert store.shared is False
    path = store.folder("j3") / "results.csv"
    assert store.results_path("j3") == path and not path.exists()
