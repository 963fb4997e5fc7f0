"""Verification and pruning against a forger with write access to the database (a review).

A record forged beyond the chain head is reported whatever is appended meanwhile; a
checkpoint's time is checked against its record's, and pruning goes by the records' own
times; a chain that does not verify is not pruned; time bounds in another zone select the
same records as in UTC. Real SQLite files (and PostgreSQL), changed with plain SQL.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from dncguard.audit import AuditLog
from dncguard.audit import _log as log_module
from dncguard.audit.export import export_file
from dncguard.audit.search import search_number
from dncguard.cli import run
from dncguard.config import Settings, load_settings
from dncguard.errors import AuditError

from .conftest import T0, FakeClock, make_log

FORGE = ("INSERT INTO audit_records SELECT 1000000, at, kind, action, who, subject, "
         "number_hmac, number_masked, 'block', reason_codes, versions, data, prev_hash, hash "
         "FROM audit_records WHERE seq = 3")


def _sql(settings: Settings, *statements: str) -> None:
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        for statement in statements:
            db.execute(statement)
    db.close()


def fill(log: AuditLog, clock: FakeClock, n: int, *, step: timedelta = timedelta(days=1)
         ) -> None:
    for i in range(n):
        log.append("list", "add", who=f"user{i}", subject="internal",
                   number=f"+1202555{i:04d}", data={"i": i})
        clock.advance(step.total_seconds())


def _append_while_verifying(monkeypatch: pytest.MonkeyPatch, log: AuditLog) -> list[int]:
    """Make every scan of the chain first append a record (another writer, meanwhile)."""
    scan = log_module.scan
    appended: list[int] = []

    def scan_while_appending(engine: Any, upto: int, *args: Any, **kw: Any) -> Any:
        appended.append(log.append("list", "add", who="busy", subject="internal").seq)
        return scan(engine, upto, *args, **kw)

    monkeypatch.setattr(log_module, "scan", scan_while_appending)
    return appended


# -- a record beyond the head -----------------------------------------------------------------


def test_a_record_forged_beyond_the_head_is_caught_while_records_are_appended(
        settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 6)
    _sql(settings, FORGE)
    assert log.verify().bad_seq == 1_000_000  # idle
    appended = _append_while_verifying(monkeypatch, log)
    res = log.verify()
    assert appended, "the scan ran"
    assert not res.ok and res.problem == "edited" and res.bad_seq == 1_000_000, res.message
    assert "not appended through the audit log" in res.message


def test_appends_meanwhile_alone_still_verify(settings: Settings, clock: FakeClock,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 6)
    _append_while_verifying(monkeypatch, log)
    res = log.verify()
    assert res.ok and res.last_seq == 6, res.message  # the one appended meanwhile is next time's


def test_search_leaves_out_a_record_beyond_the_head(settings: Settings, clock: FakeClock
                                                  ) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 5)
    _sql(settings, FORGE)
    found = search_number(log, "+12025550002", jobs=False)
    assert [h.seq for h in found.hits] == [3]


@pytest.mark.postgres
def test_postgres_a_record_forged_beyond_the_head_is_caught_while_appending(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    clock = FakeClock()
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 6)
    with log.engine.begin() as conn:
        conn.execute(text(FORGE))
    _append_while_verifying(monkeypatch, log)
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 1_000_000, res.message


# -- checkpoints' times and pruning -------------------------------------------------------------


def test_a_checkpoint_time_edited_is_caught_and_prunes_nothing(settings: Settings,
                                                               clock: FakeClock) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 12)  # one a day from T0: checkpoints 5 and 10
    now = T0 + timedelta(days=12)
    _sql(settings, "UPDATE audit_checkpoints SET at = '2000-01-01 00:00:00.000000' "
         "WHERE seq = 10")
    res = log.verify()
    assert not res.ok and res.problem == "checkpoint" and res.bad_seq == 10, res.message
    assert "time" in res.message
    with pytest.raises(AuditError, match="checkpoint, record 10"):
        log.prune(now=now, retention_days=5)  # records 8 to 12 are newer than the cutoff
    assert log.count() == 12


def test_the_same_instant_in_another_text_is_not_a_moved_checkpoint(
        settings: Settings, clock: FakeClock) -> None:
    """A checkpoint's time is compared as an instant (older trails may store other text)."""
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 6)
    _sql(settings, "UPDATE audit_checkpoints SET at = replace(at, ' ', 'T') || '+00:00' "
         "WHERE seq = 5")
    assert log.verify().ok


def test_prune_goes_by_the_records_times_not_past_a_newer_record(
        settings: Settings, clock: FakeClock) -> None:
    """Record 3 is newer than the cutoff (appends read the clock before the lock, so the
    times of a chain may step back): checkpoint 5's record is older, yet nothing goes."""
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 2)
    log.append("list", "add", who="late", subject="internal", at=T0 + timedelta(days=30))
    fill(log, clock, 4)
    out = log.prune(now=T0 + timedelta(days=20), retention_days=5)
    assert out["through"] == 0 and out["deleted"] == 0
    assert log.count() == 7
    out = log.prune(now=T0 + timedelta(days=40), retention_days=5)
    assert out["through"] == 5 and out["deleted"] == 5
    assert log.verify().ok


def test_a_prune_that_would_reach_the_cutoff_stops_at_the_checkpoint_before(
        settings: Settings, clock: FakeClock) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 12)  # record n at T0 + (n - 1) days
    out = log.prune(now=T0 + timedelta(days=14), retention_days=5)  # cutoff: record 10's day
    assert out["through"] == 5 and out["deleted"] == 5
    assert log.verify().ok


# -- a broken chain is not pruned ----------------------------------------------------------------


def test_prune_refuses_a_broken_chain_and_deletes_nothing(settings: Settings,
                                                          clock: FakeClock) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 12)
    _sql(settings, "UPDATE audit_records SET decision = 'allow' WHERE seq = 3")
    for dry_run in (True, False):
        with pytest.raises(AuditError, match=r"broken \(edited, record 3\).*Nothing was pruned"):
            log.prune(now=T0 + timedelta(days=30), retention_days=1, dry_run=dry_run)
    assert log.count() == 12
    assert log.verify().bad_seq == 3  # the evidence is still there


def test_prune_command_on_a_broken_chain_exits_1(settings: Settings, clock: FakeClock,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 12)  # November 2026: older than a day by the real clock
    _sql(settings, "UPDATE audit_records SET decision = 'allow' WHERE seq = 3")
    monkeypatch.setenv("DNCGUARD_AUDIT_CHECKPOINT_INTERVAL", "5")
    assert run(["audit", "prune", "--retention-days", "1"]) == 1
    err = capsys.readouterr().err
    assert "TAMPERED (edited, record 3)" in err and "nothing pruned" in err
    assert "Traceback" not in err
    assert log.count() == 12


def test_prune_command_deletes_through_the_checkpoint_and_the_rest_verifies(
        settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 12)  # November 2026: older than a day by the real clock
    assert run(["audit", "prune", "--retention-days", "1"]) == 0
    assert "deleted 10 records (through record 10" in capsys.readouterr().out
    res = log.verify()
    assert res.ok and res.anchored_at == 10 and res.first_seq == 11, res.message


# -- time bounds in another zone ----------------------------------------------------------------


def test_records_and_exports_take_bounds_in_any_zone(settings: Settings, clock: FakeClock,
                                                      tmp_path: Path) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 6, step=timedelta(hours=1))  # 15:00 to 20:00 UTC
    third = log.get(3)
    assert third is not None
    ny = ZoneInfo("America/New_York")
    since, until = third.at.astimezone(ny), (third.at + timedelta(hours=2)).astimezone(ny)
    assert [r.seq for r in log.records(since=since, until=until)] == [3, 4]
    out = tmp_path / "ny.ndjson"
    assert export_file(log, out, since=since, until=datetime(2100, 1, 1, tzinfo=ny)) == 4
    assert out.read_text("utf-8").count("\n") == 4
