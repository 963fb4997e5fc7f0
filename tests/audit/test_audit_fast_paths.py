"""The fast paths of the chain: multi-row inserts, the encoding's shortcuts, and verification a
range at a time, which must reach exactly the verdict of the record-by-record walk."""

from __future__ import annotations

import copy
import functools
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, text, update

from dncguard import audit
from dncguard.audit import _chain as chain
from dncguard.audit import _log as log_module
from dncguard.audit._chain import SQLITE_BLOCKS, Batch, iso, jstr, jtext, pending, quick_check
from dncguard.audit._log import AuditLog
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
from .test_audit_group_commit import use, verdicts

R = audit_records_table


def _exec(log: AuditLog, stmt: Any) -> None:
    with log.engine.begin() as conn:
        conn.execute(stmt)


def _fill(log: AuditLog, settings: Settings, clock: FakeClock) -> None:
    """60 records of every shape: list changes (NULL columns), checks in bulk, a prune,
    values the SQL rebuild cannot quote, a time on the second."""
    use(settings, log)
    for i in range(6):
        log.append("list", "add", who=f"user{i}", subject="internal", number=f"+1202555{i:04d}",
                   data={"i": i})
        clock.advance(days=1, microseconds=1234)
    log.append_many(audit.check_fields(settings, verdicts(20), who="api:k", campaign="c"))
    clock.advance(days=10, microseconds=5)
    assert log.prune(now=clock.now, retention_days=12)["through"] == 5
    log.append("list", "remove", who='cli:"odd"\n\\', subject="tab\there")
    clock.now = clock.now.replace(microsecond=0)
    log.append("list", "add", who="on the second")
    clock.advance(microseconds=77)
    log.append_many(audit.check_fields(settings, verdicts(30), who="api:z"))


def _row_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_module, "quick_check", lambda *a, **k: None)


def _ranges(monkeypatch: pytest.MonkeyPatch, batch: int, readers: int = 2) -> None:
    monkeypatch.setattr(log_module, "scan", functools.partial(chain.scan, batch=batch,
                                                              readers=readers))


def _outcome(log: AuditLog) -> tuple[Any, ...]:
    res = log.verify()
    return (res.ok, res.problem, res.bad_seq, res.message, res.checked, res.first_seq,
            res.last_seq, res.anchored_at)


def _set(seq: int, **values: Any) -> Callable[[AuditLog], None]:
    def change(log: AuditLog) -> None:
        _exec(log, update(R).where(R.c.seq == seq).values(**values))
    return change


def _delete(*seqs: int) -> Callable[[AuditLog], None]:
    def change(log: AuditLog) -> None:
        _exec(log, delete(R).where(R.c.seq.in_(seqs)))
    return change


def _swap(a: int, b: int) -> Callable[[AuditLog], None]:
    def change(log: AuditLog) -> None:
        _exec(log, update(R).where(R.c.seq == a).values(seq=-a))
        _exec(log, update(R).where(R.c.seq == b).values(seq=a))
        _exec(log, update(R).where(R.c.seq == -a).values(seq=b))
    return change


def _rehash(seq: int, **values: Any) -> Callable[[AuditLog], None]:
    """Edit a record and give it the hash of its new content (no HMAC key needed)."""
    def change(log: AuditLog) -> None:
        rec = log.get(seq)
        assert rec is not None
        forged = rec.content() | values
        from dncguard.audit._log import record_hash

        _exec(log, update(R).where(R.c.seq == seq).values(hash=record_hash(forged), **values))
    return change


def _checkpoint(seq: int) -> Callable[[AuditLog], None]:
    def change(log: AuditLog) -> None:
        t = audit_checkpoints_table
        _exec(log, update(t).where(t.c.seq == seq).values(hash="f" * 64))
    return change


def _truncate(after: int) -> Callable[[AuditLog], None]:
    def change(log: AuditLog) -> None:
        rec = log.get(after)
        assert rec is not None
        _exec(log, delete(R).where(R.c.seq > after))
        _exec(log, update(audit_head_table).values(seq=after, hash=rec.hash))
    return change


def _hash_split(seq: int) -> Callable[[AuditLog], None]:
    """Move the last character of one record's hash to the start of the next one's: the
    hashes joined are unchanged, each one is wrong."""
    def change(log: AuditLog) -> None:
        a, b = log.get(seq), log.get(seq + 1)
        assert a is not None and b is not None
        _exec(log, update(R).where(R.c.seq == seq).values(hash=a.hash[:-1]))
        _exec(log, update(R).where(R.c.seq == seq + 1).values(hash=a.hash[-1] + b.hash))
    return change


TAMPERING: dict[str, Callable[[AuditLog], None] | None] = {
    "intact": None,
    "decision": _set(30, decision="allow"),
    "who of a list change": _set(7, who="mallory"),
    "data": _set(40, data={"x": 1}),
    "versions": _set(41, versions={}),
    "prev_hash": _set(42, prev_hash="0" * 64),
    "time": _set(43, at=datetime(2026, 1, 1, tzinfo=UTC)),
    "deleted": _delete(33),
    "deleted range": _delete(20, 21, 22),
    "deleted first": _delete(6),
    "deleted last": _delete(59),
    "reordered": _swap(35, 36),
    "rehashed": _rehash(38, who="mallory"),
    "checkpoint": _checkpoint(40),
    "truncated": _truncate(50),
    "hash split": _hash_split(44),
    "prune deleted": _delete(27),
}


@pytest.mark.parametrize("batch", [1, 7, 20_000])
@pytest.mark.parametrize("name", list(TAMPERING))
def test_ranges_reach_the_row_by_row_verdict(settings: Settings, clock: FakeClock,
                                            monkeypatch: pytest.MonkeyPatch, name: str,
                                            batch: int) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    _fill(log, settings, clock)
    change = TAMPERING[name]
    if change is not None:
        change(log)
    _ranges(monkeypatch, batch)
    fast = _outcome(log)
    _row_by_row(monkeypatch)
    slow = _outcome(log)
    assert fast == slow
    assert fast[0] is (change is None), fast


def test_text_moved_from_one_column_to_the_next_is_caught(settings: Settings,
                                                          clock: FakeClock) -> None:
    """Plain quoting would rebuild the same bytes when text moves across a column boundary
    (the data column's end becomes the decision's start); quotes are doubled instead."""
    log = make_log(settings, clock)
    log.append("list", "add", who="a", decision="allow", data={"a": "1", "decision": "y"})
    log.append("list", "add", who="b", decision="allow")
    assert log.verify().ok
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        db.execute("""UPDATE audit_records SET data = '{"a":"1"',
                      decision = 'y"},"decision":"allow' WHERE seq = 1""")
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 1, res.message


def test_a_json_column_that_no_longer_parses_is_edited(settings: Settings,
                                                      clock: FakeClock) -> None:
    log = make_log(settings, clock)
    for i in range(3):
        log.append("list", "add", who=f"w{i}", data={"i": i})
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        db.execute("UPDATE audit_records SET data = '{\"i\":' WHERE seq = 2")
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 2, res.message


@pytest.mark.parametrize("n", [1, 7, 8, 9, 2047, 2048, 2 * 2048 + 512 + 128 + 32 + 8 + 7])
def test_multi_row_inserts_store_every_record(settings: Settings, clock: FakeClock,
                                              n: int) -> None:
    log = make_log(settings, clock, checkpoint_interval=97)
    use(settings, log)
    log.append("list", "add", who="first")
    records = log.append_many(audit.check_fields(settings, verdicts(n), who="api:k"))
    assert [r.seq for r in records] == list(range(2, n + 2))
    stored = list(log.records())
    assert [r.to_dict() for r in stored[1:]] == [r.to_dict() for r in records]
    assert all(r.computed_hash() == r.hash for r in stored)
    assert log.head() == (n + 1, records[-1].hash)
    res = log.verify()
    assert res.ok and res.checked == n + 1, res.message
    with log.engine.connect() as conn:
        marks = conn.execute(text("SELECT seq, hash FROM audit_checkpoints")).all()
    assert sorted(marks) == [(s, log.get(s).hash) for s in range(97, n + 2, 97)]  # type: ignore[union-attr]


def test_quick_writer_returns_only_the_head(settings: Settings, clock: FakeClock) -> None:
    log = make_log(settings, clock)
    use(settings, log)
    n = SQLITE_BLOCKS[-1] + 2
    head = log.append_quiet(audit.check_fields(settings, verdicts(n), who="k"))
    assert head == log.head() and head[0] == n
    assert log.verify().ok


def test_encoding_shortcuts_write_the_canonical_text() -> None:
    times = [T0, T0.replace(microsecond=1), datetime(1, 1, 1, tzinfo=UTC),
             datetime(2026, 1, 1, 1, 1, 1, 999999), datetime(2026, 5, 5, tzinfo=ZoneInfo("UTC")),
             datetime(2026, 5, 5, 12, tzinfo=timezone(timedelta(hours=2)))]
    assert [iso(t) for t in times] == [t.isoformat() for t in times]
    for value in [None, "plain", 'a "quote"', "back\\slash", "new\nline", "\u00e9", "x" * 100,
                  "\u2028"]:
        assert jstr(value) == jstr(value) == jtext(value)
    p = pending(T0, "check", "check", 'who "q"', "+1202555****", "ab" * 32, "+1202555****",
                "allow", ["A"], {"lists": {"x": None}}, {"k": ["v"], "n": None}, plain=True)
    content = {"at": T0.isoformat(), "kind": "check", "action": "check", "who": 'who "q"',
               "subject": "+1202555****", "number_hmac": "ab" * 32,
               "number_masked": "+1202555****", "decision": "allow", "reason_codes": ["A"],
               "versions": {"lists": {"x": None}}, "data": {"k": ["v"], "n": None},
               "prev_hash": GENESIS}
    from dncguard.audit._log import canonical, record_hash

    assert p.head + GENESIS.encode() + p.tail == canonical(content)
    assert p.digest(GENESIS) == record_hash(content)
    assert p.at_sqlite == "2026-11-19 15:00:00.000000"
    later = pending(T0.replace(microsecond=42), "k", "a", None, None, None, None, None, [], {},
                    {})
    assert later.at_sqlite == "2026-11-19 15:00:00.000042"


def _batch(**kw: Any) -> Batch:
    fields: dict[str, Any] = {"after": 0, "upto": 3, "count": 2, "first": 1, "last": 2,
                              "seqs": "1,2", "prev_hashes": None, "hashes": None, "prunes": None,
                              "bodies": None, "unhashed": None}
    return Batch(**(fields | kw))


def test_quick_check_wants_each_hash_in_its_place() -> None:
    import hashlib

    one, two = b'{"a":1}', b'{"a":2}'
    h1, h2 = hashlib.sha256(one).hexdigest(), hashlib.sha256(two).hexdigest()
    good = _batch(prev_hashes=f"{GENESIS},{h1}", hashes=f"{h1},{h2}", bodies=one + b"\n" + two)
    assert quick_check(good, 1, GENESIS, {}) == ([], h2)
    assert quick_check(good, 1, GENESIS, {2: h2}) == ([], h2)
    assert quick_check(good, 1, GENESIS, {2: h1}) is None  # a checkpoint that differs
    assert quick_check(good, 2, GENESIS, {}) is None  # not the record expected next
    assert quick_check(good, 1, h1, {}) is None  # chained to another record
    for bad in [
        _batch(prev_hashes=f"{GENESIS},{h1}", hashes=f"{h1},{h2}", bodies=one + b"\n" + two,
               seqs="2,1"),  # read out of order
        _batch(prev_hashes=f"{GENESIS},{h1}", hashes=f"{h1[:-1]},{h1[-1]}{h2}",
               bodies=one + b"\n" + two),  # the same characters, split elsewhere
        _batch(prev_hashes=f"{GENESIS},{h1}", hashes=f"{h1},{h2}",
               bodies=one + b"\n\n" + two),  # a newline inside a record
        _batch(prev_hashes=f"{GENESIS}{h1[:1]},{h1[1:]}", hashes=f"{h1},{h2}",
               bodies=one + b"\n" + two),
        _batch(prev_hashes=f"{GENESIS},{h1}", hashes=f"{h1},{h2}", bodies=one + b"\n" + two,
               count=3, last=3, seqs="1,2,3"),
    ]:
        assert quick_check(bad, 1, GENESIS, {}) is None, bad
    # a record whose rebuilt text does not hash: to be checked from its parsed columns
    odd = _batch(prev_hashes=f"{GENESIS},{h1}", hashes=f"{h1},{h2}", bodies=one + b"\nX")
    assert quick_check(odd, 1, GENESIS, {}) == ([2], h2)


def test_scan_stops_its_readers_when_left(settings: Settings, clock: FakeClock) -> None:
    import threading

    log = make_log(settings, clock)
    for i in range(40):
        log.append("list", "add", who=f"w{i}")
    before = threading.active_count()
    batches: Iterator[Batch] = chain.scan(log.engine, 40, batch=3, readers=2)
    first = next(batches)
    assert first.count == 3 and first.first == 1
    batches.close()  # type: ignore[attr-defined]
    assert threading.active_count() == before
    assert [b.count for b in chain.scan(log.engine, 40, batch=7)] == [7] * 5 + [5]
    _exec(log, delete(R).where(R.c.seq <= 20))
    assert [b.first for b in chain.scan(log.engine, 40, batch=7)] == [21, 28, 35]
    assert list(chain.scan(log.engine, 0)) == []


@pytest.mark.postgres
def test_postgres_ranges_reach_the_row_by_row_verdict(postgres_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    clock = FakeClock()
    log = make_log(settings, clock, checkpoint_interval=5)
    _fill(log, settings, clock)
    engine: Engine = log.engine
    try:
        for name in ["intact", "decision", "deleted", "reordered", "rehashed", "checkpoint",
                     "prune deleted"]:  # (a hash of 65 characters does not fit)
            with engine.begin() as conn:  # a fresh copy of the chain for each tampering
                conn.execute(text("DROP TABLE IF EXISTS saved"))
                conn.execute(text("CREATE TABLE saved AS TABLE audit_records"))
                conn.execute(text("DROP TABLE IF EXISTS saved_cps"))
                conn.execute(text("CREATE TABLE saved_cps AS TABLE audit_checkpoints"))
                conn.execute(text("DROP TABLE IF EXISTS saved_head"))
                conn.execute(text("CREATE TABLE saved_head AS TABLE audit_head"))
            change = TAMPERING[name]
            if change is not None:
                change(log)
            with monkeypatch.context() as m:
                _ranges(m, 7)
                fast = _outcome(log)
                _row_by_row(m)
                slow = _outcome(log)
            assert fast == slow, name
            assert fast[0] is (change is None), (name, fast)
            with engine.begin() as conn:
                for table, saved in [("audit_records", "saved"),
                                     ("audit_checkpoints", "saved_cps"),
                                     ("audit_head", "saved_head")]:
                    conn.execute(text(f"DELETE FROM {table}"))
                    conn.execute(text(f"INSERT INTO {table} SELECT * FROM {saved}"))
    finally:
        dispose_engines()


def test_inserts_keep_within_the_connections_limit_of_variables(settings: Settings,
                                                                clock: FakeClock) -> None:
    log = make_log(settings, clock)
    use(settings, log)
    many = audit.check_fields(settings, verdicts(700), who="api:k")
    with log.engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        before = raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # older SQLite's
        try:
            records = log.append_many(many, conn=conn)
        finally:
            raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)
    assert len(records) == 700 and log.verify().ok


def test_records_of_a_batch_are_those_of_its_checks_one_by_one(settings: Settings,
                                                                 clock: FakeClock) -> None:
    """The records of a batch whose verdicts share their reason, time and version objects
    (as the engine's do) are, byte for byte, those of each verdict recorded alone; no record
    shares a list with another."""
    log = make_log(settings, clock)
    use(settings, log)
    later = T0 + timedelta(hours=2)
    shapes = [
        [],
        [Reason(code=ReasonCode.DNC_NATIONAL, decision=Decision.BLOCK, source="local",
                list="us-ftc"),
         Reason(code=ReasonCode.DNC_STATE, decision=Decision.BLOCK, source="local", list="tx")],
        [Reason(code="OUTSIDE_CALLING_WINDOW", decision=Decision.DEFER,
                source="rules", rule="US:calling_window"),
         Reason(code="HOLIDAY", decision=Decision.DEFER, source="rules",
                rule="TX:holiday")],
    ]
    versions = DataVersions(lists={"us-ftc": "2026-11-20"}, ruleset="r1")
    batch = [Verdict(input=f"+1202555{i:04d}", e164=f"+1202555{i:04d}",
                     decision=[Decision.ALLOW, Decision.BLOCK, Decision.DEFER][i % 3],
                     reasons=list(shapes[i % 3]), next_allowed_at=later if i % 3 == 2 else None,
                     region="US", state="TX", dial_time=T0, checked_at=T0, versions=versions)
             for i in range(30)]
    together = audit.check_fields(settings, batch, who="api:k")
    alone = [audit.check_fields(settings, [copy.deepcopy(v)], who="api:k")[0] for v in batch]
    assert [(p.head, p.tail, p.data, p.reason_codes) for p in together] == \
        [(p.head, p.tail, p.data, p.reason_codes) for p in alone]
    assert together[2].data["rules"] == ["TX:holiday", "US:calling_window"]
    together[2].data["rules"].append("x")
    together[2].reason_codes.append("x")
    assert together[5].data["rules"] == ["TX:holiday", "US:calling_window"]
    assert together[5].reason_codes == ["OUTSIDE_CALLING_WINDOW", "HOLIDAY"]


class _Ticking(FakeClock):
    """Moves a millisecond (and a microsecond) at every reading."""

    def __call__(self) -> datetime:
        self.advance(microseconds=1001)
        return self.now


def test_records_made_together_share_one_time(settings: Settings) -> None:
    """The records of one batch of checks carry one reading of the log's clock, hashed and
    stored alike; the next batch reads it again."""
    clock = _Ticking()
    log = make_log(settings, clock)
    use(settings, log)
    first = audit.check_fields(settings, verdicts(5), who="api:k")
    second = audit.check_records(settings, verdicts(3), ["api:a"] * 3)
    assert {p.at for p in first} == {T0 + timedelta(microseconds=1001)}
    assert {p.at for p in second} == {T0 + timedelta(microseconds=2002)}
    stored = log.append_many(first + second)
    assert [r.at for r in stored] == [p.at for p in first + second]
    assert log.verify().ok
    assert [r.at for r in log.records()][-1] == T0 + timedelta(microseconds=2002)
