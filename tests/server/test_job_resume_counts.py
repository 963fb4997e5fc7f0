"""A job resumed after a crash counts ``uniqueSuppressed`` as the same job run in one go: a
number allowed in a committed chunk and deferred in a later one is suppressed (a resumed run
took every number of the committed chunks as counted, and missed it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dncguard.config import load_settings
from dncguard.server._jobs import JobStore
from dncguard.store import get_engine

from .conftest import job_runner, new_job

# one number: allowed in New York at 10:00 (chunk 0), deferred in Honolulu at 05:00 (chunk 1)
CSV = ("phone,timezone\n+12025550100,America/New_York\n+12025550101,America/New_York\n"
       "+12025550100,Pacific/Honolulu\n+12025550102,America/New_York\n")


def _summary(home: Path, monkeypatch: pytest.MonkeyPatch, *, crash: bool) -> dict[str, Any]:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    settings = load_settings(home=home, chunk_size=2)
    engine = get_engine(settings)
    job = new_job(settings, engine, CSV)
    runner = job_runner(settings, engine)
    if crash:
        commit = runner._commit

        def then_crash(job_id: str, k: int, rows_done: int, counts: object) -> None:
            commit(job_id, k, rows_done, counts)  # type: ignore[arg-type]
            if k == 0:
                raise RuntimeError("the process dies after chunk 0")

        monkeypatch.setattr(runner, "_commit", then_crash)
        runner.run_one()
        store = JobStore(settings, engine)
        assert store.get(job.id).chunks_done == 1
        store.resume(job.id)
        runner = job_runner(settings, engine)
    assert runner.run_one()
    store = JobStore(settings, engine)
    done = store.get(job.id)
    assert done.state == "done"
    return store.summary(done)


def test_a_resumed_job_counts_suppressed_numbers_as_one_run_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _summary(tmp_path / "whole", monkeypatch, crash=False)
    resumed = _summary(tmp_path / "resumed", monkeypatch, crash=True)
    assert whole["byDecision"] == resumed["byDecision"]
    assert whole["byDecision"]["defer"] == 1
    assert (whole["uniqueSuppressed"], resumed["uniqueSuppressed"]) == (1, 1)
    assert whole["suppressionRate"] == resumed["suppressionRate"]
