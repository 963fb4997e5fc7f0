"""A database migrated by a newer dncguard (stamped at a revision this version does not ship):
every command refuses it with one line naming both revisions (exit 2, never a traceback),
nothing is changed, ``db current`` says it is newer, and the service does not start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from dncguard.cli import run
from dncguard.config import Settings, load_settings
from dncguard.migrations import MigrationError, shipped_head, upgrade
from dncguard.store import dispose_engines, get_engine, make_engine

#: a revision after the newest one shipped (as a later dncguard would number it)
FUTURE = f"{int(shipped_head()[:4]) + 1:04d}_future"


def _newer_message(revision: str = FUTURE) -> str:
    return (f"the database is at {revision}, newer than this dncguard (head {shipped_head()}): "
            f"upgrade dncguard, or point DNCGUARD_DATABASE_URL at another database")


def _stamp(engine: sa.Engine, *revisions: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("delete from alembic_version"))
        for revision in revisions:
            conn.execute(sa.text("insert into alembic_version (version_num) values (:v)"),
                         {"v": revision})


def _versions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select version_num from alembic_version"))
        return sorted(r[0] for r in rows)


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


@pytest.fixture
def newer(settings: Settings) -> sa.Engine:
    """The test home's database, migrated, then stamped at a revision after this head."""
    engine = make_engine(settings)
    upgrade(engine)
    _stamp(engine, FUTURE)
    return engine


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# -- the library ---------------------------------------------------------------------------------


def test_get_engine_refuses_a_newer_database_and_changes_nothing(
        settings: Settings, newer: sa.Engine) -> None:
    tables = _tables(newer)
    with pytest.raises(MigrationError) as info:
        get_engine(settings)
    assert str(info.value) == _newer_message()
    with pytest.raises(MigrationError):  # not cached as if it had worked
        get_engine(settings)
    assert _versions(newer) == [FUTURE] and _tables(newer) == tables
    with pytest.raises(MigrationError, match="newer than this dncguard"):
        upgrade(newer)


def test_an_unknown_revision_that_is_not_newer_is_refused_too(
        settings: Settings, newer: sa.Engine) -> None:
    _stamp(newer, "abc_elsewhere")
    with pytest.raises(MigrationError) as info:
        get_engine(settings)
    assert str(info.value).startswith(
        f"the database is at abc_elsewhere, a revision this dncguard does not know "
        f"(head {shipped_head()}): ")
    assert _versions(newer) == ["abc_elsewhere"]


def test_several_stamped_revisions_are_refused(settings: Settings, newer: sa.Engine) -> None:
    _stamp(newer, "0005_shared_files", FUTURE)
    with pytest.raises(MigrationError, match="newer than this dncguard"):
        get_engine(settings)


def test_back_at_a_shipped_revision_it_opens(settings: Settings, newer: sa.Engine) -> None:
    _stamp(newer, shipped_head())
    assert get_engine(settings) is not None


def test_postgres_newer_database_is_refused_and_the_lock_released(
        postgres_url: str, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", database_url=postgres_url)
    engine = make_engine(settings)
    try:
        upgrade(engine)
        _stamp(engine, FUTURE)
        for _ in range(2):  # the advisory lock is released: the second attempt does not wait
            with pytest.raises(MigrationError) as info:
                get_engine(settings)
            assert str(info.value) == _newer_message()
        assert _versions(engine) == [FUTURE]
        with engine.connect() as conn:
            held = conn.execute(sa.text(
                "select count(*) from pg_locks where locktype = 'advisory' and granted")).scalar()
        assert held == 0
    finally:
        engine.dispose()
        dispose_engines()


# -- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["check", "+12025550123"], ["keys", "list"], ["db", "upgrade"],
                                  ["lists", "ls"], ["serve"]])
def test_every_command_exits_2_with_one_line(newer: sa.Engine, argv: list[str],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(argv) == 2
    assert _one_line_error(capsys) == f"error: {_newer_message()}"
    assert _versions(newer) == [FUTURE]


def test_db_current_says_the_database_is_newer(newer: sa.Engine,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["db", "current"]) == 0
    out = capsys.readouterr().out
    assert f"current:  {FUTURE}" in out
    assert "newer than this version" in out and "upgrade dncguard" in out
    assert "needs `dncguard db upgrade`" not in out

    assert run(["db", "current", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["current"] == FUTURE and data["head"] == shipped_head()
    assert data["upToDate"] is False


def test_db_current_on_an_older_database_still_says_upgrade(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    engine = make_engine(settings)
    upgrade(engine, "0001_initial")
    engine.dispose()
    assert run(["db", "current"]) == 0
    assert "needs `dncguard db upgrade`" in capsys.readouterr().out


def test_db_upgrade_to_an_unknown_revision_is_one_line(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert run(["db", "upgrade", "0009_nope"]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("error: cannot upgrade the database to 0009_nope: ")
    assert f"head is {shipped_head()}" in line


def test_the_service_refuses_to_start(newer: sa.Engine, settings: Settings) -> None:
    """``python -m dncguard.server serve`` (the service without the main CLI): exit 2, the one
    line; it never reaches uvicorn."""
    import dncguard

    src = str(Path(dncguard.__file__).resolve().parents[1])  # the package under test
    env = {"DNCGUARD_HOME": str(settings.home), "DNCGUARD_RULES_ENABLED": "false",
           "PYTHONPATH": src, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "dncguard.server", "serve", "--port", "9"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {_newer_message()}"
