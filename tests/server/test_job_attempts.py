"""A job whose run stops its runner the same way on every claim is not claimed forever.

A kill -9 mid-run, or an exception that escapes the runner, leaves the job ``running``; once its
lease runs out it is claimed again. Each claim is counted (``server_job_attempts``,
``0012_server_job_attempts``): past the runner's ``max_attempts`` claims since the job last
committed a chunk it is ``failed`` with a reason naming the attempts, its committed chunks
kept, and a resume runs it again. A run that commits a chunk starts the count again, and one
stopped on purpose (a graceful shutdown) gives its attempt back.

The runner is driven step by step on a real SQLite file, or PostgreSQL; one test kills a real
runner process with SIGKILL.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, select, update

from dncguard.config import Settings, load_settings
from dncguard.server._jobs import MAX_ATTEMPTS, JobInfo, JobRunner
from dncguard.server.tables import server_job_attempts_table, server_jobs_table
from dncguard.store import dispose_engines, get_engine, metadata

from .conftest import job_runner, new_job

#: five rows: three chunks of two
CSV = "".join(["phone,name\n", *(f"+1202555{101 + i:04d},n{i}\n" for i in range(5))])


class Crash(BaseException):
    """What a runner's process dying looks like to the code after it: nothing runs on."""


@pytest.fixture
def sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home", chunk_size=2)


def expire_lease(engine: Engine, job_id: str) -> None:
    """The dead runner's lease runs out."""
    with engine.begin() as conn:
        conn.execute(update(server_jobs_table).where(server_jobs_table.c.id == job_id)
                     .values(lease_until=datetime(2000, 1, 1, tzinfo=UTC)))


def crash(job_id: str) -> None:
    raise Crash(job_id)


def crash_every_claim(r: JobRunner, engine: Engine, job: JobInfo, times: int) -> None:
    """Claim and run the job ``times`` times, its runner dying each time after the last
    chunk's commit (before the job is done)."""
    r.before_final = crash
    for _ in range(times):
        with pytest.raises(Crash):
            r.run_one()
        assert r.store.get(job.id).state == "running"
        expire_lease(engine, job.id)


def result_rows(r: JobRunner, job_id: str) -> list[dict[str, str]]:
    with r.store.results_path(job_id).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def check_given_up(r: JobRunner, job_id: str, attempts: int, chunks: int, rows: int
                   ) -> JobInfo:
    failed = r.store.get(job_id)
    assert failed.state == "failed", failed
    assert failed.error is not None
    assert f"started {attempts} times since it last made progress" in failed.error
    assert f"resume the job to go on from row {rows + 1}" in failed.error, failed.error
    # what was committed is kept: a resume finishes from it
    assert (failed.chunks_done, failed.rows_done) == (chunks, rows)
    assert failed.finished_at is not None
    return failed


def test_a_job_that_kills_its_runner_on_every_claim_fails_after_max_attempts(
        sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, CSV)
    r = job_runner(sqlite, engine)
    assert r.max_attempts == MAX_ATTEMPTS == 5
    # the first run commits every chunk (progress), the five after it commit nothing
    crash_every_claim(r, engine, job, 1 + MAX_ATTEMPTS)
    # the next claim gives up: the job is not run again
    assert not r.run_one()
    check_given_up(r, job.id, MAX_ATTEMPTS, 3, 5)
    assert not r.run_one()  # and it stays failed
    # an explicit resume queues it again, counted from one, and it finishes from its chunks
    r.before_final = None
    assert r.store.resume(job.id).state == "queued"
    assert r.run_one()
    done = r.store.get(job.id)
    assert done.state == "done" and done.rows_done == 5 and done.error is None
    assert [row["name"] for row in result_rows(r, job.id)] == [f"n{i}" for i in range(5)]
    dispose_engines()


def test_a_run_that_commits_a_chunk_counts_again_from_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long job whose runner dies now and then, but makes progress each time, finishes."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home", chunk_size=1)
    engine = get_engine(settings)
    job = new_job(settings, engine, CSV)
    r = job_runner(settings, engine)
    r.max_attempts = 2
    commit = r._commit

    def commit_then_die(*args: Any) -> None:
        commit(*args)
        raise Crash("after the commit")

    monkeypatch.setattr(r, "_commit", commit_then_die)
    for k in range(5):  # one chunk per run, five runs: more than max_attempts
        with pytest.raises(Crash):
            r.run_one()
        assert r.store.get(job.id).chunks_done == k + 1
        expire_lease(engine, job.id)
    monkeypatch.setattr(r, "_commit", commit)
    assert r.run_one()
    assert r.store.get(job.id).state == "done"
    dispose_engines()


def test_a_runner_stopped_on_purpose_gives_its_attempt_back(sqlite: Settings) -> None:
    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, CSV)
    r = job_runner(sqlite, engine)
    r._stop.set()  # a graceful shutdown: it releases the job at its first chunk
    for _ in range(MAX_ATTEMPTS + 2):
        assert r.run_one()
        stopped = r.store.get(job.id)
        assert stopped.state == "running" and stopped.chunks_done == 0
    with engine.connect() as conn:
        a = server_job_attempts_table
        assert conn.execute(select(a.c.attempts).where(a.c.job_id == job.id)).scalar() == 0
    r._stop.clear()
    assert r.run_one()
    assert r.store.get(job.id).state == "done"
    dispose_engines()


KILL = textwrap.dedent("""
    import os, signal, sys
    from dncguard.config import load_settings
    from dncguard.server._checker import CheckerProvider
    from dncguard.server._jobs import JobRunner
    from dncguard.server._metrics import DecisionCounter, Metrics
    from dncguard.store import get_engine

    settings = load_settings(home=sys.argv[1], chunk_size=2)
    engine = get_engine(settings)
    r = JobRunner(settings, engine, CheckerProvider(settings, engine), DecisionCounter(engine),
                  Metrics(lambda: []), poll=0.1, lease=30)
    # killed in its first chunk, before it commits anything
    r._write_chunk = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
    r.run_one()
    sys.exit(3)  # not reached
""")


def test_kill_9_on_every_claim_fails_the_job(sqlite: Settings) -> None:
    """A real runner process, killed with SIGKILL mid-run each time it claims the job."""
    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, CSV)
    env = {**os.environ, "DNCGUARD_RULES_ENABLED": "false"}
    env.pop("DNCGUARD_HOME", None)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    for _ in range(2):
        killed = subprocess.run([sys.executable, "-c", KILL, str(sqlite.home)], env=env,
                                capture_output=True, text=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        assert r_state(engine, job.id) == "running"
        expire_lease(engine, job.id)
    r = job_runner(sqlite, engine)
    r.max_attempts = 2  # the limit of the runner that claims it next
    assert not r.run_one()
    check_given_up(r, job.id, 2, 0, 0)
    dispose_engines()


def r_state(engine: Engine, job_id: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(server_jobs_table.c.state).where(
            server_jobs_table.c.id == job_id)).scalar())


@pytest.mark.postgres
def test_postgres_a_job_that_crashes_every_claim_fails_and_resumes(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url, chunk_size=2)
    engine = get_engine(settings)
    metadata.create_all(engine)
    job = new_job(settings, engine, CSV)
    r = job_runner(settings, engine)
    r.max_attempts = 2
    crash_every_claim(r, engine, job, 3)
    assert not r.run_one()
    check_given_up(r, job.id, 2, 3, 5)
    # another replica, with a home of its own, finishes it from the database's copies
    other = job_runner(load_settings(home=tmp_path / "other", database_url=postgres_url,
                                     chunk_size=2), engine)
    other.store.resume(job.id)
    assert other.run_one()
    assert other.store.get(job.id).state == "done"
    assert [row["name"] for row in result_rows(other, job.id)] == [f"n{i}" for i in range(5)]
    dispose_engines()


def test_0012_is_additive_a_job_of_the_previous_revision_is_claimed_and_counted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database at 0011 with a job a replica of the previous version left running (no
    attempts row) upgrades to 0012 and the job is claimed and counted from one; a downgrade
    removes only the table."""
    from alembic import command

    from dncguard.migrations import alembic_config, upgrade

    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home", chunk_size=2)
    settings.home.mkdir(parents=True)
    engine = sa.create_engine(settings.db_url)
    upgrade(engine, "0011_attempt_subject_keys")
    assert "server_job_attempts" not in sa.inspect(engine).get_table_names()
    now = datetime(2026, 11, 26, 15, tzinfo=UTC)
    with engine.begin() as conn:  # as the previous version writes it
        conn.execute(sa.insert(server_jobs_table).values(
            id="a" * 32, state="running", created_at=now, updated_at=now, input_format="csv",
            params={"at": now.isoformat(), "campaign": "default", "defaults": {}},
            chunk_size=2, chunks_done=0, rows_done=0, counts={}, lease_owner="old",
            lease_until=datetime(2000, 1, 1, tzinfo=UTC)))
    upgrade(engine)
    engine.dispose()
    engine = get_engine(settings)
    folder = settings.home / "jobs" / ("a" * 32)
    folder.mkdir(parents=True)
    (folder / "input.csv").write_text(CSV, encoding="utf-8")
    r = job_runner(settings, engine)
    r.before_final = crash
    with pytest.raises(Crash):
        r.run_one()
    with engine.connect() as conn:
        a = server_job_attempts_table
        assert conn.execute(select(a.c.attempts).where(a.c.job_id == "a" * 32)).scalar() == 1
    dispose_engines()
    plain = sa.create_engine(settings.db_url)
    with plain.connect() as conn:
        command.downgrade(alembic_config(connection=conn), "0011_attempt_subject_keys")
        conn.commit()
    assert "server_job_attempts" not in sa.inspect(plain).get_table_names()
    assert "server_jobs" in sa.inspect(plain).get_table_names()
    plain.dispose()


def test_the_limit_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``DNCGUARD_SERVER_JOB_MAX_ATTEMPTS`` sets the service's runner's limit; 0 is refused."""
    from dncguard.server.app import create_app
    from dncguard.server.settings import ServerSettings

    monkeypatch.setenv("DNCGUARD_SERVER_JOB_MAX_ATTEMPTS", "2")
    settings = load_settings(home=tmp_path / "home")
    app = create_app(settings, no_auth=True)
    assert app.state.service.runner.max_attempts == 2
    monkeypatch.setenv("DNCGUARD_SERVER_JOB_MAX_ATTEMPTS", "0")
    with pytest.raises(Exception, match="job_max_attempts"):
        load_settings(home=tmp_path / "home").section(ServerSettings)


def test_a_job_paused_by_database_outages_is_not_given_up(
        sqlite: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stopped because the database went away is a pause, not a crash: more outages
    than ``max_attempts`` (the lease running out each time) still end with the job done."""
    from sqlalchemy.exc import OperationalError

    engine = get_engine(sqlite)
    job = new_job(sqlite, engine, CSV)
    r = job_runner(sqlite, engine)
    commit = r._commit
    outages = [MAX_ATTEMPTS + 2]

    def flaky(*args: Any) -> None:
        if outages[0]:
            outages[0] -= 1
            raise OperationalError("commit", {}, Exception("server closed the connection"))
        commit(*args)

    monkeypatch.setattr(r, "_commit", flaky)
    monkeypatch.setattr(r, "poll", 0.0)
    for _ in range(MAX_ATTEMPTS + 2):
        assert r.run_one()
        assert r.store.get(job.id).state == "running"
        expire_lease(engine, job.id)
    assert r.run_one()
    done = r.store.get(job.id)
    assert done.state == "done" and done.error is None, done
    dispose_engines()
