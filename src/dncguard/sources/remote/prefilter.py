"""The hash pre-filter of remote sources checked per number (http-batch, CXone live search).

A local, persistent record of the numbers a source *recently reported as on its lists*:

* keys are salted SHA-256 digests of ``namespace, list, E.164`` (the salt from the settings, or
  a random per-installation salt created once under the home with mode 0600); no raw number
  is stored, logged or written to disk;
* the structure is a time-bucketed Bloom filter: a few *generations*, each covering
  ``ttl / generations`` seconds (or fewer, when it reaches its share of the capacity). A key is
  inserted into the newest generation; a lookup consults every live generation; a generation
  expires ``ttl`` seconds after it was started, so no hit is ever older than the TTL. Bit
  positions come from the digest by double hashing, vectorised with numpy;
* each generation is sized for ``capacity / generations`` keys at a structural
  false-positive rate of ``target_fp_rate / generations``, so all live generations together
  stay within ``target_fp_rate`` while the live keys fit the capacity. Above the capacity the
  capacity doubles for new generations (logged); the structural rate stays within 2x of the
  target until the older, smaller generations expire;
* inserted keys are applied in memory at once and written to ``<home>/prefilter/<source>.npz``
  at most every ``flush_seconds``: under an exclusive ``fcntl`` lock, the file is re-read when
  another process replaced it, our pending keys are re-applied (a Bloom insert is idempotent),
  and the result is written to a temporary file and renamed over the old one;
* **misses and errors are never recorded**: only a source's positive answer is inserted, so a
  new opt-out always reaches the next check, and a miss always goes to the source;
* a sample of hits (``sample_rate``) is re-verified remotely. The share of re-verified hits the
  source no longer reports is the *false-positive rate*; over a window of ``min_sample``
  re-verifications it shortens the TTL (above ``fp_threshold``, logged at WARNING) or
  lengthens it (below a quarter of it, logged at INFO), within ``min_ttl_seconds`` ..
  ``max_ttl_seconds``. Generations older than a shortened TTL are dropped. A key found no
  longer listed is *vetoed* (a small exact set: a Bloom filter cannot delete) and goes to the
  source until the source reports it again.

A hit is a *block*, so a structural false positive blocks a number that is not listed (the safe
side) and is counted as a false positive when it is sampled; the default structural target
(1e-5) keeps that far below the default threshold. See ``docs/prefilter.md``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import json
import logging
import math
import os
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from ...config import SectionSettings, Settings
from ...engine.summary import COUNT_FIELDS
from ...engine.tally import report
from ...lists.snapshots import popcount

log = logging.getLogger("dncguard.prefilter")

WallClock = Callable[[], float]
Keys = npt.NDArray[np.uint64]  # shape (n, 2): two 64-bit words of each digest

FORMAT_VERSION = 1
#: The TTL is halved when the false-positive rate is over the threshold, and grows by half
#: when the rate is under ``LENGTHEN_BELOW`` times the threshold ("well below").
SHORTEN_FACTOR = 0.5
LENGTHEN_FACTOR = 1.5
LENGTHEN_BELOW = 0.25
#: Lookups are done this many keys at a time (bounds the temporary arrays).
LOOKUP_CHUNK = 262_144
#: A flush is forced once this many inserts are pending, whatever ``flush_seconds`` says.
MAX_PENDING = 100_000



class PrefilterSettings(SectionSettings):
    """The pre-filter (``DNCGUARD_PREFILTER_*``, ``[prefilter]``); see docs/prefilter.md."""

    model_config = SettingsConfigDict(env_prefix="DNCGUARD_PREFILTER_", extra="ignore")
    toml_table: ClassVar[str | None] = "prefilter"

    enabled: bool = Field(default=True, description="Use the pre-filter for per-number sources")
    ttl_seconds: float = Field(default=86_400.0, gt=0,
                               description="How long a positive answer is trusted (start value)")
    min_ttl_seconds: float = Field(default=3_600.0, gt=0, description="Lower bound of the TTL")
    max_ttl_seconds: float = Field(default=604_800.0, gt=0, description="Upper bound of the TTL")
    sample_rate: float = Field(default=0.02, ge=0, le=1,
                               description="Share of hits re-verified remotely")
    fp_threshold: float = Field(default=0.01, gt=0, lt=1,
                                description="Shorten the TTL when the false-positive rate of "
                                "re-verified hits is above this")
    min_sample: int = Field(default=200, ge=1,
                            description="Re-verified hits per window before the TTL is adjusted")
    target_fp_rate: float = Field(default=1e-5, gt=0, lt=0.5,
                                  description="Structural (Bloom) false-positive rate target")
    capacity: int = Field(default=1_000_000, ge=1,
                          description="Live keys the filter is sized for (grows when exceeded)")
    generations: int = Field(default=8, ge=1, le=64, description="Time buckets per TTL")
    salt: SecretStr | None = Field(default=None, description="Key salt (default: a random "
                                   "per-installation salt under <home>/prefilter/salt)")
    flush_seconds: float = Field(default=1.0, ge=0,
                                 description="Write new keys to disk at most this often")

    @model_validator(mode="after")
    def _bounds(self) -> PrefilterSettings:
        if not self.min_ttl_seconds <= self.ttl_seconds <= self.max_ttl_seconds:
            raise ValueError("ttl_seconds must lie within min_ttl_seconds .. max_ttl_seconds")
        return self


def load_prefilter(settings: Settings) -> PrefilterSettings:
    return settings.section(PrefilterSettings)


def prefilter_dir(settings: Settings) -> Path:
    return settings.home / "prefilter"


# -- keys ------------------------------------------------------------------------------------


def installation_salt(folder: Path) -> bytes:
    """The per-installation salt in ``folder/salt`` (created once, mode 0600)."""
    path = folder / "salt"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = folder / f".salt.{uuid.uuid4().hex[:8]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_hex(32).encode())
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


class KeyHasher:
    """Salted SHA-256 of ``namespace, list, E.164``; only two 64-bit words are kept."""

    def __init__(self, salt: bytes) -> None:
        self._base = hashlib.sha256(b"dncguard-prefilter-v1\x00" + salt + b"\x00")
        self.salt_id = hashlib.sha256(b"dncguard-prefilter-salt-id\x00" + salt).hexdigest()[:16]

    def keys(self, parts: Iterable[str]) -> Keys:
        base = self._base
        digests = []
        for part in parts:
            h = base.copy()
            h.update(part.encode())
            digests.append(h.digest()[:16])
        if not digests:
            return np.zeros((0, 2), dtype=np.uint64)
        return np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2).astype(np.uint64)


def key_part(namespace: str, list_id: str, e164: str) -> str:
    return f"{namespace}\x00{list_id}\x00{e164}"


# -- the filter ------------------------------------------------------------------------------


def bloom_size(capacity: int, fp_rate: float) -> tuple[int, int]:
    """Bits (a multiple of 64) and hash count of a Bloom filter for ``capacity`` keys."""
    n = max(1, capacity)
    m = math.ceil(-n * math.log(fp_rate) / math.log(2) ** 2)
    m = max(64, (m + 63) // 64 * 64)
    k = max(1, round(m / n * math.log(2)))
    return m, k


@dataclass
class Generation:
    """One time bucket: a Bloom filter of ``m`` bits and ``k`` hashes."""

    created: float
    updated: float
    m: int
    k: int
    cap: int
    count: int = 0  # keys inserted that were not already in this generation
    bits: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, dtype=np.uint8))
    _ones: int | None = None

    @classmethod
    def new(cls, created: float, cap: int, fp_rate: float) -> Generation:
        m, k = bloom_size(cap, fp_rate)
        return cls(created, created, m, k, cap, 0, np.zeros(m // 8, dtype=np.uint8))

    def meta(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "m": self.m, "k": self.k,
                "cap": self.cap, "count": self.count}

    def _positions(self, keys: Keys, i: int) -> npt.NDArray[np.uint64]:
        with np.errstate(over="ignore"):
            return (keys[:, 0] + np.uint64(i) * (keys[:, 1] | np.uint64(1))) % np.uint64(self.m)

    def contains(self, keys: Keys) -> npt.NDArray[np.bool_]:
        """Membership of every key (vectorised, stopping early for keys already out)."""
        alive = np.ones(len(keys), dtype=bool)
        rows = np.arange(len(keys))
        for i in range(self.k):
            if not len(rows):
                break
            pos = self._positions(keys[rows], i)
            bit = (self.bits[pos >> np.uint64(3)] >> (pos & np.uint64(7)).astype(np.uint8)) & 1
            keep = bit.astype(bool)
            alive[rows[~keep]] = False
            rows = rows[keep]
        return alive

    def add(self, keys: Keys, at: float) -> int:
        """Insert keys; returns how many were new to this generation."""
        if not len(keys):
            return 0
        new = int((~self.contains(keys)).sum())
        for i in range(self.k):
            pos = self._positions(keys, i)
            np.bitwise_or.at(self.bits, (pos >> np.uint64(3)).astype(np.intp),
                             np.left_shift(1, (pos & np.uint64(7)).astype(np.uint8)
                                           ).astype(np.uint8))
        self.count += new
        self.updated = max(self.updated, at)
        self._ones = None
        return new

    def ones(self) -> int:
        if self._ones is None:
            self._ones = popcount(self.bits.view(np.uint64))
        return self._ones

    def fill(self) -> float:
        return self.ones() / self.m

    def estimated_keys(self) -> float:
        ones = min(self.ones(), self.m - 1)
        return -self.m / self.k * math.log(1 - ones / self.m)


@dataclass
class _State:
    """What the file holds."""

    ttl: float
    configured_ttl: float
    capacity: int
    gens: list[Generation] = field(default_factory=list)
    window_reverified: int = 0
    window_fp: int = 0
    last_window_rate: float | None = None
    # keys a re-verification found no longer listed -> when: they miss until re-reported
    vetoes: dict[bytes, float] = field(default_factory=dict)


class PrefilterStore:
    """The persistent filter of one source (thread-safe; one instance per file and process).

    ``clock`` returns wall-clock seconds (epoch); tests inject a fake one.
    """

    def __init__(self, path: Path, pf: PrefilterSettings, salt: bytes, *, source: str,
                 clock: WallClock = time.time) -> None:
        self.path = path
        self.lock_path = path.with_suffix(".lock")
        self.pf = pf
        self.source = source
        self.clock = clock
        self.hasher = KeyHasher(salt)
        self._lock = threading.RLock()
        self._sig: tuple[int, int, int] | None = None
        self._state = self._empty()
        self._pending: list[tuple[Keys, float, bool]] = []  # (keys, at, veto?)
        self._pending_count = 0
        self._pending_reverified = 0
        self._pending_fp = 0
        self._last_flush = clock()
        self.last_used = time.monotonic()
        self.flushes = 0
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._lock:
            self._load_if_changed()

    # -- state --------------------------------------------------------------------------------
    def _empty(self) -> _State:
        return _State(ttl=self.pf.ttl_seconds, configured_ttl=self.pf.ttl_seconds,
                      capacity=self.pf.capacity)

    @property
    def ttl(self) -> float:
        return self._state.ttl

    @property
    def capacity(self) -> int:
        return self._state.capacity

    def live(self, now: float | None = None) -> list[Generation]:
        now = self.clock() if now is None else now
        return [g for g in self._state.gens if now < g.created + self._state.ttl]

    def entries(self) -> int:
        """Estimated keys in the live generations (from the bits set)."""
        with self._lock:
            return round(sum(g.estimated_keys() for g in self.live()))

    def structural_fp(self) -> float:
        """Estimated chance that a key never inserted hits some live generation."""
        with self._lock:
            miss = 1.0
            for g in self.live():
                miss *= 1 - g.fill() ** g.k
            return 1 - miss

    def window(self) -> tuple[int, int]:
        with self._lock:
            return (self._state.window_reverified + self._pending_reverified,
                    self._state.window_fp + self._pending_fp)

    # -- lookups and inserts ----------------------------------------------------------------------
    def lookup(self, keys: Keys) -> tuple[npt.NDArray[np.int64], list[Generation]]:
        """The live generations, and for each key the index of the newest one holding it
        (-1: a miss)."""
        with self._lock:
            self.last_used = time.monotonic()
            self._load_if_changed()
            gens = self.live()
            found = np.full(len(keys), -1, dtype=np.int64)
            order = sorted(range(len(gens)), key=lambda j: gens[j].created, reverse=True)
            for start in range(0, len(keys), LOOKUP_CHUNK):
                part = keys[start:start + LOOKUP_CHUNK]
                rows = np.arange(len(part))
                for j in order:
                    if not len(rows):
                        break
                    hit = gens[j].contains(part[rows])
                    found[start + rows[hit]] = j
                    rows = rows[~hit]
            vetoes = self._state.vetoes
            if vetoes:
                for row in np.flatnonzero(found >= 0):
                    if keys[row].tobytes() in vetoes:
                        found[row] = -1
            return found, gens

    def add(self, keys: Keys, at: float | None = None) -> None:
        """Record keys a source just reported as listed (applied now, written on flush)."""
        self._record(keys, at, veto=False)

    def veto(self, keys: Keys, at: float | None = None) -> None:
        """Keys a re-verification found no longer listed: they miss (go to the source) until
        the source reports them again. A Bloom filter cannot delete; this small exact set can.
        """
        self._record(keys, at, veto=True)

    def _record(self, keys: Keys, at: float | None, *, veto: bool) -> None:
        if not len(keys):
            return
        with self._lock:
            at = self.clock() if at is None else at
            if veto:
                self._apply_veto(keys, at)
            else:
                self._insert(keys, at)
            self._pending.append((keys, at, veto))
            self._pending_count += len(keys)

    def _apply_veto(self, keys: Keys, at: float) -> None:
        vetoes = self._state.vetoes
        for row in keys:
            k = row.tobytes()
            vetoes[k] = max(at, vetoes.get(k, at))

    def note(self, reverified: int, false_positives: int) -> None:
        with self._lock:
            self._pending_reverified += reverified
            self._pending_fp += false_positives

    def _sizing(self) -> tuple[int, float]:
        g = self.pf.generations
        return max(1, math.ceil(self._state.capacity / g)), self.pf.target_fp_rate / g

    def _insert(self, keys: Keys, at: float) -> None:
        vetoes = self._state.vetoes
        if vetoes:  # reported again: a veto from before this answer no longer applies
            for row in keys:
                k = row.tobytes()
                if k in vetoes and vetoes[k] <= at:
                    del vetoes[k]
        span = self._state.ttl / self.pf.generations
        rest = keys
        while len(rest):
            gen = None
            for g in sorted(self.live(at), key=lambda g: g.created, reverse=True):
                if g.created <= at:
                    if at < g.created + span and g.count < g.cap:
                        gen = g
                    break
            if gen is None:
                self._maybe_grow(at)
                cap, rate = self._sizing()
                gen = Generation.new(at, cap, rate)
                self._state.gens.append(gen)
                self._state.gens.sort(key=lambda g: g.created)
            room = gen.cap - gen.count
            gen.add(rest[:room], at)
            rest = rest[room:]

    def _maybe_grow(self, at: float) -> None:
        live = sum(g.count for g in self.live(at))
        if live >= self._state.capacity:
            old = self._state.capacity
            self._state.capacity = old * 2
            log.info("pre-filter %s: %d live keys reached the capacity %d; new generations "
                     "are sized for %d", self.source, live, old, self._state.capacity)

    # -- persistence --------------------------------------------------------------------------
    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _load_if_changed(self) -> bool:
        """Re-read the file when another writer replaced it; re-applies our pending keys."""
        sig = self._signature()
        if sig == self._sig:
            return False
        state = self._read() if sig is not None else None
        self._state = state or self._empty()
        self._sig = sig
        self._reconcile_settings()
        for keys, at, is_veto in sorted(self._pending, key=lambda p: p[1]):
            if is_veto:
                self._apply_veto(keys, at)
            else:
                self._insert(keys, at)
        return True

    def _read(self) -> _State | None:
        try:
            with np.load(self.path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                if meta.get("version") != FORMAT_VERSION or meta.get("salt_id") != \
                        self.hasher.salt_id:
                    log.info("pre-filter %s: the file was written with another salt or format; "
                             "starting empty", self.source)
                    return None
                gens = []
                for i, gm in enumerate(meta["generations"]):
                    bits = np.array(z[f"g{i}"], dtype=np.uint8)
                    if len(bits) * 8 != int(gm["m"]):
                        raise ValueError(f"generation {i} has the wrong size")
                    gens.append(Generation(float(gm["created"]), float(gm["updated"]),
                                           int(gm["m"]), int(gm["k"]), int(gm["cap"]),
                                           int(gm["count"]), bits))
                w = meta.get("window", {})
                vetoes = {bytes.fromhex(k): float(t) for k, t in meta.get("vetoes", [])}
                return _State(ttl=float(meta["ttl"]), configured_ttl=float(meta["configured_ttl"]),
                              capacity=int(meta["capacity"]), gens=gens,
                              window_reverified=int(w.get("reverified", 0)),
                              window_fp=int(w.get("false_positives", 0)),
                              last_window_rate=meta.get("last_window_rate"), vetoes=vetoes)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # unreadable: start empty (a miss only means asking the source)
            log.warning("pre-filter %s: %s could not be read (%s); starting empty", self.source,
                        self.path.name, type(exc).__name__)
            return None

    def _reconcile_settings(self) -> None:
        s = self._state
        if s.configured_ttl != self.pf.ttl_seconds:
            log.info("pre-filter %s: configured TTL changed %gs -> %gs", self.source,
                     s.configured_ttl, self.pf.ttl_seconds)
            s.ttl = s.configured_ttl = self.pf.ttl_seconds
            s.window_reverified = s.window_fp = 0
        s.ttl = min(max(s.ttl, self.pf.min_ttl_seconds), self.pf.max_ttl_seconds)
        s.capacity = max(s.capacity, self.pf.capacity)

    def _write(self) -> None:
        s = self._state
        now = self.clock()
        s.gens = [g for g in s.gens if now < g.created + s.ttl]
        # a vetoed key was inserted before its veto, so its generation is gone within a TTL
        s.vetoes = {k: t for k, t in s.vetoes.items() if now < t + s.ttl}
        meta = {"version": FORMAT_VERSION, "source": self.source,
                "salt_id": self.hasher.salt_id, "ttl": s.ttl,
                "configured_ttl": s.configured_ttl, "capacity": s.capacity,
                "window": {"reverified": s.window_reverified, "false_positives": s.window_fp},
                "last_window_rate": s.last_window_rate, "written_at": now,
                "vetoes": [[k.hex(), t] for k, t in s.vetoes.items()],
                "generations": [g.meta() for g in s.gens]}
        arrays: dict[str, Any] = {f"g{i}": g.bits for i, g in enumerate(s.gens)}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getbuffer())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self._sig = self._signature()

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # Windows: last writer wins; a lost key only costs a remote call
            yield
            return
        with open(self.lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def flush(self) -> None:
        """Merge pending keys and counts into the file (read-modify-write under the lock)."""
        with self._lock, self._file_lock():
            self._load_if_changed()
            s = self._state
            s.window_reverified += self._pending_reverified
            s.window_fp += self._pending_fp
            self._pending_reverified = self._pending_fp = 0
            self._adjust_ttl()
            self._write()
            self._pending.clear()
            self._pending_count = 0
            self._last_flush = self.clock()
            self.flushes += 1

    def maybe_flush(self) -> None:
        """Write pending keys when due. A write that fails (disk full, read-only home) is
        logged and retried later: a broken cache only costs remote calls, never a verdict."""
        with self._lock:
            due = (self._pending_count or self._pending_reverified) and (
                self._pending_count >= MAX_PENDING
                or self.clock() - self._last_flush >= self.pf.flush_seconds)
        if due:
            try:
                self.flush()
            except OSError as exc:
                with self._lock:
                    self._last_flush = self.clock()  # not again before flush_seconds
                log.warning("pre-filter %s could not be saved (%s); kept in memory",
                            self.source, type(exc).__name__)

    @property
    def dirty(self) -> bool:
        return bool(self._pending_count or self._pending_reverified)

    def _adjust_ttl(self) -> None:
        s, pf = self._state, self.pf
        if s.window_reverified < pf.min_sample:
            return
        rate = s.window_fp / s.window_reverified
        old = s.ttl
        if rate > pf.fp_threshold:
            s.ttl = max(pf.min_ttl_seconds, old * SHORTEN_FACTOR)
        elif rate < pf.fp_threshold * LENGTHEN_BELOW:
            s.ttl = min(pf.max_ttl_seconds, old * LENGTHEN_FACTOR)
        if s.ttl < old:
            dropped = sum(1 for g in s.gens if self.clock() >= g.created + s.ttl)
            log.warning("pre-filter %s: false-positive rate %.4f (%d of %d re-verified hits) is "
                        "over the threshold %.4f: TTL shortened %gs -> %gs (%d generations "
                        "dropped)", self.source, rate, s.window_fp, s.window_reverified,
                        pf.fp_threshold, old, s.ttl, dropped)
        elif s.ttl > old:
            log.info("pre-filter %s: false-positive rate %.4f (%d of %d re-verified hits) is well "
                     "below the threshold %.4f: TTL lengthened %gs -> %gs", self.source, rate,
                     s.window_fp, s.window_reverified, pf.fp_threshold, old, s.ttl)
        s.last_window_rate = rate
        s.window_reverified = s.window_fp = 0


_STORES: dict[tuple[str, str, str], PrefilterStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(settings: Settings, source: str, pf: PrefilterSettings | None = None, *,
               clock: WallClock | None = None) -> PrefilterStore:
    """The store of ``source`` under the home (shared within the process unless ``clock``
    is given)."""
    pf = pf or load_prefilter(settings)
    folder = prefilter_dir(settings)
    salt = pf.salt.get_secret_value().encode() if pf.salt else installation_salt(folder)
    path = folder / f"{source}.npz"
    if clock is not None:
        return PrefilterStore(path, pf, salt, source=source, clock=clock)
    key = (str(path.resolve()), hashlib.sha256(salt).hexdigest(), pf.model_dump_json())
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = PrefilterStore(path, pf, salt, source=source)
        return store


def stores() -> list[PrefilterStore]:
    """The stores opened by this process (for metrics)."""
    with _STORES_LOCK:
        return list(_STORES.values())


@atexit.register
def _flush_all() -> None:
    for store in stores():
        if store.dirty:
            with contextlib.suppress(Exception):
                store.flush()


# -- the gate a check uses --------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """A pre-filter hit: the lists the number was recently reported on, and since when."""

    lists: list[str]
    recorded: datetime
    expires: datetime

    def describe(self) -> str:
        return (f"from the local pre-filter: reported within the TTL, entry from "
                f"{self.recorded:%Y-%m-%d %H:%M}Z, expires {self.expires:%Y-%m-%d %H:%M}Z")


@dataclass
class Plan:
    """Which numbers of a batch (by index) are answered locally and which go to the source."""

    lists: list[str]
    local: dict[int, Hit] = field(default_factory=dict)  # suppressed without a remote call
    sampled: dict[int, Hit] = field(default_factory=dict)  # hits re-verified remotely
    remote: list[int] = field(default_factory=list)  # misses and sampled hits, in order
    size: int = 0
    numbers: dict[int, str] = field(default_factory=dict)  # E.164 of the remote indices


#: Process-wide counts by (source, field): what ``/metrics`` reports (see :func:`totals`).
PREFILTER_TOTALS: Counter[tuple[str, str]] = Counter()
_TOTALS_LOCK = threading.Lock()


def totals() -> dict[tuple[str, str], int]:
    """A snapshot of :data:`PREFILTER_TOTALS`."""
    with _TOTALS_LOCK:
        return dict(PREFILTER_TOTALS)


class Prefilter:
    """The pre-filter as one check uses it: plan a batch, then settle the source's answers.

    ``per_call`` is how many numbers one remote call carries (1 for a live search, the chunk
    size for http-batch): it turns numbers answered locally into remote calls saved.
    """

    def __init__(self, source: str, store: PrefilterStore, *, namespace: str, per_call: int = 1,
                 rng: random.Random | None = None) -> None:
        self.source = source
        self.store = store
        self.pf = store.pf
        self.namespace = namespace
        self.per_call = max(1, per_call)
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    @classmethod
    def open(cls, settings: Settings, source: str, *, namespace: str, per_call: int = 1,
             pf: PrefilterSettings | None = None, clock: WallClock | None = None,
             rng: random.Random | None = None) -> Prefilter | None:
        """The pre-filter of ``source`` under the home, or None when it is disabled."""
        pf = pf or load_prefilter(settings)
        if not pf.enabled:
            return None
        try:
            store = open_store(settings, source, pf, clock=clock)
        except OSError as exc:  # an unwritable home: the source is asked for every number
            log.warning("pre-filter %s unavailable (%s): every number goes to the source",
                        source, type(exc).__name__)
            return None
        return cls(source, store, namespace=namespace, per_call=per_call, rng=rng)

    def plan(self, e164: Sequence[str], lists: Sequence[str],
             among: Sequence[int] | None = None) -> Plan:
        """Look up numbers (all, or the indices ``among``) against ``lists``."""
        lists = [str(x) for x in dict.fromkeys(lists)]
        todo = list(range(len(e164))) if among is None else list(among)
        plan = Plan(lists=lists, size=len(todo))
        if not lists:
            plan.remote = todo
            plan.numbers = {i: e164[i] for i in todo}
            return plan
        keys = self.store.hasher.keys(key_part(self.namespace, lst, e164[i])
                                      for i in todo for lst in lists)
        store = self.store
        with store._lock:
            found, gens = store.lookup(keys)
            found = found.reshape(len(todo), len(lists))
            ttl = store.ttl
            for row, i in enumerate(todo):
                where = found[row]
                if (where < 0).all():
                    plan.remote.append(i)
                    plan.numbers[i] = e164[i]
                    continue
                newest = max((gens[j] for j in where if j >= 0), key=lambda g: g.created)
                hit = Hit([lst for lst, j in zip(lists, where, strict=True) if j >= 0],
                          datetime.fromtimestamp(newest.created, UTC),
                          datetime.fromtimestamp(newest.created + ttl, UTC))
                if self.pf.sample_rate and self.rng.random() < self.pf.sample_rate:
                    plan.sampled[i] = hit
                    plan.remote.append(i)
                    plan.numbers[i] = e164[i]
                else:
                    plan.local[i] = hit
        return plan

    def settle(self, plan: Plan, answers: Mapping[int, Iterable[str] | None],
               cacheable: Mapping[int, Iterable[str]] | None = None) -> dict[int, Hit]:
        """Record the source's answers for ``plan.remote``: index -> the lists it reported the
        number on (empty: not listed), or None / absent for an error.

        Positive answers are inserted (on the plan's lists only; of those, only the lists in
        ``cacheable`` when given, e.g. records without an expiry date); misses and errors
        never are. A sampled hit re-verified by an answer that names a list the plan did not
        ask about is not understood: the re-verification failed, it is neither re-verified
        nor a false positive and vetoes nothing (a source that says "listed, on another
        list" has not said that the number left the lists asked). Returns the sampled hits
        whose re-verification failed: the caller keeps their hit.
        """
        wanted = set(plan.lists)
        keys: list[str] = []
        vetoes: list[str] = []
        reverified = fps = 0
        failed: dict[int, Hit] = {}
        for i in plan.remote:
            answer = answers.get(i)
            hit = plan.sampled.get(i)
            if answer is None:
                if hit is not None:
                    failed[i] = hit
                continue
            named = list(dict.fromkeys(str(a) for a in answer))
            listed = [x for x in named if x in wanted]
            if hit is not None and len(listed) < len(named):  # not understood: no answer
                failed[i] = hit
                hit = None
            if hit is not None:
                reverified += 1
                gone = [lst for lst in hit.lists if lst not in listed]
                if gone:
                    fps += 1
                    vetoes.extend(key_part(self.namespace, lst, plan.numbers[i]) for lst in gone)
            if cacheable is not None:
                kept = set(cacheable.get(i, ()))
                listed = [x for x in listed if x in kept]
            keys.extend(key_part(self.namespace, lst, plan.numbers[i]) for lst in listed)
        if vetoes:
            self.store.veto(self.store.hasher.keys(vetoes))
        if keys:
            self.store.add(self.store.hasher.keys(keys))
        self.store.note(reverified, fps)
        calls = math.ceil(plan.size / self.per_call) - math.ceil(len(plan.remote) / self.per_call)
        counts = {"checked": plan.size, "hits": len(plan.local) + len(plan.sampled),
                  "localSuppressions": len(plan.local), "remoteCallsSaved": calls,
                  "reverified": reverified, "falsePositives": fps}
        with self._lock:
            self.counts.update(counts)
        with _TOTALS_LOCK:
            PREFILTER_TOTALS.update({(self.source, k): v for k, v in counts.items()})
        report(self, counts)
        self.store.maybe_flush()
        return failed

    def stats_of(self, counts: Mapping[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {k: int(counts.get(k, 0)) for k in COUNT_FIELDS}
        out["falsePositiveRate"] = (round(out["falsePositives"] / out["reverified"], 6)
                                    if out["reverified"] else None)
        out["ttlSeconds"] = self.store.ttl
        out["entries"] = self.store.entries()
        out["structuralFpEstimate"] = float(f"{self.store.structural_fp():.3g}")
        return out

    def stats(self) -> dict[str, Any]:
        """Counts since this pre-filter was opened, the current TTL and live entries."""
        with self._lock:
            counts = Counter(self.counts)
        return self.stats_of(counts)
