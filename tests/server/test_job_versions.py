"""A job whose chunks ran with different versions of a list names every version in its
summary and audit record, with the rows that used each: never the last one alone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dncguard import audit
from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.server._checker import CheckerProvider
from dncguard.server._jobs import JobRunner, JobStore
from dncguard.server._metrics import DecisionCounter, Metrics
from dncguard.store import get_engine


def test_every_list_version_a_job_used_is_recorded(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_CHUNK_SIZE", "2")
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("2025550101\n")
    second.write_text("2025550199\n")
    ListStore(settings).import_file(first, kind="national", name="us-ftc", jurisdiction="US",
                                    snapshot_date=date(2026, 11, 20))
    jobs = JobStore(settings, engine)
    job_id = jobs.new_id()
    jobs.folder(job_id).mkdir(parents=True)
    (jobs.folder(job_id) / "input.csv").write_text(
        "phone\n+12025550101\n+12025550102\n+12025550103\n+12025550199\n")
    jobs.create(job_id, input_name="c.csv", input_format="csv", who="t", params={
        "at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(), "campaign": "default",
        "defaults": {}})
    runner = JobRunner(settings, engine, CheckerProvider(settings, engine),
                       DecisionCounter(engine), Metrics(lambda: []), poll=0.1, lease=30)
    commit = runner._commit

    def then_a_new_snapshot(job: str, k: int, rows_done: int, counts: object) -> None:
        commit(job, k, rows_done, counts)  # type: ignore[arg-type]
        if k == 0:  # a new registry snapshot arrives while the job runs
            ListStore(settings).import_file(second, kind="national", name="us-ftc",
                                            jurisdiction="US", snapshot_date=date(2026, 11, 25))

    monkeypatch.setattr(runner, "_commit", then_a_new_snapshot)
    assert runner.run_one()
    assert jobs.get(job_id).state == "done"
    assert jobs.results_path(job_id).read_text().splitlines()[-1].split(",")[2] == "block"
    record = audit.audit_log(settings).find("job", job_id)
    assert record is not None
    assert record.versions["lists"] == {"us-ftc": "2026-11-20, 2026-11-25"}
    summary = record.data["summary"]
    assert summary["lists"] == {"us-ftc": "2026-11-20, 2026-11-25"}
    assert ("us-ftc changed while the job ran: rows 1-2 used 2026-11-20; rows 3-4 used "
            "2026-11-25") in summary["warnings"]


def test_an_opt_out_added_while_a_job_runs_is_a_version_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The internal list has no snapshot date: its version was null, so an opt-out added
    between two chunks changed what the later chunk was checked against while the summary
    and the audit record said nothing. Its version is now
    its last change, and the job names both."""
    monkeypatch.setenv("DNCGUARD_CHUNK_SIZE", "2")
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    store = ListStore(settings)
    store.add_number("+12025550150", reason="first")
    jobs = JobStore(settings, engine)
    job_id = jobs.new_id()
    jobs.folder(job_id).mkdir(parents=True)
    (jobs.folder(job_id) / "input.csv").write_text(
        "phone\n+12025550101\n+12025550102\n+12025550103\n+12025550104\n")
    jobs.create(job_id, input_name="c.csv", input_format="csv", who="t", params={
        "at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(), "campaign": "default",
        "defaults": {}})
    runner = JobRunner(settings, engine, CheckerProvider(settings, engine),
                       DecisionCounter(engine), Metrics(lambda: []), poll=0.1, lease=30)
    commit = runner._commit

    def then_an_opt_out(job: str, k: int, rows_done: int, counts: object) -> None:
        commit(job, k, rows_done, counts)  # type: ignore[arg-type]
        if k == 0:
            store.add_number("+12025550104", reason="asked on call")

    monkeypatch.setattr(runner, "_commit", then_an_opt_out)
    assert runner.run_one()
    decisions = [line.split(",")[2] for line in
                 jobs.results_path(job_id).read_text().splitlines()[1:]]
    assert decisions == ["allow", "allow", "allow", "block"]
    record = audit.audit_log(settings).find("job", job_id)
    assert record is not None
    first, second = (v.strip() for v in record.versions["lists"]["internal"].split(","))
    assert first < second and first.endswith("Z")
    assert any(w.startswith("internal changed while the job ran: rows 1-2 used ")
               for w in record.data["summary"]["warnings"])


def test_a_list_imported_while_a_job_runs_names_the_rows_checked_without_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A list that arrived after the first chunk was named as used for every row, with no
    warning, while the rows before it were allowed without it."""
    monkeypatch.setenv("DNCGUARD_CHUNK_SIZE", "2")
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    store = ListStore(settings)
    store.add_number("+12025550150", reason="first")
    late = tmp_path / "late.txt"
    late.write_text("2025550101\n")
    jobs = JobStore(settings, engine)
    job_id = jobs.new_id()
    jobs.folder(job_id).mkdir(parents=True)
    (jobs.folder(job_id) / "input.csv").write_text(
        "phone\n+12025550101\n+12025550102\n+12025550103\n+12025550104\n")
    jobs.create(job_id, input_name="c.csv", input_format="csv", who="t", params={
        "at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(), "campaign": "default",
        "defaults": {}})
    runner = JobRunner(settings, engine, CheckerProvider(settings, engine),
                       DecisionCounter(engine), Metrics(lambda: []), poll=0.1, lease=30)
    commit = runner._commit

    def then_a_new_list(job: str, k: int, rows_done: int, counts: object) -> None:
        commit(job, k, rows_done, counts)  # type: ignore[arg-type]
        if k == 0:
            store.import_file(late, kind="litigator", name="late-list")

    monkeypatch.setattr(runner, "_commit", then_a_new_list)
    assert runner.run_one()
    record = audit.audit_log(settings).find("job", job_id)
    assert record is not None
    warnings = record.data["summary"]["warnings"]
    assert any(w.startswith("late-list changed while the job ran: rows 1-2 were checked "
                            "without it; rows 3-4 used ") for w in warnings), warnings
    assert not any(w.startswith("internal changed") for w in warnings)
