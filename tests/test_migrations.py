"""Alembic migrations: upgrade from empty, adoption of ``create_all`` databases, concurrent
first use, and the drift test that makes every schema change come with a revision."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from dncguard.cli._db import db_app
from dncguard.config import Settings, load_settings
from dncguard.migrations import (
    INITIAL_REVISION,
    MigrationError,
    current_revision,
    head_revision,
    initial_schema,
    load_table_modules,
    upgrade,
)
from dncguard.store import get_engine, lists_table, metadata, utcnow

#: Tables defined on ``metadata`` that no revision creates yet. The drift test accepts exactly
#: these as missing (and fails once a revision adds them, so this set must then be emptied).
#: The audit tables (dncguard.audit._log) are created by ``audit._log.ensure_tables`` until their
#: revision lands.
PENDING_TABLES: frozenset[str] = frozenset()

INITIAL_TABLES = {
    "lists", "list_versions", "list_entries", "list_events", "outbox", "rules_consent",
    "rules_attempts", "api_keys", "server_jobs", "decision_counts",
}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _version_rows(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("select version_num from alembic_version"))]


def _initial_metadata_tables() -> list[sa.Table]:
    load_table_modules()
    return [t for t in metadata.sorted_tables if t.name in INITIAL_TABLES]


def _insert_list(engine: sa.Engine, name: str = "internal") -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(sa.insert(lists_table).values(
            name=name, kind="internal", count=0, meta={"k": [1, 2]}, created_at=now,
            updated_at=now))


def _list_names(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(lists_table.c.name)).scalars())


def _pg_settings(url: str, tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home", database_url=url)


# -- upgrade from empty -----------------------------------------------------------------------


def test_initial_revision_creates_every_initial_table() -> None:
    assert set(initial_schema()) == INITIAL_TABLES
    assert not set(initial_schema()) & PENDING_TABLES


def test_get_engine_upgrades_empty_sqlite(settings: Settings) -> None:
    engine = get_engine(settings)
    assert INITIAL_TABLES | {"alembic_version"} <= _tables(engine)
    assert _version_rows(engine) == [head_revision()]
    assert current_revision(engine) == head_revision()
    _insert_list(engine)
    assert _list_names(engine) == ["internal"]
    # a second upgrade is a no-op
    assert upgrade(engine) == head_revision()
    assert _version_rows(engine) == [head_revision()]


@pytest.mark.postgres
def test_get_engine_upgrades_empty_postgres(postgres_url: str, tmp_path: Path) -> None:
    engine = get_engine(_pg_settings(postgres_url, tmp_path))
    assert INITIAL_TABLES | {"alembic_version"} <= _tables(engine)
    assert _version_rows(engine) == [head_revision()]
    _insert_list(engine)
    assert _list_names(engine) == ["internal"]
    with engine.connect() as conn:  # JSON is json, datetimes carry their zone
        kinds: dict[str, str] = dict(conn.execute(sa.text(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'lists' and table_schema = current_schema()")).all())
    assert kinds["meta"] == "json"
    assert kinds["created_at"] == "timestamp with time zone"


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    from alembic import command

    from dncguard.migrations import alembic_config

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        command.downgrade(alembic_config(connection=conn), "base")
        conn.commit()
    assert _tables(engine) <= {"alembic_version"}
    upgrade(engine)
    assert INITIAL_TABLES <= _tables(engine)
    engine.dispose()


# -- adoption of create_all databases ------------------------------------------------------------


def test_adopts_a_create_all_sqlite_database(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    old = sa.create_engine(settings.db_url)
    metadata.create_all(old, tables=_initial_metadata_tables())
    _insert_list(old)
    old.dispose()

    engine = get_engine(settings)
    assert _version_rows(engine) == [head_revision()]
    assert _list_names(engine) == ["internal"]  # data kept


def test_adopts_a_create_all_database_with_every_table(tmp_path: Path) -> None:
    load_table_modules()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'all.db'}")
    metadata.create_all(engine)  # audit tables too, as create_all in get_engine used to
    _insert_list(engine)
    upgrade(engine)
    assert _version_rows(engine) == [head_revision()]
    assert _list_names(engine) == ["internal"]
    engine.dispose()


def test_adopts_a_partial_create_all_database(tmp_path: Path) -> None:
    """Modules created their own tables lazily: an old database may hold only some."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'part.db'}")
    store_tables = [t for t in _initial_metadata_tables()
                    if t.name in {"lists", "list_versions", "list_entries", "list_events"}]
    metadata.create_all(engine, tables=store_tables)
    _insert_list(engine)
    upgrade(engine)
    assert INITIAL_TABLES <= _tables(engine)
    assert _version_rows(engine) == [head_revision()]
    assert _list_names(engine) == ["internal"]
    engine.dispose()


def test_refuses_to_adopt_a_table_that_does_not_match(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("create table lists (id integer primary key, title text)"))
    with pytest.raises(MigrationError, match="lists"):
        upgrade(engine)
    assert "alembic_version" not in _tables(engine)
    engine.dispose()


@pytest.mark.postgres
def test_adopts_a_create_all_postgres_database(postgres_url: str, tmp_path: Path) -> None:
    old = sa.create_engine(postgres_url)
    metadata.create_all(old, tables=_initial_metadata_tables())
    _insert_list(old)
    old.dispose()
    engine = get_engine(_pg_settings(postgres_url, tmp_path))
    assert _version_rows(engine) == [head_revision()]
    assert _list_names(engine) == ["internal"]


def test_stamps_at_the_initial_revision_when_adopting(tmp_path: Path) -> None:
    """Adoption stamps the initial revision (does not re-run it), then upgrades to head."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")
    metadata.create_all(engine, tables=_initial_metadata_tables())
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _log(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    upgrade(engine)
    created = [s.split("(")[0].split()[-1] for s in seen
               if s.lstrip().upper().startswith("CREATE TABLE")]
    assert not set(created) & INITIAL_TABLES  # later revisions may add their own tables
    assert any(INITIAL_REVISION in str(s) or "INSERT INTO alembic_version" in s for s in seen)
    engine.dispose()


# -- concurrent first use -------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import sys, time
    from dncguard.config import load_settings
    from dncguard.store import get_engine
    start = float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))
    engine = get_engine(load_settings(home=sys.argv[3], database_url=sys.argv[1] or None))
    with engine.connect() as conn:
        print(conn.exec_driver_sql("select version_num from alembic_version").scalar())
""")


def _first_use_race(url: str, home: Path, n: int = 4) -> list[str]:
    start = time.time() + 2.0  # every child has imported dncguard by then
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, url, str(start), str(home)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    return outs


@pytest.mark.postgres
@pytest.mark.slow
def test_concurrent_first_use_postgres(postgres_url: str, tmp_path: Path) -> None:
    outs = _first_use_race(postgres_url, tmp_path / "home")
    assert outs == [head_revision()] * len(outs)
    engine = sa.create_engine(postgres_url)
    assert _version_rows(engine) == [head_revision()]
    assert INITIAL_TABLES <= _tables(engine)
    engine.dispose()


@pytest.mark.slow
def test_concurrent_first_use_sqlite(tmp_path: Path) -> None:
    outs = _first_use_race("", tmp_path / "home")
    assert outs == [head_revision()] * len(outs)


# -- drift: metadata must equal what the migrations produce -------------------------------------


def _diff_table(diff: Any) -> str | None:
    """The table a compare_metadata entry is about."""
    if isinstance(diff, list):  # column modifications come grouped
        return _diff_table(diff[0])
    op, obj = diff[0], diff[1]
    if op in ("add_table", "remove_table"):
        return str(obj.name)
    if op in ("add_index", "remove_index"):
        return str(obj.table.name)
    if op in ("add_constraint", "remove_constraint"):
        return str(obj.table.name)
    if op in ("add_column", "remove_column"):
        return str(diff[2])
    if op.startswith("modify_"):
        return str(diff[2])
    if op in ("add_fk", "remove_fk"):
        return str(obj.parent.name)
    return None


def _drift(engine: sa.Engine) -> tuple[list[Any], list[Any]]:
    """(differences outside PENDING_TABLES, differences about PENDING_TABLES)."""
    load_table_modules()
    upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, metadata)
    pending = [d for d in diffs if _diff_table(d) in PENDING_TABLES]
    other = [d for d in diffs if _diff_table(d) not in PENDING_TABLES]
    return other, pending


def _check_drift(engine: sa.Engine) -> None:
    other, pending = _drift(engine)
    assert not other, (
        "the tables on dncguard.store.metadata differ from what the migrations create; add a "
        "revision (python scripts/new_migration.py \"what changed\", see docs/migrations.md):\n"
        + "\n".join(map(repr, other)))
    assert {_diff_table(d) for d in pending} == PENDING_TABLES & set(metadata.tables), (
        "a revision now creates some PENDING_TABLES: remove them from that set")
    assert all(not isinstance(d, list) and d[0] in ("add_table", "add_index")
               for d in pending), pending


def test_no_drift_sqlite(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'drift.db'}")
    _check_drift(engine)
    engine.dispose()


@pytest.mark.postgres
def test_no_drift_postgres(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    _check_drift(engine)
    engine.dispose()


def test_every_table_module_is_listed() -> None:
    """Tables defined on metadata by a module missing from TABLE_MODULES escape the drift test."""
    from dncguard.migrations import TABLE_MODULES

    load_table_modules()
    owners = {t.name for t in metadata.sorted_tables}
    assert INITIAL_TABLES <= owners
    assert len(TABLE_MODULES) == len(set(TABLE_MODULES))


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_current_and_upgrade(settings: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(db_app, ["current"])
    assert result.exit_code == 0, result.output
    assert "current:  (none)" in result.output
    assert "needs `dncguard db upgrade`" in result.output

    result = runner.invoke(db_app, ["upgrade"])
    assert result.exit_code == 0, result.output
    assert f"upgraded from (none) to {head_revision()}" in result.output

    result = runner.invoke(db_app, ["upgrade"])
    assert f"already at {head_revision()}" in result.output
    result = runner.invoke(db_app, ["current"])
    assert f"current:  {head_revision()}" in result.output
    assert "up to date" in result.output


def test_the_shipped_head_is_alembics_head() -> None:
    """The fast path reads the head from the version files; Alembic agrees."""
    from dncguard.migrations import head_revision, shipped_head

    assert shipped_head() == head_revision()


def test_an_up_to_date_database_does_not_import_alembic(tmp_path: Path) -> None:
    """A command on a migrated database opens it with one query: Alembic (and what it
    imports) is loaded only to migrate."""
    import subprocess
    import sys

    home = tmp_path / "home"
    code = (
        "import sys\n"
        "from dncguard.config import load_settings\n"
        "from dncguard.store import get_engine\n"
        f"get_engine(load_settings(home={str(home)!r}))\n"
        "print('alembic' in sys.modules)\n")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert first.stdout.strip() == "True"  # a new database is migrated
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert again.stdout.strip() == "False"
