"""List snapshots distributed through PostgreSQL (:mod:`dncguard.sharedfiles`).

An import publishes the new snapshot (:func:`publish`) in the transaction that makes it the
list's current version, and notifies :data:`CHANNEL`; every replica then *materialises* the
version the database names (:func:`materialise`): it fetches the chunks into a temporary file
beside its local copy, checks the result against the seal the database holds for the list
(length and SHA-256, :mod:`dncguard.lists.integrity`), then publishes it with its seal and
renames it into place. Until that is done the replica does not hold the version and the list's
checks answer ``error`` (SOURCE_ERROR): a local snapshot is only ever the database's version,
verified.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from .. import sharedfiles
from ..errors import SourceError
from .integrity import Seal, SnapshotFile, SnapshotIntegrityError, seal_new_file

#: LISTEN/NOTIFY channel: the payload is the name of the list whose version changed.
CHANNEL = "dncguard_snapshots"


def shared_name(folder: str, file: str) -> str:
    """The shared storage name of snapshot ``file`` of the list stored in ``folder``."""
    return f"lists/{folder}/{file}"


def publish(conn: Connection, folder: Path, file: str, seal: Seal, list_name: str) -> None:
    """Store snapshot ``folder/file`` in the database inside ``conn``'s transaction and tell
    the replicas (the notification is delivered when the transaction commits)."""
    stored = sharedfiles.put(conn, shared_name(folder.name, file), folder / file)
    if (stored.size, stored.sha256) != (seal.size, seal.sha256):
        raise SnapshotIntegrityError(f"snapshot {folder.name}/{file} changed before it was "
                                     "published; import the list again")
    notify(conn, list_name)


def notify(conn: Connection, list_name: str) -> None:
    conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": list_name[:200]})


def forget(conn: Connection, folder: str, files: list[str] | None = None) -> None:
    """Drop the shared copies of these snapshot files of a list (every file when None)."""
    if files is None:
        sharedfiles.remove_under(conn, f"lists/{folder}/")
    else:
        sharedfiles.remove(conn, [shared_name(folder, f) for f in files])


def is_published(bind: Engine | Connection, folder: str, file: str) -> bool:
    return sharedfiles.info(bind, shared_name(folder, file)) is not None


def materialise(engine: Engine, folder: Path, seal: Seal) -> None:
    """Fetch snapshot ``seal.file`` of the list stored in ``folder`` from the database and put
    it in place (atomically replacing a damaged copy) once it matches ``seal``. Raises
    :class:`SnapshotIntegrityError` when it cannot: the file is not in the database, a chunk
    is missing or fails its checksum, or the whole does not match the seal."""
    folder.mkdir(parents=True, exist_ok=True)
    where = f"{folder.name}/{seal.file}"
    tmp = folder / f".{seal.file}.{uuid.uuid4().hex[:8]}.fetch"
    with _folder_lock(folder):
        try:  # another process of this home may have fetched it while we waited
            SnapshotFile.open(folder / seal.file, seal)
            return
        except SnapshotIntegrityError:
            pass
        try:
            got = sharedfiles.fetch(engine, shared_name(folder.name, seal.file), tmp)
        except SourceError as exc:
            raise SnapshotIntegrityError(f"snapshot {where} could not be fetched from the "
                                         f"database: {exc}") from None
        try:
            if (got.size, got.sha256) != (seal.size, seal.sha256):
                raise SnapshotIntegrityError(f"snapshot {where} in the database does not "
                                             "match the list's seal")
            seal_new_file(tmp, folder / seal.file)
        finally:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """One fetch per list folder at a time across this home's processes (uvicorn workers)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: fetches write unique temporaries anyway
        yield
        return
    with (folder / ".fetch.lock").open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = ["CHANNEL", "forget", "is_published", "materialise", "notify", "publish",
           "shared_name"]
