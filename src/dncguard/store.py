"""The database: list metadata, mutable list entries and the list change log.

SQLite in ``DNCGUARD_HOME`` by default; any SQLAlchemy URL (PostgreSQL for several replicas)
through ``DNCGUARD_DATABASE_URL``. Large, read-only list content lives in snapshot files (see
:mod:`dncguard.lists.snapshots`); the database keeps what changes: manual opt-outs, removals, and
which snapshot file is current.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    insert,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    NoSuchModuleError,
)

from .config import Settings, mask_url
from .errors import ConfigError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows: writers wait in SQLite's busy handler there
    fcntl = None

metadata = MetaData()


lists_table = Table(
    "lists",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("jurisdiction", String(10)),
    Column("snapshot_date", String(10)),  # ISO date of the data, when it has one
    Column("current_file", Text),  # snapshot file name inside the list's folder
    Column("count", Integer, nullable=False, default=0),  # entries in the current snapshot
    Column("salt", Text),  # hashed lists: the salt prepended before hashing
    Column("meta", JSON, nullable=False, default=dict),  # source-specific (CXone group, ...)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("synced_at", DateTime(timezone=True)),  # remote lists: last successful sync
)

list_versions_table = Table(
    "list_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_name", String(200), nullable=False, index=True),
    Column("file", Text, nullable=False),
    Column("snapshot_date", String(10)),
    Column("count", Integer, nullable=False),
    Column("changes", Boolean, nullable=False, default=False),
    Column("source_file", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200)),
)

# Entries kept in the database: manual opt-outs (origin 'manual'), removals of snapshot
# numbers (removed=True), and records synced from remote sources (origin 'sync').
list_entries_table = Table(
    "list_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("list_name", String(200), nullable=False),
    Column("value", String(80), nullable=False),  # E.164 number
    Column("origin", String(20), nullable=False),
    Column("removed", Boolean, nullable=False, default=False),
    Column("reason", Text),
    Column("added_by", String(200)),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("meta", JSON),
    UniqueConstraint("list_name", "value", name="uq_list_entries_value"),
)

# Who changed which list, when and why. Numbers appear masked only.
list_events_table = Table(
    "list_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("list_name", String(200), nullable=False, index=True),
    Column("action", String(30), nullable=False),
    Column("who", String(200)),
    Column("why", Text),
    Column("detail", JSON),
)

# One row (id 1): how many list changes have committed. Every transaction that changes what
# the list checks read (a list, its entries, its metadata) adds one as its last write
# (:func:`count_list_change`), and the service's list version token reads it
# (:func:`dncguard.server._checker.list_version`).
list_changes_table = Table(
    "list_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInteger, nullable=False),
)

#: The one row of :data:`list_changes_table`.
LIST_CHANGES_ROW = 1


def count_list_change(conn: Connection) -> None:
    """Count one list change in ``conn``'s transaction; call it as the transaction's last
    write, in every transaction that writes list data.

    ``UPDATE list_changes SET n = n + 1``: the row lock (PostgreSQL; SQLite's database write
    lock) makes the changes count one after the other, each from the latest committed value, so
    the committed count moves whenever any list change commits, whatever order they started in.
    A token of maxima (ids, times) did not: a change that commits after a later-started one
    has committed adds nothing above the maxima already seen (docs/service.md, "Two replicas
    on PostgreSQL"). Taken last, the lock is held only from there to the commit. A database
    whose row is missing gets it here.
    """
    t = list_changes_table
    bump = update(t).where(t.c.id == LIST_CHANGES_ROW).values(n=t.c.n + 1)
    if conn.execute(bump).rowcount == 1:
        return
    adding = conflict_insert(conn, t)
    if adding is not None:
        conn.execute(adding.values(id=LIST_CHANGES_ROW, n=0).on_conflict_do_nothing(
            index_elements=[t.c.id]))
    else:
        try:
            with conn.begin_nested():
                conn.execute(insert(t).values(id=LIST_CHANGES_ROW, n=0))
        except IntegrityError:
            pass  # made meanwhile by another transaction
    conn.execute(bump)



def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored datetime is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # FULL: a commit is on disk (the write-ahead log fsynced) before it returns, so a verdict
    # answered after its audit record's commit, or an opt-out acknowledged, survives a power
    # loss too (NORMAL would only survive a crash of the process). Group commit keeps this to
    # one fsync per batch of checks.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def make_engine(settings: Settings) -> Engine:
    """A new engine for these settings, not migrated and not cached (``dncguard db``).
    Raises ConfigError when the URL cannot be read or its driver is not installed."""
    url = settings.db_url
    where = f"database_url (DNCGUARD_DATABASE_URL) {mask_url(url)}"
    try:
        drivername = make_url(url).drivername
    except ArgumentError:  # not a URL at all: never repeated, it may be a misplaced password
        raise ConfigError(f"database_url (DNCGUARD_DATABASE_URL) is not a URL ({len(url)} "
                          "characters, not shown: it may be a secret); give a SQLAlchemy URL "
                          "such as postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB") from None
    except ValueError as exc:  # e.g. a port that is not a number
        raise ConfigError(f"{where} is not a valid database URL "
                          f"({str(exc).splitlines()[0]})") from None
    try:
        if url.startswith("sqlite"):
            settings.home.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        engine = create_engine(url)
        ping_when_idle(engine)
        return engine
    except NoSuchModuleError:
        raise ConfigError(f"{where}: no database dialect {drivername!r} "
                          f"(use postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB)") from None
    except ImportError as exc:  # ModuleNotFoundError: the URL names a driver not installed
        raise ConfigError(f"{where}: its driver ({exc.name or drivername}) is not installed; "
                          f"dncguard ships psycopg: use postgresql+psycopg://...") from None


#: A pooled connection back in the pool for longer than this is pinged before it is used
#: again (:func:`ping_when_idle`).
PING_AFTER_IDLE_SECONDS = 1.0
#: The clock the pings are timed by (tests replace it).
monotonic: Callable[[], float] = time.monotonic


#: Per pool: when one of its connections was last found broken while in use by a query sent
#: through the driver (:func:`note_driver_error`).
_broken_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()


def ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before it is used only when it sat in the pool for more than
    :data:`PING_AFTER_IDLE_SECONDS`, or since another connection of the pool was found
    broken: a connection that died there (a server restart, an idle timeout on the way) is
    replaced by a new one, as SQLAlchemy's ``pool_pre_ping`` does, but without a round trip
    before every use. A busy pre-dial path takes a connection three times for every group of
    checks (the lists' version, the consents and attempts, the audit append), each a few
    milliseconds after its last use; the pings were a round trip each.

    A connection that breaks while in use fails that use, as with ``pool_pre_ping`` (a ping
    cannot foresee that); when the server went away, that failure is the first sign of it,
    and every connection taken from the pool before it (back in the pool since, or still in
    use then) is pinged at its next checkout. The pre-dial path's queries sent through the
    driver report theirs with :func:`note_driver_error`; after a lost connection in one of
    SQLAlchemy's own statements, SQLAlchemy replaces every connection the pool held itself.
    A failed ping raises ``DisconnectionError``: the pool connects anew (and raises the
    connection's own error when the database cannot be reached)."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["idle_since"] = monotonic()

    @event.listens_for(engine, "checkout")
    def _checking_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        now = monotonic()
        since = record.info.pop("idle_since", None)
        last_out = record.info.get("out_at", float("-inf"))
        record.info["out_at"] = now
        if since is None:
            return  # a new connection
        if (now - since <= PING_AFTER_IDLE_SECONDS
                and _broken_at.get(engine.pool, float("-inf")) < last_out):
            return  # back in the pool a moment ago, nothing broke since its last checkout
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"the pooled connection is gone ({type(exc).__name__})"
                                     ) from exc
        if not alive:
            raise DisconnectionError("the pooled connection is gone (its ping failed)")


def note_driver_error(engine: Engine, exc: BaseException, dbapi_connection: Any,
                      cursor: Any = None) -> bool:
    """A statement sent on ``dbapi_connection`` through the driver (not through SQLAlchemy)
    failed with ``exc``: whether the dialect reads it as a lost connection, and if so every
    connection of ``engine``'s pool taken before now is pinged at its next checkout
    (:func:`ping_when_idle`). The caller invalidates the lost one (it is not put back)."""
    try:
        lost = engine.dialect.is_disconnect(exc, dbapi_connection, cursor)  # type: ignore[arg-type]
    except Exception:
        lost = True
    if lost:
        _broken_at[engine.pool] = monotonic()
    return bool(lost)


def get_engine(settings: Settings) -> Engine:
    """The engine for these settings; on first use the database is migrated to the newest
    revision (``alembic upgrade head``, serialised between processes; a database created by the
    ``create_all`` of earlier versions is adopted). See :mod:`dncguard.migrations`."""
    url = settings.db_url
    engine = _engines.get(url)
    if engine is None:
        from .migrations import upgrade

        engine = make_engine(settings)
        upgrade(engine)
        _engines[url] = engine
    return engine


_write_locks: dict[tuple[str, int], tuple[threading.Lock, int]] = {}
_write_locks_guard = threading.Lock()


@contextlib.contextmanager
def sqlite_write_lock(engine: Engine) -> Iterator[None]:
    """Serialise the busiest writers of one SQLite file across processes and threads.

    SQLite's own wait for its write lock (``busy_timeout``) sleeps and polls with growing
    pauses (up to 100 ms); with a commit that fsyncs (``synchronous=FULL``) two workers'
    audit writers would keep meeting it. An OS lock (``flock``) on a file beside the database
    wakes the next writer the moment the lock is free. Nothing on other databases."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or fcntl is None:
        yield
        return
    key = (os.path.abspath(path), os.getpid())  # a forked child opens its own
    with _write_locks_guard:
        entry = _write_locks.get(key)
        if entry is None:
            fd = os.open(key[0] + ".write-lock", os.O_RDWR | os.O_CREAT, 0o600)
            entry = _write_locks[key] = (threading.Lock(), fd)
    lock, fd = entry
    with lock:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def read_engine(engine: Engine) -> Engine:
    """``engine`` for reads that need no transaction of their own (each statement sees its
    own snapshot, as under READ COMMITTED): on a database server each connection then skips
    the BEGIN and ROLLBACK round trips; on SQLite, where they cost nothing, it is ``engine``."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def conflict_insert(conn: Connection, table: Table) -> Any:
    """An INSERT of ``conn``'s dialect that can skip or update a row whose key is taken
    (``on_conflict_do_nothing`` / ``on_conflict_do_update``): SQLite's or PostgreSQL's; None
    for a database without one (its callers then catch the unique violation)."""
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    return None


def driver_row(conn: Connection, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The first row of ``sql`` (in the driver's own dialect and parameter style), run on
    ``conn``'s DBAPI cursor: for the few hot queries of the pre-dial path, where SQLAlchemy's
    statement execution and result handling cost several times the query itself. Values come
    as the driver gives them (no type conversion). A driver error comes out as SQLAlchemy's
    DBAPIError, like any other query's."""
    dbapi = conn.dialect.loaded_dbapi
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    except dbapi.Error as exc:
        lost = note_driver_error(conn.engine, exc, conn.connection.dbapi_connection, cursor)
        with contextlib.suppress(dbapi.Error):  # a lost connection's cursor may refuse too
            cursor.close()
        if lost:
            conn.invalidate(exc)  # never put back into the pool
        raise DBAPIError.instance(sql, params, exc, dbapi.Error) from exc
    cursor.close()
    return tuple(row) if row is not None else None


def dispose_engines() -> None:
    """Close every pooled connection (tests, forked workers)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
