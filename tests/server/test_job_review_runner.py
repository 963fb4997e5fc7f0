"""The job runner's endings, from a review of the job path:

* a failure whose reason quotes what the upload holds (a Parquet column name with a NUL) is
  stored (the character escaped): PostgreSQL refused the NUL, the failure was never recorded,
  and the job was claimed and failed again each time its lease ran out, forever;
* an input error found further in the file (an unclosed quote) fails the job with that
  error as the reason, not as an unexpected ``InputError: ...`` with a traceback;
* a job cancelled while it finishes leaves no retained results copy (its numbers) without an
  audit record: nothing would refer to it or prune it.

The runner is driven step by step (``run_one``) on a real SQLite file, or PostgreSQL.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, update

from dncguard import audit
from dncguard.audit._jobs import job_folder
from dncguard.config import Settings, load_settings
from dncguard.server._jobs import JobInfo, JobStore
from dncguard.server.tables import server_jobs_table
from dncguard.store import dispose_engines, get_engine, metadata

from .conftest import job_runner


def upload(settings: Settings, engine: Engine, data: bytes, fmt: str = "csv") -> JobInfo:
    store = JobStore(settings, engine)
    job_id = store.new_id()
    store.folder(job_id).mkdir(parents=True)
    (store.folder(job_id) / f"input.{fmt}").write_bytes(data)
    return store.create(job_id, input_name="c", input_format=fmt, who="api:test", params={
        "at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(), "campaign": "default",
        "defaults": {}, "owner": "k1"})


def parquet(columns: dict[str, list[str]]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table(columns), out)
    return out.getvalue()


@pytest.fixture
def sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home", chunk_size=2)


def test_storable_escapes_what_the_database_cannot_store() -> None:
    from dncguard.server._jobs import storable

    assert storable("no column named 'a\x00b'") == "no column named 'a\\x00b'"
    assert storable("x\x1b[31m\x7f") == "x\\x1b[31m\\x7f"
    assert storable("a\ud800b") == "a\\ud800b"
    assert storable("line 1\nline 2\tcell é") == "line 1\nline 2\tcell é"


@pytest.mark.postgres
def test_a_reason_with_a_nul_fails_the_job_on_postgres(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    engine = get_engine(settings)
    metadata.create_all(engine)
    job = upload(settings, engine, parquet({"a\x00b": ["x"]}), "parquet")
    r = job_runner(settings, engine)
    with caplog.at_level(logging.WARNING, "dncguard.jobs"):
        assert r.run_one()
    failed = r.store.get(job.id)
    assert failed.state == "failed", failed
    assert failed.error is not None and "a\\x00b" in failed.error, failed.error
    assert "could not record the failure" not in caplog.text
    # the job list reads it back, for its owner too
    assert [j.id for j in r.store.find(owner="k1")] == [job.id]
    assert not r.run_one()  # nothing left to claim: it is not taken again
    dispose_engines()


def test_an_unclosed_quote_further_on_is_the_jobs_input_error(
        sqlite: Settings, caplog: pytest.LogCaptureFixture) -> None:
    engine = get_engine(sqlite)
    rows = "".join(f"+1202555{100 + i:04d},n{i}\n" for i in range(4))
    job = upload(sqlite, engine, f'phone,name\n{rows}+12025550199,"open\n'.encode())
    r = job_runner(sqlite, engine)
    with caplog.at_level(logging.INFO, "dncguard.jobs"):
        assert r.run_one()
    failed = r.store.get(job.id)
    assert failed.state == "failed", failed
    assert failed.error is not None and failed.error.startswith("the uploaded file: "), \
        failed.error
    assert "opens a quote that is never" in failed.error, failed.error
    assert not [rec for rec in caplog.records if rec.exc_info], caplog.text
    dispose_engines()


def test_a_job_cancelled_while_it_finishes_keeps_no_results_copy(sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    job = upload(sqlite, engine, b"phone\n+12025550102\n+12025550103\n+12025550104\n")
    r = job_runner(sqlite, engine)
    retained = job_folder(audit.audit_log(sqlite), job.id)
    seen: list[bool] = []

    def cancel(job_id: str) -> None:
        seen.append(retained.is_dir())  # prepared: the copy is there
        assert r.store.cancel(job_id).state == "cancelled"

    r.before_final = cancel
    assert r.run_one()
    assert seen == [True]
    assert r.store.get(job.id).state == "cancelled"
    assert audit.audit_log(sqlite).find("job", job.id) is None
    assert not retained.exists(), list(retained.rglob("*"))
    dispose_engines()


def test_a_job_taken_over_while_it_finishes_keeps_the_copy_for_its_new_runner(
        sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    job = upload(sqlite, engine, b"phone\n+12025550102\n")
    r = job_runner(sqlite, engine)
    retained = job_folder(audit.audit_log(sqlite), job.id)

    def take_over(job_id: str) -> None:
        t = server_jobs_table
        with engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == job_id).values(lease_owner="other"))

    r.before_final = take_over
    assert r.run_one()
    assert r.store.get(job.id).state == "running"
    assert retained.is_dir()  # the other runner prepares the same copy and records it
    dispose_engines()
