"""A job's verdicts reach the Prometheus decision and source-error counters, as checks' and
batches' do (they reached only /v1/metrics/summary, so an alert on source errors missed every
job)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import generate_latest

from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.server._jobs import JobStore
from dncguard.store import get_engine

from .conftest import job_runner, new_job


def test_a_jobs_verdicts_are_counted_in_metrics(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    ListStore(settings).add_number("+12025550101", reason="asked")
    job = new_job(settings, engine,
                  "phone\n+12025550101\n+12025550102\n+12025550101\nnot a number\n")
    runner = job_runner(settings, engine)
    assert runner.run_one()
    assert JobStore(settings, engine).get(job.id).state == "done"
    text = generate_latest(runner.metrics.registry).decode()
    # the internal list's number twice (the second a duplicate), the invalid row once
    assert 'dncguard_decisions_total{decision="block",reason="DNC_INTERNAL"} 2.0' in text
    assert 'dncguard_decisions_total{decision="invalid",reason="INVALID_NUMBER"} 1.0' in text
    assert "dncguard_job_rows_total 4.0" in text
