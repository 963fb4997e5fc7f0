"""A Merkle tree over a job's row verdicts, with inclusion proofs (RFC 6962 hashing).

Leaves are ``SHA-256(0x00 || data)``, inner nodes ``SHA-256(0x01 || left || right)``; a level
with an odd number of nodes carries its last node up unchanged. The root of no leaves is
``SHA-256("")``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _up(level: Sequence[bytes]) -> list[bytes]:
    nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


def merkle_root(leaves: Sequence[bytes]) -> str:
    """The hex root over leaf hashes (as returned by :func:`leaf_hash`)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        level = _up(level)
    return level[0].hex()


class MerkleBuilder:
    """The same root as :func:`merkle_root`, computed as leaves stream in (O(log n) memory).

    Perfect subtrees are kept on a stack and merged when two of equal height meet; at the end
    the stack is folded from the right, which is RFC 6962's left-complete tree, the same
    tree the level-by-level construction with a carried-up odd node builds.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.count = 0

    def add(self, leaf: bytes) -> None:
        self.count += 1
        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            node = node_hash(left, node)
            height += 1
        self._stack.append((height, node))

    def root(self) -> str:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node.hex()


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[dict[str, str]]:
    """The sibling hashes from leaf ``index`` (0-based) up to the root.

    Each step is ``{"side": "left"|"right", "hash": hex}``: the side the sibling sits on.
    """
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    path: list[dict[str, str]] = []
    level = list(leaves)
    i = index
    while len(level) > 1:
        sibling = i ^ 1
        if sibling < len(level):
            path.append({"side": "left" if sibling < i else "right", "hash": level[sibling].hex()})
        level = _up(level)
        i //= 2
    return path


def _sibling_ranges(index: int, n: int) -> list[tuple[int, int, str]]:
    """RFC 6962 PATH(index, D[0:n]) as leaf ranges [start, end) with the side each sits on,
    bottom-up."""
    out: list[tuple[int, int, str]] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = 1
        while k * 2 < hi - lo:
            k *= 2
        if index < lo + k:
            out.append((lo + k, hi, "right"))
            hi = lo + k
        else:
            out.append((lo, lo + k, "left"))
            lo = lo + k
    return list(reversed(out))


def streaming_path(leaves: Iterable[bytes], index: int, n: int
                   ) -> tuple[list[dict[str, str]], str]:
    """The inclusion path of leaf ``index`` among ``n`` streamed leaves, and the root of all
    of them, in one pass with O(log n) memory (same result as :func:`inclusion_path`)."""
    if not 0 <= index < n:
        raise IndexError(index)
    ranges = _sibling_ranges(index, n)
    builders = [MerkleBuilder() for _ in ranges]
    everything = MerkleBuilder()
    # the ranges are disjoint and cover every leaf but ``index``: walk them in leaf order
    order = sorted(range(len(ranges)), key=lambda j: ranges[j][0])
    pos = 0
    for i, leaf in enumerate(leaves):
        everything.add(leaf)
        while pos < len(order) and ranges[order[pos]][1] <= i:
            pos += 1
        if pos < len(order) and ranges[order[pos]][0] <= i:
            builders[order[pos]].add(leaf)
    if everything.count != n:
        raise ValueError(f"expected {n} leaves, got {everything.count}")
    path = [{"side": side, "hash": b.root()}
            for (_, _, side), b in zip(ranges, builders, strict=True)]
    return path, everything.root()


def root_from_path(leaf: bytes, path: Sequence[dict[str, Any]]) -> str:
    """The root a leaf hash and its inclusion path lead to."""
    node = leaf
    for step in path:
        sibling = bytes.fromhex(str(step["hash"]))
        node = node_hash(sibling, node) if step["side"] == "left" else node_hash(node, sibling)
    return node.hex()
