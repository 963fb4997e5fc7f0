"""HMAC-SHA256 of phone numbers with the audit key, in bulk, and a helper process for it.

A scrub of a million rows needs a million number HMACs for its job record (see
:mod:`._jobs`). They are a loop of Python calls that holds the GIL, and the scrub itself keeps
the GIL busy, so a thread of the same process only takes turns with it. :func:`serve` is
the loop of a helper process that computes them on the other core while the scrub runs
(:class:`~._jobs.NumberDigests` starts it: ``python -I -S <this file>``).

This module imports the standard library only, so that the helper starts in milliseconds.

The helper's protocol, on its standard input and output (integers little-endian):

* first the helper writes :data:`GREETING` (the key goes only to a program that does);
* then it reads the key: its length (4 bytes) and its bytes;
* then any number of requests: ``n`` (8 bytes), the length of the numbers' bytes (8 bytes),
  ``n + 1`` offsets (signed 32-bit, in this machine's byte order as the helper runs on the
  same machine; the first 0) and the numbers' bytes (UTF-8, back to back); each is answered
  with the ``n`` HMACs, 32 bytes each, in order.

It exits when its input ends.
"""

from __future__ import annotations

import hashlib
import importlib
import struct
import sys
from itertools import pairwise
from typing import Any, BinaryIO

#: What the helper writes first.
GREETING = b"dncguard number HMACs 1\n"


def _sha256_type() -> Any:
    """CPython's own SHA-256, whose ``copy()`` is much cheaper than OpenSSL's; else
    hashlib's (the digests are the same)."""
    for name in ("_sha2", "_sha256"):  # Python 3.12+, 3.11
        try:
            return importlib.import_module(name).sha256
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


_SHA256 = _sha256_type()
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_pads(key: bytes) -> tuple[Any, Any]:
    """The inner and outer SHA-256 states of HMAC-SHA256 with ``key`` (RFC 2104)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return _SHA256(key.translate(_IPAD)), _SHA256(key.translate(_OPAD))


def hmac_digests(key: bytes, values: Any) -> bytes:
    """HMAC-SHA256 (RFC 2104) of every value (bytes-like), concatenated: :func:`hmac.digest`
    of each, with the key's pads hashed once instead of per call (OpenSSL 3 sets up a
    one-shot HMAC slowly)."""
    inner_pad, outer_pad = hmac_pads(key)
    new_inner, new_outer = inner_pad.copy, outer_pad.copy
    out: list[bytes] = []
    append = out.append
    for value in values:
        inner = new_inner()
        inner.update(value)
        outer = new_outer()
        outer.update(inner.digest())
        append(outer.digest())
    return b"".join(out)


def _read(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def serve(source: BinaryIO, sink: BinaryIO) -> None:
    """Greet, then answer requests (see the module docstring) until ``source`` ends."""
    sink.write(GREETING)
    sink.flush()
    head = _read(source, 4)
    key = _read(source, struct.unpack("<I", head)[0]) if head is not None else None
    if key is None:
        return
    while (request := _read(source, 16)) is not None:
        n, size = struct.unpack("<QQ", request)
        offsets = _read(source, 4 * (n + 1))
        data = _read(source, size)
        if offsets is None or data is None:
            return
        at = memoryview(offsets).cast("i").tolist()
        # slices of bytes, not of a memoryview: those cost ten times as much to make
        sink.write(hmac_digests(key, [data[a:b] for a, b in pairwise(at)]))
        sink.flush()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
