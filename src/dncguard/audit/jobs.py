"""Scrub-job records: a Merkle root over every row's verdict, the retained results file, and
inclusion proofs for any row.

A row's leaf is the canonical JSON ``[row, number_hmac, decision, reason_codes,
next_allowed_at]`` where ``row`` is the 1-based data row, ``number_hmac`` the HMAC-SHA256 of its
E.164 number (null when it had none) and ``reason_codes`` the ``;``-joined codes as written.
The results file is copied under ``<home>/audit/jobs/<job id>/`` with its summary, and its
SHA-256 goes into the record, so a proof years later uses exactly the file that was hashed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from ..errors import DncGuardError
from ..phones import mask
from ..summary import ScrubSummary, summary_dict
from ..tableio import ADDED_COLUMNS
from .log import AuditLog, AuditRecord, safe_name
from .merkle import MerkleBuilder, leaf_hash, root_from_path, streaming_path

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class AuditError(DncGuardError):
    """An audit operation failed (unknown job, missing or altered results file)."""


def new_job_id(now: datetime | None = None) -> str:
    """A sortable, unique job id such as ``job-20261127T021600Z-3f9a2c1b``."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"job-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _undefuse(cell: str) -> str:
    if cell.startswith("'") and cell[1:2] and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


#: The verdict columns a leaf and a report use, in this order, found by their position among
#: the columns the pipeline adds at the end of every row.
VERDICT_COLUMNS = ("e164", "decision", "reason_codes", "detail", "next_allowed_at")
_PICK = [ADDED_COLUMNS.index(name) for name in VERDICT_COLUMNS]


def verdict_cells(path: Path) -> Iterator[list[str]]:
    """The :data:`VERDICT_COLUMNS` cells of every data row of a results file, in order."""
    for tail in _added_cells(path):
        yield [tail[i] for i in _PICK]


def _added_cells(path: Path) -> Iterator[list[str]]:
    n = len(ADDED_COLUMNS)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=65_536):
            cols = [batch.column(i).to_pylist() for i in range(batch.num_columns - n,
                                                                batch.num_columns)]
            for values in zip(*cols, strict=True):
                yield [str(v or "") for v in values]
        return
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return
        width = len(header)
        for cells in reader:
            # The writer emits every row with the header's width; be lenient anyway.
            tail = cells[width - n:width] if len(cells) >= width else cells[-n:]
            yield [_undefuse(c) for c in tail]


def leaf_data(log: AuditLog, row: int, cells: list[str]) -> dict[str, Any]:
    e164, decision, codes, _detail, next_at = cells
    return {"row": row, "number_hmac": log.number_hmac(e164) if e164 else None,
            "decision": decision, "reason_codes": codes, "next_allowed_at": next_at or None}


def _leaf_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps([data["row"], data["number_hmac"], data["decision"], data["reason_codes"],
                       data["next_allowed_at"]], separators=(",", ":")).encode("utf-8")


def leaves(log: AuditLog, path: Path) -> list[bytes]:
    return [leaf_hash(_leaf_bytes(leaf_data(log, i, cells)))
            for i, cells in enumerate(verdict_cells(path), 1)]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def job_folder(log: AuditLog, job_id: str) -> Path:
    return Path(log.folder) / "jobs" / safe_name(job_id)


def summary_counts(summary: ScrubSummary) -> dict[str, Any]:
    """The summary as stored in a record: everything but the listed row errors."""
    data = summary_dict(summary)
    data.pop("rowErrors", None)
    return data


def record_job(
    log: AuditLog,
    job_id: str,
    output_path: Path,
    summary: ScrubSummary,
    *,
    who: str | None = None,
    conn: Connection | None = None,
) -> AuditRecord:
    """Append the record of a finished scrub job and queue its summary export.

    Reads ``output_path`` (the verdict file :meth:`Scrubber.scrub_file` wrote) once to build
    the Merkle root, copies it and its summary under the home, then appends the record and
    (when ``export_url`` is set) enqueues the export in the same transaction.
    """
    if log.find("job", job_id) is not None:
        raise AuditError(f"job {job_id!r} already has an audit record")
    tree = MerkleBuilder()
    for i, cells in enumerate(verdict_cells(output_path), 1):
        tree.add(leaf_hash(_leaf_bytes(leaf_data(log, i, cells))))
    root = tree.root()
    digest = file_sha256(output_path)
    retained: str | None = None
    if log.audit.retain_results:
        folder = job_folder(log, job_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"results{output_path.suffix.lower() or '.csv'}"
        shutil.copyfile(output_path, target)
        if file_sha256(target) != digest:
            raise AuditError(f"the copy of {output_path} changed while it was retained")
        (folder / "summary.json").write_text(summary.to_json(), encoding="utf-8")
        retained = str(target.relative_to(log.settings.home))
    data = {
        "job_id": job_id,
        "summary": summary_counts(summary),
        "merkle": {"root": root, "leaves": tree.count, "algorithm": "rfc6962-sha256",
                   "leaf": "[row, number_hmac, decision, reason_codes, next_allowed_at]"},
        "results": {"file": output_path.name, "sha256": digest, "retained": retained,
                    "rows": tree.count},
    }
    suppressed = [k for k, v in summary.by_reason.items() if v]

    def write(c: Connection) -> AuditRecord:
        rec = log.append("job", "scrub", who=who, subject=job_id, reason_codes=suppressed,
                         versions={"lists": dict(summary.lists), "ruleset": summary.ruleset},
                         data=data, conn=c)
        if log.audit.export_url:
            from .export import enqueue_export

            enqueue_export(log, rec, c)
        return rec

    if conn is not None:
        return write(conn)
    with log.engine.begin() as own:
        return write(own)


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
    n = int(rec.data.get("merkle", {}).get("leaves", 0))
    if not 1 <= row <= n:
        raise AuditError(f"job {job_id!r} has rows 1 to {n}, not {row}")
    target: list[list[str]] = []

    def hashes() -> Iterator[bytes]:
        for i, cells in enumerate(verdict_cells(path), 1):
            if i == row:
                target.append(cells)
            yield leaf_hash(_leaf_bytes(leaf_data(log, i, cells)))

    try:
        steps, root = streaming_path(hashes(), row - 1, n)
    except ValueError as exc:  # the file has another number of rows than recorded
        raise AuditError(f"job {job_id!r}: {exc}") from exc
    if root != rec.data["merkle"]["root"]:
        raise AuditError(f"job {job_id!r}: the results file is intact but its rows no longer "
                         "hash to the recorded root; the audit HMAC key differs from the one "
                         "used when the job was recorded")
    data = leaf_data(log, row, target[0])
    e164 = target[0][0]
    return {
        "job_id": job_id, "row": row, "leaf": data,
        "number_masked": mask(e164) if e164 else None,
        "leaf_hash": leaf_hash(_leaf_bytes(data)).hex(), "path": steps,
        "root": rec.data["merkle"]["root"], "leaves": n,
        "record": {"seq": rec.seq, "hash": rec.hash},
    }


def verify_proof(proof: dict[str, Any]) -> bool:
    """Whether a proof's leaf and path lead to its root."""
    leaf = leaf_hash(_leaf_bytes(proof["leaf"]))
    if leaf.hex() != proof["leaf_hash"]:
        return False
    return bool(root_from_path(leaf, proof["path"]) == proof["root"])
