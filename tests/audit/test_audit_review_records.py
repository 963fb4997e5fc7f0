"""Reading records and the key as dncguard writes them, or refusing them by name (a review).

An edited record (a time that is no time, JSON of another type, a job record whose sections
are not of their types) is named by every command that reads it, never a traceback; a key
file that is empty, blank, not ASCII or too short is refused instead of keying numbers with
a key anyone knows. Real SQLite files, changed with plain SQL.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit._jobs import record_job
from dncguard.audit.settings import hmac_key, key_path, load_audit_settings
from dncguard.cli import run
from dncguard.config import Settings
from dncguard.errors import AuditError, ConfigError

from ..conftest import log_lines
from .conftest import DemoJob, FakeClock, make_log

NAMED = "is not stored as dncguard writes it"


def _sql(settings: Settings, statement: str) -> None:
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        db.execute(statement)
    db.close()


def fill(log: AuditLog, clock: FakeClock, n: int) -> None:
    for i in range(n):
        log.append("list", "add", who=f"user{i}", subject="internal",
                   number=f"+1202555{i:04d}", data={"i": i})
        clock.advance(timedelta(days=1).total_seconds())


def _fails_by_name(args: list[str], seq: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(args) == 2, args
    err = capsys.readouterr().err
    assert f"audit record {seq} {NAMED}" in err, (args, err)
    assert "Traceback" not in err


# -- records ------------------------------------------------------------------------------------


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line uses the tests' key (make_log's)."""
    monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "test-key")


@pytest.mark.parametrize("change", ["at = 'garbage'", "at = 12", "data = 'not json'"])
def test_a_value_that_does_not_parse_is_named_by_search_and_export(
        settings: Settings, clock: FakeClock, keyed: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], change: str) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 5)
    _sql(settings, f"UPDATE audit_records SET {change} WHERE seq = 3")
    with pytest.raises(AuditError, match=f"audit record 3 {NAMED}"):
        list(log.records())
    with pytest.raises(AuditError, match=f"audit record 3 {NAMED}"):
        log.get(3)
    _fails_by_name(["audit", "search", "--phone", "+12025550002"], 3, capsys)
    _fails_by_name(["audit", "export", "-o", str(tmp_path / "out.ndjson")], 3, capsys)
    assert not (tmp_path / "out.ndjson").exists()


@pytest.mark.parametrize("codes", ["'\"DNC\"'", "'[1]'", "'{}'"])
def test_reason_codes_that_are_not_a_list_of_codes_are_named(
        settings: Settings, clock: FakeClock, codes: str) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 4)
    _sql(settings, f"UPDATE audit_records SET reason_codes = {codes} WHERE seq = 2")
    with pytest.raises(AuditError, match=f"audit record 2 {NAMED}"):
        list(log.records())


JOB_EDITS = {
    "summary a list": "json_set(data, '$.summary', json('[1, 2]'))",
    "summary text": "json_set(data, '$.summary', 'x')",
    "byDecision text": "json_set(data, '$.summary.byDecision', 'x')",
    "a count as text": "json_set(data, '$.summary.byDecision.block', 'many')",
    "byState of text": "json_set(data, '$.summary.byState', json('{\"DC\": \"x\"}'))",
    "results text": "json_set(data, '$.results', 'x')",
    "merkle text": "json_set(data, '$.merkle', 'x')",
    "versions lists text": None,  # the versions column, below
}


@pytest.mark.parametrize("edit", list(JOB_EDITS))
def test_a_job_record_of_another_shape_is_named_by_every_command(
        settings: Settings, clock: FakeClock, demo_job: DemoJob, keyed: None,
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 2)
    job = new_job_id()
    seq = record_job(log, job, demo_job.output, demo_job.summary, who="cli:alice").seq
    change = JOB_EDITS[edit]
    _sql(settings, f"UPDATE audit_records SET data = {change} WHERE seq = {seq}" if change
         else "UPDATE audit_records SET versions = json_set(versions, '$.lists', 'x') "
         f"WHERE seq = {seq}")
    with pytest.raises(AuditError, match=f"audit record {seq} {NAMED}"):
        log.find("job", job)
    for args in (["audit", "jobs"], ["audit", "jobs", "--json"],
                 ["audit", "search", "--phone", "+12025550123"],
                 ["report", job, "-o", str(tmp_path / "r.html")],
                 ["audit", "prove", job, "1"],
                 ["audit", "export", "-o", str(tmp_path / "out.ndjson")]):
        _fails_by_name(args, seq, capsys)


def test_an_intact_job_record_still_reads(settings: Settings, clock: FakeClock,
                                          demo_job: DemoJob, keyed: None, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(settings, clock)
    job = new_job_id()
    record_job(log, job, demo_job.output, demo_job.summary, who="cli:alice")
    for args in (["audit", "jobs"], ["report", job, "-o", str(tmp_path / "r.html")],
                 ["audit", "prove", job, "1"], ["audit", "verify"]):
        assert run(args) == 0, (args, capsys.readouterr().err)


# -- the key file -------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "why"), [
    (b"", "is empty"), (b"  \n\t\n", "is empty"),
    ("\u00e9".encode() * 40, "other than ASCII"),
    (b"\xff\xfe" * 40, "other than ASCII"),
])
def test_a_key_file_that_is_no_key_is_refused(settings: Settings, content: bytes,
                                              why: str, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    path = key_path(settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=why):
        hmac_key(settings, load_audit_settings(settings))
    assert run(["audit", "search", "--phone", "+12025550123"]) == 2
    err = capsys.readouterr().err
    assert "hmac.key" in err and why in err and "Traceback" not in err
    assert path.read_bytes() == content  # left for the user to restore


def test_a_short_key_file_is_used_with_a_warning(settings: Settings) -> None:
    """A short key is weak, but the records already keyed with it are found only with it:
    refusing it after an upgrade would leave them unsearchable. It is used, with a warning."""
    from dncguard.audit import settings as audit_settings

    path = key_path(settings)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"abc123\n")
    audit_settings._WARNED.discard(str(path))
    with log_lines("dncguard.audit") as logged:
        assert hmac_key(settings, load_audit_settings(settings)) == (b"abc123", False)
    assert any("holds 6 characters, fewer than 32" in line for line in logged.lines)


def test_a_generated_key_file_and_a_written_one_are_read(settings: Settings) -> None:
    audit = load_audit_settings(settings)
    key, created = hmac_key(settings, audit)
    assert created and len(key) == 64
    assert hmac_key(settings, audit) == (key, False)
    key_path(settings).write_text(" my-own-key-of-thirty-two-chars-x \n", encoding="ascii")
    assert hmac_key(settings, audit) == (b"my-own-key-of-thirty-two-chars-x", False)
