"""A job's verdicts reach the Prometheus decision and source-error counters, as checks' and
batches' do (they reached only /v1/metrics/summary, so an alert on source errors missed every
job)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import generate_latest

from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.server._checker import CheckerProvider
from dncguard.server._jobs import JobRunner, JobStore
from dncguard.server._metrics import DecisionCounter, Metrics
from dncguard.store import get_engine


def test_a_jobs_verdicts_are_counted_in_metrics(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    ListStore(settings).add_number("+12025550101", reason="asked")
    jobs = JobStore(settings, engine)
    job_id = jobs.new_id()
    jobs.folder(job_id).mkdir(parents=True)
    (jobs.folder(job_id) / "input.csv").write_text(
        "phone\n+12025550101\n+12025550102\n+12025550101\nnot a number\n")
    jobs.create(job_id, input_name="c.csv", input_format="csv", who="t", params={
        "at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(), "campaign": "default",
        "defaults": {}})
    metrics = Metrics(lambda: [])
    runner = JobRunner(settings, engine, CheckerProvider(settings, engine),
                       DecisionCounter(engine), metrics, poll=0.1, lease=30)
    assert runner.run_one()
    assert jobs.get(job_id).state == "done"
    text = generate_latest(metrics.registry).decode()
    # the internal list's number twice (the second a duplicate), the invalid row once
    assert 'dncguard_decisions_total{decision="block",reason="DNC_INTERNAL"} 2.0' in text
    assert 'dncguard_decisions_total{decision="invalid",reason="INVALID_NUMBER"} 1.0' in text
    assert "dncguard_job_rows_total 4.0" in text
