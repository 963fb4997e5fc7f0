"""Read-only list snapshot files.

A snapshot is one ``.npy`` file, in one of two layouts:

* **sorted** (every kind of list): the list's sorted, unique values: ``uint64`` E.164 digits
  for number lists, 32-byte SHA-256 digests (``S32``) for hashed lists, digit strings for prefix
  lists. Eight bytes per number; lookups by binary search.
* **NANP bitmap** (large +1 number lists, see :func:`choose_layout`): a ``uint8`` array
  holding a 4 KiB header (magic, count, a slot for each of the 1000 area codes) and one dense
  bitmap of 10^7 bits (1.25 MB) per area code present. A national registry of 250M numbers
  takes about 0.5 GB instead of 2 GB, builds without sorting its input
  (:func:`build_nanp_bitmap`), takes change lists by copying and flipping bits
  (:func:`apply_changes`), and answers a lookup with one memory access.

Files are written beside their final name and renamed into place with their *seal* (length
and SHA-256, :mod:`dncguard.lists.integrity`), so a reader never sees a half-written or
unsealed snapshot; they are verified against the seal, then opened by memory map, so every
process shares the page cache. Callers use :func:`write_snapshot`, :func:`open_snapshot` (or
:func:`open_file` to keep checking the file before each use), :func:`sorted_contains` (any
layout), :func:`snapshot_values` (the sorted values of any layout) and :func:`contains_one`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .integrity import (
    Seal,
    SnapshotFile,
    SnapshotIntegrityError,
    read_seal,
    seal_new_file,
    sha256_of,
)

Layout = Literal["sorted", "bitmap", "auto"]

MAGIC = b"DNCGUARD-NANP-BITMAP-1\x00"
HEADER_BYTES = 4096
_COUNT_AT = 32  # uint64 number count
_SLOTS_AT = 64  # int16[1000]: the slot of each area code, -1 when absent
NANP_BASE = 10_000_000_000  # +1 followed by ten digits
PER_AREA = 10_000_000  # numbers per area code
AREA_BYTES = PER_AREA // 8


# -- writing ----------------------------------------------------------------------------------
def _new_name(folder: Path) -> tuple[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{uuid.uuid4().hex}.npy"
    return name, folder / f".{name}.tmp"


def _commit(tmp: Path, folder: Path, name: str) -> str:
    """Publish ``tmp`` as ``folder/name`` with its seal (see :func:`seal_new_file`)."""
    seal_new_file(tmp, folder / name)
    return name


def seal_of(path: Path) -> Seal:
    """The seal of a snapshot this process wrote (for the database record)."""
    seal = read_seal(path)
    if seal is None:
        raise SnapshotIntegrityError(f"snapshot {path.name} has no seal")
    return seal


def is_nanp(values: npt.NDArray[Any]) -> bool:
    """Whether every value is a ``+1`` number with ten digits (so a bitmap can hold it)."""
    if values.dtype != np.uint64:
        return False
    if values.size == 0:
        return False
    lo, hi = (values[0], values[-1]) if _is_sorted_hint(values) else (values.min(), values.max())
    return bool(lo >= NANP_BASE and hi < 2 * NANP_BASE)


def _is_sorted_hint(values: npt.NDArray[Any]) -> bool:
    return bool(values.size < 2 or values[0] <= values[-1])


def bitmap_bytes(values: npt.NDArray[np.uint64]) -> int:
    """The size of the NANP bitmap layout for these (+1) values."""
    areas = ((values - np.uint64(NANP_BASE)) // np.uint64(PER_AREA)).astype(np.int64)
    present = int(np.count_nonzero(np.bincount(areas, minlength=1000)))
    return HEADER_BYTES + present * AREA_BYTES


def choose_layout(values: npt.NDArray[Any]) -> Literal["sorted", "bitmap"]:
    """The bitmap for +1 number lists where it is no larger than the sorted layout (dense
    lists such as a national registry); the sorted layout for everything else, so small
    lists never pay 1.25 MB per area code."""
    if not is_nanp(values):
        return "sorted"
    return "bitmap" if bitmap_bytes(values) <= values.size * 8 else "sorted"


def write_snapshot(folder: Path, values: npt.NDArray[Any], *, layout: Layout = "sorted") -> str:
    """Write sorted unique ``values`` as a new snapshot file in ``folder``; return its name.

    ``layout="auto"`` picks the NANP bitmap for dense +1 number lists (see
    :func:`choose_layout`); callers that read the values back must then use
    :func:`snapshot_values`, not the raw array.
    """
    if layout == "auto":
        layout = choose_layout(values)
    if layout == "bitmap":
        return build_nanp_bitmap(folder, [values])[0]
    name, tmp = _new_name(folder)
    with tmp.open("wb") as fh:
        np.save(fh, np.ascontiguousarray(values), allow_pickle=False)
        fh.flush()
    return _commit(tmp, folder, name)


def build_nanp_bitmap(folder: Path, chunks: Iterable[npt.NDArray[np.uint64]]) -> tuple[str, int]:
    """Build a NANP bitmap snapshot from chunks of +1 numbers (any order, duplicates fine,
    values outside +1 ten-digit numbers ignored: a number file is built with
    :func:`build_number_snapshot`, which keeps them); returns (file name, count).

    The whole input is never sorted: each chunk sets its bits in a 1.25 GB bitmap of the NANP
    space (untouched pages cost nothing), so peak memory is that bitmap plus one chunk.
    """
    space = np.zeros(1000 * AREA_BYTES, dtype=np.uint8)
    for chunk in chunks:
        _set_bits(space, np.asarray(chunk, dtype=np.uint64), True)
    return _write_space(folder, space)


def build_number_snapshot(folder: Path, chunks: Iterable[npt.NDArray[np.uint64]]
                          ) -> tuple[str, int]:
    """A snapshot of every number in chunks of E.164 integers (any order, duplicates fine);
    returns (file name, count). Built as :func:`build_nanp_bitmap` does, without sorting the
    input, when every number is a ``+1`` ten-digit number; a number the bitmap cannot hold
    (another country's) is never dropped: the numbers are then written in the sorted layout
    (the bitmap's numbers, already in order, with the others around them)."""
    space = np.zeros(1000 * AREA_BYTES, dtype=np.uint8)
    outside: list[npt.NDArray[np.uint64]] = []
    for chunk in chunks:
        values = np.asarray(chunk, dtype=np.uint64)
        inside = (values >= np.uint64(NANP_BASE)) & (values < np.uint64(2 * NANP_BASE))
        if not bool(inside.all()):
            outside.append(sorted_unique(values[~inside]))
            values = values[inside]
        _set_bits(space, values, True)
    if not outside:
        return _write_space(folder, space)
    others = sorted_unique(np.concatenate(outside))
    merged = np.concatenate((others[others < np.uint64(NANP_BASE)], _space_values(space),
                             others[others >= np.uint64(2 * NANP_BASE)])).astype(np.uint64)
    return write_snapshot(folder, merged, layout="sorted"), int(merged.size)


def _space_values(space: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """The numbers of a full-space bitmap (see :func:`build_nanp_bitmap`), sorted."""
    parts = []
    areas = space.reshape(1000, AREA_BYTES)
    for area in range(1000):
        body = areas[area]
        at = np.flatnonzero(body)
        if not at.size:
            continue
        bits = np.unpackbits(body[at][:, None], axis=1, bitorder="little")
        row, col = np.nonzero(bits)
        parts.append((at[row] * 8 + col).astype(np.uint64)
                     + np.uint64(NANP_BASE + area * PER_AREA))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _set_bits(space: npt.NDArray[np.uint8], values: npt.NDArray[np.uint64], on: bool) -> None:
    """Set (or clear) the bits of ``values`` in a full-space bitmap."""
    inside = (values >= np.uint64(NANP_BASE)) & (values < np.uint64(2 * NANP_BASE))
    _write_bits(space, np.sort((values[inside] - np.uint64(NANP_BASE)).astype(np.int64)), on)


_BITS_IN_BYTE = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(words: npt.NDArray[Any]) -> int:
    """Set bits in an array (numpy >= 2 has a ufunc; older numpy uses a byte table)."""
    count = getattr(np, "bitwise_count", None)
    if count is not None:
        return int(count(words).sum(dtype=np.int64))
    as_bytes = np.ascontiguousarray(words).view(np.uint8)
    return int(_BITS_IN_BYTE[as_bytes].sum(dtype=np.int64))


def _write_space(folder: Path, space: npt.NDArray[np.uint8]) -> tuple[str, int]:
    slots = np.full(1000, -1, dtype=np.int16)
    counts: list[int] = []
    areas = space.reshape(1000, AREA_BYTES)
    for area in range(1000):
        row = areas[area].view(np.uint64)
        n = popcount(row) if row.any() else 0
        if n:
            slots[area] = len(counts)
            counts.append(n)
    header = np.zeros(HEADER_BYTES, dtype=np.uint8)
    header[: len(MAGIC)] = np.frombuffer(MAGIC, dtype=np.uint8)
    total = sum(counts)
    header[_COUNT_AT: _COUNT_AT + 8] = np.frombuffer(np.uint64(total).tobytes(), dtype=np.uint8)
    header[_SLOTS_AT: _SLOTS_AT + 2000] = np.frombuffer(slots.tobytes(), dtype=np.uint8)
    size = HEADER_BYTES + len(counts) * AREA_BYTES
    name, tmp = _new_name(folder)
    with tmp.open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "|u1", "fortran_order": False, "shape": (size,)})
        fh.write(header.tobytes())
        for area in np.flatnonzero(slots >= 0).tolist():
            fh.write(memoryview(areas[area]))
        fh.flush()
    return _commit(tmp, folder, name), total


def apply_changes(folder: Path, current: Path, adds: npt.NDArray[np.uint64],
                  dels: npt.NDArray[np.uint64], *, expected: Seal | None = None
                  ) -> tuple[str, npt.NDArray[Any]]:
    """A new snapshot: ``current`` (verified against its seal, ``expected`` being the
    database's record) with ``adds`` added and ``dels`` removed; returns (file name, opened
    snapshot). A bitmap whose area codes already cover the additions is copied and patched in
    place (no rebuild); otherwise the values are merged. A damaged ``current`` raises
    :class:`SnapshotIntegrityError`: changes are never applied to a file that fails its seal.

    ``adds`` and ``dels`` are a net change and must not share a value (ValueError, before
    anything is written): which of an add and a delete of one number comes last is the change
    list's to say (:func:`dncguard.lists._files.read_changes` resolves it), so the result never
    depends on the snapshot's layout."""
    if adds.size and dels.size and bool(_searchsorted_contains(np.sort(dels), adds).any()):
        raise ValueError("a change adds and deletes the same number; pass each number's "
                         "last change only")
    opened = open_file(current, expected)
    snap = opened.array
    if is_bitmap(snap):
        slots = _slots(snap)
        new_areas = (adds - np.uint64(NANP_BASE)) // np.uint64(PER_AREA)
        nanp_adds = is_nanp(adds) or adds.size == 0
        if nanp_adds and bool((slots[new_areas.astype(np.int64)] >= 0).all()):
            name, tmp = _new_name(folder)
            shutil.copyfile(current, tmp)
            with tmp.open("rb") as fh:
                copied = sha256_of(fh)
            if copied != opened.seal.sha256:  # changed between the check and the copy
                tmp.unlink(missing_ok=True)
                raise SnapshotIntegrityError(f"snapshot {current.name} changed while it was "
                                             "copied; not applying changes to it")
            patched = np.load(tmp, mmap_mode="r+", allow_pickle=False)
            _patch(patched, dels, on=False)  # disjoint from adds: the order is immaterial
            _patch(patched, adds, on=True)
            body = patched[HEADER_BYTES:].view(np.uint64)
            count = np.uint64(popcount(body))
            patched[_COUNT_AT: _COUNT_AT + 8] = np.frombuffer(count.tobytes(), dtype=np.uint8)
            patched.flush()
            del patched
            name = _commit(tmp, folder, name)
            return name, open_snapshot(folder / name)
    values = snapshot_values(snap)
    merged = _sorted_setdiff(_sorted_union(values, adds), dels)
    layout: Layout = "bitmap" if is_bitmap(snap) else "sorted"
    if layout == "bitmap" and not is_nanp(merged):
        layout = "sorted"
    name = write_snapshot(folder, merged, layout=layout)
    return name, open_snapshot(folder / name)


def _patch(snap: npt.NDArray[np.uint8], values: npt.NDArray[np.uint64], *, on: bool) -> None:
    if not values.size:
        return
    slots = _slots(snap)
    inside = (values >= np.uint64(NANP_BASE)) & (values < np.uint64(2 * NANP_BASE))
    nat = (values[inside] - np.uint64(NANP_BASE)).astype(np.int64)
    slot = slots[nat // PER_AREA].astype(np.int64)
    keep = slot >= 0
    _write_bits(snap[HEADER_BYTES:], np.sort(slot[keep] * PER_AREA + nat[keep] % PER_AREA), on)


def _write_bits(body: npt.NDArray[np.uint8], bits: npt.NDArray[Any], on: bool) -> None:
    """Set (or clear) the given sorted bit positions of a byte array, one write per byte."""
    if not bits.size:
        return
    byte = bits >> 3
    mask = np.left_shift(np.uint8(1), (bits & 7).astype(np.uint8))
    starts = np.flatnonzero(np.concatenate(([True], byte[1:] != byte[:-1])))
    merged = np.bitwise_or.reduceat(mask, starts)
    at = byte[starts]
    if on:
        body[at] |= merged
    else:
        body[at] &= ~merged


# -- reading ----------------------------------------------------------------------------------
def open_file(path: Path, expected: Seal | None = None) -> SnapshotFile:
    """Verify a snapshot against its seal (``expected``: the database's record of it) and
    map it; :meth:`SnapshotFile.current` re-checks it before each use. A snapshot without a
    seal is adopted once its structure is sound (:func:`structure_problem`). Raises
    :class:`SnapshotIntegrityError`."""
    return SnapshotFile.open(path, expected, structure_problem)


def open_snapshot(path: Path, expected: Seal | None = None) -> npt.NDArray[Any]:
    """Verify a snapshot (see :func:`open_file`) and open it by memory map."""
    return open_file(path, expected).array


def structure_problem(snap: npt.NDArray[Any]) -> str | None:
    """Why an opened snapshot is not a sound snapshot (None when it is): a bitmap whose
    header, size and count disagree with its bits, or values not sorted and unique."""
    if is_bitmap(snap):
        slots = _slots(snap).astype(np.int64)
        used = np.sort(slots[slots >= 0])
        if slots.min() < -1 or not np.array_equal(used, np.arange(used.size)):
            return "its bitmap header is damaged"
        if snap.size != HEADER_BYTES + used.size * AREA_BYTES:
            return "its bitmap size does not match its area codes"
        if popcount(snap[HEADER_BYTES:].view(np.uint64)) != snapshot_count(snap):
            return "its bitmap count does not match its bits"
        return None
    step = 1 << 23
    for start in range(0, max(snap.size - 1, 0), step):
        part = snap[start: start + step + 1]
        if not bool(np.all(part[1:] > part[:-1])):
            return "its values are not sorted and unique"
    return None


def is_bitmap(snap: npt.NDArray[Any]) -> bool:
    """Whether an opened snapshot has the NANP bitmap layout."""
    return bool(snap.dtype == np.uint8 and snap.size >= HEADER_BYTES
                and snap[: len(MAGIC)].tobytes() == MAGIC)  # ~0.3 us


def _slots(snap: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    return np.frombuffer(snap[_SLOTS_AT: _SLOTS_AT + 2000].tobytes(), dtype=np.int16)


def snapshot_count(snap: npt.NDArray[Any]) -> int:
    """How many values a snapshot holds (any layout)."""
    if is_bitmap(snap):
        return int(np.frombuffer(snap[_COUNT_AT: _COUNT_AT + 8].tobytes(), dtype=np.uint64)[0])
    return int(snap.size)


def snapshot_values(snap: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The sorted unique values of a snapshot (any layout; a bitmap is expanded)."""
    if not is_bitmap(snap):
        return np.asarray(snap)
    slots = _slots(snap)
    parts = []
    for area in np.flatnonzero(slots >= 0).tolist():
        start = HEADER_BYTES + int(slots[area]) * AREA_BYTES
        body = np.asarray(snap[start: start + AREA_BYTES])
        at = np.flatnonzero(body)
        bits = np.unpackbits(body[at][:, None], axis=1, bitorder="little")
        row, col = np.nonzero(bits)
        parts.append((at[row] * 8 + col).astype(np.uint64)
                     + np.uint64(NANP_BASE + area * PER_AREA))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def nanp_areas(snap: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """The area codes (NPA, as integers 0-999, sorted) of the ``+1`` numbers a number snapshot
    holds, without reading its numbers: a bitmap's from its header (an area code it has a slot
    for: its numbers were imported, even if change lists deleted every one since), a sorted
    one's by one binary search per area-code boundary (1001 probes of the memory map, never a
    pass over the values). Empty for a snapshot of anything else (hashes, prefixes)."""
    if is_bitmap(snap):
        return np.flatnonzero(_slots(snap) >= 0).astype(np.int64)
    if snap.dtype != np.uint64 or snap.size == 0:
        return np.zeros(0, dtype=np.int64)
    bounds = np.uint64(NANP_BASE) + np.arange(1001, dtype=np.uint64) * np.uint64(PER_AREA)
    at = np.searchsorted(snap, bounds)
    return np.flatnonzero(at[1:] > at[:-1]).astype(np.int64)


def sorted_contains(haystack: npt.NDArray[Any], needles: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Membership of each needle in a snapshot: a sorted unique array, or a NANP bitmap."""
    if haystack.size == 0 or needles.size == 0:
        return np.zeros(needles.shape, dtype=bool)
    if is_bitmap(haystack):
        return _bitmap_contains(haystack, np.asarray(needles, dtype=np.uint64))
    if needles.size > 1024 and haystack.dtype == np.uint64:
        if haystack.size * SEARCH_THE_NEEDLES < needles.size and _ascending(needles):
            return _reverse_contains(haystack, needles)
        # numpy's binary search narrows from the previous key when keys ascend
        order = np.argsort(needles, kind="stable")
        found = np.empty(needles.shape, dtype=bool)
        found[order] = _searchsorted_contains(haystack, needles[order])
        return found
    return _searchsorted_contains(haystack, needles)


#: A sorted list this many times smaller than the ascending numbers looked up in it is searched
#: for in them, not they in it: a state list of 15,000 numbers against the 250,000 numbers of
#: a scrub's slice is 15,000 binary searches instead of 250,000 (every state list meets every
#: number of a row without an address).
SEARCH_THE_NEEDLES = 8


def _ascending(values: npt.NDArray[Any]) -> bool:
    return bool((values[1:] >= values[:-1]).all())


def _reverse_contains(haystack: npt.NDArray[Any],
                      needles: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """:func:`sorted_contains` for ascending ``needles`` (repeats allowed) and a much smaller
    sorted unique ``haystack``: each list value is looked up among the needles, and the run
    of needles equal to it is marked."""
    left = np.searchsorted(needles, haystack, "left")
    right = np.searchsorted(needles, haystack, "right")
    hit = right > left
    found = np.zeros(needles.shape, dtype=bool)
    if not hit.any():
        return found
    left, right = left[hit], right[hit]
    if bool((right - left == 1).all()):
        found[left] = True
        return found
    # runs of equal needles: +1 where one starts, -1 after it ends (the values are unique,
    # so no two runs start, or end, at the same place)
    edge = np.zeros(needles.size + 1, dtype=np.int32)
    edge[left] += 1
    edge[right] -= 1
    return np.asarray(np.cumsum(edge[:-1]) > 0, dtype=bool)


def _searchsorted_contains(haystack: npt.NDArray[Any],
                           needles: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    idx = np.searchsorted(haystack, needles)
    idx[idx >= haystack.size] = haystack.size - 1
    return np.asarray(haystack[idx] == needles, dtype=bool)


def _bitmap_contains(snap: npt.NDArray[np.uint8],
                     needles: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    if snap.size == HEADER_BYTES:
        return np.zeros(needles.shape, dtype=bool)
    slots = _slots(snap).astype(np.int64)
    nat = (needles - np.uint64(NANP_BASE)).view(np.int64)  # wraps below the base
    present = (nat >= 0) & (nat < NANP_BASE)
    nat = np.where(present, nat, 0)
    area, line = np.divmod(nat, PER_AREA)
    slot = slots[area]
    present &= slot >= 0
    bit = slot * PER_AREA + line
    bit[~present] = 0
    body = snap[HEADER_BYTES:]
    byte = body[bit >> 3]
    return np.asarray((np.right_shift(byte, (bit & 7).astype(np.uint8)) & 1).view(bool)
                      & present)


def contains_one(snap: npt.NDArray[Any], value: Any) -> bool:
    """Membership of one value (an E.164 integer, digest or prefix string), without numpy's
    per-call overhead for arrays."""
    if snap.size == 0:
        return False
    if snap.dtype.char == "B" and is_bitmap(snap):
        nat = int(value) - NANP_BASE
        if not 0 <= nat < NANP_BASE:
            return False
        item = snap.item  # Python ints, about twice as fast as indexing
        area, line = divmod(nat, PER_AREA)
        slot = item(_SLOTS_AT + 2 * area) | (item(_SLOTS_AT + 2 * area + 1) << 8)
        if slot >= 0x8000:
            return False  # -1: the area code is absent
        bit = slot * PER_AREA + line
        return bool(item(HEADER_BYTES + (bit >> 3)) >> (bit & 7) & 1)
    key = snap.dtype.type(value)
    i = int(snap.searchsorted(key))
    return i < snap.size and bool(snap[i] == key)


def single_lookup(snap: npt.NDArray[Any]) -> Callable[[Any], bool]:
    """A membership test for one value at a time, with the layout decided once (for callers
    that check numbers one by one, e.g. a live API)."""
    if snap.size == 0:
        return lambda value: False
    if not is_bitmap(snap):
        return lambda value: contains_one(snap, value)
    slots = _slots(snap).tolist()
    item = snap.item

    def bitmap_one(value: Any) -> bool:
        nat = int(value) - NANP_BASE
        if not 0 <= nat < NANP_BASE:
            return False
        area, line = divmod(nat, PER_AREA)
        slot = slots[area]
        if slot < 0:
            return False
        bit = slot * PER_AREA + line
        return bool(item(HEADER_BYTES + (bit >> 3)) >> (bit & 7) & 1)

    return bitmap_one


def sorted_unique(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``np.unique`` by sorting (numpy 2.4's ``np.unique`` hashes, about 20x slower on
    millions of uint64 values)."""
    out = np.sort(values)
    if out.size > 1:
        keep = np.empty(out.size, dtype=bool)
        keep[0] = True
        np.not_equal(out[1:], out[:-1], out=keep[1:])
        out = out[keep]
    return out


def _sorted_union(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return sorted_unique(np.concatenate((a, b)))


def _sorted_setdiff(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if not b.size or not a.size:
        return a
    return a[~_searchsorted_contains(np.sort(b), a)]


__all__ = ["Seal", "SnapshotFile", "SnapshotIntegrityError", "apply_changes",
           "build_nanp_bitmap", "build_number_snapshot", "choose_layout", "contains_one",
           "is_bitmap", "nanp_areas", "open_file", "open_snapshot", "seal_of", "single_lookup",
           "snapshot_count", "snapshot_values", "sorted_contains", "structure_problem",
           "write_snapshot"]
