"""Read-only list snapshot files.

A snapshot is one ``.npy`` file holding the list's sorted, unique values: ``uint64`` E.164
digits for number lists, 32-byte SHA-256 digests (``S32``) for hashed lists, digit strings for
prefix lists. Files are written beside their final name and renamed into place, so a reader
never sees a half-written snapshot; they are opened by memory map, so every process shares
the page cache. (The performance issue may replace this format; callers use only these
functions.)
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def write_snapshot(folder: Path, values: npt.NDArray[Any]) -> str:
    """Write sorted unique ``values`` as a new snapshot file in ``folder``; return its name."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.npy"
    tmp = folder / f".{name}.tmp"
    with tmp.open("wb") as fh:
        np.save(fh, np.ascontiguousarray(values), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / name)
    return name


def open_snapshot(path: Path) -> npt.NDArray[Any]:
    """Open a snapshot by memory map (empty arrays are read normally)."""
    values: npt.NDArray[Any]
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError:
        # numpy cannot memory-map a zero-length array
        values = np.load(path, allow_pickle=False)
    return values


def sorted_contains(haystack: npt.NDArray[Any], needles: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Membership of each needle in a sorted, unique haystack."""
    if haystack.size == 0 or needles.size == 0:
        return np.zeros(needles.shape, dtype=bool)
    idx = np.searchsorted(haystack, needles)
    idx[idx >= haystack.size] = haystack.size - 1
    return np.asarray(haystack[idx] == needles, dtype=bool)
