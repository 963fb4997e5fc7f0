"""The compliance report after the settings review: it shows the job's warnings, judges each
version of a list that changed while the job ran, does not guess the kind of a list removed
since (nor calls an undated list's last change a stale snapshot), and says MISSING of a
retained results file deleted since."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path

import pytest

from dncguard import audit
from dncguard.audit import AuditLog, new_job_id
from dncguard.audit._jobs import record_job
from dncguard.audit.report import build_report
from dncguard.config import Settings, load_settings
from dncguard.lists.store import ListStore
from dncguard.server._checker import CheckerProvider
from dncguard.server._jobs import JobRunner, JobStore
from dncguard.server._metrics import DecisionCounter, Metrics
from dncguard.store import get_engine

from .conftest import DemoJob

DIAL = datetime(2026, 11, 26, 15, tzinfo=UTC)


def _fields(html: str) -> dict[str, str]:
    return {m[0]: unescape(m[1]) for m in re.findall(r'data-field="(\w+)"[^>]*>([^<]*)<', html)}


def _used(html: str, name: str) -> list[list[str]]:
    """The freshness table's lines of list ``name``, each as its cells' text."""
    lines = re.findall(rf'<tr><td data-list-used="{re.escape(name)}">.*?</tr>', html)
    return [[unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
            for r in lines]


def _run_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             between: Callable[[ListStore], object]) -> tuple[Settings, str]:
    """A four-row server job in chunks of two; ``between`` runs after the first chunk."""
    monkeypatch.setenv("DNCGUARD_CHUNK_SIZE", "2")
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    store = ListStore(settings)
    old = tmp_path / "old.txt"
    old.write_text("2025550199\n")
    store.import_file(old, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date(2026, 10, 20))  # 37 days old at the dial time
    jobs = JobStore(settings, engine)
    job_id = jobs.new_id()
    jobs.folder(job_id).mkdir(parents=True)
    (jobs.folder(job_id) / "input.csv").write_text(
        "phone\n+12025550101\n+12025550102\n+12025550103\n+12025550199\n")
    jobs.create(job_id, input_name="c.csv", input_format="csv", who="t", params={
        "at": DIAL.isoformat(), "campaign": "default", "defaults": {}})
    runner = JobRunner(settings, engine, CheckerProvider(settings, engine),
                       DecisionCounter(engine), Metrics(lambda: []), poll=0.1, lease=30)
    commit = runner._commit

    def then(job: str, k: int, rows_done: int, counts: object) -> None:
        commit(job, k, rows_done, counts)  # type: ignore[arg-type]
        if k == 0:
            between(store)

    monkeypatch.setattr(runner, "_commit", then)
    assert runner.run_one()
    assert jobs.get(job_id).state == "done"
    return settings, job_id


def _new_snapshot(tmp_path: Path) -> Callable[[ListStore], object]:
    new = tmp_path / "new.txt"
    new.write_text("2025550199\n")
    return lambda store: store.import_file(new, kind="national", name="us-ftc",
                                           jurisdiction="US", snapshot_date=date(2026, 11, 25))


def test_the_jobs_warnings_are_shown_before_the_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, job_id = _run_job(tmp_path, monkeypatch, _new_snapshot(tmp_path))
    warning = ("us-ftc changed while the job ran: rows 1-2 used 2026-10-20; rows 3-4 used "
               "2026-11-25")
    rec = audit.audit_log(settings).find("job", job_id)
    assert rec is not None and rec.data["summary"]["warnings"] == [warning]
    html = build_report(audit.audit_log(settings), job_id)
    box = re.search(r'<div class="alert" id="warnings">.*?</div>', html, re.S)
    assert box is not None, "the warnings are not shown"
    assert unescape(re.sub(r"<[^>]+>", "", box[0])).count(warning) == 1
    assert html.index('id="warnings"') < html.index("<h2>Job</h2>")
    assert _fields(html)["warningCount"] == "1"


def test_an_earlier_verdict_replaced_is_a_warning_of_the_report(
        settings: Settings, log: AuditLog, demo_job: DemoJob, tmp_path: Path) -> None:
    again = tmp_path / "again.csv"
    summary = demo_job.scrubber.scrub_file(demo_job.output, again, at=demo_job.summary.dial_time)
    assert summary.warnings and "those columns were replaced" in summary.warnings[0]
    job = new_job_id()
    record_job(log, job, again, summary)
    html = unescape(build_report(log, job))
    items = re.findall(r'<li data-warning="\d+">(.*?)</li>', html)
    assert items == summary.warnings
    assert _fields(build_report(log, job))["warningCount"] == str(len(summary.warnings))


def test_each_version_of_a_list_that_changed_while_the_job_ran_is_judged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, job_id = _run_job(tmp_path, monkeypatch, _new_snapshot(tmp_path))
    html = build_report(audit.audit_log(settings), job_id)
    lines = _used(html, "us-ftc")
    assert len(lines) == 2, lines
    (v1, age1, status1, max1, _, rows1), (v2, age2, status2, max2, _, rows2) = (
        line[1:] for line in lines)
    assert (v1, age1, status1, max1, rows1) == ("2026-10-20", "37", "stale (6 days over)",
                                                "31", "rows 1-2")
    assert (v2, age2, status2, max2, rows2) == ("2026-11-25", "1", "current", "31", "rows 3-4")
    assert "no readable snapshot date" not in html


def test_a_list_imported_while_the_job_ran_names_the_rows_checked_without_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    late = tmp_path / "late.txt"
    late.write_text("2025550101\n")
    settings, job_id = _run_job(
        tmp_path, monkeypatch,
        lambda store: store.import_file(late, kind="litigator", name="late-list"))
    rec = audit.audit_log(settings).find("job", job_id)
    assert rec is not None
    version = rec.versions["lists"]["late-list"]
    assert version.endswith("Z")  # an undated list's last change
    html = build_report(audit.audit_log(settings), job_id)
    (line,) = _used(html, "late-list")
    assert line[1] == f"last change {version}"
    assert line[3].startswith("undated: this version is its last change")
    assert line[4] == ""  # no maximum age
    assert line[6] == "rows 3-4; rows 1-2 were checked without it"
    assert _used(html, "us-ftc")[0][6] == "all"


def test_a_removed_list_is_judged_by_its_last_import_in_the_trail(
        settings: Settings, log: AuditLog, demo_job: DemoJob) -> None:
    """A list removed since the job is judged by the kind and jurisdiction its last import
    recorded in the audit trail, and says when it was removed; one the trail holds no import
    of is not judged by a guess. (They were judged as national lists once: the litigator
    list 'stale (no readable snapshot date), max 31'; then not judged at all.)"""
    lists = demo_job.summary.lists
    assert lists["litigators"] and "T" in str(lists["litigators"])
    assert lists["ca-dncl"] == "2026-11-10"
    job = new_job_id()
    summary = demo_job.summary.model_copy(deep=True)
    summary.lists["ghost"] = "2026-11-01"  # a list the trail has no import of
    record_job(log, job, demo_job.output, summary)
    store = ListStore(settings)
    store.remove_list("litigators", who="cli:alice")
    store.remove_list("ca-dncl", who="cli:alice")
    html = unescape(build_report(log, job))
    (litigators,) = _used(html, "litigators")
    (registry,) = _used(html, "ca-dncl")
    (ghost,) = _used(html, "ghost")
    assert litigators[1] == f"last change {lists['litigators']}"
    assert litigators[3].startswith("undated: this version is its last change")
    assert "removed since the job on " in litigators[3] and "by cli:alice" in litigators[3]
    assert litigators[4] == litigators[5] == ""  # undated: no maximum
    assert registry[1:3] == ["2026-11-10", "9"]  # the recorded date, and its age
    assert registry[3].startswith("current; removed since the job on ")
    assert "its last import in the audit trail (record " in registry[3]
    assert registry[4] == "31"  # CA's DNCL rule, as the import recorded it
    assert ghost[3].startswith("removed since the job: its kind and jurisdiction are not "
                               "known") and ghost[4] == ""
    # a list still there is judged as before
    (ftc,) = _used(html, "us-ftc")
    assert ftc[3] == "current" and ftc[4] == "31"


def test_a_deleted_retained_results_file_is_missing(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    record_job(log, job, demo_job.output, demo_job.summary)
    rec = log.find("job", job)
    assert rec is not None
    retained = rec.data["results"]["retained"]
    (log.settings.home / retained).unlink()
    html = build_report(log, job)
    fact = re.search(r'data-field="retained"( class="warn")?>([^<]*)<', html)
    assert fact is not None
    assert fact[1], "not in the warning style"
    assert unescape(fact[2]).startswith(f"MISSING: {retained} was retained when the job was "
                                        "recorded and is gone")
    assert "No row can be shown: the retained results file is MISSING" in unescape(html)
    assert "<tr data-row=" not in html
