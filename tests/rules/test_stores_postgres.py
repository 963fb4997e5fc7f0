"""The consent and attempt lookups of a batch (one query, the numbers as one parameter) on
SQLite and on the real PostgreSQL: the same records, only for the numbers that have any; a
large batch meeting an empty table does not send its numbers, and finds a row once there is
one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from dncguard.config import CampaignProfile, load_settings
from dncguard.sources.rules import AttemptStore, ConsentStore
from dncguard.sources.rules.stores import (
    PROBE_EMPTY_FROM,
    any_for_numbers,
    attempts_table,
    consent_table,
    numbers_with_rows,
)

AT = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)


def _lookups(home: Path, database_url: str | None) -> None:
    settings = load_settings(home=home, **({"database_url": database_url} if database_url
                                           else {}))
    settings.campaigns["spring"] = CampaignProfile()  # an attempt names a campaign profile
    consents, attempts = ConsentStore(settings), AttemptStore(settings)
    assert consents.for_numbers(["+12125550100"]) == {}
    many = [f"+1202555{i:04d}" for i in range(3000)] + ["+12125550100", "+14055550100"]
    assert len(many) >= PROBE_EMPTY_FROM
    sent: list[int] = []

    def count(conn: object, cursor: object, statement: str, params: object, *_: object) -> None:
        sent.append(len(str(params)))

    for engine, lookup in ((consents.engine, lambda: consents.for_numbers(many)),
                           (attempts.engine,
                            lambda: attempts.for_numbers(many, AT - timedelta(hours=24)))):
        sent.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert lookup() == {}
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert sent and max(sent) < 1000  # the probe only: the 3,002 numbers never went out
    with consents.reads.connect() as conn:
        assert not consents.has_records(conn) and not attempts.has_records(conn)
        assert not consents.has_records(conn, many) and not attempts.has_records(conn, many)
    consents.add("+12125550100", "express", date(2026, 1, 5))
    consents.add("+12125550100", "ebr_inquiry", date(2026, 2, 5), expires=date(2026, 8, 5))
    consents.add("+13055550100", "express_written", date(2026, 3, 1))
    for hours in (30, 20, 2):
        attempts.record("+12125550100", AT - timedelta(hours=hours), campaign="spring")
    attempts.record("+14055550100", AT - timedelta(hours=1))
    with consents.reads.connect() as conn:  # the questions asked before reading records
        assert consents.has_records(conn) and attempts.has_records(conn)
        assert consents.has_records(conn, ["+19995550100", "+12125550100"])
        assert attempts.has_records(conn, ["+14055550100"])
        assert not consents.has_records(conn, ["+14055550100"])
        assert not consents.has_records(conn, ["+19995550100", "+12125550101"])
        assert not attempts.has_records(conn, ["+19995550100", "+12125550101"])
        assert not consents.has_records(conn, [])
        # both tables in one query (the pre-dial path's question), each answered for itself
        both = [consent_table, attempts_table]
        assert numbers_with_rows(conn, ["+12125550100"], both) == (True, True)
        assert numbers_with_rows(conn, ["+13055550100"], both) == (True, False)
        assert numbers_with_rows(conn, ["+14055550100"], both) == (False, True)
        assert numbers_with_rows(conn, ["+13055550100", "+14055550100"], both) == (True, True)
        assert numbers_with_rows(conn, ["+19995550100"], both) == (False, False)
        assert numbers_with_rows(conn, ["+14055550100"], [attempts_table]) == (True,)
        assert numbers_with_rows(conn, [], both) == (False, False)
        assert consents.with_attempts(conn, ["+14055550100"]) == (False, True)
        assert consents.with_attempts(conn, ["+13055550100"]) == (True, False)
    found = consents.for_numbers(many + ["+12125550100"])
    assert sorted(found) == ["+12125550100"]
    assert sorted(r.type for r in found["+12125550100"]) == ["ebr_inquiry", "express"]
    recent = attempts.for_numbers(many, AT - timedelta(hours=24))
    assert sorted(recent) == ["+12125550100", "+14055550100"]
    assert [a.at for a in recent["+12125550100"]] == [AT - timedelta(hours=20),
                                                      AT - timedelta(hours=2)]
    assert all(a.at.tzinfo is not None for a in recent["+14055550100"])
    assert attempts.for_numbers([], AT) == {}


def test_batch_lookups_sqlite(tmp_path: Path) -> None:
    _lookups(tmp_path / "home", None)


@pytest.mark.postgres
def test_batch_lookups_postgres(tmp_path: Path, postgres_url: str) -> None:
    _lookups(tmp_path / "home", postgres_url)


def test_a_failed_question_is_a_database_error(tmp_path: Path) -> None:
    """The driver's error comes out as SQLAlchemy's, which the checks fail closed on."""
    from sqlalchemy.exc import SQLAlchemyError

    consents = ConsentStore(load_settings(home=tmp_path / "home"))
    with consents.reads.connect() as conn:
        missing = consent_table.to_metadata(type(consent_table.metadata)(), name="no_such")
        with pytest.raises(SQLAlchemyError):
            any_for_numbers(conn, ["+12125550100"], missing)


def _subjects(home: Path, database_url: str | None) -> None:
    """A batch's subjects go out as one parameter however many there are (a chunk whose
    every row names its own debt), through the subject index."""
    settings = load_settings(home=home, **({"database_url": database_url} if database_url
                                           else {}))
    attempts = AttemptStore(settings)
    subjects = [f"DEBT-{i}" for i in range(70_000)]  # more than either driver's parameters
    since = AT - timedelta(days=7)
    with attempts.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        if database_url is None:  # a stock SQLite build's limit, whatever this one allows
            import sqlite3

            raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # type: ignore[union-attr]
        assert attempts.for_subjects(subjects, since, conn) == {}  # an empty table
    attempts.record("+12125550100", AT - timedelta(days=1), purpose="collections",
                    subject="DEBT-7", outcome="conversation")
    attempts.record("+19175550100", AT - timedelta(days=2), purpose="collections",
                    subject="DEBT-7")
    attempts.record("+19175550100", AT - timedelta(days=9), purpose="collections",
                    subject="DEBT-7")  # before the window
    attempts.record("+13125550100", AT - timedelta(hours=1), purpose="collections",
                    subject="DEBT-OTHER")
    with attempts.engine.connect() as conn:
        if database_url is None:
            import sqlite3

            conn.connection.dbapi_connection.setlimit(  # type: ignore[union-attr]
                sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        found = attempts.for_subjects(subjects, since, conn)
    assert sorted(found) == ["debt-7"]  # subjects are stored and compared in lower case
    assert [(n, a.at) for n, a in found["debt-7"]] == [
        ("+19175550100", AT - timedelta(days=2)), ("+12125550100", AT - timedelta(days=1))]


def test_subject_lookups_sqlite(tmp_path: Path) -> None:
    _subjects(tmp_path / "home", None)


@pytest.mark.postgres
def test_subject_lookups_postgres(tmp_path: Path, postgres_url: str) -> None:
    _subjects(tmp_path / "home", postgres_url)
