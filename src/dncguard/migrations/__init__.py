"""Alembic migrations for the dncguard database, driven from code (no ``alembic.ini``).

:func:`upgrade` brings a database to the newest revision; :func:`dncguard.store.get_engine`
calls it on first use. Two processes starting together do not race: on PostgreSQL the upgrade
runs under a session advisory lock, on a SQLite file under an exclusive lock on a sibling
``<db>.migrate.lock`` file. A database made by the ``metadata.create_all`` of earlier versions
(tables, no ``alembic_version``) is adopted: its tables are checked against the initial revision
and it is stamped there, then upgraded. A database stamped at a revision this version does not
ship (migrated by a newer dncguard) is refused with :class:`MigrationError`, by every command
that opens it. See ``docs/migrations.md``.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, inspect, text

from ..errors import DncGuardError

if TYPE_CHECKING:  # Alembic is imported only when a database needs migrating
    from alembic.config import Config
    from alembic.script import ScriptDirectory

#: The folder holding ``env.py`` and ``versions/`` (shipped inside the wheel).
SCRIPT_LOCATION = Path(__file__).resolve().parent

#: The first revision: every table that ``create_all`` made before migrations existed.
INITIAL_REVISION = "0001_initial"

#: Key of the PostgreSQL advisory lock held while upgrading (any fixed 64-bit number).
PG_LOCK_KEY = 0x646E_6367_6D69_67  # "dncgmig"

_thread_lock = threading.Lock()


#: Every module that defines tables on :data:`dncguard.store.metadata`. The Alembic environment
#: imports them all so autogenerate and the drift test (``tests/test_migrations.py``) see every
#: table: a module adding a table must be listed here and come with a revision
#: (``docs/migrations.md``).
TABLE_MODULES: tuple[str, ...] = (
    "dncguard.store",
    "dncguard.outbox",
    "dncguard.sources.rules.stores",
    "dncguard.server.tables",
    "dncguard.server.console.sessions",
    "dncguard.audit.tables",
    "dncguard.sharedfiles",
)


class MigrationError(DncGuardError):
    """The database cannot be brought to the current schema (e.g. foreign tables in the way)."""


def load_table_modules() -> None:
    """Import every module that defines tables on :data:`dncguard.store.metadata`."""
    for name in TABLE_MODULES:
        importlib.import_module(name)


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic :class:`Config` pointing at the packaged scripts; no ini file involved."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


_REVISION = re.compile(r'^revision(?:: str)? = "([^"]+)"', re.M)
_DOWN = re.compile(r'^down_revision(?:: str \| None)? = (?:"([^"]+)"|None)', re.M)


def shipped_revisions() -> dict[str, str | None]:
    """Every shipped revision and the one before it (None: the first), read from the version
    files without importing Alembic."""
    out: dict[str, str | None] = {}
    for path in (SCRIPT_LOCATION / "versions").glob("*.py"):
        text_ = path.read_text("utf-8")
        rev = _REVISION.search(text_)
        if rev is None:
            continue
        down = _DOWN.search(text_)
        out[rev.group(1)] = down.group(1) if down is not None and down.group(1) else None
    return out


def shipped_head() -> str:
    """The newest revision, read from the shipped version files without importing Alembic
    (the revisions form one line; ``tests/test_migrations.py`` checks this against Alembic's
    own answer)."""
    revisions = shipped_revisions()
    heads = set(revisions) - {d for d in revisions.values() if d}
    if len(heads) != 1:
        raise MigrationError(f"the shipped revisions do not form one line: heads {sorted(heads)}")
    return heads.pop()


_NUMBER = re.compile(r"^(\d+)_")


def is_newer(revision: str, head: str) -> bool:
    """Whether ``revision`` (not one of the shipped ones) comes after ``head``: revision ids
    are ``NNNN_slug`` in order, so a higher number was made by a newer dncguard."""
    rev, last = _NUMBER.match(revision), _NUMBER.match(head)
    return rev is not None and last is not None and int(rev.group(1)) > int(last.group(1))


def _shown(revision: str) -> str:
    """A revision read from the database, safe to print in one line."""
    return revision if re.fullmatch(r"[\w.\-]{1,64}", revision) else repr(revision[:64])


def unknown_revision(revision: str | None) -> str | None:
    """Why this version cannot open a database stamped at ``revision`` (None: it can: no
    revision yet, or one of the shipped ones). A revision this version does not ship was made
    by a newer dncguard (or another line of revisions): upgrading from it is impossible and
    running on it unsafe, so every command refuses it (fail closed)."""
    if revision is None:
        return None
    revisions = shipped_revisions()
    if revision in revisions:
        return None
    head = shipped_head()
    if is_newer(revision, head):
        return (f"the database is at {_shown(revision)}, newer than this dncguard "
                f"(head {head}): upgrade dncguard, or point DNCGUARD_DATABASE_URL at another "
                f"database")
    return (f"the database is at {_shown(revision)}, a revision this dncguard does not know "
            f"(head {head}): use the dncguard that migrated it, or point "
            f"DNCGUARD_DATABASE_URL at another database")


def require_known(revision: str | None) -> None:
    """Raise :class:`MigrationError` when the database is at a revision this version does not
    ship (:func:`unknown_revision`)."""
    problem = unknown_revision(revision)
    if problem is not None:
        raise MigrationError(problem)


_head: str | None = None


def head_revision() -> str:
    """The newest revision in this version of dncguard (read once per process)."""
    global _head
    if _head is None:
        head = script_directory().get_current_head()
        if head is None:
            raise MigrationError(f"no revisions in {SCRIPT_LOCATION / 'versions'}")
        _head = head
    return _head


def current_revision(engine_or_conn: Engine | Connection) -> str | None:
    """The revision the database is stamped at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return current_revision(conn)
    heads = MigrationContext.configure(engine_or_conn).get_current_heads()
    if len(heads) > 1:  # branches: never made by dncguard's one line of revisions
        for head in heads:
            require_known(head)
        raise MigrationError(f"the database is stamped at several revisions "
                             f"({', '.join(_shown(h) for h in heads)}): dncguard's revisions "
                             f"form one line; repair alembic_version or use another database")
    return heads[0] if heads else None


def _stamped(engine: Engine) -> str | None:
    """The database's revision by one plain query (no Alembic import); None when unknown."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` (adopting a ``create_all`` database); returns it.

    Cheap when the database is already at head (one query, no lock, no Alembic import).
    Raises :class:`MigrationError` when the database is at a revision this version does not
    ship (:func:`unknown_revision`) or ``revision`` cannot be reached.
    """
    if revision == "head":
        with contextlib.suppress(Exception):
            head = shipped_head()
            if _stamped(engine) == head:
                return head
    with _thread_lock, _migration_lock(engine) as conn:
        _upgrade_locked(conn, revision)
        return current_revision(conn)


# -- locking ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection held under the migration lock of this database."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
                conn.commit()
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    with _file_lock(database), engine.connect() as conn:
        yield conn


@contextlib.contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    """An exclusive lock on ``<database>.migrate.lock`` (none for in-memory SQLite)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's own locking and the idempotent revisions suffice
        yield
        return
    with open(f"{database}.migrate.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# -- upgrade and adoption --------------------------------------------------------------------


def _upgrade_locked(conn: Connection, revision: str) -> None:
    from alembic import command
    from alembic.util import CommandError

    current = current_revision(conn)
    conn.commit()
    require_known(current)  # a newer dncguard's database: refused before Alembic meets it
    if current is None:
        _adopt(conn)
    try:
        command.upgrade(alembic_config(connection=conn), revision)
    except CommandError as exc:  # e.g. an unknown target revision: one line, no traceback
        conn.rollback()
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MigrationError(f"cannot upgrade the database to {_shown(revision)}: {reason} "
                             f"(this dncguard's head is {shipped_head()})") from exc
    conn.commit()


def _adopt(conn: Connection) -> None:
    """Stamp a ``create_all`` database at the initial revision when its tables match it.

    Only when every initial table is there: a partial one (tables created lazily by the module
    that owns them) is left unstamped and the initial revision creates just the missing tables.
    Raises :class:`MigrationError` when a table of that name has other columns.
    """
    from alembic import command

    expected = initial_schema()
    present = set(inspect(conn).get_table_names())
    found = present & expected.keys()
    conn.commit()
    if not found:
        return
    insp = inspect(conn)
    for table in sorted(found):
        columns = {c["name"] for c in insp.get_columns(table)}
        if columns != expected[table]:
            raise MigrationError(
                f"table {table!r} does not match dncguard's initial schema "
                f"(missing {sorted(expected[table] - columns)}, "
                f"unexpected {sorted(columns - expected[table])}); not adopting this database")
    conn.commit()
    if found == expected.keys():
        command.stamp(alembic_config(connection=conn), INITIAL_REVISION)
        conn.commit()


_initial_schema: dict[str, set[str]] | None = None


def initial_schema() -> dict[str, set[str]]:
    """Table name -> column names created by the initial revision (run on in-memory SQLite)."""
    global _initial_schema
    if _initial_schema is None:
        from alembic import command

        engine = create_engine("sqlite://")
        with engine.connect() as conn:
            command.upgrade(alembic_config(connection=conn), INITIAL_REVISION)
            conn.commit()
            insp = inspect(conn)
            _initial_schema = {
                t: {c["name"] for c in insp.get_columns(t)}
                for t in insp.get_table_names() if t != "alembic_version"}
        engine.dispose()
    return _initial_schema


def describe(engine: Engine) -> dict[str, Any]:
    """Current and head revisions, for ``dncguard db current``. ``unknown``: why this version
    cannot use the database (its revision is not a shipped one), else None; ``newer``: that
    revision comes after the head (a newer dncguard migrated the database)."""
    current = current_revision(engine)
    head = head_revision()
    unknown = unknown_revision(current)
    return {"current": current, "head": head, "up_to_date": current == head,
            "unknown": unknown,
            "newer": unknown is not None and current is not None and is_newer(current, head)}
