"""Everyday operation from the command line (issue 14): ``--json`` on every command that prints
data, tables that never cut an identifier, ``config show`` as in effect, ``dnc ls``/``export``,
``consent ls``/``revoke``, ``audit search``, and ``who`` on every consent and attempt record."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dncguard.audit import audit_log
from dncguard.config import Settings
from dncguard.lists.store import ListStore

from .conftest import cli

AT = "2026-11-19T15:00:00Z"
NUMBER = "+12025550123"
DIGITS = "2025550123"


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def one_line_error(code: int, out: str, err: str, *words: str) -> None:
    """Exit 2 and one line on stderr naming what was wrong; nothing on stdout."""
    assert code == 2, (out, err)
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("error:")
    for word in words:
        assert word in err, err
    assert "Traceback" not in err


def subprocess_cli(home: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh interpreter on a terminal ``columns`` wide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGUARD_")}
    env.update({"DNCGUARD_HOME": str(home), "DNCGUARD_RULES_ENABLED": "false",
                "DNCGUARD_USER": "tester", "COLUMNS": str(columns)})
    return subprocess.run([sys.executable, "-m", "dncguard", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


# -- usage errors ------------------------------------------------------------------------------


def test_a_bad_flag_value_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "dnc", "add", NUMBER, "--expires", "soon")
    one_line_error(code, out, err, "--expires", "not a date", "dncguard dnc add --help")
    code, out, err = cli(capsys, "audit", "search", "--bogus")
    one_line_error(code, out, err, "--bogus")


# -- lists, dnc ------------------------------------------------------------------------------


def test_lists_import_stats_rm_json(capsys: pytest.CaptureFixture[str],
                                    write_lines: Callable[..., Path]) -> None:
    path = write_lines(["202,5550100", "202,5550101", "oops"])
    code, out, _ = cli(capsys, "lists", "import", str(path), "--kind", "national", "--name",
                       "us", "--jurisdiction", "US", "--snapshot-date", "2026-11-01", "--json")
    assert code == 1  # imported, but not every line
    got = json.loads(out)
    assert isinstance(got, dict)
    assert got["name"] == "us" and got["count"] == 2 and got["rejected"] == 1
    assert got["changes"] is False and got["snapshotDate"] == "2026-11-01"
    stats = cli_json(capsys, "lists", "stats", "us")
    assert isinstance(stats, dict)
    assert stats["count"] == 2 and stats["manual"] == {"added": 0, "removed": 0}
    assert stats["snapshotError"] is None and stats["snapshotFile"]
    assert [v["sourceFile"] for v in stats["versions"]] == [path.name]
    assert stats["versions"][0]["by"] == "tester"
    gone = cli_json(capsys, "lists", "rm", "us")
    assert gone == {"name": "us", "kind": "national", "count": 2, "entries": 0,
                    "removed": True}
    code, out, err = cli(capsys, "lists", "stats", "us", "--json")
    one_line_error(code, out, err, "no list named 'us'")


def test_dnc_add_remove_json_mask_the_number(capsys: pytest.CaptureFixture[str]) -> None:
    got = cli_json(capsys, "dnc", "add", DIGITS, "--reason", "asked", "--expires",
                   "2099-01-31")
    assert got == {"number": "+1202555****", "list": "internal", "listed": True,
                   "expires": "2099-02-01T12:00:00+00:00", "notReadBy": []}
    got = cli_json(capsys, "dnc", "remove", DIGITS)
    assert got == {"number": "+1202555****", "list": "internal", "listed": False,
                   "wasListed": True}


@pytest.fixture
def optouts(store: ListStore, write_lines: Callable[..., Path]) -> ListStore:
    """Opt-outs on two lists, one expired-to-be, and a removal of an imported number."""
    from datetime import UTC, datetime

    store.add_number("2025550123", reason="asked on call", who="cli:alice")
    store.add_number("2025550124", reason="=cmd|' /C calc'!A0", who="api:desk")
    store.ensure("lit", "litigator")
    store.add_number("3055550100", list_name="lit", reason="sued twice", who="cli:bob")
    store.import_file(write_lines(["2025550188", "2025550189"]), kind="internal",
                      name="old-optouts")
    store.remove_number("2025550188", list_name="old-optouts", who="cli:carol",
                        why="added by mistake")
    # an entry that has lapsed: written as the store writes it, with a past expiry
    from sqlalchemy import update

    from dncguard.store import list_entries_table

    with store.engine.begin() as conn:
        conn.execute(update(list_entries_table).where(
            list_entries_table.c.value == "+12025550124").values(
            expires_at=datetime(2026, 1, 1, tzinfo=UTC)))
    return store


def test_dnc_ls_shows_who_and_why_masked(capsys: pytest.CaptureFixture[str],
                                         optouts: ListStore) -> None:
    code, out, _ = cli(capsys, "dnc", "ls")
    assert code == 0
    text = " ".join(out.split())
    assert "+1202555****" in out and "asked on" in text and "cli:alice" in text
    assert "sued twice" in text  # every internal and litigator list by default
    assert "5550123" not in out and "5550100" not in out  # masked
    assert "calc" not in out  # expired: shown with --all only
    assert "internal: 1 number added by hand and in force (1 expired or removal entry" in text
    assert "old-optouts: 0 numbers added by hand" in text
    assert "its imported file holds 2 more numbers" in text

    got = cli_json(capsys, "dnc", "ls", "--list", "internal", "--all")
    assert isinstance(got, dict)
    assert got["lists"] == [{"name": "internal", "kind": "internal", "imported": 0,
                             "added": 2, "removed": 0}]
    entries = {e["reason"]: e for e in got["entries"]}
    assert set(entries) == {"asked on call", "=cmd|' /C calc'!A0"}
    first = entries["asked on call"]
    assert first["number"] == "+1202555****" and first["addedBy"] == "cli:alice"
    assert first["status"] == "active" and first["expires"] is None
    assert first["addedAt"].endswith("+00:00") and first["list"] == "internal"
    assert entries["=cmd|' /C calc'!A0"]["status"] == "expired"
    removal = cli_json(capsys, "dnc", "ls", "--list", "old-optouts", "--all")
    assert isinstance(removal, dict)
    assert [(e["status"], e["addedBy"], e["reason"]) for e in removal["entries"]] == [
        ("removed", "cli:carol", "added by mistake")]
    assert NUMBER not in json.dumps(got)


def test_dnc_ls_refuses_unknown_and_other_lists(capsys: pytest.CaptureFixture[str],
                                                optouts: ListStore,
                                                write_lines: Callable[..., Path]) -> None:
    code, out, err = cli(capsys, "dnc", "ls", "--list", "nope")
    one_line_error(code, out, err, "no list named 'nope'")
    optouts.import_file(write_lines(["2025550100"]), kind="national", name="us",
                        jurisdiction="US", snapshot_date=date(2026, 11, 1))
    code, out, err = cli(capsys, "dnc", "ls", "--list", "us", "--json")
    one_line_error(code, out, err, "kind national")


def test_dnc_ls_without_lists(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "dnc", "ls")
    assert code == 0 and "no internal or litigator lists yet" in out
    assert cli_json(capsys, "dnc", "ls") == {"lists": [], "entries": []}


def test_dnc_export_writes_full_numbers_only_to_the_file(
        capsys: pytest.CaptureFixture[str], optouts: ListStore, tmp_path: Path) -> None:
    target = tmp_path / "optouts.csv"
    code, out, err = cli(capsys, "dnc", "export", "-o", str(target))
    assert code == 0, err
    assert "2 entries written" in " ".join(out.split())
    assert "5550" not in out + err  # no number on screen
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with target.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["number", "added_at", "added_by", "reason", "expires", "list", "status"]
    by_number = {r[0]: r for r in rows[1:]}
    assert set(by_number) == {"+12025550123", "+13055550100"}  # in force only
    assert by_number["+12025550123"][2:4] == ["cli:alice", "asked on call"]
    assert by_number["+13055550100"][5:] == ["lit", "active"]

    code, _, _ = cli(capsys, "dnc", "export", "--all", "--list", "internal", "-o", str(target))
    assert code == 0
    with target.open(encoding="utf-8", newline="") as fh:
        entries = list(csv.DictReader(fh))
    expired = [r for r in entries if r["status"] == "expired"]
    assert [r["number"] for r in expired] == ["+12025550124"]
    assert expired[0]["reason"] == "'=cmd|' /C calc'!A0"  # a formula is defused
    assert expired[0]["expires"] == "2026-01-01T00:00:00+00:00"


def test_dnc_export_refuses_other_formats(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    code, out, err = cli(capsys, "dnc", "export", "-o", str(tmp_path / "x.xlsx"))
    one_line_error(code, out, err, "writes CSV")
    assert not (tmp_path / "x.xlsx").exists()


# -- consent, attempts -------------------------------------------------------------------------


def _records(settings: Settings, action: str) -> list[dict[str, Any]]:
    return [r.to_dict() for r in audit_log(settings).records(kind="list")
            if r.action == action]


def test_consent_ls_revoke_and_who(capsys: pytest.CaptureFixture[str], settings: Settings
                                   ) -> None:
    code, out, _ = cli(capsys, "consent", "ls", DIGITS)
    assert code == 0 and "+1202555****: no consent or EBR records" in out
    got = cli_json(capsys, "consent", "add", DIGITS, "--type", "express_written", "--date",
                   "2026-01-05")
    assert got == {"number": "+1202555****", "type": "express_written", "date": "2026-01-05",
                   "expires": None, "revoked": None, "added": True}
    cli(capsys, "consent", "add", DIGITS, "--type", "ebr_purchase", "--date", "2026-02-01",
        "--expires", "2026-03-01")
    got = cli_json(capsys, "consent", "ls", f"({DIGITS[:3]}) {DIGITS[3:6]}-{DIGITS[6:]}")
    assert isinstance(got, dict)
    assert got["number"] == "+1202555****"
    assert [(r["type"], r["status"]) for r in got["records"]] == [
        ("express_written", "current"), ("ebr_purchase", "expired")]

    got = cli_json(capsys, "consent", "revoke", DIGITS, "--type", "express_written", "--on",
                   "2026-06-01", "--reason", "asked on call")
    assert got == {"number": "+1202555****", "type": "express_written", "on": "2026-06-01",
                   "revoked": 1}
    got = cli_json(capsys, "consent", "revoke", DIGITS, "--on", "2026-06-01")  # every type
    assert isinstance(got, dict) and got["revoked"] == 1 and got["type"] is None
    code, out, _ = cli(capsys, "consent", "revoke", DIGITS, "--on", "2026-06-01")
    assert code == 0
    # nothing held: the revocation is stored anyway, for a consent that arrives later
    assert "+1202555**** holds no consent not yet revoked on 2026-06-01; the revocation is" \
        in " ".join(out.split())
    got = cli_json(capsys, "consent", "ls", DIGITS)
    assert isinstance(got, dict)
    assert [(r["type"], r["revoked"], r["status"]) for r in got["records"]] == [
        ("express_written", None, "revoked"), ("express_written", "2026-06-01", "revoked"),
        ("ebr_purchase", None, "revoked"), ("ebr_purchase", "2026-06-01", "revoked")]
    code, out, _ = cli(capsys, "consent", "ls", DIGITS)
    assert code == 0 and "revoked" in out and "5550123" not in out

    records = _records(settings, "consent")
    assert len(records) == 4
    assert {r["who"] for r in records} == {"tester"}  # the CLI user, never null
    assert [r["data"]["source"] for r in records] == ["cli", "cli", "asked on call", "revoked"]


@pytest.mark.parametrize("command", [["consent", "ls"], ["consent", "revoke"],
                                     ["consent", "add", "--type", "express", "--date",
                                      "2026-01-01"],
                                     ["attempts", "record", "--at", AT, "--purpose",
                                      "telemarketing"]])
def test_consent_and_attempts_refuse_a_bad_phone(capsys: pytest.CaptureFixture[str],
                                                 command: list[str]) -> None:
    args = [*command[:2], "20255501", *command[2:]]
    code, out, err = cli(capsys, *args)
    one_line_error(code, out, err, "PHONE", "not a valid number")
    assert "20255501" not in err  # the input is not echoed


def test_consent_revoke_refuses_a_bad_type_and_a_future_date(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "consent", "revoke", DIGITS, "--type", "verbal")
    one_line_error(code, out, err, "--type", "verbal")
    code, out, err = cli(capsys, "consent", "revoke", DIGITS, "--on", "2999-01-01")
    one_line_error(code, out, err, "in the future")


def test_imports_and_attempts_record_who(capsys: pytest.CaptureFixture[str],
                                         settings: Settings,
                                         write_csv: Callable[..., Path]) -> None:
    consents = write_csv([["phone", "type", "date"], [DIGITS, "express", "2026-01-05"],
                          ["junk", "express", "2026-01-05"]], name="consents.csv")
    code, out, err = cli(capsys, "consent", "import", str(consents), "--json")
    assert code == 1  # a row was rejected: nothing is imported
    got = json.loads(out)
    assert got["rows"] == 2 and got["added"] == 0 and got["rejectedRows"] == 1
    assert got["errors"][0]["line"] == 3 and got["errors"][0]["field"] == "phone"
    consents = write_csv([["phone", "type", "date"], [DIGITS, "express", "2026-01-05"]],
                         name="consents.csv")
    got = cli_json(capsys, "consent", "import", str(consents))
    assert got["added"] == 1 and got["rejectedRows"] == 0
    attempts = write_csv([["phone", "at", "outcome"], [DIGITS, AT, "no_answer"]],
                         name="attempts.csv")
    code, out, err = cli(capsys, "attempts", "import", str(attempts))
    assert code == 2 and "no purpose column" in err  # never assumed
    got = cli_json(capsys, "attempts", "import", str(attempts), "--purpose", "telemarketing")
    assert got == {"rows": 1, "added": 1, "updated": 0, "duplicates": 0, "rejectedRows": 0,
                   "errors": []}
    got = cli_json(capsys, "attempts", "record", DIGITS, "--at", "2026-11-19T16:00:00Z",
                   "--purpose", "telemarketing")
    assert got == {"number": "+1202555****", "at": "2026-11-19T16:00:00+00:00",
                   "campaign": "default", "purpose": "telemarketing", "subject": "default",
                   "outcome": None, "added": True}
    assert [r["who"] for r in _records(settings, "consent")] == ["tester"]
    assert [r["who"] for r in _records(settings, "attempt")] == ["tester", "tester"]


# -- audit jobs, search --------------------------------------------------------------------------


@pytest.fixture
def scrubbed(capsys: pytest.CaptureFixture[str], store: ListStore,
             write_csv: Callable[..., Path], tmp_path: Path) -> str:
    """A scrub job holding the number (row 2), a check of it and an opt-out; its job id."""
    store.add_number(DIGITS, reason="asked on call", who="cli:alice")
    contacts = write_csv([["phone"], ["2125550199"], [DIGITS], ["junk"]])
    got = cli_json(capsys, "scrub", str(contacts), "-o", str(tmp_path / "v.csv"), "--at", AT)
    assert isinstance(got, dict)
    assert got["summary"]["totalRows"] == 3 and got["summary"]["byDecision"]["block"] == 1
    assert got["output"] == str(tmp_path / "v.csv")
    assert got["summaryFile"] == str(tmp_path / "v.summary.json")
    job_id = got["auditJobs"][""]
    assert job_id.startswith("job-")
    assert cli(capsys, "check", DIGITS, "--at", AT)[0] == 0
    return str(job_id)


@pytest.mark.parametrize("columns", [80, 40])
def test_audit_jobs_keeps_the_whole_job_id_on_a_narrow_terminal(
        scrubbed: str, settings: Settings, columns: int) -> None:
    proc = subprocess_cli(settings.home, "audit", "jobs", columns=columns)
    assert proc.returncode == 0, proc.stderr
    assert scrubbed in proc.stdout  # whole, on one line: what report and prove take
    assert "…" not in proc.stdout
    if columns == 80:  # a table that fits
        assert max(len(line) for line in proc.stdout.splitlines()) <= 80
        assert "3 rows: 1" in proc.stdout
    else:  # two lines per job
        assert proc.stdout.splitlines()[0] == scrubbed
        assert "by tester; 3 rows: 1 block, 0 defer, 0 error" in proc.stdout


def test_audit_jobs_json(capsys: pytest.CaptureFixture[str], scrubbed: str) -> None:
    got = cli_json(capsys, "audit", "jobs")
    assert isinstance(got, list) and len(got) == 1
    job = got[0]
    assert job["jobId"] == scrubbed and job["who"] == "tester" and job["rows"] == 3
    assert job["byDecision"] == {"allow": 1, "defer": 0, "block": 1, "error": 0,
                                 "invalid": 1}
    assert job["file"] == "v.csv" and isinstance(job["seq"], int)


def test_audit_search_finds_checks_changes_and_job_rows(
        capsys: pytest.CaptureFixture[str], scrubbed: str, settings: Settings) -> None:
    cli(capsys, "consent", "add", DIGITS, "--type", "express", "--date", "2026-01-05")
    cli(capsys, "dnc", "add", "2025550100")  # another number: not found
    got = cli_json(capsys, "audit", "search", "--phone", f"1-{DIGITS[:3]}-{DIGITS[3:]}")
    assert isinstance(got, dict)
    assert got["number"] == "+1202555****" and got["truncated"] is False
    assert got["jobsSearched"] == 1 and got["jobsNotSearched"] == [] and got["jobsLeft"] == 0
    kinds = [(r["kind"], r["action"]) for r in got["records"]]
    assert kinds == [("list", "consent"), ("check", "check"), ("job", "scrub"),
                     ("list", "add")]  # newest first
    seqs = [r["seq"] for r in got["records"]]
    assert seqs == sorted(seqs, reverse=True)
    check = got["records"][1]
    assert check["decision"] == "block" and check["reasons"] == ["DNC_INTERNAL"]
    assert check["who"] == "tester" and check["number"] == "+1202555****"
    assert check["data"]["dial_time"] == "2026-11-19T15:00:00+00:00"
    assert "internal" in check["versions"]["lists"]
    job = got["records"][2]
    assert job["subject"] == scrubbed and job["decision"] == "block"
    assert job["rows"] == [{"row": 2, "decision": "block", "reasons": ["DNC_INTERNAL"],
                            "nextAllowedAt": None}]
    opt = got["records"][3]
    assert opt["subject"] == "internal" and opt["who"] == "cli:alice"
    assert opt["data"]["why"] == "asked on call"
    assert got["records"][0]["who"] == "tester"
    assert DIGITS not in json.dumps(got)

    # the row found is the row proven
    code, out, _ = cli(capsys, "audit", "prove", scrubbed, "2")
    assert code == 0 and '"row": 2' in out

    code, out, _ = cli(capsys, "audit", "search", "--phone", DIGITS)
    assert code == 0
    assert DIGITS not in out and "+1202555****" in out
    assert f"dncguard audit prove {scrubbed} 2" in out
    assert "4 records" in out and "1 scrub job searched" in out


def test_audit_search_range_limit_and_no_jobs(capsys: pytest.CaptureFixture[str],
                                              scrubbed: str) -> None:
    got = cli_json(capsys, "audit", "search", "--phone", DIGITS, "--from", "2000-01-01",
                   "--to", "2000-01-01")
    assert isinstance(got, dict)
    assert got["records"] == [] and got["jobsSearched"] == 0
    assert got["from"] == "2000-01-01T00:00:00+00:00"
    assert got["to"] == "2000-01-02T00:00:00+00:00"  # a date: through the end of that day
    got = cli_json(capsys, "audit", "search", "--phone", DIGITS, "--limit", "1")
    assert isinstance(got, dict)
    assert got["truncated"] is True and [r["kind"] for r in got["records"]] == ["check"]
    got = cli_json(capsys, "audit", "search", "--phone", DIGITS, "--no-jobs")
    assert isinstance(got, dict)
    assert "job" not in {r["kind"] for r in got["records"]} and got["jobsSearched"] == 0


def test_audit_search_reports_jobs_it_cannot_read(capsys: pytest.CaptureFixture[str],
                                                  scrubbed: str, settings: Settings) -> None:
    retained = next((settings.home / "audit" / "jobs" / scrubbed).glob("results.*"))
    retained.write_text("tampered\n", encoding="utf-8")
    got = cli_json(capsys, "audit", "search", "--phone", DIGITS)
    assert isinstance(got, dict)
    assert got["jobsSearched"] == 0
    assert [(j["jobId"], "altered" in j["why"]) for j in got["jobsNotSearched"]] == [
        (scrubbed, True)]
    assert "job" not in {r["kind"] for r in got["records"]}
    code, _, err = cli(capsys, "audit", "search", "--phone", DIGITS)
    assert code == 0 and f"job {scrubbed} not searched" in err


def test_audit_search_refuses_bad_input(capsys: pytest.CaptureFixture[str],
                                        scrubbed: str) -> None:
    code, out, err = cli(capsys, "audit", "search", "--phone", "20255501")
    one_line_error(code, out, err, "not a valid number")
    assert "20255501" not in err
    code, out, err = cli(capsys, "audit", "search", "--phone", DIGITS, "--from", "last week")
    one_line_error(code, out, err, "--from", "not a date")
    code, out, err = cli(capsys, "audit", "search", "--phone", DIGITS, "--from",
                         "2026-11-20T10:00:00")
    one_line_error(code, out, err, "--from", "no UTC offset")
    code, out, err = cli(capsys, "audit", "search", "--phone", DIGITS, "--from", "2026-11-20",
                         "--to", "2026-11-19")
    one_line_error(code, out, err, "the range is empty")


def test_audit_search_without_a_key_refuses_and_generates_none(
        capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    code, out, err = cli(capsys, "audit", "search", "--phone", DIGITS)
    one_line_error(code, out, err, "no audit HMAC key")
    assert not (settings.home / "audit" / "hmac.key").exists()


# -- config, db ----------------------------------------------------------------------------------


def test_config_show_is_what_is_in_effect_and_hides_secrets(
        capsys: pytest.CaptureFixture[str], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    (settings.home).mkdir(parents=True, exist_ok=True)
    (settings.home / "dncguard.toml").write_text(
        '[audit]\nexport_url = "https://svc:url-pw-123@example.com/in"\n'
        'export_token = "toml-token-123"\n'
        '[cxone]\naccess_key_secret = "toml-aks-123"\n', encoding="utf-8")
    # the four CXone credentials go together (given in part they are refused)
    monkeypatch.setenv("DNCGUARD_CXONE_CLIENT_SECRET", "env-secret-123")
    monkeypatch.setenv("DNCGUARD_CXONE_CLIENT_ID", "app")
    monkeypatch.setenv("DNCGUARD_CXONE_ACCESS_KEY_ID", "key-id")
    assert cli(capsys, "dnc", "add", DIGITS)[0] == 0  # generates the audit key file
    got = cli_json(capsys, "config", "show")
    assert isinstance(got, dict)
    assert got["core"]["database_url"] == f"sqlite:///{settings.home / 'dncguard.db'}"
    assert got["audit"]["hmac_key"] == {"set": True, "source": "file",
                                        "where": str(settings.home / "audit" / "hmac.key")}
    assert got["audit"]["export_token"] == {
        "set": True, "source": "config", "where": f"{settings.home / 'dncguard.toml'} [audit]"}
    assert got["audit"]["export_url"] == "https://svc:***@example.com/in"
    assert got["cxone"]["client_secret"] == {"set": True, "source": "env",
                                             "where": "DNCGUARD_CXONE_CLIENT_SECRET"}
    assert got["cxone"]["access_key_secret"] == {
        "set": True, "source": "config", "where": f"{settings.home / 'dncguard.toml'} [cxone]"}
    assert got["http_batch"]["client_secret"] == {"set": False, "source": None, "where": None}
    key = (settings.home / "audit" / "hmac.key").read_text("ascii").strip()
    for shown in (json.dumps(got), cli(capsys, "config", "show")[1]):
        for secret in ("env-secret-123", "toml-token-123", "toml-aks-123", "url-pw-123", key):
            assert secret not in shown
    text = " ".join(cli(capsys, "config", "show")[1].split())
    assert "set, from env DNCGUARD_CXONE_CLIENT_SECRET" in text
    assert "not set" in text and "null" not in text.split("database_url", 1)[1][:5]


def test_config_show_masks_the_database_password(capsys: pytest.CaptureFixture[str]) -> None:
    from dncguard.config import mask_url

    assert mask_url("postgresql+psycopg://dg:s3cret@db.internal:5432/dncguard") == \
        "postgresql+psycopg://dg:***@db.internal:5432/dncguard"
    assert mask_url("sqlite:////srv/dncguard.db") == "sqlite:////srv/dncguard.db"
    assert mask_url("https://example.com/a@b") == "https://example.com/a@b"
    # a password holding '/', '?' or '#' (SQLAlchemy reads it to the first '@') was shown
    assert mask_url("postgresql+psycopg://app:pa/ss@db/dnc") == "postgresql+psycopg://app:***@db/dnc"
    assert mask_url("postgresql://app:pa?ss#x@db/dnc") == "postgresql://app:***@db/dnc"
    # secrets in the query, and an http(s) URL's bare user part (a token)
    assert mask_url("postgresql://db/dnc?user=app&password=S3cret&sslmode=require") == \
        "postgresql://db/dnc?user=app&password=***&sslmode=require"
    assert mask_url("https://hooks.example/x?token=S3cretTOK&a=1") == \
        "https://hooks.example/x?token=***&a=1"
    assert mask_url("https://S3cretTOK@hooks.example/x") == "https://***@hooks.example/x"
    assert mask_url("postgresql://postgres@127.0.0.1/test") == "postgresql://postgres@127.0.0.1/test"


def test_config_show_before_the_key_exists(capsys: pytest.CaptureFixture[str],
                                           settings: Settings) -> None:
    got = cli_json(capsys, "config", "show")
    assert isinstance(got, dict)
    assert got["audit"]["hmac_key"] == {"set": False, "source": None, "where": None}
    assert not (settings.home / "audit" / "hmac.key").exists()  # showing generates nothing
    code, out, _ = cli(capsys, "config", "show")
    assert "not set (generated into" in " ".join(out.split())


def test_db_current_and_upgrade_json(capsys: pytest.CaptureFixture[str],
                                     settings: Settings) -> None:
    up = cli_json(capsys, "db", "upgrade")
    assert isinstance(up, dict)
    assert up["after"] and up["database"].startswith("sqlite:///")
    got = cli_json(capsys, "db", "current")
    assert got == {"database": f"sqlite:///{settings.home / 'dncguard.db'}",
                   "current": up["after"], "head": up["after"], "upToDate": True}


def test_audit_search_reads_parquet_results(capsys: pytest.CaptureFixture[str],
                                            store: ListStore, write_csv: Callable[..., Path],
                                            tmp_path: Path) -> None:
    store.add_number(DIGITS, reason="asked", who="cli:alice")
    contacts = write_csv([["phone"], [DIGITS], ["2125550199"], [DIGITS]])
    out = tmp_path / "v.parquet"
    assert cli(capsys, "scrub", str(contacts), "-o", str(out), "--at", AT, "-q")[0] == 0
    got = cli_json(capsys, "audit", "search", "--phone", NUMBER)
    assert isinstance(got, dict)
    job = next(r for r in got["records"] if r["kind"] == "job")
    assert [r["row"] for r in job["rows"]] == [1, 3]
    assert job["data"]["file"] == "v.parquet" and job["data"]["rows"] == 3


def test_dnc_add_says_what_holds_and_who_does_not_read_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    """From a review of the opt-out commands: ``dnc add --expires`` of a number listed for
    good printed the asked expiry (the later one is kept: none); an opt-out on a list a
    campaign does not read got no word (the API says notReadBy); a mistyped number was
    echoed in full; ``2026-W52-1`` was read as a date; ``lists rm`` of an internal list lifted
    its opt-outs and said "0 entries"."""
    from dncguard.config import load_settings

    home = load_settings().home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dncguard.toml").write_text('[campaigns.c1]\nlists = ["internal"]\n',
                                        encoding="utf-8")
    cli_json(capsys, "dnc", "add", DIGITS)
    got = cli_json(capsys, "dnc", "add", DIGITS, "--expires", "2099-01-31")
    assert got["expires"] is None  # for good: the later of the two
    code, _, err = cli(capsys, "dnc", "add", "2025550191", "--list", "eu", "--create")
    assert code == 0 and "campaign(s) c1 do not read list eu" in " ".join(err.split())
    code, _, err = cli(capsys, "dnc", "add", "+1 202 555 01234")
    assert code == 2 and "01234" not in err
    code, _, err = cli(capsys, "dnc", "add", DIGITS, "--expires", "2026-W52-1")
    assert code == 2 and "YYYY-MM-DD" in err
    code, _, err = cli(capsys, "lists", "rm", "internal")
    assert code == 2 and "holds 1 number added by hand" in " ".join(err.split())
    gone = cli_json(capsys, "lists", "rm", "internal", "--drop-optouts")
    assert gone["entries"] == 1 and gone["removed"] is True
