"""Job files' chunks in an S3-compatible object store (DNCGUARD_OBJECT_STORE_URL): stored
there and only named in PostgreSQL, checked against their addresses when read, collected
with the files that used them; refused settings say why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from dncguard import sharedfiles
from dncguard.config import load_settings
from dncguard.errors import ConfigError, SourceError
from dncguard.objectstore import ObjectStore
from dncguard.server._jobs import JobStore
from dncguard.store import dispose_engines, get_engine


@pytest.mark.postgres
def test_chunks_live_in_the_store_and_are_checked(tmp_path: Path, scaleout_db: str,
                                                 s3_env: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    engine = get_engine(load_settings(home=tmp_path / "home", database_url=scaleout_db))
    objects = ObjectStore(s3_env["DNCGUARD_OBJECT_STORE_URL"])
    path = tmp_path / "results.csv"
    path.write_bytes(os.urandom(3 * sharedfiles.CHUNK_BYTES + 100))
    try:
        with engine.begin() as conn:
            stored = sharedfiles.put(conn, "jobs/x/results.csv", path, objects)
        with engine.connect() as conn:
            in_db = conn.execute(sa.select(sa.func.count()).select_from(
                sharedfiles.shared_chunks_table)).scalar_one()
            held = list(conn.execute(sa.select(sharedfiles.shared_objects_table.c.sha256)
                                     ).scalars())
        assert (in_db, len(held)) == (0, 4)
        tmp = tmp_path / "fetched"
        assert sharedfiles.fetch(engine, "jobs/x/results.csv", tmp, objects) == stored
        assert tmp.read_bytes() == path.read_bytes()
        # a database-only reader cannot read them: missing, never guessed
        with pytest.raises(SourceError, match="missing"):
            sharedfiles.fetch(engine, "jobs/x/results.csv", tmp_path / "no", None)
        good = objects.get(f"chunks/{held[0]}")
        objects.put(f"chunks/{held[0]}", b"tampered")
        with pytest.raises(SourceError, match="fails its checksum"):
            sharedfiles.fetch(engine, "jobs/x/results.csv", tmp_path / "bad", objects)
        assert not (tmp_path / "bad").exists()
        assert good is not None
        objects.put(f"chunks/{held[0]}", good)
        objects.delete([f"chunks/{held[1]}"])
        with pytest.raises(SourceError, match="missing"):
            sharedfiles.fetch(engine, "jobs/x/results.csv", tmp_path / "bad", objects)
        with engine.begin() as conn:
            sharedfiles.remove(conn, ["jobs/x/results.csv"])
        assert sharedfiles.collect_garbage(engine, objects) == 4
        assert all(objects.get(f"chunks/{a}") is None for a in held)
    finally:
        dispose_engines()


def test_refused_settings_say_why(tmp_path: Path) -> None:
    sqlite = load_settings(home=tmp_path / "home", object_store_url="s3://bucket/jobs")
    with pytest.raises(ConfigError, match="share a PostgreSQL database"):
        JobStore(sqlite, get_engine(sqlite))
    with pytest.raises(ConfigError, match="s3://BUCKET"):
        ObjectStore("https://example.com/bucket")
    dispose_engines()
