"""The command line: exit codes, clear errors, the demo, list and opt-out commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.lists.store import ListStore

from .conftest import cli, read_csv

AT = "2026-11-19T15:00:00Z"


@pytest.fixture
def contacts(write_csv: Callable[..., Path]) -> Path:
    return write_csv([["name", "phone"], ["a", "2025550100"], ["b", "2125550199"], ["c", "junk"]])


class TestScrub:
    def test_success_exit_0(self, capsys: pytest.CaptureFixture[str], contacts: Path,
                            tmp_path: Path, store: ListStore) -> None:
        store.add_number("2025550100")
        code, out, _ = cli(capsys, "scrub", str(contacts), "-o", str(tmp_path / "o.csv"),
                           "--at", AT)
        assert code == 0
        assert "3 rows scrubbed" in out
        assert [r["decision"] for r in read_csv(tmp_path / "o.csv")] == [
            "block", "allow", "invalid"]

    def test_rows_in_error_exit_3_with_complete_output(
            self, capsys: pytest.CaptureFixture[str], contacts: Path, tmp_path: Path,
            store: ListStore, write_lines: Callable[..., Path]) -> None:
        from datetime import date

        store.import_file(write_lines(["2025550100"]), kind="national", name="us",
                          jurisdiction="US", snapshot_date=date(2026, 11, 1))
        path = store.snapshot_path(store.get("us"))
        assert path is not None
        path.write_bytes(b"damaged")
        code, out, _ = cli(capsys, "scrub", str(contacts), "-o", str(tmp_path / "o.csv"),
                           "--at", AT)
        assert code == 3
        assert "could not be verified" in out
        assert [r["decision"] for r in read_csv(tmp_path / "o.csv")] == [
            "error", "error", "invalid"]

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--at", "2026-11-19T10:00:00"], "no UTC offset"),
            (["--at", "tomorrow"], "not an ISO 8601 instant"),
            (["--phone-column", "tel"], "no column named 'tel'"),
        ],
    )
    def test_usage_errors_exit_2(self, capsys: pytest.CaptureFixture[str], contacts: Path,
                                 tmp_path: Path, args: list[str], message: str) -> None:
        code, out, err = cli(capsys, "scrub", str(contacts), "-o", str(tmp_path / "o.csv"),
                             *args)
        assert code == 2
        assert message in " ".join((out + err).split())
        assert "Traceback" not in out + err

    def test_unreadable_input_exit_2(self, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
        code, _, err = cli(capsys, "scrub", str(tmp_path / "nope.csv"), "-o",
                           str(tmp_path / "o.csv"))
        assert code == 2
        assert "no such file" in err
        assert err.count("\n") <= 2

    def test_progress_bar_on_large_files(self, capsys: pytest.CaptureFixture[str],
                                         write_csv: Callable[..., Path], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DNCGUARD_PROGRESS_MIN_ROWS", "10")
        src = write_csv([["phone"]] + [[f"20255501{i:02d}"] for i in range(50)])
        code, out, _ = cli(capsys, "scrub", str(src), "-o", str(tmp_path / "o.csv"), "--at", AT)
        assert code == 0 and "50 rows scrubbed" in out


class TestCheck:
    def test_json_verdict(self, capsys: pytest.CaptureFixture[str], store: ListStore) -> None:
        store.add_number("2025550100", reason="complaint")
        code, out, _ = cli(capsys, "check", "(202) 555-0100", "--json", "--at", AT)
        assert code == 0
        v = json.loads(out)
        assert v["decision"] == "block"
        assert v["reasons"][0]["code"] == "DNC_INTERNAL"
        assert v["dial_time"].startswith("2026-11-19T15:00")
        assert set(v) >= {"input", "row", "e164", "decision", "reasons", "region", "state",
                          "timezone", "next_allowed_at", "dial_time", "checked_at", "versions"}

    def test_invalid_number_still_prints_a_verdict(self,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = cli(capsys, "check", "12345")
        assert code == 0
        assert "INVALID" in out and "INVALID_NUMBER" in out


class TestListCommands:
    def test_import_ls_stats_rm(self, capsys: pytest.CaptureFixture[str],
                                write_lines: Callable[..., Path]) -> None:
        path = write_lines(["202,5550100", "202,5550101", "oops"])
        code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "national",
                             "--name", "us", "--jurisdiction", "US", "--snapshot-date",
                             "2026-11-01")
        # imported, but not every line: exit 1 (a cron job notices)
        assert code == 1 and "imported 2 entries" in out and "1 lines rejected" in err
        code, out, _ = cli(capsys, "lists", "ls", "--json")
        assert code == 0
        assert json.loads(out)[0]["snapshotDate"] == "2026-11-01"
        code, out, _ = cli(capsys, "lists", "stats", "us")
        assert code == 0 and "snapshot entries: 2" in out
        code, out, _ = cli(capsys, "lists", "rm", "us")
        assert code == 0 and "removed list us" in out
        code, _, err = cli(capsys, "lists", "stats", "us")
        assert code == 2 and "no list named 'us'" in err

    def test_import_without_snapshot_date_exit_2(self, capsys: pytest.CaptureFixture[str],
                                                 write_lines: Callable[..., Path]) -> None:
        code, _, err = cli(capsys, "lists", "import", str(write_lines(["2025550100"])),
                           "--kind", "national", "--name", "us", "--jurisdiction", "US")
        assert code == 2 and "--snapshot-date" in err

    def test_dnc_add_remove_masks_the_number(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = cli(capsys, "dnc", "add", "2025550123", "--reason", "asked",
                           "--expires", "2027-01-31")
        assert code == 0 and "+1202555****" in out and "0123" not in out
        code, out, _ = cli(capsys, "check", "2025550123", "--json", "--at", AT)
        assert json.loads(out)["decision"] == "block"
        code, out, _ = cli(capsys, "dnc", "remove", "2025550123")
        assert code == 0 and "removed" in out
        code, out, _ = cli(capsys, "check", "2025550123", "--json", "--at", AT)
        assert json.loads(out)["decision"] == "allow"

    def test_config_show(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        code, out, _ = cli(capsys, "config", "show", "--json")
        assert code == 0
        assert json.loads(out)["core"]["home"] == str(tmp_path / "home")


def test_demo_runs_from_the_installed_command(tmp_path: Path) -> None:
    """The README's first command: the demo scrubs fictional data end to end."""
    env = {k: v for k, v in os.environ.items() if k != "DNCGUARD_RULES_ENABLED"}  # defaults
    proc = subprocess.run([sys.executable, "-m", "dncguard", "demo", "--home",
                           str(tmp_path / "demo")], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert "22 rows scrubbed" in proc.stdout
    rows = read_csv(tmp_path / "demo" / "verdicts.csv")
    codes = {c for r in rows for c in r["reason_codes"].split(";") if c}
    assert codes >= {"DNC_NATIONAL", "DNC_STATE", "DNC_INTERNAL", "DNC_LITIGATOR", "DNC_HASHED",
                     "DNC_PREFIX", "DNC_CXONE", "DNC_REMOTE", "DUPLICATE", "INVALID_NUMBER",
                     "UNSUPPORTED_REGION"}
    by_name = {r["name"]: r for r in rows}
    assert "DNC_CXONE" in by_name["Sam"]["reason_codes"]  # synced from the sandbox tenant
    assert "DNC_REMOTE" in by_name["Tia"]["reason_codes"]  # the sandbox's http-batch list
    assert "DNC_CXONE" not in by_name["Rae"]["reason_codes"]  # only in an inactive group
    # the default dial time is a weekday afternoon: every decision shows, whatever the hour
    assert {r["decision"] for r in rows} == {"allow", "defer", "error", "block", "invalid"}
    assert "REGISTRY_MISSING" in by_name["Vic"]["reason_codes"]


@pytest.mark.parametrize(("now", "dial"), [
    ("2026-12-02T05:00:00Z", "2026-11-25T19:00:00Z"),  # a Wednesday before dawn: last week's
    ("2026-12-03T20:00:00Z", "2026-12-02T19:00:00Z"),
    ("2024-12-26T12:00:00Z", "2024-12-18T19:00:00Z"),  # Christmas Day 2024 was a Wednesday
    ("2026-07-10T12:00:00Z", "2026-07-08T18:00:00Z"),  # EDT: 14:00 is 18:00 UTC
])
def test_demo_dial_time_is_a_wednesday_afternoon(now: str, dial: str) -> None:
    from datetime import datetime

    from dncguard.cli._scrub import demo_dial_time

    got = demo_dial_time(datetime.fromisoformat(now.replace("Z", "+00:00")))
    assert got.isoformat().replace("+00:00", "Z") == dial


class TestWithRules:
    """The rules engine plugged into the same pipeline (the defaults a real user gets)."""

    @pytest.fixture(autouse=True)
    def _rules_on(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")

    def test_missing_registry_is_error_and_scrub_exits_3(
            self, capsys: pytest.CaptureFixture[str], contacts: Path, tmp_path: Path) -> None:
        code, out, _ = cli(capsys, "scrub", str(contacts), "-o", str(tmp_path / "o.csv"),
                           "--at", AT)
        assert code == 3
        rows = read_csv(tmp_path / "o.csv")
        assert [r["decision"] for r in rows] == ["error", "error", "invalid"]
        assert "REGISTRY_MISSING" in rows[0]["reason_codes"]
        assert "dncguard lists import" in rows[0]["detail"]

    def test_night_call_defers_to_the_morning(self, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
        code, out, _ = cli(capsys, "check", "415-555-0100", "--json", "--at",
                           "2026-11-19T14:00:00Z")  # 06:00 in San Francisco
        assert code == 0
        v = json.loads(out)
        assert v["decision"] == "defer"
        assert v["reasons"][0]["code"] == "OUTSIDE_CALLING_WINDOW"
        assert v["reasons"][0]["citation"]
        assert v["next_allowed_at"] == "2026-11-19T16:00:00Z"  # 08:00 PST
        assert v["timezone"] == "America/Los_Angeles"
        assert v["versions"]["ruleset"]

    def test_wireless_list_marks_mobile_lines(self, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch,
                                             write_lines: Callable[..., Path]) -> None:
        """A number on a loaded wireless list is a mobile line for the rules: an autodialed
        telemarketing call to it needs consent, even when its row says landline (the
        evidence disagrees: judged by both kinds of rule); a landline not on it does not."""
        monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
        code, _, _ = cli(capsys, "lists", "import", str(write_lines(["2025550123"])), "--kind",
                         "wireless", "--name", "carrier-wireless")
        assert code == 0
        at = "2026-11-19T16:00:00Z"  # 11:00 in Washington
        _, out, _ = cli(capsys, "check", "2025550123", "--json", "--at", at, "--call-type",
                        "autodialed")
        v = json.loads(out)
        assert v["decision"] == "block"
        assert "CONSENT_REQUIRED" in [r["code"] for r in v["reasons"]]
        assert "carrier-wireless" in v["versions"]["lists"]
        _, out, _ = cli(capsys, "check", "2025550123", "--json", "--at", at, "--call-type",
                        "autodialed", "--line-type", "landline")
        assert "CONSENT_REQUIRED" in [r["code"] for r in json.loads(out)["reasons"]]
        _, out, _ = cli(capsys, "check", "2025550124", "--json", "--at", at, "--call-type",
                        "autodialed", "--line-type", "landline")
        assert "CONSENT_REQUIRED" not in [r["code"] for r in json.loads(out)["reasons"]]
        _, out, _ = cli(capsys, "check", "2025550124", "--json", "--at", at, "--call-type",
                        "autodialed")
        v = json.loads(out)  # not on the list: line type unknown, judged as mobile, said so
        assert v["decision"] == "block"
        assert [r["code"] for r in v["reasons"]] == ["LINE_TYPE_ASSUMED", "CONSENT_REQUIRED"]
        monkeypatch.setenv("DNCGUARD_RULES_UNKNOWN_LINE_TYPE", "ignore")
        _, out, _ = cli(capsys, "check", "2025550124", "--json", "--at", at, "--call-type",
                        "autodialed")
        assert json.loads(out)["decision"] == "allow"


def test_opt_outs_are_queued_for_cxone_write_back(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  store: ListStore) -> None:
    """With CXone configured, dnc add queues the opt-out and dnc remove queues its expiry,
    in the same transaction as the list change; a failed add queues nothing."""
    from dncguard.outbox import Outbox
    from dncguard.sources.cxone.push import TOPIC

    for name in ("CLIENT_ID", "CLIENT_SECRET", "ACCESS_KEY_ID", "ACCESS_KEY_SECRET"):
        monkeypatch.setenv(f"DNCGUARD_CXONE_{name}", "x")
    assert cli(capsys, "dnc", "add", "2025550123")[0] == 0
    assert cli(capsys, "dnc", "add", "+18765550100")[0] == 2  # unsupported region: refused
    assert cli(capsys, "dnc", "remove", "2025550123")[0] == 0
    assert cli(capsys, "dnc", "remove", "2025550124")[0] == 0  # was not listed: nothing to send
    items = Outbox(store.engine).items(TOPIC)
    assert [(i.payload["action"], i.payload["e164"]) for i in items] == [
        ("add", "+12025550123"), ("expire", "+12025550123")]


def test_unwritable_output_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str],
                                                       contacts: Path) -> None:
    code, out, err = cli(capsys, "scrub", str(contacts), "-o", "/proc/nope/out.csv", "-q")
    assert code == 2
    assert "Traceback" not in out + err
    assert "/proc/nope" in err


def test_serve_refuses_an_invalid_section_before_starting(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid section is a one-line error and exit 2 from ``dncguard serve``, not a
    failure inside a uvicorn worker."""
    home = tmp_path / "served"
    home.mkdir()
    (home / "dncguard.toml").write_text("[http_batch]\ntimeout_seconds = 0\n")
    monkeypatch.setenv("DNCGUARD_HOME", str(home))
    code, _, err = cli(capsys, "serve", "--no-auth", "--port", "1")
    assert code == 2 and "[http_batch]" in err and "Traceback" not in err
    assert "authentication is OFF" not in err  # refused before anything about serving
