"""The compliance report: numbers match the job summary; one file that opens offline."""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit._jobs import record_job
from dncguard.audit.report import build_report, code_decision, short_detail, write_report
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.engine.summary import ScrubSummary
from dncguard.lists.store import ListStore

from .conftest import T0, DemoJob, make_log


def _fields(html: str) -> dict[str, str]:
    return {m[0]: m[1] for m in re.findall(r'data-field="(\w+)"[^>]*>([^<]*)<', html)}


def _attr_counts(html: str, attr: str) -> dict[str, int]:
    return {k: int(v.replace(",", "")) for k, v in
            re.findall(rf'data-{attr}="([^"]+)">([\d,]+)<', html)}


def _svg(html: str, chart_id: str) -> str:
    svg = re.search(rf'<svg[^>]*id="{chart_id}".*?</svg>', html, re.S)
    assert svg is not None, chart_id
    return svg[0]


def _svg_counts(html: str, chart_id: str) -> dict[str, int]:
    return {k: int(v) for k, v in
            re.findall(r'data-label="([^"]+)" data-value="(\d+)"', _svg(html, chart_id))}


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
    assert int(f["suppressed"]) == s.by_decision["block"] + s.by_decision["defer"]
    assert int(f["notVerified"]) == int(f["notVerifiedRows"]) == s.by_decision["error"]
    assert int(f["invalid"]) == s.by_decision["invalid"]
    rate = re.search(r'data-field="suppressionRate" data-value="([^"]+)"', html)
    assert rate and float(rate[1]) == s.suppression_rate
    assert int(f["uniqueValid"]) == s.unique_valid and int(f["duplicates"]) == s.duplicates
    assert int(f["uniqueSuppressed"]) == s.unique_suppressed
    assert f["jobId"] == job and f["who"] == "cli:alice"
    assert f["consistency"].startswith("all counts agree")
    assert _attr_counts(html, "decision") == s.by_decision
    assert _attr_counts(html, "reason") == s.by_reason
    assert _attr_counts(html, "list") == s.by_list
    suppressed_by_state = {st: c.get("block", 0) + c.get("defer", 0)
                           for st, c in s.by_state.items()}
    assert _attr_counts(html, "state") == suppressed_by_state
    # the suppression chart shows the codes that block or defer on their own
    assert _svg_counts(html, "chart-reason") == {
        code: n for code, n in s.by_reason.items()
        if code_decision(code) in ("block", "defer")}
    assert _svg_counts(html, "chart-decision") == s.by_decision
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
    assert html.count("<svg") == 4  # decisions, reasons, lists, states (no error)
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


# -- rows not verified: counted apart from suppression, by cause, each fix once ------------------


@dataclass
class ErrorJob:
    log: AuditLog
    job: str
    output: Path
    summary: ScrubSummary


def _error_job(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               **audit: Any) -> ErrorJob:
    """A job with the rules on whose rows are blocked, deferred, allowed, invalid and not
    verified for several causes: Florida's and Australia's required registries are not loaded
    (REGISTRY_MISSING), the Texas list is too old (REGISTRY_STALE), a state is not understood
    (CONTEXT_INVALID)."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    store = ListStore(settings)
    ftc = tmp_path / "ftc.txt"
    # a US national list covers the area codes it holds: one number (not a contact's) of
    # each other area code the contacts use
    ftc.write_text("2025550100\n3055550150\n3125550199\n5125550199\n4155550199\n",
                   encoding="utf-8")
    store.import_file(ftc, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date(2026, 11, 10), who="test")
    tx = tmp_path / "tx.txt"
    tx.write_text("5125550160\n", encoding="utf-8")
    store.import_file(tx, kind="state", name="us-tx", jurisdiction="US-TX",
                      snapshot_date=date(2026, 6, 1), who="test")  # 171 days old; TX allows 152
    store.add_number("+13125550166", list_name="internal", reason="asked", who="test")
    contacts = tmp_path / "contacts.csv"
    with contacts.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([
            ["name", "phone", "state", "line_type"],
            ["a", "(202) 555-0100", "", ""],  # block: national registry
            ["b", "305-555-0151", "FL", ""],  # error: Florida's list missing
            ["c", "305-555-0152", "FL", ""],  # error: Florida's list missing
            ["d", "305-555-0150", "FL", ""],  # block (national) and Florida's list missing
            ["e", "202-555-0102", "XX", ""],  # error: CONTEXT_INVALID
            ["f", "312-555-0166", "", ""],  # block: internal
            ["g", "512-555-0161", "TX", "landline"],  # error: us-tx stale (and too early)
            ["h", "+61 2 5550 1234", "", ""],  # error: Australia's register missing
            ["i", "12345", "", ""],  # invalid
            ["j", "202-555-0103", "DC", ""],  # allow
            ["k", "202-555-0103", "DC", ""],  # allow, duplicate
            ["l", "305-555-0151", "FL", ""],  # error, duplicate of b
            ["m", "415-555-0111", "CA", ""],  # defer: 07:00 in California
        ])
    scrubber = Scrubber(settings, clock=lambda: T0, audit=False)
    out = tmp_path / "verdicts.csv"
    summary = scrubber.scrub_file(contacts, out, at=T0)
    log = make_log(settings, **audit)
    job = new_job_id()
    record_job(log, job, out, summary, who="cli:alice")
    return ErrorJob(log, job, out, summary)


@pytest.fixture
def error_job(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ErrorJob:
    return _error_job(settings, tmp_path, monkeypatch)


def _error_rows_by_code(path: Path) -> Counter[str]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return Counter(code for r in rows if r["decision"] == "error"
                   for code in r["reason_codes"].split(";"))


def test_error_job_has_every_kind_of_row(error_job: ErrorJob) -> None:
    """The fixture is what the report tests rely on."""
    s = error_job.summary
    assert s.by_decision == {"allow": 2, "defer": 1, "error": 6, "block": 3, "invalid": 1}
    assert s.source_errors == 0  # what the report used to call rows not verified
    by_code = _error_rows_by_code(error_job.output)
    assert by_code["REGISTRY_MISSING"] == 4 and s.by_reason["REGISTRY_MISSING"] == 5
    assert by_code["CONTEXT_INVALID"] == 1 and by_code["REGISTRY_STALE"] == 1


def test_rows_not_verified_are_every_error_row_by_cause(error_job: ErrorJob) -> None:
    html = build_report(error_job.log, error_job.job)
    s = error_job.summary
    f = _fields(html)
    errors = s.by_decision["error"]
    assert int(f["notVerified"]) == int(f["notVerifiedRows"]) == errors == 6
    assert int(f["notVerifiedHeading"]) == errors
    assert "Rows that could not be verified: 0" not in html
    # each cause with the rows it left unverified, and the rows carrying it in the summary
    by_code = _error_rows_by_code(error_job.output)
    causes = {"REGISTRY_MISSING", "CONTEXT_INVALID", "REGISTRY_STALE"}
    assert _attr_counts(html, "cause") == {c: by_code[c] for c in causes}
    assert _attr_counts(html, "cause-any") == {c: s.by_reason[c] for c in causes}
    assert _svg_counts(html, "chart-cause") == {c: by_code[c] for c in causes}
    assert f["consistency"].startswith("all counts agree")


def test_each_missing_list_hint_appears_once(error_job: ErrorJob) -> None:
    html = unescape(build_report(error_job.log, error_job.job))
    with error_job.output.open(encoding="utf-8") as fh:
        assert fh.read().count("--jurisdiction US-FL") == 4  # every row repeats it
    assert html.count("dncguard lists import FILE --kind state --jurisdiction US-FL "
                      "--snapshot-date YYYY-MM-DD --name us-fl-state") == 1
    assert html.count('rules.registry_optional = ["US-FL"]') == 1
    assert html.count("--jurisdiction AU ") == 1
    assert "is required for US-FL numbers" not in html  # the long detail, not repeated
    fixes = re.search(r'<div class="fix">.*?</div>', html, re.S)
    assert fixes is not None
    fix = fixes[0]
    # one line per missing or stale list, with its rows, and the command to run
    assert re.search(r'data-missing="US-FL">Florida Do Not Call list \(US-FL\): 4 rows, '
                     r"3 not verified", fix)
    assert re.search(r'data-missing="AU">Australian Do Not Call Register \(AU\): 1 row, '
                     r"1 not verified", fix)
    assert re.search(r'data-stale="us-tx">us-tx: 1 row, 1 not verified; snapshot of '
                     r"2026-06-01 is 171 days old", fix)
    assert ("dncguard lists import FILE --kind state --jurisdiction US-TX --snapshot-date "
            "YYYY-MM-DD --name us-tx") in fix
    assert "column 'state': 'XX' is not understood: 1 row (row 5)" in fix
    assert fix.count("expects a US state") == 1
    # sample rows keep the codes and a short detail
    sample = dict(re.findall(r'<tr data-row="(\d+)">(.*?)</tr>', html, re.S))
    assert "REGISTRY_MISSING" in sample["2"]
    assert "the Florida Do Not Call list is not loaded (see What to fix)" in sample["2"]
    assert "us-tx is stale (see What to fix)" in sample["7"]
    assert "column 'state': 'XX' is not understood; the row was not checked" in sample["5"]
    assert max(len(re.sub(r"<[^>]+>", "", row)) for row in sample.values()) < 400


def test_suppression_excludes_rows_not_verified(error_job: ErrorJob) -> None:
    html = build_report(error_job.log, error_job.job)
    s = error_job.summary
    f = _fields(html)
    assert int(f["suppressed"]) == s.by_decision["block"] + s.by_decision["defer"] == 4
    assert (int(f["allowed"]) + int(f["suppressed"]) + int(f["notVerified"])
            + int(f["invalid"])) == s.total_rows
    assert _attr_counts(html, "state") == {
        st: c.get("block", 0) + c.get("defer", 0) for st, c in s.by_state.items()}
    assert _attr_counts(html, "state-error") == {
        st: c.get("error", 0) for st, c in s.by_state.items()}
    assert _attr_counts(html, "state")["FL"] == 1 and _attr_counts(html, "state-error")["FL"] == 3
    # the state chart draws error as its own segment, never inside suppression
    segments = re.findall(r'data-label="([^"]+)" data-segment="(\w+)" data-value="(\d+)"',
                          _svg(html, "chart-state"))
    drawn = {(st, seg): int(n) for st, seg, n in segments}
    assert drawn == {(st, d): n for st, c in s.by_state.items() for d, n in c.items()
                     if d in ("block", "defer", "error") and n}
    # the suppression chart holds no cause of error
    reasons = _svg_counts(html, "chart-reason")
    assert reasons and not {"REGISTRY_MISSING", "REGISTRY_STALE", "CONTEXT_INVALID"} & set(reasons)
    # the unique-number rate is the summary's, named for what it counts
    rate = re.search(r'data-field="suppressionRate" data-value="([^"]+)"', html)
    assert rate and float(rate[1]) == s.suppression_rate
    assert "block, defer or error" in html


def test_without_the_results_file_causes_come_from_the_summary(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _error_job(settings, tmp_path, monkeypatch, retain_results=False)
    html = build_report(job.log, job.job)
    s = job.summary
    f = _fields(html)
    assert f["retained"] == "not retained"
    assert int(f["notVerified"]) == s.by_decision["error"]
    assert _attr_counts(html, "cause") == {}
    assert _attr_counts(html, "cause-any") == {
        c: s.by_reason[c] for c in ("REGISTRY_MISSING", "CONTEXT_INVALID", "REGISTRY_STALE")}
    assert "the results file was not retained" in html
    assert 'data-stale="us-tx"' in html  # the freshness of the lists used still names it
    assert "<tr data-row=" not in html


def test_an_altered_results_file_gives_no_counts_or_fixes(error_job: ErrorJob) -> None:
    rec = error_job.log.find("job", error_job.job)
    assert rec is not None
    retained = error_job.log.settings.home / rec.data["results"]["retained"]
    text = retained.read_text(encoding="utf-8")
    retained.write_text(text.replace("US-FL", "US-GA"), encoding="utf-8")
    html = build_report(error_job.log, error_job.job)
    assert _fields(html)["retained"] == "ALTERED"
    assert _attr_counts(html, "cause") == {}  # no counts from the file: the summary's only
    assert _attr_counts(html, "cause-any")["REGISTRY_MISSING"] == 5
    assert "data-missing=" not in html  # no hints from it
    assert "the retained results file was altered" in html
    assert "was ALTERED after the job: these rows are not evidence" in html
    retained.write_text("not,a verdict file\n1\n", encoding="utf-8")  # no longer readable
    html = build_report(error_job.log, error_job.job)
    assert _fields(html)["retained"] == "ALTERED" and "<tr data-row=" not in html


def test_the_report_names_what_disagrees_with_the_summary(error_job: ErrorJob,
                                                          tmp_path: Path) -> None:
    s = error_job.summary
    wrong = s.model_copy(update={"by_decision": {**s.by_decision, "allow": 3},
                                 "source_errors": 2})
    job = new_job_id()
    record_job(error_job.log, job, error_job.output, wrong)
    html = build_report(error_job.log, job)
    consistency = unescape(_fields(html)["consistency"])
    assert consistency.startswith("DISAGREE")
    assert "the decisions add up to 14 rows, not the 13 total rows" in consistency
    assert "allow: 2 rows in the results file, 3 in the summary" in consistency
    assert "sourceErrors is 2 but 0 rows carry SOURCE_ERROR" in consistency


def test_short_detail_keeps_other_reasons() -> None:
    missing = ("the Florida Do Not Call list is required for US-FL numbers but not loaded; "
               "import it with: dncguard lists import FILE --kind state --jurisdiction US-FL "
               "--snapshot-date YYYY-MM-DD --name us-fl-state (or set "
               'rules.registry_optional = ["US-FL"])')
    detail = f"number on national list us-ftc [US] (snapshot 2026-11-10); {missing}; " \
             "duplicate of row 4"
    assert short_detail(detail) == (
        "number on national list us-ftc [US] (snapshot 2026-11-10); the Florida Do Not Call "
        "list is not loaded (see What to fix); duplicate of row 4")
    assert short_detail("x" * 500).endswith("\u2026") and len(short_detail("x" * 500)) == 240
