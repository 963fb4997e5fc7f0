"""The compliance report: numbers match the job summary; one file that opens offline."""

from __future__ import annotations

import re
from pathlib import Path

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit.jobs import record_job
from dncguard.audit.report import build_report, write_report

from .conftest import DemoJob


def _fields(html: str) -> dict[str, str]:
    return {m[0]: m[1] for m in re.findall(r'data-field="(\w+)"[^>]*>([^<]*)<', html)}


def _attr_counts(html: str, attr: str) -> dict[str, int]:
    return {k: int(v.replace(",", "")) for k, v in
            re.findall(rf'data-{attr}="([^"]+)">([\d,]+)<', html)}


def test_report_numbers_match_the_summary(log: AuditLog, demo_job: DemoJob,
                                          tmp_path: Path) -> None:
    job = new_job_id()
    record_job(log, job, demo_job.output, demo_job.summary, who="cli:alice")
    out = write_report(log, job, tmp_path / "report.html")
    html = out.read_text(encoding="utf-8")
    s = demo_job.summary
    f = _fields(html)
    assert int(f["totalRows"].replace(",", "")) == s.total_rows
    assert int(f["allowed"]) == s.by_decision["allow"]
    assert int(f["suppressed"]) == sum(s.by_decision[d] for d in ("block", "defer", "error"))
    assert int(f["invalid"]) == s.by_decision["invalid"]
    rate = re.search(r'data-field="suppressionRate" data-value="([^"]+)"', html)
    assert rate and float(rate[1]) == s.suppression_rate
    assert int(f["uniqueValid"]) == s.unique_valid and int(f["duplicates"]) == s.duplicates
    assert f["jobId"] == job and f["who"] == "cli:alice"
    assert _attr_counts(html, "decision") == s.by_decision
    assert _attr_counts(html, "reason") == s.by_reason
    assert _attr_counts(html, "list") == s.by_list
    suppressed_by_state = {st: sum(c.get(d, 0) for d in ("block", "defer", "error"))
                           for st, c in s.by_state.items()}
    assert _attr_counts(html, "state") == suppressed_by_state
    # charts agree with the tables
    reason_svg = re.search(r'<svg[^>]*id="chart-reason".*?</svg>', html, re.S)
    assert reason_svg is not None
    svg_counts = {k: int(v) for k, v in
                  re.findall(r'data-label="([^"]+)" data-value="(\d+)"', reason_svg[0])}
    assert svg_counts == s.by_reason
    # every list used, with its freshness, and the ruleset
    used = set(re.findall(r'data-list-used="([^"]+)"', html))
    assert used == set(s.lists)
    assert "us-ftc" in used and "2026-11-10" in html
    assert "Ruleset version" in html
    assert "chain intact" in f["chain"] and f["retained"] == "intact"


def test_report_is_self_contained_and_masks_numbers(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    record_job(log, job, demo_job.output, demo_job.summary)
    html = build_report(log, job, sample_size=20)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html
    assert not re.search(r'(src|href)\s*=\s*"(?!#)', html)  # nothing to fetch
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert html.count("<svg") == 4
    rows = re.findall(r'<tr data-row="(\d+)"', html)
    assert len(rows) == 20
    assert "+1202555****" in html
    assert not re.search(r"\+1\d{10}\b", html)  # no full NANP number anywhere
    assert "555-0100" not in html and "Ada" not in html  # no input columns


def test_report_flags_stale_lists(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    summary = demo_job.summary.model_copy(update={"lists": {"us-ftc": "2026-09-01",
                                                            "internal": None}})
    record_job(log, job, demo_job.output, summary)
    html = build_report(log, job)
    assert re.search(r'us-ftc</td><td>2026-09-01</td><td class="n">79</td><td><span '
                     r'class="stale">', html)
    assert "undated" in html
