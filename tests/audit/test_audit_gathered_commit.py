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
