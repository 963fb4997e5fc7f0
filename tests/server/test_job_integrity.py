"""A job is ``done`` only when its results are complete: every chunk it assembles matches what
was committed for it (rows, SHA-256 of its verdict rows and of its summary), and its results'
rows, ``rows_done`` and its summary's ``totalRows`` agree. Otherwise it is ``failed`` with a
reason naming the chunk, and a resume scrubs that chunk (and those after it) again.

The runner is driven step by step on a real SQLite file (PostgreSQL, shared job files: one
test). A crash is the runner failing between its last chunk commit and the finish (every chunk
committed, the job resumable); storage then loses or damages a chunk's file.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, update

from dncguard import audit, sharedfiles
from dncguard.config import Settings, load_settings
from dncguard.server import _jobs
from dncguard.server._jobs import JobInfo, JobRunner
from dncguard.server.tables import server_jobs_table
from dncguard.store import dispose_engines, get_engine

from .conftest import Server, job_runner, make_key, server_env, wait_for
from .conftest import new_job as make_job

PHONES = [f"+1202555{100 + i:04d}" for i in range(6)]
CSV = "phone,name\n" + "".join(f"{p},n{i}\n" for i, p in enumerate(PHONES))


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home", chunk_size=2)  # 6 rows: 3 chunks


def runner(settings: Settings, engine: Engine) -> JobRunner:
    return job_runner(settings, engine)


def new_job(settings: Settings, engine: Engine, csv_text: str = CSV) -> JobInfo:
    return make_job(settings, engine, csv_text)


def step(r: JobRunner, job_id: str) -> JobInfo:
    """One pass of the runner's loop (claim, run, and its handling of failures)."""
    assert r.run_one()
    return r.store.get(job_id)


def committed_then_crashed(r: JobRunner, job_id: str) -> JobInfo:
    """Run the job until every chunk is committed, then fail before it finishes."""
    def crash(*_: object) -> None:
        raise RuntimeError("simulated crash before finish")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(r, "_finish", crash)
        job = step(r, job_id)
    assert job.state == "failed" and job.chunks_done == 3 and job.rows_done == 6
    return job


def result_rows(r: JobRunner, job_id: str) -> list[dict[str, str]]:
    text = r.store.results_path(job_id).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def assert_done_and_whole(settings: Settings, r: JobRunner, job_id: str) -> None:
    """Done, with every row once, in order, and the same count everywhere it is recorded."""
    job = r.store.get(job_id)
    assert job.state == "done" and job.error is None
    assert job.rows_done == 6 and sum(job.counts.values()) == 6
    assert [row["phone"] for row in result_rows(r, job_id)] == PHONES
    summary = r.store.summary(job)
    assert summary["complete"] is True and summary["totalRows"] == 6
    log = audit.audit_log(settings)
    rec = log.find("job", job_id)
    assert rec is not None
    assert rec.data["results"]["rows"] == 6 and rec.data["summary"]["totalRows"] == 6
    assert log.verify().ok


def assert_failed_naming(r: JobRunner, job: JobInfo, chunk: int, why: str) -> None:
    """Failed (not done), the reason naming ``chunk`` and what is wrong, no audit record."""
    assert job.state == "failed", job
    assert f"chunk {chunk} (from row {2 * chunk + 1})" in (job.error or ""), job.error
    assert why in (job.error or ""), job.error
    assert audit.audit_log(r.settings).find("job", job.id) is None


def test_each_chunk_commit_records_its_rows_and_checksums(settings: Settings) -> None:
    engine = get_engine(settings)
    job = new_job(settings, engine)
    r = runner(settings, engine)
    assert step(r, job.id).state == "done"
    with engine.connect() as conn:
        recs = conn.execute(sa.text(
            "select chunk, rows, sha256, summary_sha256 from server_job_chunks "
            "where job_id = :j order by chunk"), {"j": job.id}).all()
    assert [(c, n) for c, n, _, _ in recs] == [(0, 2), (1, 2), (2, 2)]
    for k, _, sha, summary_sha in recs:
        assert sha == hashlib.sha256(r.store.chunk_path(job.id, k).read_bytes()).hexdigest()
        assert summary_sha == hashlib.sha256(
            r.store.chunk_path(job.id, k, "json").read_bytes()).hexdigest()
    dispose_engines()


def damaged_and_resumed(settings: Settings, damage: Callable[[JobRunner, str], None]
                        ) -> tuple[JobRunner, JobInfo]:
    """A job whose three chunks were committed before a crash, then ``damage(runner, job id)``
    done to what it left, then resumed once: the runner and the job as that run left it."""
    engine = get_engine(settings)
    job = new_job(settings, engine)
    r = runner(settings, engine)
    committed_then_crashed(r, job.id)
    damage(r, job.id)
    r.store.resume(job.id)
    return r, step(r, job.id)


def resumed_to_whole(settings: Settings, r: JobRunner, job_id: str) -> None:
    """Resumed once more: done, every row once (:func:`assert_done_and_whole`)."""
    r.store.resume(job_id)
    step(r, job_id)
    assert_done_and_whole(settings, r, job_id)


def test_missing_chunk_summary_fails_the_job_and_resume_recomputes_it(
        settings: Settings) -> None:
    """Was: done, summary totalRows 4, results 6 rows."""
    r, failed = damaged_and_resumed(
        settings, lambda r, job_id: r.store.chunk_path(job_id, 1, "json").unlink())
    assert_failed_naming(r, failed, 1, "its summary file is missing")
    assert "resume the job to scrub it again from row 3" in (failed.error or "")
    # rewound to the damaged chunk: what is committed is what is sound
    assert (failed.chunks_done, failed.rows_done, failed.counts) == (1, 2, {"allow": 2})
    resumed_to_whole(settings, r, failed.id)
    dispose_engines()


def test_emptied_chunk_fails_the_job_and_resume_recomputes_it(settings: Settings) -> None:
    """Was: done, results 4 rows, summary totalRows 6."""
    r, failed = damaged_and_resumed(
        settings, lambda r, job_id: r.store.chunk_path(job_id, 1).write_text(""))
    assert_failed_naming(r, failed, 1, "its file holds 0 rows, 2 were committed")
    assert failed.chunks_done == 1 and failed.rows_done == 2
    resumed_to_whole(settings, r, failed.id)
    dispose_engines()


def test_changed_chunk_rows_fail_their_checksum(settings: Settings) -> None:
    """As many rows as committed, but not the ones committed: a verdict changed on disk."""
    def change(r: JobRunner, job_id: str) -> None:
        chunk = r.store.chunk_path(job_id, 2)
        chunk.write_bytes(chunk.read_bytes().replace(b",allow,", b",block,"))

    r, failed = damaged_and_resumed(settings, change)
    assert_failed_naming(r, failed, 2, "its file differs from the one committed (SHA-256)")
    assert failed.chunks_done == 2 and failed.rows_done == 4
    resumed_to_whole(settings, r, failed.id)
    assert {row["decision"] for row in result_rows(r, failed.id)} == {"allow"}
    dispose_engines()


def test_chunks_committed_before_records_are_checked_against_their_summary(
        settings: Settings) -> None:
    """A chunk with no record (committed by an earlier version) must still hold the rows its
    summary counts; the job is then rewound to the start (the rows before it are unknown)."""
    def unrecorded_and_emptied(r: JobRunner, job_id: str) -> None:
        with r.engine.begin() as conn:
            conn.execute(sa.text("delete from server_job_chunks where job_id = :j"),
                         {"j": job_id})
        r.store.chunk_path(job_id, 1).write_text("")

    r, failed = damaged_and_resumed(settings, unrecorded_and_emptied)
    assert_failed_naming(r, failed, 1, "its summary counts 2 rows, its file holds 0")
    assert "scrub it again from row 1" in (failed.error or "")
    assert (failed.chunks_done, failed.rows_done, failed.counts) == (0, 0, {})
    resumed_to_whole(settings, r, failed.id)
    dispose_engines()


def test_rows_done_must_agree_with_the_chunks(settings: Settings) -> None:
    def miscounted(r: JobRunner, job_id: str) -> None:
        with r.engine.begin() as conn:
            conn.execute(update(server_jobs_table).where(server_jobs_table.c.id == job_id)
                         .values(rows_done=7))

    r, failed = damaged_and_resumed(settings, miscounted)
    assert failed.state == "failed"
    assert "the job's chunks hold 6 rows but 7 were committed" in (failed.error or "")
    assert failed.chunks_done == 0 and failed.rows_done == 0
    resumed_to_whole(settings, r, failed.id)
    dispose_engines()


def test_partial_summary_refuses_a_missing_chunk_summary(settings: Settings) -> None:
    """Was: the partial summary skipped the chunk and counted 4 of the 6 committed rows."""
    engine = get_engine(settings)
    job = new_job(settings, engine)
    r = runner(settings, engine)
    failed = committed_then_crashed(r, job.id)
    assert r.store.summary(failed)["totalRows"] == 6
    r.store.chunk_path(job.id, 0, "json").unlink()
    with pytest.raises(_jobs.JobIntegrityError, match=r"chunk 0 \(from row 1\): its summary "
                       "file is missing"):
        r.store.summary(failed)
    dispose_engines()


@pytest.mark.postgres
def test_shared_job_files_are_checked_too(postgres_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a damaged cached chunk is fetched again from the database (done, whole);
    a chunk summary the database lost too fails the job, and a resume recomputes it."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url, chunk_size=2)
    engine = get_engine(settings)
    r = runner(settings, engine)
    assert r.store.shared

    job = new_job(settings, engine)
    committed_then_crashed(r, job.id)
    r.store.chunk_path(job.id, 1).write_text("")  # this replica's cache only
    r.store.resume(job.id)
    step(r, job.id)
    assert_done_and_whole(settings, r, job.id)

    job = new_job(settings, engine)
    committed_then_crashed(r, job.id)
    lost = r.store.chunk_path(job.id, 1, "json")
    with engine.begin() as conn:
        sharedfiles.remove(conn, [r.store.shared_name(lost)])
    lost.unlink()
    r.store.resume(job.id)
    assert_failed_naming(r, step(r, job.id), 1, "its summary file is missing")
    r.store.resume(job.id)
    step(r, job.id)
    assert_done_and_whole(settings, r, job.id)
    dispose_engines()


def test_done_job_whose_results_file_is_missing_answers_500(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    """Was: 409 "job ... is done; results are ready when it is done"."""
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    server = start_server(server_env(home, DNCGUARD_CHUNK_SIZE="2"))
    with server.client(key) as c:
        jid = c.post("/v1/jobs", content=CSV.encode(),
                     headers={"content-type": "text/csv"}).json()["id"]
        wait_for(c, jid, lambda j: j["state"] == "done")
        (home / "jobs" / jid / "results.csv").unlink()
        resp = c.get(f"/v1/jobs/{jid}/results")
        assert resp.status_code == 500, resp.text
        error = resp.json()["error"]
        assert error["status"] == 500 and error["code"] == "internal_error"
        assert f"job {jid} is done but its results file is missing" in error["message"]
        # a done job's summary is its own file, never rebuilt from the chunks': 500
        (home / "jobs" / jid / "summary.json").unlink()
        resp = c.get(f"/v1/jobs/{jid}/summary")
        assert resp.status_code == 500, resp.text
        assert "its summary file is missing" in resp.json()["error"]["message"]
    server.stop()
    logged = server.log()
    assert f"job {jid} is done but its results file is missing" in logged
    assert not [p for p in PHONES if p in logged or p[2:] in logged]
