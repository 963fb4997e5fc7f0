"""``dncguard audit ...`` and ``dncguard report`` through the command line."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit._jobs import record_job
from dncguard.audit.tables import audit_records_table
from dncguard.cli._audit import audit_app, report

from .conftest import DemoJob, FakeClock, Receiver, make_log

app = typer.Typer()
app.add_typer(audit_app, name="audit")
app.command("report")(report)
runner = CliRunner()


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "test-key")


def _filled(log: AuditLog, clock: FakeClock, demo: DemoJob) -> str:
    for i in range(4):
        log.append("list", "add", who="cli:bob", subject="internal", number=f"+1202555010{i}")
        clock.advance(days=1)
    job = new_job_id(clock.now)
    record_job(log, job, demo.output, demo.summary, who="cli:bob")
    return job


def test_verify_ok_and_tampered(log: AuditLog, clock: FakeClock, demo_job: DemoJob) -> None:
    _filled(log, clock, demo_job)
    res = runner.invoke(app, ["audit", "verify"])
    assert res.exit_code == 0 and "chain intact" in res.output
    target = [r.seq for r in log.records() if r.who == "cli:bob"][1]
    with log.engine.begin() as conn:
        conn.execute(update(audit_records_table).where(audit_records_table.c.seq == target)
                     .values(who="mallory"))
    res = runner.invoke(app, ["audit", "verify", "--json"])
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["badRecord"] == target and out["problem"] == "edited"


def test_export_ndjson_and_csv(log: AuditLog, clock: FakeClock, demo_job: DemoJob,
                               tmp_path: Path) -> None:
    _filled(log, clock, demo_job)
    out = tmp_path / "a.ndjson"
    res = runner.invoke(app, ["audit", "export", "-o", str(out)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["seq"] for x in lines] == [r.seq for r in log.records()]
    ours = [x["seq"] for x in lines if x["who"] == "cli:bob"]
    assert len(ours) == 5
    assert "2025550100" not in out.read_text()
    since = (clock.now - timedelta(days=3)).isoformat()
    until = (clock.now - timedelta(days=1)).date().isoformat()
    out2 = tmp_path / "b.txt"
    res = runner.invoke(app, ["audit", "export", "--since", since, "--until", until,
                              "--format", "csv", "-o", str(out2)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out2.open()))
    assert [int(r["seq"]) for r in rows] == ours[1:3]
    assert rows[0]["number_masked"] == "+1202555****"
    res = runner.invoke(app, ["audit", "export", "--since", "yesterday", "-o", str(out2)])
    assert res.exit_code != 0


def test_prove_and_report(log: AuditLog, clock: FakeClock, demo_job: DemoJob,
                          tmp_path: Path) -> None:
    job = _filled(log, clock, demo_job)
    res = runner.invoke(app, ["audit", "prove", job, "3", "-o", str(tmp_path / "p.json")])
    assert res.exit_code == 0, res.output
    proof = json.loads((tmp_path / "p.json").read_text())
    assert proof["row"] == 3 and proof["record"]["seq"] == log.head()[0]
    res = runner.invoke(app, ["audit", "jobs"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and job in res.output.replace("\n", "").replace(" ", "")
    html = tmp_path / "report.html"
    res = runner.invoke(app, ["report", job, "-o", str(html)])
    assert res.exit_code == 0, res.output
    assert "Compliance report" in html.read_text()
    res = runner.invoke(app, ["report", "job-missing", "-o", str(html)])
    assert res.exit_code != 0


def test_outbox_and_prune(settings: object, clock: FakeClock, demo_job: DemoJob,
                          receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_URL", receiver.url)
    log = make_log(demo_job.scrubber.settings, clock, export_url=receiver.url,
                   checkpoint_interval=2)
    _filled(log, clock, demo_job)
    res = runner.invoke(app, ["audit", "outbox", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["pending"] == 1
    assert '"pending": 1,' in res.stdout  # a count, not 1.0
    res = runner.invoke(app, ["audit", "outbox", "--deliver"])
    assert res.exit_code == 0 and "delivered 1" in res.output, res.output
    assert len(receiver.bodies) == 1
    res = runner.invoke(app, ["audit", "prune", "--dry-run"])
    assert res.exit_code == 0 and "nothing to prune" in res.output
    # The demo's list imports (records 1 to 11) were recorded today, before the checkpoints:
    # a prune never deletes a record newer than the cutoff, so nothing goes
    # (tests/audit/test_audit_review_chain.py prunes through the command line)
    res = runner.invoke(app, ["audit", "prune", "--retention-days", "1"])
    assert res.exit_code == 0 and "nothing to prune" in res.output, res.output
    assert log.count() == 16
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
