"""The hash chain: appends, tamper detection, checkpoints, pruning, concurrent writers."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import delete, select, text, update

from dncguard.audit import AuditLog, record_list_change
from dncguard.audit.tables import (
    GENESIS,
    audit_checkpoints_table,
    audit_head_table,
    audit_records_table,
)
from dncguard.config import Settings, load_settings

from .conftest import FakeClock, make_log

R = audit_records_table


def fill(log: AuditLog, n: int, clock: FakeClock | None = None) -> None:
    for i in range(n):
        log.append("list", "add", who=f"user{i}", subject="internal",
                   number=f"+1202555{i:04d}", data={"i": i})
        if clock is not None:
            clock.advance(days=1)


def test_append_links_records_and_verifies(log: AuditLog) -> None:
    fill(log, 7)
    recs = list(log.records())
    assert [r.seq for r in recs] == list(range(1, 8))
    assert recs[0].prev_hash == GENESIS
    for a, b in zip(recs, recs[1:], strict=False):
        assert b.prev_hash == a.hash
    assert all(r.computed_hash() == r.hash for r in recs)
    res = log.verify()
    assert res.ok and res.checked == 7 and res.head_seq == 7, res.message
    assert log.head() == (7, recs[-1].hash)


def test_the_verify_message_counts_in_words(log: AuditLog) -> None:
    fill(log, 1)
    assert log.verify().message == "chain intact: 1 record (1 to 1)"
    fill(log, 1)
    assert log.verify().message == "chain intact: 2 records (1 to 2)"


def test_raw_numbers_are_never_stored(log: AuditLog) -> None:
    log.append("check", "check", number="+12025550123", decision="block",
               reason_codes=["DNC_NATIONAL"])
    rec = log.get(1)
    assert rec is not None
    assert rec.number_masked == "+1202555****"
    assert rec.number_hmac is not None and len(rec.number_hmac) == 64
    assert "2025550123" not in str(rec.to_dict())
    assert log.number_hmac("+12025550123") == rec.number_hmac
    # the HMAC depends on the key: another key gives another value
    other = make_log(log.settings)
    other.audit = other.audit.model_copy(update={"hmac_key": SecretStr("other")})
    assert other.number_hmac("+12025550123") != rec.number_hmac


def _exec(log: AuditLog, stmt: object) -> None:
    with log.engine.begin() as conn:
        conn.execute(stmt)  # type: ignore[call-overload]


def test_edited_record_is_named(log: AuditLog) -> None:
    fill(log, 6)
    _exec(log, update(R).where(R.c.seq == 3).values(decision="allow"))
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 3, res.message
    assert "record 3" in res.message


def test_edited_record_with_recomputed_hash_is_named(log: AuditLog) -> None:
    fill(log, 6)
    rec = log.get(3)
    assert rec is not None
    forged = rec.content() | {"who": "mallory"}
    from dncguard.audit._log import record_hash

    _exec(log, update(R).where(R.c.seq == 3).values(who="mallory", hash=record_hash(forged)))
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 3, res.message


def test_deleted_record_is_named(log: AuditLog) -> None:
    fill(log, 6)
    _exec(log, delete(R).where(R.c.seq == 4))
    res = log.verify()
    assert not res.ok and res.problem == "deleted" and res.bad_seq == 4, res.message


def test_deleted_first_record_is_named(log: AuditLog) -> None:
    fill(log, 3)
    _exec(log, delete(R).where(R.c.seq == 1))
    res = log.verify()
    assert not res.ok and res.problem == "deleted" and res.bad_seq == 1, res.message


def test_reordered_records_are_named(log: AuditLog) -> None:
    fill(log, 6)
    # swap records 3 and 4 (their numbers), keeping every record's own hash valid
    _exec(log, update(R).where(R.c.seq == 3).values(seq=-3))
    _exec(log, update(R).where(R.c.seq == 4).values(seq=3))
    _exec(log, update(R).where(R.c.seq == -3).values(seq=4))
    res = log.verify()
    assert not res.ok and res.problem == "reordered" and res.bad_seq == 3, res.message


def test_truncated_chain_is_named(log: AuditLog) -> None:
    fill(log, 6)
    _exec(log, delete(R).where(R.c.seq >= 5))
    res = log.verify()
    assert not res.ok and res.problem == "truncated" and res.bad_seq == 5, res.message


def test_truncation_with_rewritten_head_is_caught_by_checkpoint(log: AuditLog) -> None:
    fill(log, 12)  # checkpoints at 5 and 10
    rec = log.get(8)
    assert rec is not None
    _exec(log, delete(R).where(R.c.seq > 8))
    _exec(log, update(audit_head_table).values(seq=8, hash=rec.hash))
    res = log.verify()
    assert not res.ok and res.problem == "truncated" and res.bad_seq == 9, res.message


def test_record_inserted_behind_the_logs_back_is_caught(log: AuditLog) -> None:
    fill(log, 3)
    rec = log.get(3)
    assert rec is not None
    forged = {**rec.to_dict(), "seq": 4, "prev_hash": rec.hash, "who": "mallory"}
    forged["at"] = rec.at
    _exec(log, R.insert().values(**forged))
    res = log.verify()
    assert not res.ok and res.bad_seq == 4, res.message


def test_verify_while_others_append(log: AuditLog, settings: Settings) -> None:
    fill(log, 5)
    stop = threading.Event()

    def append() -> None:
        other = AuditLog(settings, audit=log.audit)
        while not stop.is_set():
            other.append("list", "add", subject="internal")

    t = threading.Thread(target=append)
    t.start()
    try:
        for _ in range(15):
            res = log.verify()
            assert res.ok, res.message
    finally:
        stop.set()
        t.join()
    assert log.verify().ok


def test_everything_deleted_is_truncation(log: AuditLog) -> None:
    fill(log, 3)
    _exec(log, delete(R))
    res = log.verify()
    assert not res.ok and res.problem == "truncated", res.message


def test_head_rewritten_with_truncation_still_caught_by_checkpoint(log: AuditLog) -> None:
    fill(log, 6)  # checkpoint at 5 (interval 5)
    rec = log.get(5)
    assert rec is not None
    _exec(log, update(audit_checkpoints_table).values(hash="f" * 64))
    res = log.verify()
    assert not res.ok and res.problem == "checkpoint" and res.bad_seq == 5


def test_prune_keeps_the_rest_verifiable(log: AuditLog, clock: FakeClock) -> None:
    fill(log, 12, clock)  # one a day; checkpoints at 5 and 10
    assert [r.seq for r in _checkpoints(log)] == [5, 10]
    now = clock.now
    # retention 5 days: records older than now-5d are 1..7; newest checkpoint there is 5
    out = log.prune(now=now, retention_days=5)
    assert out["through"] == 5 and out["deleted"] == 5
    seqs = [r.seq for r in log.records()]
    assert seqs[0] == 6 and seqs[-1] == 13  # 13: the prune record itself
    prune_rec = log.get(13)
    assert prune_rec is not None and prune_rec.kind == "prune"
    assert prune_rec.data["through_seq"] == 5
    res = log.verify()
    assert res.ok and res.anchored_at == 5 and res.first_seq == 6, res.message
    # tampering after a prune is still caught
    _exec(log, delete(R).where(R.c.seq == 6))
    res = log.verify()
    assert not res.ok and res.problem == "deleted", res.message


def test_deleting_up_to_a_checkpoint_without_prune_is_caught(log: AuditLog,
                                                            clock: FakeClock) -> None:
    fill(log, 12, clock)  # checkpoints at 5 and 10
    _exec(log, delete(R).where(R.c.seq <= 5))
    res = log.verify()
    assert not res.ok and res.problem == "deleted" and res.bad_seq == 1, res.message


def test_deleting_beyond_a_real_prune_is_caught(log: AuditLog, clock: FakeClock) -> None:
    fill(log, 12, clock)
    assert log.prune(now=clock.now, retention_days=5)["through"] == 5
    assert log.verify().ok
    _exec(log, delete(R).where(R.c.seq <= 10))
    res = log.verify()
    assert not res.ok and res.problem == "deleted" and res.bad_seq == 6, res.message


def test_prune_without_old_checkpoint_keeps_everything(log: AuditLog, clock: FakeClock) -> None:
    fill(log, 3, clock)
    out = log.prune(now=clock.now, retention_days=1)
    assert out["deleted"] == 0 and log.count() == 3


def test_prune_default_retention_is_five_years(settings: Settings, clock: FakeClock) -> None:
    log = make_log(settings, clock, checkpoint_interval=2)
    fill(log, 4, clock)
    assert log.prune(now=clock.now + timedelta(days=365 * 5 - 10))["deleted"] == 0
    assert log.prune(now=clock.now + timedelta(days=365 * 5 + 10))["deleted"] == 4
    assert log.verify().ok


def test_deleting_pruned_records_without_checkpoint_is_caught(log: AuditLog,
                                                             clock: FakeClock) -> None:
    fill(log, 12, clock)
    _exec(log, delete(R).where(R.c.seq <= 3))  # not at a checkpoint boundary
    res = log.verify()
    assert not res.ok and res.problem == "deleted", res.message


def _checkpoints(log: AuditLog) -> list[object]:
    with log.engine.connect() as conn:
        return list(conn.execute(select(audit_checkpoints_table)
                                 .order_by(audit_checkpoints_table.c.seq)).all())


def test_list_change_helper(settings: Settings) -> None:
    rec = record_list_change(settings, "add", "internal", who="cli:alice", why="asked",
                             number="+12025550123", detail={"expires": None})
    assert rec.kind == "list" and rec.action == "add" and rec.subject == "internal"
    assert rec.number_masked == "+1202555****" and rec.data["why"] == "asked"
    # no key configured: one was generated into the home with mode 0600
    key = settings.home / "audit" / "hmac.key"
    assert key.is_file() and (key.stat().st_mode & 0o777) == 0o600
    again = record_list_change(settings, "remove", "internal", number="+12025550123")
    assert again.number_hmac == rec.number_hmac


def _hammer(settings: Settings, threads: int, per: int) -> None:
    errors: list[BaseException] = []
    # create the engine and tables once (store.get_engine is not thread-safe on first use)
    audit = make_log(settings, checkpoint_interval=10).audit

    def work(t: int) -> None:
        try:
            log = AuditLog(settings, audit=audit)
            for i in range(per):
                log.append("list", "add", who=f"t{t}", subject="internal", data={"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors


def test_concurrent_writers_sqlite(settings: Settings) -> None:
    _hammer(settings, 4, 25)
    log = make_log(settings)
    res = log.verify()
    assert res.ok and res.checked == 100, res.message


@pytest.mark.postgres
def test_concurrent_writers_postgres(postgres_url: str, tmp_path: object) -> None:
    settings = load_settings(home=str(tmp_path), database_url=postgres_url)
    _hammer(settings, 4, 25)
    log = make_log(settings, checkpoint_interval=10)
    res = log.verify()
    assert res.ok and res.checked == 100 and res.head_seq == 100, res.message
    with log.engine.connect() as conn:
        assert conn.execute(select(audit_head_table.c.seq)).scalar_one() == 100
        assert conn.execute(text("select count(*) from audit_checkpoints")).scalar_one() == 10
    # tamper detection works the same on PostgreSQL
    _exec(log, update(R).where(R.c.seq == 50).values(who="mallory"))
    res = log.verify()
    assert not res.ok and res.bad_seq == 50


_WRITER = """
import sys
from dncguard.audit import AuditLog, AuditSettings
from dncguard.config import load_settings
log = AuditLog(load_settings(), audit=AuditSettings(hmac_key="k", checkpoint_interval=7))
for i in range(int(sys.argv[1])):
    log.append("list", "add", who=sys.argv[2], subject="internal", data={"i": i})
"""


def _processes(settings: Settings, n: int, per: int) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DNCGUARD_HOME": str(settings.home)}
    if settings.database_url:
        env["DNCGUARD_DATABASE_URL"] = settings.database_url
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    make_log(settings)  # tables exist before the writers race
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(per), f"p{i}"], env=env,
                              stderr=subprocess.PIPE) for i in range(n)]
    for p in procs:
        _, err = p.communicate(timeout=90)
        assert p.returncode == 0, err.decode()


def test_concurrent_processes_sqlite(settings: Settings) -> None:
    _processes(settings, 2, 40)
    res = make_log(settings).verify()
    assert res.ok and res.checked == 80 and res.head_seq == 80, res.message


@pytest.mark.postgres
def test_concurrent_processes_postgres(postgres_url: str, tmp_path: object) -> None:
    settings = load_settings(home=str(tmp_path), database_url=postgres_url)
    _processes(settings, 2, 40)
    res = make_log(settings).verify()
    assert res.ok and res.checked == 80 and res.head_seq == 80, res.message
