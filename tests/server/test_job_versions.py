"""A job whose chunks ran with different versions of a list names every version in its
summary and audit record, with the rows that used each: never the last one alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dncguard import audit
from dncguard.config import Settings, load_settings
from dncguard.lists.store import ListStore
from dncguard.server._jobs import JobStore
from dncguard.store import get_engine

from .conftest import job_runner, new_job


def _run_job(settings: Settings, csv_text: str, after_first_chunk: Callable[[], None],
             monkeypatch: pytest.MonkeyPatch) -> tuple[JobStore, str, dict[str, Any]]:
    """Run a job of two-row chunks, calling ``after_first_chunk`` once the first chunk is
    committed: (the job store, the job's id, its audit record's data and versions)."""
    engine = get_engine(settings)
    job = new_job(settings, engine, csv_text)
    runner = job_runner(settings, engine)
    commit = runner._commit

    def then(job_id: str, k: int, rows_done: int, counts: object) -> None:
        commit(job_id, k, rows_done, counts)  # type: ignore[arg-type]
        if k == 0:
            after_first_chunk()

    monkeypatch.setattr(runner, "_commit", then)
    assert runner.run_one()
    jobs = JobStore(settings, engine)
    assert jobs.get(job.id).state == "done"
    record = audit.audit_log(settings).find("job", job.id)
    assert record is not None
    return jobs, job.id, {"versions": record.versions, **record.data}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_CHUNK_SIZE", "2")
    return load_settings(home=tmp_path / "home")


def test_every_list_version_a_job_used_is_recorded(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("2025550101\n")
    second.write_text("2025550199\n")
    ListStore(settings).import_file(first, kind="national", name="us-ftc", jurisdiction="US",
                                    snapshot_date=date(2026, 11, 20))

    def a_new_snapshot() -> None:  # a new registry snapshot arrives while the job runs
        ListStore(settings).import_file(second, kind="national", name="us-ftc",
                                        jurisdiction="US", snapshot_date=date(2026, 11, 25))

    jobs, job_id, record = _run_job(
        settings, "phone\n+12025550101\n+12025550102\n+12025550103\n+12025550199\n",
        a_new_snapshot, monkeypatch)
    assert jobs.results_path(job_id).read_text().splitlines()[-1].split(",")[2] == "block"
    assert record["versions"]["lists"] == {"us-ftc": "2026-11-20, 2026-11-25"}
    summary = record["summary"]
    assert summary["lists"] == {"us-ftc": "2026-11-20, 2026-11-25"}
    assert ("us-ftc changed while the job ran: rows 1-2 used 2026-11-20; rows 3-4 used "
            "2026-11-25") in summary["warnings"]


def test_an_opt_out_added_while_a_job_runs_is_a_version_of_its_own(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The internal list has no snapshot date: its version was null, so an opt-out added
    between two chunks changed what the later chunk was checked against while the summary
    and the audit record said nothing. Its version is now its last change, and the job
    names both."""
    store = ListStore(settings)
    store.add_number("+12025550150", reason="first")
    jobs, job_id, record = _run_job(
        settings, "phone\n+12025550101\n+12025550102\n+12025550103\n+12025550104\n",
        lambda: store.add_number("+12025550104", reason="asked on call"), monkeypatch)
    decisions = [line.split(",")[2] for line in
                 jobs.results_path(job_id).read_text().splitlines()[1:]]
    assert decisions == ["allow", "allow", "allow", "block"]
    first, second = (v.strip() for v in record["versions"]["lists"]["internal"].split(","))
    assert first < second and first.endswith("Z")
    assert any(w.startswith("internal changed while the job ran: rows 1-2 used ")
               for w in record["summary"]["warnings"])


def test_a_list_imported_while_a_job_runs_names_the_rows_checked_without_it(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A list that arrived after the first chunk was named as used for every row, with no
    warning, while the rows before it were allowed without it."""
    store = ListStore(settings)
    store.add_number("+12025550150", reason="first")
    late = tmp_path / "late.txt"
    late.write_text("2025550101\n")
    _, _, record = _run_job(
        settings, "phone\n+12025550101\n+12025550102\n+12025550103\n+12025550104\n",
        lambda: store.import_file(late, kind="litigator", name="late-list"), monkeypatch)
    warnings = record["summary"]["warnings"]
    assert any(w.startswith("late-list changed while the job ran: rows 1-2 were checked "
                            "without it; rows 3-4 used ") for w in warnings), warnings
    assert not any(w.startswith("internal changed") for w in warnings)
