"""Scrub-job records: a Merkle root over every row's verdict, the retained results file, and
inclusion proofs for any row.

A row's verdict is its *row line*, the compact JSON ``[row, number_hmac, decision,
reason_codes, next_allowed_at]`` where ``row`` is the 1-based data row, ``number_hmac`` the
HMAC-SHA256 of its E.164 number (null when it had none), ``reason_codes`` the ``;``-joined codes
as written and ``next_allowed_at`` null when empty.

Records of format v2 (``merkle.leaf`` is ``"block-1024 v2"``) hash rows a block at a time:
block ``k`` (0-based) holds rows ``k*1024+1`` to ``(k+1)*1024`` (the last one fewer) and its leaf
is ``SHA-256(0x00 || the block's row lines, each followed by "\\n")``. A row's proof carries
its whole block (HMACs, never numbers) and the block's path to the root. Records of format v1
(one leaf per row line, ``merkle.leaf`` naming the row line) still prove and verify.

The results file is copied under ``<home>/audit/jobs/<job id>/`` with its summary. The copy is
hashed as it is written and the root is computed from the copy, so the record's SHA-256 and
root describe the same bytes, and a proof years later uses exactly the file that was hashed.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import queue
import re
import secrets
import shutil
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
from sqlalchemy import Connection

from ..engine.summary import ScrubSummary, summary_dict
from ..errors import AuditError
from ..io.verdict_file import (
    CSV_BLOCK_SIZES,
    csv_batches,
    csv_picked,
    excel_batches,
    is_excel,
    parquet_batches,
    verdict_cells,
)
from ..phones import mask
from . import _numbers as numbers_helper
from ._log import AuditLog, AuditRecord, safe_name
from ._merkle import (
    inclusion_path,
    leaf_hash,
    merkle_root,
    root_from_path,
    streaming_path,
)
from ._numbers import hmac_digests
from .export import enqueue_export

_logger = logging.getLogger("dncguard.audit")

#: Rows per Merkle leaf in the records :func:`record_job` writes.
BLOCK_ROWS = 1024
#: A row's line; v1 records name their leaf by it.
ROW_LINE = "[row, number_hmac, decision, reason_codes, next_allowed_at]"
_LEAF_KEYS = ("row", "number_hmac", "decision", "reason_codes", "next_allowed_at")
_BLOCK_FORMAT = re.compile(r"block-([1-9][0-9]*) v2")


def new_job_id(now: datetime | None = None) -> str:
    """A sortable, unique job id such as ``job-20261127T021600Z-3f9a2c1b``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"job-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def leaf_data(log: AuditLog, row: int, cells: list[str]) -> dict[str, Any]:
    e164, decision, codes, _detail, next_at = cells
    return {"row": row, "number_hmac": log.number_hmac(e164) if e164 else None,
            "decision": decision, "reason_codes": codes, "next_allowed_at": next_at or None}


def _leaf_bytes(data: dict[str, Any]) -> bytes:
    return _line_bytes([data["row"], data["number_hmac"], data["decision"],
                        data["reason_codes"], data["next_allowed_at"]])


def _line_bytes(values: list[Any]) -> bytes:
    return json.dumps(values, separators=(",", ":")).encode("utf-8")


def leaves(log: AuditLog, path: Path) -> list[bytes]:
    """The v1 leaf hashes of a results file: one per row line."""
    return [leaf_hash(_leaf_bytes(leaf_data(log, i, cells)))
            for i, cells in enumerate(verdict_cells(path), 1)]


# -- row lines, vectorised ------------------------------------------------------------------
#
# Recording a job reads the results file once, in a pipeline of three threads: a reader
# (pyarrow parses with the GIL released, and the bytes it reads are hashed and copied to the
# retained file on the way), the caller (the number HMACs, the one per-row Python loop) and a
# builder (row lines and block hashes, in pyarrow, numpy and hashlib, also without the GIL).


class NumberDigests:
    """The HMACs of a verdict file's numbers, computed by a helper process (see
    :mod:`._numbers`) while a scrub writes the file, so that recording the job neither
    computes them afterwards nor takes the GIL from the scrub meanwhile.

    :meth:`add` takes every written slice's ``e164`` column, in row order; a thread hands
    each to the helper and collects its answer. Recording the job (:func:`prepare_job`)
    still reads every number back from the retained copy and :meth:`take` gives a batch of
    rows their precomputed HMACs only when the numbers read are the numbers they were
    computed from; any other batch, and everything when the helper could not start or
    failed, is computed there as without this. The record is the same either way."""

    #: How the helper is started (standard library only: it starts in milliseconds).
    command: ClassVar[list[str]] = [sys.executable, "-I", "-S", numbers_helper.__file__]
    #: Numbers per request to the helper: small enough that recording the job, which reads
    #: the file back in batches of about this size, rarely waits for more than one.
    request_rows = 65_536
    #: Rows covered at most (about 50 bytes each are kept until the record is written: the
    #: number and its HMAC); the rows of a longer file after these are computed in process.
    max_rows = 5_000_000
    #: How long the helper has to start and greet before it is killed.
    greet_wait = 5.0
    #: How long :meth:`close` waits for the helper to finish before it is killed.
    exit_wait = 5.0
    #: How long :meth:`take` waits for the helper's next answer before it kills the helper
    #: (and computes the HMACs itself).
    answer_wait = 10.0

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._columns: list[Any] = []
        self._rows = 0  # added
        self._numbers: Any = None  # the added columns as one chunked array, once taken
        self._digests = bytearray()  # 32 bytes a row, in row order, as answered
        self._answered = threading.Condition()
        self._running = False
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._failure: BaseException | None = None
        self._warned = False
        self._abandoned = False

    def add(self, e164: Any) -> None:
        """Queue the HMACs of one slice's ``e164`` column (a pyarrow array), as far as
        :attr:`max_rows` allows."""
        import pyarrow as pa
        import pyarrow.compute as pc

        room = self.max_rows - self._rows
        if room <= 0:
            return
        try:
            if isinstance(e164, pa.DictionaryArray):
                e164 = e164.dictionary_decode()
            column = pc.fill_null(pc.cast(e164[:room], pa.string()), "")
        except Exception as exc:  # never the scrub's failure: the later rows go uncovered
            self.max_rows = self._rows
            _logger.warning("the number HMACs are computed in this process from row %d: "
                            "%s", self._rows + 1, type(exc).__name__)
            return
        self._columns.append(column)
        self._rows += len(column)
        if self._thread is None:
            self._running = True
            self._thread = threading.Thread(target=self._run, name="dncguard-audit-numbers",
                                            daemon=True)
            self._thread.start()
        for start in range(0, len(column), self.request_rows):
            self._queue.put(column.slice(start, self.request_rows))

    def take(self, first: int, read: Any) -> bytes | None:
        """The HMACs of rows ``first`` (0-based) onwards, once the helper has answered them,
        when ``read`` (their numbers, as read back) holds exactly the numbers they were
        computed from; else None. Called once everything is added."""
        import pyarrow as pa
        import pyarrow.compute as pc

        end = first + len(read)
        if end > self._rows:
            return None
        with self._answered:
            while len(self._digests) < 32 * end and self._running:
                before = len(self._digests)
                if not self._answered.wait(self.answer_wait) and len(self._digests) == before:
                    self._stalled()
            if len(self._digests) < 32 * end:
                self._warn()
                return None
            digests = bytes(self._digests[32 * first:32 * end])
        if self._numbers is None:
            self._numbers = pa.chunked_array(self._columns, pa.string())
        try:
            same = pc.equal(self._numbers.slice(first, len(read)), pc.cast(read, pa.string()))
        except pa.ArrowException:
            return None
        if same.null_count or not pc.all(same).as_py():
            return None
        return digests

    def uses_key(self, key: bytes) -> bool:
        """Whether these HMACs are made with ``key`` (a record takes none made otherwise)."""
        return hmac.compare_digest(self._key, key)

    def close(self, *, abandon: bool = False) -> None:
        """Let the helper finish what it was given and exit (killed after
        :attr:`exit_wait` seconds); ``abandon``: its work is not needed (a scrub failed):
        what is queued is dropped and the helper killed at once."""
        if self._thread is None:
            return
        if abandon:
            self._abandoned = True
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            self._kill()
        self._queue.put(None)
        self._thread.join(self.exit_wait)
        if self._thread.is_alive():
            self._kill()
            self._thread.join()

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _stalled(self) -> None:
        if self._failure is None:
            self._failure = TimeoutError(f"no answer in {self.answer_wait:g} s")
        self._kill()

    def _warn(self) -> None:
        if not self._warned:
            self._warned = True
            why = self._failure
            _logger.warning("the number HMACs are computed in this process: the helper "
                            "failed (%s)", "stopped" if why is None else
                            f"{type(why).__name__}: {why}" if str(why) else type(why).__name__)

    def _run(self) -> None:
        try:
            proc = self._proc = subprocess.Popen(
                self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL)
            assert proc.stdin is not None and proc.stdout is not None
            if self._abandoned:  # close(abandon=True) came first and saw no process
                self._kill()
            with proc.stdin, proc.stdout:
                # the key goes only to a program that greets as the helper does, in time
                timer = threading.Timer(self.greet_wait, self._kill)
                timer.start()
                try:
                    greeting = proc.stdout.read(len(numbers_helper.GREETING))
                finally:
                    timer.cancel()
                if greeting != numbers_helper.GREETING:
                    raise OSError("the program started is not the helper (no greeting)")
                proc.stdin.write(struct.pack("<I", len(self._key)) + self._key)
                while (column := self._queue.get()) is not None:
                    offsets, data = _string_buffers(column)
                    proc.stdin.write(struct.pack("<QQ", len(column), len(data)))
                    proc.stdin.write(offsets)
                    proc.stdin.write(data)
                    proc.stdin.flush()
                    want = 32 * len(column)
                    got = proc.stdout.read(want)
                    if len(got) != want:
                        raise OSError(f"it answered {len(got)} of {want} bytes")
                    with self._answered:
                        self._digests += got
                        self._answered.notify_all()
        except BaseException as exc:  # take() computes instead; the scrub goes on
            if self._failure is None:
                self._failure = exc
        finally:
            with self._answered:
                self._running = False
                self._answered.notify_all()
            self._reap()

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(self.exit_wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _string_buffers(column: Any) -> tuple[bytes, memoryview]:
    """A string array's offsets (from 0, native int32) and its characters' bytes."""
    _, offsets, data = column.buffers()
    at = np.frombuffer(offsets, dtype=np.int32)[column.offset:column.offset + len(column) + 1]
    start, end = int(at[0]), int(at[-1])
    chars = memoryview(data)[start:end] if data is not None else memoryview(b"")
    return (at - start).astype(np.int32).tobytes(), chars


class _HashingReader:
    """A binary file that hashes (and optionally copies) the bytes read from it."""

    def __init__(self, fh: BinaryIO, copy: BinaryIO | None) -> None:
        self._fh, self._copy = fh, copy
        self.sha256 = hashlib.sha256()
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.sha256.update(data)
        if self._copy is not None:
            self._copy.write(data)
        return data

    def drain(self) -> str:
        while self.read(4 << 20):
            pass
        return self.sha256.hexdigest()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def _json_cells(col: Any, before: str, after: str = "", *, empty_is_null: bool = False) -> Any:
    """Every cell as ``json.dumps`` writes it, between ``before`` and ``after``. json.dumps
    runs once per distinct value, so the text is exact whatever the cells hold."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(col)
    texts = [before + json.dumps(v or None if empty_is_null else v) + after
             for v in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(texts, pa.string()), encoded.indices)


def _row_lines(first: int, columns: list[Any], digests: bytes) -> Any:
    """The row lines, each followed by ``\\n``, of consecutive rows from row ``first``, with
    ``digests`` their numbers' HMACs (32 bytes a row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    e164, decision, codes, next_at = columns
    size = len(e164)
    # ',"<hex>"' for every row, written straight into the string array's buffer
    text = np.empty((size, 67), dtype=np.uint8)
    text[:, 0:2] = np.frombuffer(b',"', dtype=np.uint8)
    text[:, 66] = ord('"')
    text[:, 2:66] = np.frombuffer(binascii.hexlify(digests), dtype=np.uint8).reshape(size, 64)
    offsets = np.arange(0, 67 * size + 1, 67, dtype=np.int32)
    hmacs = pa.StringArray.from_buffers(size, pa.py_buffer(offsets), pa.py_buffer(text))
    no_number = pc.equal(e164, "")
    if pc.any(no_number).as_py():
        hmacs = pc.if_else(no_number, ",null", hmacs)
    rows = pc.cast(pa.array(np.arange(first, first + size, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(
        pc.binary_join_element_wise("[", rows, ""), hmacs, _json_cells(decision, ","),
        _json_cells(codes, ","), _json_cells(next_at, ",", "]\n", empty_is_null=True), "")


class _Blocks:
    """Block leaves, SHA-256(0x00 || the block's row lines), built as row lines arrive in
    order; the lines of the block of row ``keep_row`` are kept (for a proof)."""

    def __init__(self, size: int, keep_row: int | None = None) -> None:
        self.size, self.keep_row = size, keep_row
        self.keep = None if keep_row is None else (keep_row - 1) // size
        self.number: str | None = None  # the E.164 number of row keep_row
        self.leaves: list[bytes] = []
        self.kept = b""
        self.rows = 0
        self._hash = hashlib.sha256(b"\x00")
        self._filled = 0

    def add(self, lines: Any) -> None:
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[
            lines.offset:lines.offset + len(lines) + 1].tolist()
        data = memoryview(lines.buffers()[2] or b"")
        i = 0
        while i < len(lines):
            take = min(self.size - self._filled, len(lines) - i)
            piece = data[offsets[i]:offsets[i + take]]
            self._hash.update(piece)
            if len(self.leaves) == self.keep:
                self.kept += piece
            self._filled += take
            i += take
            if self._filled == self.size:
                self._close()
        self.rows += len(lines)

    def finish(self) -> list[bytes]:
        if self._filled:
            self._close()
        return self.leaves

    def _close(self) -> None:
        self.leaves.append(self._hash.digest())
        self._hash, self._filled = hashlib.sha256(b"\x00"), 0


def _in_background(items: Iterator[Any], depth: int = 4) -> Generator[Any, None, None]:
    """``items``, produced up to ``depth`` ahead by a daemon thread; its error is raised here."""
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((False, None))
        except BaseException as exc:  # handed to the consumer
            put((False, exc))

    worker = threading.Thread(target=run, name="dncguard-audit-read", daemon=True)
    worker.start()
    try:
        while True:
            more, item = ready.get()
            if more:
                yield item
            elif item is None:
                return
            else:
                raise item
    finally:
        stop.set()
        worker.join()  # it stops at its next batch, before the file it reads is closed


def _batches(path: Path) -> Iterator[list[Any]]:
    """The row-line columns of a results file, a batch at a time."""
    if path.suffix.lower() in (".parquet", ".pq"):
        yield from parquet_batches(path)
        return
    if is_excel(path):
        yield from excel_batches(path)
        return
    picked = csv_picked(path)
    if picked is not None:
        with path.open("rb") as fh:
            yield from csv_batches(fh, picked)


def _add_lines(blocks: _Blocks, first: int, columns: list[Any], digests: bytes) -> None:
    blocks.add(_row_lines(first, columns, digests))
    if blocks.keep_row is not None and first <= blocks.keep_row < first + len(columns[0]):
        blocks.number = columns[0][blocks.keep_row - first].as_py()


def _scan(log: AuditLog, path: Path, block: int, *, copy_to: Path | None = None,
          keep_row: int | None = None, numbers: NumberDigests | None = None
          ) -> tuple[str, _Blocks]:
    """Read a results file once: its SHA-256 (copying it to ``copy_to`` when given) and its
    block leaves (keeping the block of ``keep_row``). Unreadable files raise AuditError."""
    for size in CSV_BLOCK_SIZES:
        try:
            return _scan_once(log, path, block, copy_to=copy_to, keep_row=keep_row,
                              csv_block=size, numbers=numbers)
        except _TooLong:
            continue
    raise AuditError(f"{path}: a row is longer than {CSV_BLOCK_SIZES[-1]:,} bytes")


class _TooLong(Exception):
    """A CSV cell or row longer than the reader's block."""


def _scan_once(log: AuditLog, path: Path, block: int, *, copy_to: Path | None,
               keep_row: int | None, csv_block: int, numbers: NumberDigests | None = None
               ) -> tuple[str, _Blocks]:
    import pyarrow as pa
    import pyarrow.compute as pc

    blocks = _Blocks(block, keep_row)
    try:
        with ExitStack() as stack:
            tee: _HashingReader | None = None
            if path.suffix.lower() in (".parquet", ".pq") or is_excel(path):
                # Parquet is read from its footer, a workbook as a whole: copy it first,
                # then read the copy.
                digest = copy_sha256(path, copy_to)
                batches = (excel_batches if is_excel(path) else parquet_batches)(
                    copy_to or path)
            else:
                picked = csv_picked(path)
                fh = stack.enter_context(path.open("rb"))
                out = stack.enter_context(copy_to.open("wb")) if copy_to is not None else None
                tee = _HashingReader(fh, out)
                batches = (csv_batches(tee, picked, csv_block) if picked is not None
                           else iter(()))
            key = log.key
            rows = 0
            pending: deque[Future[None]] = deque()
            with ThreadPoolExecutor(1, thread_name_prefix="dncguard-audit-blocks") as builder, \
                    closing(_in_background(batches)) as stream:
                for columns in stream:
                    digests = numbers.take(rows, columns[0]) if numbers is not None else None
                    if digests is None:
                        digests = hmac_digests(key,
                                                pc.cast(columns[0], pa.binary()).to_pylist())
                    pending.append(builder.submit(_add_lines, blocks, rows + 1, columns,
                                                  digests))
                    rows += len(columns[0])
                    while pending and (len(pending) > 8 or pending[0].done()):
                        pending.popleft().result()
                while pending:
                    pending.popleft().result()
            if tee is not None:
                digest = tee.drain()
    except pa.ArrowException as exc:
        if "straddl" in str(exc):
            raise _TooLong from exc
        raise AuditError(f"{path}: the rows cannot be read as a verdict file ({exc})") from exc
    except OSError as exc:
        raise AuditError(f"cannot read {path}: {exc.strerror or exc}") from exc
    blocks.finish()
    return digest, blocks


def row_lines(log: AuditLog, path: Path) -> list[bytes]:
    """Every row's line (without its ``\\n``), as the block leaves hash it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[bytes] = []
    for columns in _batches(path):
        digests = hmac_digests(log.key, pc.cast(columns[0], pa.binary()).to_pylist())
        lines = _row_lines(len(out) + 1, columns, digests)
        out.extend(line.encode("utf-8")[:-1] for line in lines.to_pylist())
    return out


def block_leaves(log: AuditLog, path: Path, block: int = BLOCK_ROWS) -> list[bytes]:
    """The v2 leaf hashes of a results file: one per ``block`` rows."""
    return _scan(log, path, block)[1].leaves


# -- files ----------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def copy_sha256(source: Path, target: Path | None) -> str:
    """The SHA-256 of ``source``, copied to ``target`` (when given) in the same pass."""
    h = hashlib.sha256()
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    try:
        with source.open("rb") as fh, ExitStack() as stack:
            out = stack.enter_context(target.open("wb")) if target is not None else None
            while n := fh.readinto(buf):
                h.update(view[:n])
                if out is not None:
                    out.write(view[:n])
    except OSError as exc:
        what = f"copy {source} to {target}" if target is not None else f"read {source}"
        raise AuditError(f"cannot {what}: {exc.strerror or exc}") from exc
    return h.hexdigest()


def job_folder(log: AuditLog, job_id: str) -> Path:
    return Path(log.folder) / "jobs" / safe_name(job_id)


def summary_counts(summary: ScrubSummary) -> dict[str, Any]:
    """The summary as stored in a record: everything but the listed row errors."""
    data = summary_dict(summary)
    data.pop("rowErrors", None)
    return data


# -- recording ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRecord:
    """A scrub job's record, ready to append (:func:`prepare_job`, then :func:`write_job`)."""

    job_id: str
    who: str | None
    reason_codes: list[str]
    versions: dict[str, Any]
    data: dict[str, Any]


def prepare_job(log: AuditLog, job_id: str, output_path: Path, summary: ScrubSummary, *,
                who: str | None = None, numbers: NumberDigests | None = None,
                name: str | None = None) -> JobRecord:
    """The costly part of recording a job, outside any transaction: copy ``output_path`` and
    its summary under the home (hashing the copy), build the Merkle root from the copy.
    ``numbers``: the HMACs the scrub computed while writing the file (see
    :class:`NumberDigests`); ``name``: the file name recorded (default: ``output_path``'s;
    a scrub records its file before moving it into place under its own name). Raises
    :class:`AuditError` when the file cannot be read or the job is recorded already."""
    if log.find("job", job_id) is not None:
        raise AuditError(f"job {job_id!r} already has an audit record")
    if numbers is not None and not numbers.uses_key(log.key):
        numbers = None  # made with another key: none of them is this record's
    folder: Path | None = None
    target: Path | None = None
    if log.audit.retain_results:
        folder = job_folder(log, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"results{output_path.suffix.lower() or '.csv'}"
    try:
        digest, blocks = _scan(log, output_path, BLOCK_ROWS, copy_to=target, numbers=numbers)
        if folder is not None:
            (folder / "summary.json").write_text(summary.to_json(), encoding="utf-8")
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    retained = str(target.relative_to(log.settings.home)) if target else None
    data = {
        "job_id": job_id,
        "summary": summary_counts(summary),
        "merkle": {"root": merkle_root(blocks.leaves), "leaves": len(blocks.leaves),
                   "algorithm": "rfc6962-sha256", "leaf": f"block-{BLOCK_ROWS} v2",
                   "block_rows": BLOCK_ROWS, "row": ROW_LINE, "rows": blocks.rows},
        "results": {"file": name or output_path.name, "sha256": digest, "retained": retained,
                    "rows": blocks.rows},
    }
    return JobRecord(job_id, who, [k for k, v in summary.by_reason.items() if v],
                     {"lists": dict(summary.lists), "ruleset": summary.ruleset}, data)


def discard_job(log: AuditLog, record: JobRecord) -> None:
    """Remove the results copy :func:`prepare_job` retained for ``record`` when no record of
    its job was written (a server job cancelled while it finished, or failed after): nothing
    would refer to the copy, prove with it or prune it, and it holds the job's numbers. Kept
    when the job has a record (written by another runner, naming the same folder)."""
    if not record.data["results"].get("retained"):
        return
    if log.find("job", record.job_id) is not None:
        return
    shutil.rmtree(job_folder(log, record.job_id), ignore_errors=True)


def write_job(log: AuditLog, record: JobRecord, conn: Connection) -> AuditRecord:
    """Append a prepared job record in ``conn``'s transaction and enqueue its export in the
    same transaction. The export is enqueued whether or not ``export_url`` is set here: a job
    recorded by a process that lacks the setting (a shell without the service's environment)
    waits in the outbox until a process that has it delivers, instead of never being sent."""
    rec = log.append("job", "scrub", who=record.who, subject=record.job_id,
                     reason_codes=record.reason_codes, versions=record.versions,
                     data=record.data, conn=conn)
    enqueue_export(log, rec, conn)
    return rec


def record_job(
    log: AuditLog,
    job_id: str,
    output_path: Path,
    summary: ScrubSummary,
    *,
    who: str | None = None,
    conn: Connection | None = None,
    numbers: NumberDigests | None = None,
    name: str | None = None,
) -> AuditRecord:
    """Append the record of a finished scrub job and queue its summary export.

    Copies ``output_path`` (the verdict file :meth:`Scrubber.scrub_file` wrote) and its summary
    under the home, hashing it on the way, builds the Merkle root from the copy, then appends
    the record and enqueues the export in the same transaction.
    ``numbers`` and ``name``: as for :func:`prepare_job`.
    """
    record = prepare_job(log, job_id, output_path, summary, who=who, numbers=numbers,
                         name=name)
    try:
        if conn is not None:
            return write_job(log, record, conn)
        with log.engine.begin() as own:
            return write_job(log, record, own)
    except BaseException:
        if conn is None:  # nothing refers to the retained copy: the record was not written
            shutil.rmtree(job_folder(log, job_id), ignore_errors=True)
        raise


# -- proofs ---------------------------------------------------------------------------------


def _block_size(merkle: dict[str, Any]) -> int | None:
    """Rows per leaf of a record's tree; None for a v1 record (one leaf per row)."""
    fmt = merkle.get("leaf")
    if fmt is None or fmt == ROW_LINE:
        return None
    m = _BLOCK_FORMAT.fullmatch(str(fmt))
    if m is None:
        raise AuditError(f"unknown Merkle leaf format {fmt!r}; a newer dncguard wrote it")
    return int(m.group(1))


def prove(log: AuditLog, job_id: str, row: int) -> dict[str, Any]:
    """An inclusion proof that ``row`` (1-based) of a job's results is under its Merkle root.

    The proof names the audit record (sequence number and hash) holding the root; check it
    with :func:`verify_proof` (and :meth:`AuditLog.verify` for the record itself).
    """
    rec = log.find("job", job_id)
    if rec is None:
        raise AuditError(f"no audit record for job {job_id!r}")
    results = rec.data.get("results", {})
    retained = results.get("retained")
    if not retained:
        raise AuditError(f"job {job_id!r} kept no results file (retain_results was off)")
    path = log.settings.home / retained
    if not path.is_file():
        raise AuditError(f"the results file of job {job_id!r} is gone ({path})")
    if file_sha256(path) != results.get("sha256"):
        raise AuditError(f"the results file of job {job_id!r} was altered ({path})")
    merkle: dict[str, Any] = rec.data.get("merkle", {})
    block = _block_size(merkle)
    if block is None:
        proof = _prove_rows(log, job_id, row, path, int(merkle.get("leaves", 0)),
                            str(merkle.get("root")))
    else:
        proof = _prove_block(log, job_id, row, path, block, merkle)
    return {**proof, "root": merkle["root"], "record": {"seq": rec.seq, "hash": rec.hash}}


def _key_differs(job_id: str) -> AuditError:
    return AuditError(f"job {job_id!r}: the results file is intact but its rows no longer hash "
                      "to the recorded root; the audit HMAC key differs from the one used when "
                      "the job was recorded")


def _prove_rows(log: AuditLog, job_id: str, row: int, path: Path, n: int, root: str
                ) -> dict[str, Any]:
    """A v1 proof: the row's own leaf and its path."""
    if not 1 <= row <= n:
        raise AuditError(f"job {job_id!r} has rows 1 to {n}, not {row}")
    target: list[list[str]] = []

    def hashes() -> Iterator[bytes]:
        for i, cells in enumerate(verdict_cells(path), 1):
            if i == row:
                target.append(cells)
            yield leaf_hash(_leaf_bytes(leaf_data(log, i, cells)))

    try:
        steps, got = streaming_path(hashes(), row - 1, n)
    except ValueError as exc:  # the file has another number of rows than recorded
        raise AuditError(f"job {job_id!r}: {exc}") from exc
    if got != root:
        raise _key_differs(job_id)
    data = leaf_data(log, row, target[0])
    e164 = target[0][0]
    return {
        "job_id": job_id, "row": row, "leaf": data,
        "number_masked": mask(e164) if e164 else None,
        "leaf_hash": leaf_hash(_leaf_bytes(data)).hex(), "path": steps, "leaves": n,
    }


def _prove_block(log: AuditLog, job_id: str, row: int, path: Path, block: int,
                 merkle: dict[str, Any]) -> dict[str, Any]:
    """A v2 proof: the row's block (every row line in it) and the block leaf's path."""
    n = int(merkle.get("rows", 0))
    if not 1 <= row <= n:
        raise AuditError(f"job {job_id!r} has rows 1 to {n}, not {row}")
    _, blocks = _scan(log, path, block, keep_row=row)
    if blocks.rows != n:
        raise AuditError(f"job {job_id!r}: expected {n} rows, got {blocks.rows}")
    if merkle_root(blocks.leaves) != merkle["root"]:
        raise _key_differs(job_id)
    index = (row - 1) // block
    lines = [json.loads(line) for line in blocks.kept.decode("utf-8").split("\n")[:-1]]
    entry = lines[row - 1 - index * block]
    return {
        "job_id": job_id, "row": row, "leaf": dict(zip(_LEAF_KEYS, entry, strict=True)),
        "number_masked": mask(blocks.number) if blocks.number else None,
        "block": {"index": index, "size": block, "rows": lines},
        "leaf_hash": blocks.leaves[index].hex(), "path": inclusion_path(blocks.leaves, index),
        "leaves": len(blocks.leaves), "format": merkle["leaf"],
    }


def verify_proof(proof: dict[str, Any]) -> bool:
    """Whether a proof's row and path lead to its root.

    A v2 proof's row must be the entry of its block for that row number, the block's rows
    must be consecutive from the block's first row, and the block's row lines must hash to
    the leaf the path starts from. A malformed proof does not verify.
    """
    if "block" not in proof:  # v1: one leaf per row
        leaf = leaf_hash(_leaf_bytes(proof["leaf"]))
        if leaf.hex() != proof["leaf_hash"]:
            return False
        return bool(root_from_path(leaf, proof["path"]) == proof["root"])
    try:
        block, row, claimed = proof["block"], proof["row"], proof["leaf"]
        size, index, rows = block["size"], block["index"], block["rows"]
        first = index * size + 1
        if (not isinstance(rows, list) or not 0 < len(rows) <= size
                or [r[0] if isinstance(r, list) else None for r in rows]
                != list(range(first, first + len(rows)))
                or not first <= row < first + len(rows)
                or claimed.get("row") != row
                or rows[row - first] != [claimed[k] for k in _LEAF_KEYS]):
            return False
        leaf = leaf_hash(b"".join(_line_bytes(r) + b"\n" for r in rows))
        if leaf.hex() != proof["leaf_hash"]:
            return False
        return bool(root_from_path(leaf, proof["path"]) == proof["root"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
