"""No copy of a job's upload (its phone numbers) is left behind.

* an upload whose request fails after the file was stored (its job refused, the database's
  insert failed) leaves no folder, nor on PostgreSQL a stored copy;
* a cancelled job's upload and verdict rows go (its chunks' summaries stay, for the partial
  summary): at once when no runner holds it, else when its runner stops at its next chunk;
  a failed job can be cancelled too (``DELETE``), its upload going with it; on PostgreSQL the
  database's copies go in the transaction that cancels it;
* each runner sweeps its home: what a cancelled job left there (another replica's copy), and
  a folder no job was made for (a process killed mid-upload) once it has not changed for an
  hour.

On a real SQLite file (PostgreSQL where named), the runner driven step by step; one test
through a real server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from dncguard import sharedfiles
from dncguard.config import Settings, load_settings
from dncguard.server._jobs import ORPHAN_AGE, JobStore
from dncguard.store import dispose_engines, get_engine, metadata, utcnow

from .conftest import Server, job_runner, make_key, new_job, server_env, wait_for
from .test_job_review_uploads import CSV, app_ctx

ROWS = "phone,name\n+12025550101,a\n+12025550102,b\n+12025550103,c\n"


@pytest.fixture
def sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home", chunk_size=2)


def files(folder: Path) -> set[str]:
    """The files under ``folder``, relative."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def holding_rows(folder: Path) -> set[str]:
    return {f for f in files(folder) if not f.endswith(".json")}


# -- a failed upload request ---------------------------------------------------------------


def test_an_upload_whose_insert_fails_leaves_no_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with contextmanager(app_ctx)(home) as ctx:
        jobs = ctx.client.app.state.service.jobs  # type: ignore[attr-defined]

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise OperationalError("insert", {}, Exception("the database went away"))

        jobs.create = refuse
        resp = ctx.post(ROWS.encode(), CSV)
        assert resp.status_code == 503, resp.text
    assert not (home / "jobs").exists() or not any((home / "jobs").iterdir())


@pytest.mark.postgres
def test_postgres_an_upload_whose_transaction_fails_stores_nothing(
        postgres_url: str, tmp_path: Path) -> None:
    """The upload is stored in the job's transaction: when it fails after the copy went to
    the database, the copy is rolled back with it, and the folder removed."""
    home = tmp_path / "home"
    with contextmanager(app_ctx)(home, postgres_url) as ctx:
        jobs = ctx.client.app.state.service.jobs  # type: ignore[attr-defined]
        publish = jobs.publish

        def publish_then_fail(conn: Any, *paths: Path) -> None:
            publish(conn, *paths)
            assert sharedfiles.info(conn, jobs.shared_name(paths[0])) is not None
            raise OperationalError("commit", {}, Exception("the database went away"))

        jobs.publish = publish_then_fail
        assert ctx.post(ROWS.encode(), CSV).status_code == 503
        jobs.publish = publish
        assert ctx.jobs().json()["jobs"] == []
        with jobs.engine.connect() as conn:
            names = conn.execute(sharedfiles.shared_files_table.select()).all()
        assert not [n for n in names if n.name.startswith("jobs/")], names
    assert not (home / "jobs").exists() or not any((home / "jobs").iterdir())


# -- cancel --------------------------------------------------------------------------------


def test_cancelling_a_queued_job_removes_its_upload(sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, ROWS)
    store = JobStore(sqlite, engine)
    assert files(store.folder(job.id)) == {"input.csv"}
    assert store.cancel(job.id).state == "cancelled"
    assert holding_rows(store.folder(job.id)) == set()
    dispose_engines()


def test_a_job_cancelled_while_it_runs_leaves_no_rows_behind(
        sqlite: Settings, caplog: pytest.LogCaptureFixture) -> None:
    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, ROWS)
    r = job_runner(sqlite, engine)
    write = r._write_chunk
    seen: list[set[str]] = []

    def cancel_then_write(*args: Any) -> Any:
        r.store.cancel(job.id)
        # the runner holds the job: its files are left to it until it stops
        seen.append(holding_rows(r.store.folder(job.id)))
        return write(*args)

    r._write_chunk = cancel_then_write  # type: ignore[method-assign]
    assert r.run_one()
    assert seen == [{"input.csv"}]
    cancelled = r.store.get(job.id)
    assert cancelled.state == "cancelled" and cancelled.chunks_done == 0
    assert holding_rows(r.store.folder(job.id)) == set()
    assert not [rec for rec in caplog.records if rec.exc_info], caplog.text
    dispose_engines()


def test_cancelling_a_failed_job_removes_its_upload(sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, "name\nx\n")  # no phone column: it fails
    r = job_runner(sqlite, engine)
    assert r.run_one()
    assert r.store.get(job.id).state == "failed"
    assert holding_rows(r.store.folder(job.id)) == {"input.csv"}
    assert r.store.cancel(job.id).state == "cancelled"
    assert holding_rows(r.store.folder(job.id)) == set()
    assert r.store.resume(job.id).state == "cancelled"  # not resumed: its upload is gone
    assert not r.run_one()
    dispose_engines()


def test_a_done_job_is_not_cancelled(sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, ROWS)
    r = job_runner(sqlite, engine)
    assert r.run_one()
    assert r.store.cancel(job.id).state == "done"
    assert r.store.results_file(r.store.get(job.id)).is_file()
    dispose_engines()


@pytest.mark.postgres
def test_postgres_cancel_forgets_the_databases_copies(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url, chunk_size=2)
    engine = get_engine(settings)
    metadata.create_all(engine)
    job = new_job(settings, engine, ROWS)
    r = job_runner(settings, engine)
    commit = r._commit

    def commit_then_stop(*args: Any) -> None:  # a graceful stop after the first chunk
        commit(*args)
        r._stop.set()

    r._commit = commit_then_stop  # type: ignore[method-assign]
    assert r.run_one()
    assert r.store.get(job.id).chunks_done == 1
    folder = r.store.folder(job.id)

    def stored(name: str) -> bool:
        return sharedfiles.info(engine, r.store.shared_name(folder / name)) is not None

    assert stored("input.csv") and stored("chunks/0000000.csv")
    assert r.store.cancel(job.id).state == "cancelled"
    assert not stored("input.csv") and not stored("chunks/0000000.csv")
    assert stored("chunks/0000000.json")
    assert holding_rows(folder) == set()
    # the partial summary is still served, by any replica
    other = JobStore(load_settings(home=tmp_path / "other", database_url=postgres_url), engine)
    assert other.summary(other.get(job.id))["totalRows"] == 2
    dispose_engines()


# -- the sweep -----------------------------------------------------------------------------


def test_the_sweep_removes_orphaned_uploads_and_cancelled_copies(sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    store = JobStore(sqlite, engine)
    now = utcnow()
    old = (now - ORPHAN_AGE - timedelta(minutes=1)).timestamp()

    def orphan(name: str, age: float | None) -> Path:
        folder = store.root / name
        folder.mkdir(parents=True)
        (folder / "upload.tmp").write_text(ROWS, "utf-8")
        if age is not None:
            for path in (folder / "upload.tmp", folder):
                os.utime(path, (age, age))
        return folder

    dead = orphan("d" * 32, old)  # its process was killed mid-upload, an hour ago
    fresh = orphan("e" * 32, None)  # an upload being received
    other = orphan("not-a-job", old)  # not a job's folder: not ours to remove
    queued = new_job(sqlite, engine, ROWS)
    for path in (store.folder(queued.id), store.folder(queued.id) / "input.csv"):
        os.utime(path, (old, old))
    cancelled = new_job(sqlite, engine, ROWS)
    store.cancel(cancelled.id)
    # a copy another replica fetched (or a runner wrote) after the cancel
    (store.folder(cancelled.id) / "input.csv").write_text(ROWS, "utf-8")
    (store.folder(cancelled.id) / "chunks").mkdir()
    (store.folder(cancelled.id) / "chunks" / "0000000.json").write_text("{}", "utf-8")

    assert store.sweep(now) == 2
    assert not dead.exists()
    assert fresh.exists() and other.exists()
    assert files(store.folder(queued.id)) == {"input.csv"}
    assert files(store.folder(cancelled.id)) == {"chunks/0000000.json"}
    assert store.sweep(now) == 0
    dispose_engines()


def test_a_server_sweeps_at_start_and_a_cancel_removes_the_upload(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    dead = home / "jobs" / ("d" * 32)
    dead.mkdir(parents=True)
    (dead / "upload.tmp").write_text(ROWS, "utf-8")
    old = (utcnow() - ORPHAN_AGE - timedelta(minutes=1)).timestamp()
    for path in (dead / "upload.tmp", dead):
        os.utime(path, (old, old))
    server = start_server(server_env(home))
    deadline = time.monotonic() + 30
    while dead.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not dead.exists()
    with server.client(key) as c:
        jid = c.post("/v1/jobs", content=b"name\nx\n",
                     headers={"content-type": "text/csv"}).json()["id"]
        wait_for(c, jid, lambda j: j["state"] == "failed")
        assert holding_rows(home / "jobs" / jid) == {"input.csv"}
        resp = c.delete(f"/v1/jobs/{jid}")
        assert resp.status_code == 200 and resp.json()["state"] == "cancelled", resp.text
        assert holding_rows(home / "jobs" / jid) == set()
        assert c.post(f"/v1/jobs/{jid}/resume").status_code == 409
