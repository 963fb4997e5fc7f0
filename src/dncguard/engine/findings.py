"""Reasons held once per group of numbers that share them, and their merge into outcomes.

Most numbers of a batch share their reasons: every hit on one list gets the same reason, every
number of one area code and row context gets the same calling-time reasons. A
:class:`Findings` keeps each distinct set of reasons once and, per number, the index of its
set, so checks, the merge and the verdict file work on a few hundred groups and integer arrays
instead of a Python list per number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from ..models import Decision, Reason, merge_reasons

Index = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Outcome:
    """The merged result of every check for one number (or one group of numbers)."""

    decision: Decision
    reasons: tuple[Reason, ...]
    next_allowed_at: datetime | None


@dataclass(frozen=True)
class Findings:
    """Reasons per number: number ``i`` has ``sets[index[i]]``."""

    sets: list[tuple[Reason, ...]]
    index: Index

    def __len__(self) -> int:
        return int(self.index.size)

    @property
    def empty(self) -> bool:
        """No number has any reason."""
        return all(not s for s in self.sets)

    def per_number(self) -> list[list[Reason]]:
        """A list of reasons per number (the shape of
        :meth:`~dncguard.sources.protocol.Check.check`)."""
        return [list(self.sets[k]) for k in self.index.tolist()]

    @classmethod
    def none(cls, n: int) -> Findings:
        return cls([()], np.zeros(n, dtype=np.int64))

    @classmethod
    def uniform(cls, n: int, reasons: Sequence[Reason]) -> Findings:
        """Every number has the same reasons (a failed source, say)."""
        return cls([tuple(reasons)], np.zeros(n, dtype=np.int64))

    @classmethod
    def from_lists(cls, per: Sequence[Sequence[Reason]]) -> Findings:
        """Intern a list per number: equal lists of equal reasons share a set (a source that
        builds a new reason object per number still gives a few sets)."""
        sets: list[tuple[Reason, ...]] = [()]
        seen: dict[tuple[object, ...], int] = {(): 0}
        keys: dict[int, tuple[object, ...]] = {}  # by id: the reasons live as long as ``per``

        def key_of(r: Reason) -> tuple[object, ...]:
            k = keys.get(id(r))
            if k is None:
                k = keys[id(r)] = (r.code, r.decision, r.source, r.list, r.rule, r.citation,
                                   r.detail, r.next_allowed_at, tuple(r.overrides))
            return k

        index = np.empty(len(per), dtype=np.int64)
        for i, reasons in enumerate(per):
            key = tuple(key_of(r) for r in reasons)
            k = seen.get(key)
            if k is None:
                k = seen[key] = len(sets)
                sets.append(tuple(reasons))
            index[i] = k
        return cls(sets, index)

    @classmethod
    def from_masks(cls, masks: Sequence[npt.NDArray[np.bool_]],
                   reasons: Sequence[Reason], n: int) -> Findings:
        """Reason ``j`` for the numbers where ``masks[j]`` is set (lists that were hit), in
        the order of ``reasons``."""
        parts = []
        for start in range(0, len(masks), _BITS):
            group = masks[start:start + _BITS]
            bits = np.zeros(n, dtype=np.int64)
            for j, mask in enumerate(group):
                bits |= mask.astype(np.int64) << j
            hit = np.flatnonzero(bits)
            index = np.zeros(n, dtype=np.int64)
            sets: list[tuple[Reason, ...]] = [()]
            if hit.size:
                uniq, inverse = renumber(bits[hit], 1 << len(group))
                index[hit] = inverse + 1
                sets.extend(tuple(reasons[start + j] for j in range(len(group)) if u >> j & 1)
                            for u in uniq.tolist())
            parts.append(cls(sets, index))
        return combine(parts, n)


_BITS = 62  # masks folded into one int64 per number


def compact(ids: npt.NDArray[np.int64], bound: int
            ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``np.unique(ids, return_inverse=True)`` of ids in ``[0, bound)``, by a table instead
    of a sort: the distinct ids in order, and each one's position among them."""
    present = np.zeros(bound, dtype=bool)
    present[ids] = True
    used = np.flatnonzero(present)
    position = np.zeros(bound, dtype=np.int64)
    position[used] = np.arange(used.size)
    return used, position[ids]


#: :func:`renumber` uses a table (:func:`compact`) while the possible ids are at most this
#: many per id given (or a few thousand), else it sorts: a table costs 9 bytes per possible id.
_TABLE_PER_NUMBER = 8


def renumber(ids: npt.NDArray[np.int64], bound: int
             ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``np.unique(ids, return_inverse=True)`` of ids in ``[0, bound)`` (the inverse flat,
    as int64): by :func:`compact` when the bound is small beside the ids, else by a sort."""
    if bound <= max(_TABLE_PER_NUMBER * ids.size, 4096):
        return compact(ids, bound)
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq, inverse.reshape(-1).astype(np.int64, copy=False)


def combine(parts: Sequence[Findings], n: int) -> Findings:
    """One :class:`Findings` whose sets concatenate the parts' sets, in the parts' order."""
    parts = [p for p in parts if not p.empty]
    if not parts:
        return Findings.none(n)
    if len(parts) == 1:
        return parts[0]
    key = parts[0].index
    combos: list[tuple[int, ...]] = [(k,) for k in range(len(parts[0].sets))]
    for part in parts[1:]:
        width = len(part.sets)
        uniq, key = renumber(key * width + part.index, len(combos) * width)
        combos = [(*combos[int(u) // width], int(u) % width) for u in uniq.tolist()]
    sets = [tuple(r for p, k in zip(parts, combo, strict=True) for r in p.sets[k])
            for combo in combos]
    return Findings(sets, key)


def merge(parts: Sequence[Findings], n: int) -> tuple[list[Outcome], Index]:
    """Merge every check's findings: one :class:`Outcome` per distinct set, and the index of
    each number's outcome."""
    found = combine(parts, n)
    outcomes = []
    for reasons in found.sets:
        decision, nxt = merge_reasons(list(reasons))
        outcomes.append(Outcome(decision, reasons, nxt))
    return outcomes, found.index


__all__ = ["Findings", "Outcome", "combine", "compact", "merge", "renumber"]
