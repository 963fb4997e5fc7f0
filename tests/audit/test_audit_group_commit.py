"""Bulk appends, the group-commit writer, health for /readyz, and verification of records
written before the canonical-text encoding, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from dncguard import audit
from dncguard.audit._log import AuditLog, AuditRecord
from dncguard.audit.tables import (
    GENESIS,
    audit_checkpoints_table,
    audit_head_table,
    audit_records_table,
)
from dncguard.config import Settings, load_settings
from dncguard.models import DataVersions, Decision, Reason, ReasonCode, Verdict
from dncguard.store import dispose_engines

from .conftest import T0, FakeClock, make_log


def verdicts(n: int) -> list[Verdict]:
    hit = [Reason(code=ReasonCode.DNC_NATIONAL, decision=Decision.BLOCK, source="local",
                  list="us-ftc", detail="number on national list us-ftc \"quoted\" \u00e9")]
    return [Verdict(input=f"+1202555{i:04d}", e164=f"+1202555{i:04d}",
                    decision=Decision.BLOCK if i % 3 == 0 else Decision.ALLOW,
                    reasons=hit if i % 3 == 0 else [], region="US", state="DC",
                    dial_time=T0, checked_at=T0,
                    versions=DataVersions(lists={"us-ftc": "2026-11-20", "x": None}))
            for i in range(n)]


def use(settings: Settings, log: AuditLog) -> None:
    audit._logs[(str(settings.home), settings.db_url, str(settings.config_file))] = log


def test_ten_thousand_records_in_one_append(settings: Settings, clock: FakeClock) -> None:
    log = make_log(settings, clock, checkpoint_interval=1000)
    use(settings, log)
    log.append("list", "add", who="cli:a", number="+12025550100")
    records = log.append_many(audit.check_fields(settings, verdicts(10_000), who="api:k",
                                                 campaign="c"))
    assert [r.seq for r in records] == list(range(2, 10_002))
    assert records[0].prev_hash == log.get(1).hash  # type: ignore[union-attr]
    res = log.verify()
    assert res.ok and res.checked == 10_001, res.message
    assert log.head() == (10_001, records[-1].hash)
    with log.engine.connect() as conn:
        cps = conn.execute(select(audit_checkpoints_table.c.seq)).scalars().all()
    assert sorted(cps) == list(range(1000, 10_001, 1000))
    stored = log.get(5)
    assert stored is not None and stored.computed_hash() == stored.hash
    assert stored.data["campaign"] == "c" and stored.number_masked == "+1202555****"
    # an edit in the middle is still named
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        db.execute("UPDATE audit_records SET decision = 'allow' WHERE seq = 5000")
    bad = log.verify()
    assert not bad.ok and bad.problem == "edited" and bad.bad_seq == 5000


def test_records_written_before_the_canonical_encoding_still_verify(
        settings: Settings, clock: FakeClock) -> None:
    """Old records stored SQLAlchemy's JSON text (spaces, insertion order): verification
    rebuilds those from the parsed columns."""
    log = make_log(settings, clock)
    fields = {"at": T0, "kind": "list", "action": "add", "who": "cli:a", "subject": "internal",
              "number_hmac": None, "number_masked": None, "decision": None,
              "reason_codes": ["B", "A"], "versions": {"z": 1, "a": [1, 2]},
              "data": {"why": "asked", "b": None, "a": "\u00e9\n"}}
    rec = AuditRecord(seq=1, prev_hash=GENESIS, hash="", **fields)  # type: ignore[arg-type]
    digest = rec.computed_hash()
    with log.engine.begin() as conn:
        conn.execute(insert(audit_records_table).values(seq=1, prev_hash=GENESIS, hash=digest,
                                                        **fields))
        conn.execute(audit_head_table.update().values(seq=1, hash=digest))
    log.append("list", "remove", who="cli:a")  # a new-style record chained after it
    # text SQLite's rebuild does not escape: checked from the parsed columns, still intact
    log.append("list", "remove", who='cli:"odd"\n\\', subject="tab\there")
    res = log.verify()
    assert res.ok and res.checked == 3, res.message
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        db.execute("UPDATE audit_records SET data = '{\"why\": \"other\", \"b\": null, "
                   "\"a\": \"\\u00e9\\n\"}' WHERE seq = 1")
    bad = log.verify()
    assert not bad.ok and bad.problem == "edited" and bad.bad_seq == 1


def test_writer_shares_transactions_and_reports_failure(settings: Settings,
                                                       clock: FakeClock) -> None:
    log = make_log(settings, clock)
    use(settings, log)
    health = audit.health(settings)
    writer = audit.AuditWriter(log, health)
    errors: list[BaseException] = []

    def submit(k: int) -> None:
        try:
            writer.append(audit.check_fields(settings, verdicts(50), who=f"api:{k}"))
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and log.count() == 400 and log.verify().ok
    assert health.ok and audit.readiness_problems(settings) == []

    with sqlite3.connect(settings.home / "dncguard.db") as db:
        db.execute("CREATE TRIGGER ro BEFORE INSERT ON audit_records "
                   "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END")
    with pytest.raises(audit.AuditUnavailable, match="readonly"):
        writer.append(audit.check_fields(settings, verdicts(3), who="api:x"))
    assert not health.ok
    problems = audit.readiness_problems(settings)  # the trial append fails too
    assert len(problems) == 1 and "audit trail" in problems[0] and "readonly" in problems[0]
    assert log.count() == 400
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        db.execute("DROP TRIGGER ro")
    assert audit.readiness_problems(settings) == []  # the trial append works again
    assert health.ok and log.count() == 400  # and left nothing behind
    writer.append(audit.check_fields(settings, verdicts(3), who="api:x"))
    assert log.count() == 403 and log.verify().ok
    writer.stop()


def test_writer_wakes_for_each_append_and_stop_commits_what_is_queued(
        settings: Settings, clock: FakeClock) -> None:
    """The writer thread, idle between appends, is woken by each (many rounds, one and
    several threads at a time); a stop while records are queued commits them before the
    thread ends; later appends are refused; a second stop does nothing. Every wait has a
    timeout, so a writer that is never woken fails the test instead of hanging it."""
    from concurrent.futures import Future

    log = make_log(settings, clock)
    use(settings, log)
    writer = audit.AuditWriter(log, audit.health(settings))

    def append(records: list[audit.Pending]) -> None:
        fut: Future[None] = Future()
        writer.submit(records, lambda exc: fut.set_exception(exc) if exc
                      else fut.set_result(None))
        fut.result(timeout=30)

    for _ in range(50):  # the writer is idle before each
        append(audit.check_fields(settings, verdicts(2), who="api:a"))
    threads = [threading.Thread(target=append,
                                args=(audit.check_fields(settings, verdicts(5), who="api:b"),))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    # hold the writer in a callback (it runs on the writer's thread) while one more append
    # is queued and the stop is asked for
    holding, release = threading.Event(), threading.Event()

    def hold(exc: BaseException | None) -> None:
        holding.set()
        release.wait(30)

    done: list[BaseException | None] = []
    writer.submit(audit.check_fields(settings, verdicts(1), who="api:c"), hold)
    assert holding.wait(30)
    writer.submit(audit.check_fields(settings, verdicts(3), who="api:c"), done.append)
    stopping = threading.Thread(target=writer.stop)
    stopping.start()
    stopping.join(0.2)
    assert stopping.is_alive() and done == []  # the stop waits for the queued records
    release.set()
    stopping.join(30)
    assert not stopping.is_alive() and done == [None]
    assert log.count() == 50 * 2 + 20 * 5 + 1 + 3 and log.verify().ok
    with pytest.raises(audit.AuditUnavailable, match="stopped"):
        append(audit.check_fields(settings, verdicts(1), who="api:d"))
    writer.stop()  # again: nothing to do


@pytest.mark.postgres
def test_postgres_copy_and_verify(postgres_url: str, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    log = make_log(settings, FakeClock(), checkpoint_interval=500)
    use(settings, log)
    log.append("list", "add", who="cli:a", number="+12025550100", data={"why": "x\ty"})
    log.append_many(audit.check_fields(settings, verdicts(2000), who="api:k"))
    res = log.verify()
    assert res.ok and res.checked == 2001, res.message
    rec = log.get(1000)
    assert rec is not None and rec.computed_hash() == rec.hash
    dispose_engines()


WRITER = textwrap.dedent("""
    import sys
    from dncguard import audit
    from dncguard.audit.settings import AuditSettings
    from dncguard.config import load_settings
    from dncguard.models import DataVersions, Decision, Verdict
    from datetime import UTC, datetime

    settings = load_settings(home=sys.argv[1], database_url=sys.argv[2])
    log = audit.AuditLog(settings, audit=AuditSettings(hmac_key="k"))
    now = datetime.now(UTC)
    for k in range(40):
        vs = [Verdict(input="+12025550100", e164="+12025550100", decision=Decision.ALLOW,
                      reasons=[], dial_time=now, checked_at=now,
                      versions=DataVersions()) for _ in range(25)]
        log.append_many([audit._check_fields(log, v, "proc:" + sys.argv[3], {}) for v in vs])
""")


@pytest.mark.postgres
def test_postgres_processes_extend_one_chain(postgres_url: str, tmp_path: Path) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    home = tmp_path / "home"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(home), postgres_url, str(k)],
                              env=env) for k in range(3)]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    settings = load_settings(home=home, database_url=postgres_url)
    log = make_log(settings, FakeClock())
    res = log.verify()
    assert res.ok and res.checked == 3 * 40 * 25, res.message
    dispose_engines()
