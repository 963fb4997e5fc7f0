"""The group-commit writer takes its records once it holds the chain head's lock: records
handed over while it waited for another transaction (another process's, on SQLite the OS
lock beside the database; on PostgreSQL the head row's lock) join its transaction instead of
waiting for the next one. A failure before anything was taken still answers every caller."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text

from dncguard import audit
from dncguard.audit import Pending
from dncguard.audit._log import AuditLog
from dncguard.config import Settings, load_settings
from dncguard.store import dispose_engines, sqlite_write_lock

from .conftest import FakeClock, make_log
from .test_audit_group_commit import use, verdicts


class SpyLog(AuditLog):
    """Counts the records of each transaction; tells when the writer has begun one."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.sizes: list[int] = []
        self.entered = threading.Event()

    def append_gathered(self, take: Callable[[], list[Pending]]) -> tuple[int, str]:
        def counted() -> list[Pending]:
            records = take()
            self.sizes.append(len(records))
            return records

        self.entered.set()
        return super().append_gathered(counted)


def spy_log(settings: Settings) -> SpyLog:
    base = make_log(settings, FakeClock())
    log = SpyLog(settings, audit=base.audit, clock=base.clock)
    use(settings, log)
    return log


@contextmanager
def head_locked(log: AuditLog) -> Iterator[None]:
    """The chain head held as another process's transaction holds it."""
    if log.engine.dialect.name == "sqlite":
        with sqlite_write_lock(log.engine):
            yield
        return
    with log.engine.connect() as conn, conn.begin():
        conn.execute(text("UPDATE audit_head SET updated_at = updated_at WHERE id = 1"))
        yield


def submit(writer: audit.AuditWriter, records: list[Pending]) -> Future[None]:
    fut: Future[None] = Future()
    writer.submit(records, lambda exc: fut.set_exception(exc) if exc else fut.set_result(None))
    return fut


def check_records_join(settings: Settings) -> None:
    log = spy_log(settings)
    log.append_quiet(audit.check_fields(settings, verdicts(1), who="api:first"))  # a head row
    writer = audit.AuditWriter(log, audit.health(settings))
    try:
        with head_locked(log):
            first = submit(writer, audit.check_fields(settings, verdicts(2), who="api:a"))
            assert log.entered.wait(30)  # the writer has begun its transaction
            later = [submit(writer, audit.check_fields(settings, verdicts(3), who="api:b"))
                     for _ in range(4)]
            assert not first.done()  # it waits for the lock
        for fut in [first, *later]:
            fut.result(timeout=30)
        # the first transaction (append_quiet) had 1; then one for all 2 + 4 x 3
        assert log.sizes == [1, 14]
        assert log.count() == 15 and log.verify().ok
    finally:
        writer.stop()


def test_records_handed_over_during_the_wait_join_the_transaction(settings: Settings) -> None:
    check_records_join(settings)


@pytest.mark.postgres
def test_the_same_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    try:
        check_records_join(load_settings(home=tmp_path / "home", database_url=postgres_url))
    finally:
        dispose_engines()


class FailingLog(AuditLog):
    def append_gathered(self, take: Callable[[], list[Pending]]) -> tuple[int, str]:
        raise OSError("disk gone")  # before anything was taken


def test_a_failure_before_taking_answers_every_caller(settings: Settings) -> None:
    base = make_log(settings, FakeClock())
    log = FailingLog(settings, audit=base.audit, clock=base.clock)
    health = audit.health(settings)
    writer = audit.AuditWriter(log, health)
    try:
        futs = [submit(writer, audit.check_fields(settings, verdicts(2), who="api:a"))
                for _ in range(3)]
        for fut in futs:
            with pytest.raises(audit.AuditUnavailable, match="disk gone"):
                fut.result(timeout=30)
        assert not health.ok
    finally:
        writer.stop()


def rows(log: AuditLog) -> dict[str, list[tuple[object, ...]]]:
    with log.engine.connect() as conn:
        return {
            "records": [tuple(r) for r in conn.execute(text(
                "SELECT * FROM audit_records ORDER BY seq"))],
            "checkpoints": [tuple(r) for r in conn.execute(text(
                "SELECT seq, hash, at FROM audit_checkpoints ORDER BY seq"))],
            "head": [tuple(r) for r in conn.execute(text("SELECT id, seq, hash FROM audit_head"))],
            "stamps": [tuple(r) for r in conn.execute(text(
                "SELECT updated_at FROM audit_head UNION ALL "
                "SELECT created_at FROM audit_checkpoints"))],
        }


def test_the_driver_path_writes_what_sqlalchemy_writes(tmp_path: Path) -> None:
    """The SQLite group commit (through the driver) and an append through SQLAlchemy store
    the same rows, times in SQLAlchemy's text form, checkpoints where they belong."""
    import re

    written = []
    for name in ("driver", "sqlalchemy"):
        settings = load_settings(home=tmp_path / name)
        log = make_log(settings, FakeClock(), checkpoint_interval=3)
        many = [log.fields("check", "test", who="api:k", subject=f"s{i}",
                           number=f"+1202555{i:04d}", decision="allow",
                           data={"i": i, "text": "\u00e9 \"q\""}) for i in range(7)]
        if name == "driver":
            log.append_quiet(many[:4])
            log.append_quiet(many[4:])
        else:
            log.append_many(many[:4])
            log.append_many(many[4:])
        assert log.verify().ok
        written.append(rows(log))
    driver, reference = written
    for part in ("records", "checkpoints", "head"):
        assert driver[part] == reference[part], part
    assert [r[0] for r in driver["checkpoints"]] == [3, 6]
    form = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
    assert all(form.match(str(s[0])) for s in driver["stamps"] + reference["stamps"])
    dispose_engines()


def test_readiness_tries_the_path_appends_take(settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """/readyz's trial append takes the group commit's path: when only that path fails, the
    process stays unready (it does not pass on another path while every check fails)."""
    import sqlite3

    from sqlalchemy.exc import DBAPIError

    log = make_log(settings, FakeClock())
    use(settings, log)
    health = audit.health(settings)
    writer = audit.AuditWriter(log, health)

    def broken(self: AuditLog, take: object, *, keep: bool = True) -> tuple[int, str]:
        raise DBAPIError.instance("audit append", None,
                                  sqlite3.OperationalError("disk I/O error"), sqlite3.Error)

    try:
        monkeypatch.setattr(AuditLog, "_append_sqlite", broken)
        with pytest.raises(audit.AuditUnavailable, match="disk I/O"):
            submit(writer, audit.check_fields(settings, verdicts(2), who="api:a")).result(30)
        problems = audit.readiness_problems(settings)
        assert len(problems) == 1 and "disk I/O" in problems[0]
        monkeypatch.undo()
        assert audit.readiness_problems(settings) == []
        assert log.count() == 0  # the trial was rolled back
    finally:
        writer.stop()


def test_a_writer_that_dies_leaves_nobody_waiting(settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Something that is not an Exception ends the writer's thread: the callers it took and
    those still queued are answered (AuditUnavailable), later ones are refused at once."""
    died: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: died.append(args.exc_value))
    base = make_log(settings, FakeClock())
    gate = threading.Event()

    class Dying(AuditLog):
        def append_gathered(self, take: Callable[[], list[Pending]]) -> tuple[int, str]:
            gate.wait(30)
            take()
            raise KeyboardInterrupt

    log = Dying(settings, audit=base.audit, clock=base.clock)
    health = audit.health(settings)
    writer = audit.AuditWriter(log, health, max_records=2)
    futs = [submit(writer, audit.check_fields(settings, verdicts(2), who="api:a"))
            for _ in range(3)]  # the first is taken; two wait in the queue (max_records)
    gate.set()
    for fut in futs:
        with pytest.raises(audit.AuditUnavailable):
            fut.result(timeout=30)
    assert writer._thread is not None
    writer._thread.join(30)
    assert [type(e) for e in died] == [KeyboardInterrupt] and not health.ok
    with pytest.raises(audit.AuditUnavailable, match="stopped"):
        submit(writer, audit.check_fields(settings, verdicts(1), who="api:b"))
