"""Files kept in the database, so replicas that share nothing but PostgreSQL share them too.

A file is a name (``lists/<folder>/<snapshot>.npy``, ``jobs/<id>/results.csv``), its length and
SHA-256, and an ordered list of *chunks*. Chunks are content-addressed: a chunk is stored once,
under the SHA-256 of its bytes, whatever number of files (or versions of one list) use it, so a
change list applied to a national registry stores only the megabytes it changed. Every chunk is
checked against its address when it is read, and the whole file against its own length and
SHA-256: a chunk that is missing or does not match raises :class:`~dncguard.errors.SourceError`
and nothing is written in place of the file (the reader writes a temporary file and renames it
only once everything matched).

Writers add a file inside the caller's transaction (a list import makes the snapshot current in
the same transaction that publishes it); chunks no file names any more are collected by
:func:`collect_garbage`. Writers hold a shared advisory lock and the collector an exclusive one,
so a chunk a writer has just found present is never collected before the writer's file names it.
Writers running at once may both find a chunk missing and both store it: the second insert of
an address skips it (``ON CONFLICT DO NOTHING``, the same bytes by definition); two writers of
one name replace each other whole, the last to commit winning, instead of one failing.

Used with PostgreSQL only (:func:`enabled`): a SQLite home keeps its files on its own disk.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    String,
    Table,
    delete,
    exists,
    insert,
    select,
    text,
)

from .errors import SourceError
from .store import conflict_insert, metadata, utcnow

if TYPE_CHECKING:
    from .objectstore import ObjectStore

#: Bytes per chunk: a NANP bitmap's area code is 1.25 MB, so a change list rewrites few chunks.
CHUNK_BYTES = 1 << 20
#: pg_advisory_xact_lock key: writers share it, the garbage collector takes it alone.
LOCK_KEY = 0x646E_6367_7368  # "dncgsh"
_BATCH = 8  # chunks per insert statement

shared_chunks_table = Table(
    "shared_chunks",
    metadata,
    Column("sha256", String(64), primary_key=True),  # the address: SHA-256 of data (hex)
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

#: Chunks kept in the object store (``DNCGUARD_OBJECT_STORE_URL``, job files only) under
#: ``chunks/<sha256>``: their bytes are not in ``shared_chunks``.
shared_objects_table = Table(
    "shared_objects",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
)

shared_files_table = Table(
    "shared_files",
    metadata,
    Column("name", String(400), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("chunks", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

shared_file_chunks_table = Table(
    "shared_file_chunks",
    metadata,
    Column("name", String(400), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("chunk", String(64), nullable=False, index=True),
)


@dataclass(frozen=True)
class SharedFile:
    """What a stored file must be: its name, length and SHA-256 (hex)."""

    name: str
    size: int
    sha256: str


def enabled(bind: Engine | Connection) -> bool:
    """Whether files are shared through this database (PostgreSQL; never SQLite)."""
    return bind.dialect.name == "postgresql"


def _lock(conn: Connection) -> None:
    """The writers' shared lock, held until the transaction ends."""
    conn.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": LOCK_KEY})


def _read_chunks(fh: BinaryIO) -> Iterator[bytes]:
    fh.seek(0)
    while block := fh.read(CHUNK_BYTES):
        yield block


def _key(address: str) -> str:
    return f"chunks/{address}"


def put(conn: Connection, name: str, path: Path, objects: ObjectStore | None = None
        ) -> SharedFile:
    """Store the file at ``path`` under ``name`` (replacing a file of that name) inside the
    caller's transaction; only chunks the database lacks are sent. With ``objects`` the new
    chunks' bytes go to that object store (before the transaction commits: a chunk a failed
    transaction leaves there is collected like any other)."""
    _lock(conn)
    whole = hashlib.sha256()
    addresses: list[str] = []
    size = 0
    with path.open("rb") as fh:
        for block in _read_chunks(fh):
            whole.update(block)
            addresses.append(hashlib.sha256(block).hexdigest())
            size += len(block)
        have = _present(conn, set(addresses))
        pending: list[dict[str, object]] = []
        sent: set[str] = set()
        for address, block in zip(addresses, _read_chunks(fh), strict=True):
            if address in have or address in sent:
                continue
            if hashlib.sha256(block).hexdigest() != address:
                raise SourceError(f"{name} changed while it was stored", source="shared storage")
            sent.add(address)
            if objects is not None:
                objects.put(_key(address), block)
                conn.execute(_insert(conn, shared_objects_table).values(
                    sha256=address, size=len(block)).on_conflict_do_nothing())
                continue
            pending.append({"sha256": address, "size": len(block), "data": block})
            if len(pending) >= _BATCH:
                _add_chunks(conn, pending)
                pending = []
        if pending:
            _add_chunks(conn, pending)
    stored = SharedFile(name, size, whole.hexdigest())
    # The file's row first, replacing one of that name: a concurrent writer of the same name
    # waits here until this transaction ends, then replaces this file's row and chunk list
    # with its own (the last to commit wins, whole), instead of failing on the name.
    f = _insert(conn, shared_files_table).values(
        name=name, size=size, sha256=stored.sha256, chunks=len(addresses), created_at=utcnow())
    conn.execute(f.on_conflict_do_update(index_elements=[shared_files_table.c.name], set_={
        c: f.excluded[c] for c in ("size", "sha256", "chunks", "created_at")}))
    conn.execute(delete(shared_file_chunks_table).where(
        shared_file_chunks_table.c.name == name))
    if addresses:
        conn.execute(insert(shared_file_chunks_table),
                     [{"name": name, "seq": i, "chunk": a} for i, a in enumerate(addresses)])
    return stored


def _insert(conn: Connection, table: Table) -> Any:
    """An INSERT that can skip or update a row whose key is taken (shared files live in
    PostgreSQL, or in SQLite should a SQLite home ever share them)."""
    found = conflict_insert(conn, table)
    if found is None:
        raise SourceError(f"shared files need SQLite or PostgreSQL, not {conn.dialect.name}")
    return found


def _add_chunks(conn: Connection, rows: list[dict[str, object]]) -> None:
    """Store chunks; one stored meanwhile by a concurrent writer (both found it missing) is
    the same bytes under the same address, and is left as it is."""
    conn.execute(_insert(conn, shared_chunks_table).on_conflict_do_nothing(
        index_elements=[shared_chunks_table.c.sha256]), rows)


def _present(conn: Connection, addresses: set[str]) -> set[str]:
    """The chunks stored already, in the database or in the object store."""
    found: set[str] = set()
    wanted = sorted(addresses)
    for t in (shared_chunks_table, shared_objects_table):
        for start in range(0, len(wanted), 1000):
            found.update(conn.execute(select(t.c.sha256).where(
                t.c.sha256.in_(wanted[start: start + 1000]))).scalars())
    return found


def info(bind: Engine | Connection, name: str) -> SharedFile | None:
    """The stored file of that name (None when there is none)."""
    t = shared_files_table
    query = select(t.c.size, t.c.sha256).where(t.c.name == name)
    if isinstance(bind, Connection):
        row = bind.execute(query).first()
    else:
        with bind.connect() as conn:
            row = conn.execute(query).first()
    return None if row is None else SharedFile(name, int(row.size), row.sha256)


def fetch(engine: Engine, name: str, tmp: Path, objects: ObjectStore | None = None
          ) -> SharedFile:
    """Write the stored file ``name`` to ``tmp`` (fsynced), each chunk checked against its
    address and the whole against the file's length and SHA-256. Raises
    :class:`~dncguard.errors.SourceError` (``tmp`` removed) when the file or a chunk is missing
    or does not match."""
    try:
        return _fetch(engine, name, tmp, objects)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fetch(engine: Engine, name: str, tmp: Path, objects: ObjectStore | None) -> SharedFile:
    f, m, c = shared_files_table, shared_file_chunks_table, shared_chunks_table
    with engine.connect() as conn:
        row = conn.execute(select(f.c.size, f.c.sha256, f.c.chunks).where(f.c.name == name)
                           ).first()
        if row is None:
            raise SourceError(f"{name} is not in the shared storage", source="shared storage")
        query = (select(m.c.seq, m.c.chunk, c.c.data).select_from(m)
                 .outerjoin(c, c.c.sha256 == m.c.chunk)
                 .where(m.c.name == name).order_by(m.c.seq))
        whole = hashlib.sha256()
        size = expect = 0
        with tmp.open("wb") as out:
            for part in conn.execution_options(stream_results=True, yield_per=4).execute(query):
                if part.seq != expect:
                    raise SourceError(f"{name}: chunk {expect} is missing",
                                      source="shared storage")
                data = bytes(part.data) if part.data is not None else None
                if data is None and objects is not None:  # kept in the object store
                    data = objects.get(_key(part.chunk))
                if data is None:
                    raise SourceError(f"{name}: chunk {part.seq} ({part.chunk[:12]}) is missing",
                                      source="shared storage")
                if hashlib.sha256(data).hexdigest() != part.chunk:
                    raise SourceError(f"{name}: chunk {part.seq} fails its checksum",
                                      source="shared storage")
                whole.update(data)
                out.write(data)
                size += len(data)
                expect += 1
            out.flush()
            os.fsync(out.fileno())
    if expect != row.chunks:
        raise SourceError(f"{name}: {row.chunks - expect} of its {row.chunks} chunks are missing",
                          source="shared storage")
    if size != row.size or whole.hexdigest() != row.sha256:
        raise SourceError(f"{name}: length or checksum differs from its record",
                          source="shared storage")
    return SharedFile(name, size, row.sha256)


def remove(conn: Connection, names: Iterable[str]) -> None:
    """Forget files (their chunks go at the next :func:`collect_garbage`)."""
    _lock(conn)
    _remove(conn, list(names))


def remove_under(conn: Connection, prefix: str) -> None:
    """Forget every file whose name starts with ``prefix`` (a folder, ending in ``/``)."""
    f = shared_files_table
    names = list(conn.execute(select(f.c.name).where(f.c.name.startswith(prefix, autoescape=True)
                                                     )).scalars())
    remove(conn, names)


def _remove(conn: Connection, names: list[str]) -> None:
    for start in range(0, len(names), 1000):
        part = names[start: start + 1000]
        conn.execute(delete(shared_file_chunks_table).where(
            shared_file_chunks_table.c.name.in_(part)))
        conn.execute(delete(shared_files_table).where(shared_files_table.c.name.in_(part)))


def collect_garbage(engine: Engine, objects: ObjectStore | None = None) -> int:
    """Delete the chunks no file names (with ``objects``, also those kept in the object
    store); returns how many went. Skipped (0) while a writer holds the lock: it never makes
    an import or a job wait, and the next call collects."""
    c, m, o = shared_chunks_table, shared_file_chunks_table, shared_objects_table
    gone: list[str] = []
    with engine.begin() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                            {"k": LOCK_KEY}).scalar_one():
            return 0
        n = int(conn.execute(delete(c).where(
            ~exists().where(m.c.chunk == c.c.sha256))).rowcount)
        if objects is not None:
            gone = list(conn.execute(delete(o).where(~exists().where(m.c.chunk == o.c.sha256))
                                     .returning(o.c.sha256)).scalars())
    if gone and objects is not None:
        objects.delete([_key(a) for a in gone])  # after the commit: none is named any more
    return n + len(gone)


__all__ = ["CHUNK_BYTES", "SharedFile", "collect_garbage", "enabled", "fetch", "info", "put",
           "remove", "remove_under", "shared_chunks_table", "shared_file_chunks_table",
           "shared_files_table", "shared_objects_table"]
