"""Snapshot files at rest are verified before they are trusted.

Every snapshot file ``<name>.npy`` has a *seal* beside it, ``<name>.npy.seal.json``: the
file's length and SHA-256. The writer publishes both in one step: the data file is written
under a temporary name and fsynced, its seal is written (temporary name, fsync, rename), then
the data file is renamed into place and the folder fsynced. A reader therefore never finds a
snapshot without its seal; the database also records the seal of each list's current file
(``lists.meta["snapshot"]``), so a lost seal file is noticed and restored from it.

:class:`SnapshotFile` opens a snapshot: it checks the length against the seal, parses the
``.npy`` header (the data must end exactly at the end of the file), hashes the file (read with
``read()``, never through the mapping, so a short file is a mismatch, not a crash) and only
then maps it. Before each use :meth:`SnapshotFile.current` compares the file's identity
(device, inode, size, mtime) with the one it verified: a different size fails the list without
touching the mapping (reading past the end of a mapping is SIGBUS); any other change is verified
again before it is read. Verified identities are remembered per process, so opening an
unchanged file again costs one ``stat``; failures are remembered too, so a damaged registry is
not re-hashed on every request.

A snapshot written before seals existed (no seal file, no database record) is *adopted* once:
its structure is checked (header against length; sorted and unique values, or a NANP bitmap
whose header, size and count agree with its bits), then its seal is computed and written, with
a warning in the log. Flipped bytes in such a file before adoption cannot be told from data;
everything after adoption can.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from ..errors import ListError

log = logging.getLogger("dncguard.lists.snapshots")

SEAL_SUFFIX = ".seal.json"
SEAL_FORMAT = "dncguard-snapshot-seal/1"
_CACHE_MAX = 4096
#: Bytes hashed per read. Each read and each hash update lets go of the GIL and takes it back,
#: and taking it back beside a busy thread waits up to the switch interval (5 ms): an 80 MB
#: snapshot hashed in 1 MiB reads took 0.86 s beside a spinning thread against 0.13 s in
#: 16 MiB reads (57-59 ms alone, either way). The list checks open snapshots on a thread
#: while the scrub normalises on another.
_CHUNK = 16 << 20

#: Checks an opened (legacy) snapshot's structure; returns the problem, or None when sound.
StructureCheck = Callable[[npt.NDArray[Any]], "str | None"]
#: (device, inode, size, mtime_ns)
Identity = tuple[int, int, int, int]


class SnapshotIntegrityError(ListError):
    """A snapshot file does not match its seal (length or checksum), is missing, or is not a
    valid snapshot. Checks against its list answer ``error`` / ``SOURCE_ERROR``."""


@dataclass(frozen=True)
class Seal:
    """What a snapshot file must be: its name, length in bytes and SHA-256 (hex)."""

    file: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"format": SEAL_FORMAT, "file": self.file, "size": self.size,
                "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: object) -> Seal:
        """Raises ValueError when ``data`` is not a seal."""
        if not isinstance(data, Mapping) or data.get("format") != SEAL_FORMAT:
            raise ValueError("not a snapshot seal")
        file, size, sha = data.get("file"), data.get("size"), data.get("sha256")
        if not (isinstance(file, str) and isinstance(size, int) and isinstance(sha, str)
                and len(sha) == 64):
            raise ValueError("incomplete snapshot seal")
        return cls(file, size, sha)

    @classmethod
    def of_meta(cls, meta: Mapping[str, Any], file: str | None) -> Seal | None:
        """The seal a list's database record holds for its current ``file`` (None if none)."""
        try:
            seal = cls.from_json(meta.get("snapshot"))
        except ValueError:
            return None
        return seal if seal.file == file else None


def seal_path(path: Path) -> Path:
    return path.with_name(path.name + SEAL_SUFFIX)


def short_name(path: Path) -> str:
    """``<list folder>/<file>``: how problems name a snapshot (no home directory)."""
    return f"{path.parent.name}/{path.name}"


def read_seal(path: Path) -> Seal | None:
    """The seal beside snapshot ``path``; None when there is none."""
    where = seal_path(path)
    try:
        text = where.read_text("utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotIntegrityError(f"seal unreadable: {exc.strerror} ({short_name(path)})"
                                     ) from None
    try:
        seal = Seal.from_json(json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise SnapshotIntegrityError(f"seal damaged: {exc} ({short_name(path)})") from None
    if seal.file != path.name:
        raise SnapshotIntegrityError(f"seal is for another file, {seal.file} "
                                     f"({short_name(path)})")
    return seal


def fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (POSIX; Windows has no directory handles)."""
    if os.name == "nt":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_seal(path: Path, seal: Seal) -> None:
    """Write the seal of snapshot ``path`` atomically (temporary file, fsync, rename)."""
    final = seal_path(path)
    tmp = final.with_name(f".{final.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(seal.to_json(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def sha256_of(fh: BinaryIO) -> str:
    """SHA-256 of a whole open file, read in chunks (a short file gives a short digest input,
    never a fault)."""
    size = fh.seek(0, os.SEEK_END)
    fh.seek(0)
    digest = hashlib.sha256()
    buf = bytearray(min(_CHUNK, size + 1))  # a small file: no 16 MiB to zero
    view = memoryview(buf)
    while n := fh.readinto(buf):  # type: ignore[attr-defined]
        digest.update(view[:n])
    return digest.hexdigest()


def seal_new_file(tmp: Path, final: Path) -> None:
    """Publish a written snapshot: fsync ``tmp``, write the seal of ``final``, rename ``tmp``
    to ``final``, fsync the folder. The seal exists before the file does."""
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
        digest = sha256_of(fh)
        st = os.fstat(fh.fileno())
    write_seal(final, Seal(final.name, st.st_size, digest))
    os.replace(tmp, final)
    fsync_dir(final.parent)
    _remember(final, _identity(st), digest, None)  # same inode, size and mtime after rename


# -- the per-process record of verified (and failed) files ----------------------------------
#: path -> (identity, seal file identity, verified SHA-256 or None, problem or None)
_CACHE: dict[str, tuple[Identity, Identity | None, str | None, str | None]] = {}


def _identity(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _seal_identity(path: Path) -> Identity | None:
    try:
        return _identity(os.stat(seal_path(path)))
    except OSError:
        return None


def _remember(path: Path, ident: Identity, digest: str | None, error: str | None) -> None:
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[os.fspath(path)] = (ident, _seal_identity(path), digest, error)


def _known_problem(path: Path, ident: Identity) -> str | None:
    """The problem found before with this very file and seal file, if any."""
    known = _CACHE.get(os.fspath(path))
    if known is None or known[3] is None or known[0] != ident:
        return None
    return known[3] if known[1] == _seal_identity(path) else None


def _verified_before(path: Path, ident: Identity, digest: str) -> bool:
    known = _CACHE.get(os.fspath(path))
    return known is not None and known[0] == ident and known[2] == digest


def forget(path: Path) -> None:
    """Drop what this process remembers about ``path`` (tests; removed files)."""
    _CACHE.pop(os.fspath(path), None)


# -- opening ----------------------------------------------------------------------------------
def _map(fh: BinaryIO, size: int, name: str) -> npt.NDArray[Any]:
    """The ``.npy`` array of an open file, memory-mapped after checking that its data ends
    exactly at the end of the file."""
    fmt = np.lib.format
    fh.seek(0)
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError) as exc:
        raise SnapshotIntegrityError(f"not a snapshot file: {str(exc)[:80]} ({name})") from None
    if fortran or len(shape) != 1 or dtype.hasobject:
        raise SnapshotIntegrityError(f"not a snapshot array ({name})")
    offset = fh.tell()
    count = int(shape[0])
    end = offset + count * dtype.itemsize
    if end != size:
        raise SnapshotIntegrityError(f"truncated or extended: {size:,} bytes, its header "
                                     f"needs {end:,} ({name})")
    if count == 0:
        return np.zeros(0, dtype=dtype)
    mapped = mmap.mmap(fh.fileno(), end, access=mmap.ACCESS_READ)
    # a plain ndarray over the map: indexing a np.memmap costs microseconds per call
    return np.frombuffer(mapped, dtype=dtype, count=count, offset=offset)


class SnapshotFile:
    """A verified, memory-mapped snapshot file (see the module docstring)."""

    def __init__(self, path: Path, expected: Seal | None, structure: StructureCheck | None,
                 seal: Seal, identity: Identity, array: npt.NDArray[Any]) -> None:
        self.path = path
        self._where = os.fspath(path)  # os.stat of a str: a little cheaper, once per use
        self.expected = expected
        self.structure = structure
        self.seal = seal
        self.identity = identity
        self.array = array

    @classmethod
    def open(cls, path: Path, expected: Seal | None = None,
             structure: StructureCheck | None = None) -> SnapshotFile:
        """Verify and map ``path``; ``expected`` is the database's record of its seal.
        Raises :class:`SnapshotIntegrityError`."""
        name = short_name(path)
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            raise SnapshotIntegrityError(f"snapshot file missing ({name})") from None
        except OSError as exc:
            raise SnapshotIntegrityError(f"snapshot file unreadable: {exc.strerror} ({name})"
                                         ) from None
        with fh:
            ident = _identity(os.fstat(fh.fileno()))
            problem = _known_problem(path, ident)
            if problem is not None:
                raise SnapshotIntegrityError(problem)  # failed before, unchanged since
            try:
                seal, array = cls._verify(path, fh, ident, expected, structure)
            except SnapshotIntegrityError as exc:
                _remember(path, ident, None, str(exc))
                raise
        _remember(path, ident, seal.sha256, None)
        return cls(path, expected, structure, seal, ident, array)

    @staticmethod
    def _verify(path: Path, fh: BinaryIO, ident: Identity, expected: Seal | None,
                structure: StructureCheck | None) -> tuple[Seal, npt.NDArray[Any]]:
        name = short_name(path)
        size = ident[2]
        beside = read_seal(path)
        if expected is not None and beside is not None and beside != expected:
            raise SnapshotIntegrityError(f"seal file disagrees with the database record ({name})")
        seal = beside or expected
        if seal is not None and size != seal.size:
            raise SnapshotIntegrityError(f"truncated or extended: {size:,} bytes, sealed at "
                                         f"{seal.size:,} ({name})")
        array = _map(fh, size, name)
        if seal is None:
            return _adopt(path, fh, ident, array, structure), array
        if not _verified_before(path, ident, seal.sha256):
            if sha256_of(fh) != seal.sha256:
                raise SnapshotIntegrityError(f"checksum mismatch: contents changed since the "
                                             f"file was written ({name})")
        if beside is None:  # the seal file was lost; the database still knows it
            write_seal(path, seal)
            log.warning("snapshot %s: seal file missing; restored from the database record "
                        "after the file matched it", name)
        return seal, array

    def current(self) -> npt.NDArray[Any]:
        """The array, once the file is shown to be the one verified (one ``stat``); a file
        changed in place or replaced is verified again, a file of another length fails
        without the mapping being touched. Raises :class:`SnapshotIntegrityError`."""
        try:
            st = os.stat(self._where)
        except FileNotFoundError:
            raise SnapshotIntegrityError(f"snapshot file missing ({short_name(self.path)})"
                                         ) from None
        except OSError as exc:
            raise SnapshotIntegrityError(f"snapshot file unreadable: {exc.strerror} "
                                         f"({short_name(self.path)})") from None
        ident = _identity(st)
        if ident == self.identity:
            return self.array
        if st.st_size != self.seal.size:
            problem = (f"truncated or extended: {st.st_size:,} bytes, sealed at "
                       f"{self.seal.size:,} ({short_name(self.path)})")
            _remember(self.path, ident, None, problem)
            raise SnapshotIntegrityError(problem)
        again = SnapshotFile.open(self.path, self.expected, self.structure)
        self.seal, self.identity, self.array = again.seal, again.identity, again.array
        return self.array


def _adopt(path: Path, fh: BinaryIO, ident: Identity, array: npt.NDArray[Any],
           structure: StructureCheck | None) -> Seal:
    """Seal a snapshot written before seals existed, once its structure is shown sound."""
    name = short_name(path)
    problem = structure(array) if structure is not None else None
    if problem:
        raise SnapshotIntegrityError(f"no seal, and {problem}: re-import the list ({name})")
    seal = Seal(path.name, ident[2], sha256_of(fh))
    try:
        write_seal(path, seal)
    except OSError as exc:
        log.warning("snapshot %s has no seal and none could be written (%s): trusted on its "
                    "structure check, in this process only", name, exc.strerror)
        return seal
    log.warning("snapshot %s had no seal (written before seals existed): structure checked, "
                "seal recorded", name)
    return seal


__all__ = ["SEAL_SUFFIX", "Seal", "SnapshotFile", "SnapshotIntegrityError", "read_seal",
           "seal_new_file", "seal_path", "short_name", "write_seal"]
