"""Verification against tampering with the chain head and with how columns are stored.

The head row missing, or set back below the records; every record deleted while the head sits
on a checkpoint; a record's stored columns rewritten to text that parses to the same values
(another offset for the same instant, JSON that is not what dncguard writes, a BLOB with the
same bytes) or to JSON of the wrong type. Real SQLite files, changed with plain SQL.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dncguard.audit import AuditLog
from dncguard.audit import _log as log_module
from dncguard.audit.tables import GENESIS
from dncguard.cli import run
from dncguard.config import Settings, load_settings
from dncguard.errors import AuditError

from .conftest import T0, FakeClock, make_log


def _sql(settings: Settings, *statements: str, params: tuple[Any, ...] = ()) -> None:
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        for statement in statements:
            db.execute(statement, params if "?" in statement else ())
    db.close()


def _one(settings: Settings, query: str) -> Any:
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        row = db.execute(query).fetchone()
    db.close()
    return None if row is None else row[0]


def _heads(settings: Settings) -> list[tuple[int, str]]:
    with sqlite3.connect(settings.home / "dncguard.db") as db:
        rows = db.execute("SELECT seq, hash FROM audit_head").fetchall()
    db.close()
    return [(int(s), str(h)) for s, h in rows]


def fill(log: AuditLog, clock: FakeClock, n: int, *, step: timedelta = timedelta(days=1)
         ) -> None:
    for i in range(n):
        log.append("list", "add", who=f"user{i}", subject="internal",
                   number=f"+1202555{i:04d}", data={"i": i})
        clock.advance(step.total_seconds())


# -- the head ---------------------------------------------------------------------------------


def test_a_deleted_head_is_tampering_and_no_new_log_recreates_it(settings: Settings,
                                                                 clock: FakeClock) -> None:
    """The reviewer's case: an edit, the end of the chain deleted, then the head deleted."""
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 12)
    _sql(settings, "UPDATE audit_records SET decision = 'allow' WHERE seq = 3",
         "DELETE FROM audit_records WHERE seq > 10", "DELETE FROM audit_head")
    again = make_log(settings, clock, checkpoint_interval=5)  # ensure_tables runs here
    assert _heads(settings) == []  # the evidence is left as it is
    res = again.verify()
    assert not res.ok and res.problem == "head" and res.bad_seq == 1, res.message
    assert "head" in res.message and "missing" in res.message
    assert _heads(settings) == []


def test_a_deleted_head_fails_the_command_line(settings: Settings, clock: FakeClock,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 3)
    _sql(settings, "DELETE FROM audit_head")
    assert run(["audit", "verify"]) == 1
    out = capsys.readouterr()
    assert "TAMPERED (head, record 1)" in out.err and "OK" not in out.out


def test_a_head_set_back_to_zero_is_tampering(settings: Settings, clock: FakeClock) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 4)
    _sql(settings, "UPDATE audit_head SET seq = 0, hash = ?", params=(GENESIS,))
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 1, res.message
    assert "head is at 0" in res.message


def test_appends_are_refused_while_the_head_is_missing(settings: Settings,
                                                      clock: FakeClock) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 3)
    _sql(settings, "DELETE FROM audit_head")
    with pytest.raises(AuditError, match="head"):  # through SQLAlchemy (also PostgreSQL's)
        log.append("list", "add", who="mallory")
    with pytest.raises(AuditError, match="head"):  # the group commit's driver path
        log.append_quiet([log.fields("list", "add", who="mallory")])
    with pytest.raises(AuditError, match="head"):
        log.probe()
    assert _heads(settings) == [] and log.count() == 3


def test_an_empty_trail_gets_its_head_back(settings: Settings, clock: FakeClock) -> None:
    """Nothing written yet: a missing head is only a trail not started (it is created)."""
    make_log(settings, clock)
    _sql(settings, "DELETE FROM audit_head")
    log = make_log(settings, clock)
    assert _heads(settings) == [(0, GENESIS)]
    res = log.verify()
    assert res.ok and res.message == "no records", res.message
    fill(log, clock, 2)
    assert log.verify().ok


# -- every record deleted -------------------------------------------------------------------


@pytest.mark.parametrize(("n", "bad"), [(5, 1), (10, 6)])
def test_every_record_deleted_with_the_head_on_a_checkpoint_is_truncation(
        settings: Settings, clock: FakeClock, n: int, bad: int) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, n)
    assert log.head()[0] == n  # on a checkpoint
    _sql(settings, "DELETE FROM audit_records")
    res = log.verify()
    assert not res.ok and res.problem == "truncated" and res.bad_seq == bad, res.message
    assert f"the head says {n}" in res.message


def test_every_record_and_the_head_deleted_is_caught_by_the_checkpoints(
        settings: Settings, clock: FakeClock) -> None:
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 5)
    _sql(settings, "DELETE FROM audit_records", "DELETE FROM audit_head")
    res = make_log(settings, clock).verify()
    assert not res.ok and res.problem == "truncated", res.message


@pytest.mark.parametrize("after", [0, 1], ids=["head-on-the-checkpoint", "head-beyond-it"])
def test_a_prune_committed_while_verifying_is_not_tampering(
        settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch,
        after: int) -> None:
    """Verification reads the head, then a prune deletes the records up to a checkpoint and
    appends its own record beyond that head before the records are read."""
    log = make_log(settings, clock, checkpoint_interval=5)
    fill(log, clock, 10 + after)
    through = 10 - 5 * after  # the newest checkpoint older than the cutoff (one a day)
    scan = log_module.scan
    pruned: list[int] = []

    def scan_after_a_prune(engine: Any, upto: int, *args: Any, **kw: Any) -> Any:
        if not pruned:  # (the prune's own verification scans too: once)
            pruned.append(0)
            out = log.prune(now=T0 + timedelta(days=through + 1), retention_days=1)
            pruned[0] = out["through"]
        return scan(engine, upto, *args, **kw)

    monkeypatch.setattr(log_module, "scan", scan_after_a_prune)
    res = log.verify()
    assert pruned == [through]
    assert res.ok and res.anchored_at == through, res.message
    assert res.first_seq == through + 1 and res.last_seq == 12 + after - 1, res.message
    monkeypatch.undo()
    _sql(settings, "DELETE FROM audit_records")  # and later everything is deleted
    res = log.verify()
    assert not res.ok and res.problem == "truncated", res.message


# -- stored columns that re-encode to something else -------------------------------------


def _at_of(settings: Settings, seq: int) -> str:
    value = _one(settings, f"SELECT at FROM audit_records WHERE seq = {seq}")
    assert isinstance(value, str)
    return value


def _offset(stored: str) -> str:
    instant = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    return instant.astimezone(timezone(timedelta(hours=-14))).isoformat(sep=" ")


AT_REWRITES = {
    "another offset": _offset,
    "an explicit UTC offset": lambda s: s + "+00:00",
    "a T between date and time": lambda s: s.replace(" ", "T"),
    "no fraction of a second": lambda s: s.removesuffix(".000000"),
}


@pytest.mark.parametrize("rewrite", list(AT_REWRITES))
def test_a_time_stored_as_other_text_for_the_same_instant_is_edited(
        settings: Settings, clock: FakeClock, rewrite: str) -> None:
    log = make_log(settings, clock)
    clock.now = clock.now.replace(microsecond=0)  # record 3 on the second
    fill(log, clock, 5, step=timedelta(hours=1, microseconds=0 if "fraction" in rewrite
                                       else 123457))
    stored = _at_of(settings, 3)
    changed = AT_REWRITES[rewrite](stored)
    assert changed != stored
    parsed = datetime.fromisoformat(changed)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    assert parsed == datetime.fromisoformat(stored).replace(tzinfo=UTC)  # the same instant
    _sql(settings, "UPDATE audit_records SET at = ? WHERE seq = 3", params=(changed,))
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 3, res.message


def test_the_offset_rewrite_hides_the_record_from_a_range(settings: Settings,
                                                         clock: FakeClock) -> None:
    """Why the stored text matters: ranges compare it (the reviewer's export case)."""
    log = make_log(settings, clock)
    fill(log, clock, 5, step=timedelta(hours=1))
    rec = log.get(3)
    assert rec is not None
    _sql(settings, "UPDATE audit_records SET at = ? WHERE seq = 3",
         params=(_offset(_at_of(settings, 3)),))
    found = [r.seq for r in log.records(since=rec.at - timedelta(minutes=1),
                                        until=rec.at + timedelta(minutes=1))]
    assert found == []
    assert not log.verify().ok


@pytest.mark.parametrize("column", ["at", "kind", "who", "data", "prev_hash", "hash"])
def test_a_column_stored_as_a_blob_of_the_same_bytes_is_edited(
        settings: Settings, clock: FakeClock, column: str) -> None:
    """A BLOB rebuilds the same JSON but compares unlike text (ranges, kinds, subjects)."""
    log = make_log(settings, clock)
    fill(log, clock, 5)
    _sql(settings, f"UPDATE audit_records SET {column} = CAST({column} AS BLOB) WHERE seq = 3")
    assert _one(settings, f"SELECT typeof({column}) FROM audit_records WHERE seq = 3") == "blob"
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 3, res.message


JSON_REWRITES = {  # each parses (and used to be coerced) to the value that was hashed
    "a duplicate key": ("data", '{"i":9,"i":2}'),
    "a space before it": ("data", ' {"i":2}'),
    "pairs for an object": ("data", '[["i",2]]'),
    "a list for empty versions": ("versions", "[]"),
    "null for empty versions": ("versions", "null"),
    "a string for reason codes": ("reason_codes", '""'),
    "an object for reason codes": ("reason_codes", "{}"),
}


@pytest.mark.parametrize("rewrite", list(JSON_REWRITES))
def test_json_text_that_is_not_what_was_written_is_edited(settings: Settings,
                                                          clock: FakeClock,
                                                          rewrite: str) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 5)
    rec = log.get(3)
    assert rec is not None and rec.data == {"i": 2} and rec.versions == {}
    assert rec.reason_codes == []
    column, value = JSON_REWRITES[rewrite]
    _sql(settings, f"UPDATE audit_records SET {column} = ? WHERE seq = 3", params=(value,))
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 3, res.message


def test_json_text_as_sqlalchemy_wrote_it_still_verifies(settings: Settings,
                                                         clock: FakeClock) -> None:
    """Records written before the canonical encoding hold ``json.dumps`` text: accepted."""
    log = make_log(settings, clock)
    fill(log, clock, 5)
    _sql(settings, "UPDATE audit_records SET data = '{\"i\": 2}' WHERE seq = 3")
    res = log.verify()
    assert res.ok and res.checked == 5, res.message


STORED_FORMS = {  # one of each kind, checked a record at a time and row by row
    "time at another offset": lambda s: (
        "UPDATE audit_records SET at = ? WHERE seq = 3", (_offset(_at_of(s, 3)),)),
    "time with a T": lambda s: (
        "UPDATE audit_records SET at = ? WHERE seq = 3", (_at_of(s, 3).replace(" ", "T"),)),
    "number as a BLOB": lambda s: (
        "UPDATE audit_records SET number_hmac = CAST(number_hmac AS BLOB) WHERE seq = 3", ()),
    "JSON with a duplicate key": lambda s: (
        """UPDATE audit_records SET data = '{"i":9,"i":2}' WHERE seq = 3""", ()),
    "JSON of the wrong type": lambda s: ("UPDATE audit_records SET data = '[1]' WHERE seq = 3",
                                         ()),
}


@pytest.mark.parametrize("how", ["a record per range", "row by row"])
@pytest.mark.parametrize("form", list(STORED_FORMS))
def test_stored_forms_are_caught_by_every_path(settings: Settings, clock: FakeClock,
                                               monkeypatch: pytest.MonkeyPatch, form: str,
                                               how: str) -> None:
    from .test_audit_fast_paths import _ranges, _row_by_row

    log = make_log(settings, clock)
    fill(log, clock, 5, step=timedelta(hours=1, microseconds=5))
    statement, params = STORED_FORMS[form](settings)
    _sql(settings, statement, params=params)
    if how == "row by row":
        _row_by_row(monkeypatch)
    else:
        _ranges(monkeypatch, 1)
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 3, res.message


# -- JSON columns of the wrong type ---------------------------------------------------------

WRONG_TYPES = {
    "versions a string": "versions = '\"ab\"'",
    "reason codes a number": "reason_codes = 5",
    "data a list": "data = '[1]'",
    "data not JSON": "data = '{\"i\":'",
}


@pytest.mark.parametrize("change", list(WRONG_TYPES))
def test_a_json_column_of_the_wrong_type_is_edited_not_a_crash(settings: Settings,
                                                               clock: FakeClock,
                                                               change: str) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 5)
    _sql(settings, f"UPDATE audit_records SET {WRONG_TYPES[change]} WHERE seq = 4")
    res = log.verify()
    assert not res.ok and res.problem == "edited" and res.bad_seq == 4, res.message


def test_a_json_column_of_the_wrong_type_fails_the_command_line(
        settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 5)
    _sql(settings, "UPDATE audit_records SET versions = '\"ab\"', reason_codes = 5, "
                   "data = '[1]' WHERE seq = 2")
    assert run(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "TAMPERED (edited, record 2)" in err and "Traceback" not in err


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_json_columns_are_checked_as_stored(postgres_url: str,
                                                     tmp_path: Path) -> None:
    from dncguard.store import dispose_engines

    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    clock = FakeClock()
    log = make_log(settings, clock)
    try:
        fill(log, clock, 5)
        for column, value in [*JSON_REWRITES.values(), ("versions", '"ab"'),
                              ("reason_codes", "5"), ("data", "[1]")]:
            with log.engine.begin() as conn:
                before = conn.execute(text(f"SELECT {column}::text FROM audit_records "
                                           "WHERE seq = 3")).scalar_one()
                conn.execute(text(f"UPDATE audit_records SET {column} = CAST(:v AS json) "
                                  "WHERE seq = 3"), {"v": value})
            res = log.verify()
            assert not res.ok and res.problem == "edited" and res.bad_seq == 3, (value, res)
            with log.engine.begin() as conn:
                conn.execute(text(f"UPDATE audit_records SET {column} = CAST(:v AS json) "
                                  "WHERE seq = 3"), {"v": before})
            assert log.verify().ok
        with log.engine.begin() as conn:  # as SQLAlchemy wrote JSON before: intact
            conn.execute(text("""UPDATE audit_records SET data = '{"i": 2}' WHERE seq = 3"""))
        res = log.verify()
        assert res.ok and res.checked == 5, res.message
        with log.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_records"))
        res = log.verify()
        assert not res.ok and res.problem == "truncated" and res.bad_seq == 1, res.message
    finally:
        dispose_engines()


@pytest.mark.postgres
def test_postgres_a_deleted_head_is_reported_and_appends_refused(postgres_url: str,
                                                                 tmp_path: Path) -> None:
    from dncguard.store import dispose_engines

    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    clock = FakeClock()
    log = make_log(settings, clock, checkpoint_interval=5)
    try:
        fill(log, clock, 5)
        with log.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_head"))
        again = make_log(settings, clock)
        res = again.verify()
        assert not res.ok and res.problem == "head" and res.bad_seq == 1, res.message
        with pytest.raises(AuditError, match="head"):
            again.append_quiet([again.fields("list", "add", who="mallory")])
        with log.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_head")).scalar_one() == 0
        assert again.count() == 5
    finally:
        dispose_engines()


@pytest.mark.parametrize("change", ["versions = '\"ab\"'", "reason_codes = 5", "data = '[1]'"])
def test_reading_an_edited_record_names_it_instead_of_a_traceback(
        settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, change: str) -> None:
    log = make_log(settings, clock)
    fill(log, clock, 5)
    _sql(settings, f"UPDATE audit_records SET {change} WHERE seq = 3")
    with pytest.raises(AuditError, match=r"audit record 3 is not stored as dncguard writes it"):
        list(log.records())
    assert run(["audit", "export", "-o", str(tmp_path / "out.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "audit record 3 is not stored as dncguard writes it" in err
    assert "Traceback" not in err
