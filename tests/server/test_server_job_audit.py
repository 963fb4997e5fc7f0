"""A job is ``done`` only in the transaction that writes its audit record.

The runner is driven step by step (claim, run) on a real SQLite file; a crash is a real
SIGKILL of a subprocess at the hook between the results commit and that transaction. The
lease a dead runner leaves is expired by editing it, standing in for the time passing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from dncguard import audit
from dncguard.config import Settings, load_settings
from dncguard.server._jobs import JobInfo, JobRunner, JobStore
from dncguard.server.tables import server_jobs_table
from dncguard.store import dispose_engines, get_engine

from .conftest import job_runner, new_job


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home")


def runner(settings: Settings, engine: Engine) -> JobRunner:
    return job_runner(settings, engine)


def run_once(r: JobRunner) -> JobInfo:
    job = r._claim()
    assert job is not None
    r._run(job)
    return r.store.get(job.id)


def step(r: JobRunner, job_id: str) -> JobInfo:
    """One pass of the runner's loop (claim, run, and its handling of failures)."""
    assert r.run_one()
    return r.store.get(job_id)


def expire_leases(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(server_jobs_table).values(
            lease_until=datetime(2000, 1, 1, tzinfo=UTC)))


CSV = "phone,name\n+12025550101,a\n+12025550102,b\n+12025550101,c\n"


def test_job_whose_record_fails_is_failed_then_resumes_to_done(settings: Settings) -> None:
    engine = get_engine(settings)
    job = new_job(settings, engine, CSV)
    log = audit.audit_log(settings)
    # the record's retained copy cannot be made: a file where its folder must go
    blocker = log.folder / "jobs" / job.id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")
    r = runner(settings, engine)
    assert r.run_one()
    failed = r.store.get(job.id)
    assert failed.state == "failed"
    assert (failed.error or "").startswith("JobAuditError: the audit record could not be written")
    assert failed.rows_done == 3 and log.find("job", job.id) is None
    blocker.unlink()
    assert r.store.resume(job.id).state == "queued"
    done = run_once(r)
    assert done.state == "done" and done.error is None and done.rows_done == 3
    rec = log.find("job", job.id)
    assert rec is not None and rec.data["results"]["rows"] == 3
    assert log.verify().ok
    dispose_engines()


def test_job_stays_running_while_the_audit_trail_refuses_writes(settings: Settings) -> None:
    import sqlite3

    engine = get_engine(settings)
    job = new_job(settings, engine, CSV)
    log = audit.audit_log(settings)
    db = settings.home / "dncguard.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TRIGGER ro BEFORE INSERT ON audit_records "
                  "BEGIN SELECT RAISE(ABORT, 'readonly'); END")
    r = runner(settings, engine)
    paused = step(r, job.id)  # the final transaction fails: the job is paused, not done
    assert paused.state == "running" and paused.rows_done == 3
    assert log.find("job", job.id) is None
    with sqlite3.connect(db) as c:
        c.execute("DROP TRIGGER ro")
    expire_leases(engine)
    done = run_once(r)
    assert done.state == "done" and log.find("job", job.id) is not None
    dispose_engines()


def test_long_cell_is_recorded(settings: Settings) -> None:
    """A 9 MiB cell used to fail the record (pyarrow's block size) and leave the job done."""
    engine = get_engine(settings)
    big = "x" * (9 << 20)
    job = new_job(settings, engine, f"phone,note\n+12025550101,{big}\n+12025550102,y\n")
    done = run_once(runner(settings, engine))
    assert done.state == "done"
    rec = audit.audit_log(settings).find("job", job.id)
    assert rec is not None and rec.data["results"]["rows"] == 2
    dispose_engines()


CRASH = textwrap.dedent("""
    import os, signal, sys
    from dncguard.config import load_settings
    from dncguard.server._checker import CheckerProvider
    from dncguard.server._jobs import JobRunner
    from dncguard.server._metrics import DecisionCounter, Metrics
    from dncguard.store import get_engine

    settings = load_settings(home=sys.argv[1])
    engine = get_engine(settings)
    r = JobRunner(settings, engine, CheckerProvider(settings, engine), DecisionCounter(engine),
                  Metrics(lambda: []), poll=0.1, lease=30)
    r.before_final = lambda job_id: os.kill(os.getpid(), signal.SIGKILL)
    job = r._claim()
    r._run(job)
    sys.exit(3)  # not reached
""")


def test_kill_between_results_and_record_resumes_to_done(settings: Settings) -> None:
    engine = get_engine(settings)
    job = new_job(settings, engine, CSV)
    env = {**os.environ, "DNCGUARD_RULES_ENABLED": "false"}
    env.pop("DNCGUARD_HOME", None)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", CRASH, str(settings.home)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    store = JobStore(settings, engine)
    crashed = store.get(job.id)
    # every chunk and the results file were committed, the record and "done" were not
    assert crashed.state == "running" and crashed.rows_done == 3
    assert store.results_path(job.id).is_file()
    log = audit.audit_log(settings)
    assert log.find("job", job.id) is None
    expire_leases(engine)  # the dead runner's lease runs out
    resumed = run_once(runner(settings, engine))
    assert resumed.state == "done" and resumed.rows_done == 3
    rec = log.find("job", job.id)
    assert rec is not None and rec.data["results"]["rows"] == 3
    assert log.verify().ok and log.count() == 1
    dispose_engines()
