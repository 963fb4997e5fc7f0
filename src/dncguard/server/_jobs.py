"""Background scrub jobs that survive restarts and can be cancelled.

A job's input is stored under ``<home>/jobs/<id>/``. A runner (one thread per replica) claims a
queued job, or one whose runner went silent, with a lease in the database. It processes the
input ``chunk_size`` rows at a time; each chunk's verdicts go to ``chunks/<k>.csv`` (written to
a temporary name, then renamed) and only then is ``chunks_done = k + 1`` committed, in one
conditional update that also checks the job is still ours and not cancelled. A runner that dies
between the two steps rewrites the same chunk file on resume, so no row is lost or written
twice. When every chunk is committed the chunk files are concatenated into ``results.csv``.

On PostgreSQL the job's files live in the database too (:mod:`dncguard.sharedfiles`), so
replicas need not share a home: the upload is stored with the job's row, each chunk's files in
the transaction that commits the chunk, ``results.csv`` and ``summary.json`` in the one that
marks the job done (the chunks' copies go then). The files under the home are a cache: a
replica that takes a job over, or is asked for its results, fetches what it lacks (every chunk
checked against its SHA-256). With SQLite the home holds them, as before.

Each chunk's rows, its rows by decision and the SHA-256 of its two files are recorded in the
transaction that commits it (``server_job_chunks``). The results are assembled only from chunks
that still match their record (and whose summary is there and counts the same rows), and a job
is ``done`` only when its results' rows, ``rows_done`` and its summary's ``totalRows`` agree.
Otherwise it is ``failed`` with a reason naming the chunk, and rewound to it: a resume scrubs
that chunk and those after it again.

A job's error is shown to API clients: it names the upload, not its path on this server, and
the API's parameters, not the CLI's flags (:func:`public_error`).

Each claim is counted (``server_job_attempts``): a job left ``running`` by a runner that
stopped (a kill -9, an exception that escaped it) is claimed again once its lease runs out, and
a job claimed more than ``max_attempts`` times since it last committed a chunk is ``failed``
with a reason naming the attempts instead of being run again, its committed chunks kept for a
resume. A cancelled job's upload and verdict rows go (its chunks' summaries stay): at once when
no runner holds it, else when its runner stops; each runner also sweeps its home for what a
cancelled job left there and for upload folders no job was made for (:meth:`JobStore.sweep`).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, update
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from .. import audit, sharedfiles
from ..config import Settings
from ..engine.run import ScrubRun, SliceVerdicts
from ..engine.summary import ScrubSummary, SummaryBuilder, merge_stats, place_key
from ..engine.tally import tally
from ..errors import ConfigError, InputError, SourceError
from ..io.tables import find_phone_column
from ..io.verdict_file import defuse, output_header, refuse_stale_verdict, write_csv_rows
from ..lists.integrity import sha256_of
from ..objectstore import object_store
from ..store import as_utc, utcnow
from ._checker import CheckerProvider
from ._metrics import DecisionCounter, Metrics
from ._text import _CONTROL, not_text
from .tables import server_job_attempts_table, server_job_chunks_table, server_jobs_table

log = logging.getLogger("dncguard.jobs")

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled")
#: What a cancel (``DELETE /v1/jobs/{id}``) ends: a failed job too, whose upload would
#: otherwise be kept for a resume that never comes.
CANCELLABLE = (*ACTIVE, "failed")
#: The claims of a job since it last committed a chunk after which it is failed, not run again.
MAX_ATTEMPTS = 5
#: A job's folder under ``<home>/jobs``: the job's id (:meth:`JobStore.new_id`).
_JOB_ID = re.compile(r"[0-9a-f]{32}")
#: A folder no job was made for (an upload whose request died with its process) is removed
#: once nothing in it has changed for this long: an upload still being received or stored is
#: written to, or stored with its job, well within it.
ORPHAN_AGE = timedelta(hours=1)


@dataclass
class JobInfo:
    id: str
    state: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    created_by: str | None
    input_name: str | None
    input_format: str
    params: dict[str, Any]
    chunk_size: int
    chunks_done: int
    rows_done: int
    counts: dict[str, int]
    error: str | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "state": self.state, "createdAt": self.created_at,
            "updatedAt": self.updated_at, "finishedAt": self.finished_at,
            "input": self.input_name, "format": self.input_format,
            "rowsDone": self.rows_done, "chunksDone": self.chunks_done,
            "chunkSize": self.chunk_size, "counts": self.counts, "error": self.error,
            "params": self.params,
        }


def _info(row: Any) -> JobInfo:
    return JobInfo(
        id=row.id, state=row.state, created_at=as_utc(row.created_at) or utcnow(),
        updated_at=as_utc(row.updated_at) or utcnow(), finished_at=as_utc(row.finished_at),
        created_by=row.created_by, input_name=row.input_name, input_format=row.input_format,
        params=dict(row.params or {}), chunk_size=row.chunk_size, chunks_done=row.chunks_done,
        rows_done=row.rows_done, counts=dict(row.counts or {}), error=row.error)


def _matches(path: Path, stored: sharedfiles.SharedFile) -> bool:
    """Whether the file at ``path`` is the stored one (length, then SHA-256)."""
    try:
        if path.stat().st_size != stored.size:
            return False
        with path.open("rb") as fh:
            return sha256_of(fh) == stored.sha256
    except OSError:
        return False


def _scan_chunk(path: Path) -> tuple[int, str]:
    """A chunk file's rows (CSV records: line ends outside quoted cells, however long a cell
    is) and its SHA-256, in one read."""
    digest = hashlib.sha256()
    rows = 0
    quoted = False
    last = b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            for i, part in enumerate(block.split(b'"')):
                if i:  # each quote opens or closes a quoted run ("" inside one: both)
                    quoted = not quoted
                if not quoted:
                    rows += part.count(b"\n")
            last = block[-1:]
    if last != b"\n":  # a last record without its line end
        rows += 1
    return rows, digest.hexdigest()


def _file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_of(fh)


def _chunk_name(job: JobInfo, k: int) -> str:
    """How a reason names chunk ``k`` (0-based, as ``chunksDone`` counts them)."""
    return f"chunk {k} (from row {k * job.chunk_size + 1:,})"


#: CLI flags named by the shared readers' messages, and what an API client sets instead.
_API_NAMES = (
    ("name the one to check with --phone-column (repeat it to check several)",
     "name the one to check with the phone_column parameter"),
    ("--phone-column", "the phone_column parameter"),
    # a column named like the purpose or call type (refused at upload, and by a job whose
    # upload was made by a replica of an earlier version)
    ("the scrub's --purpose and --call-type", "the job's purpose and call_type parameters"),
    ("giving it as --purpose / --call-type (purpose= / call_type=)",
     "giving it as the job's purpose and call_type parameters"),
)


def public_error(message: str, *, upload: Path, folder: Path, home: Path) -> str:
    """``message`` as an API client reads it: the upload's path becomes "the uploaded file",
    another file of the job (``folder``) its name in the job's folder, another path under an
    absolute ``home`` ``<home>/...``; the CLI's flags become the API's parameters. The shared
    readers keep their own text for the CLI."""
    out = message.replace(str(upload), "the uploaded file")
    out = out.replace(str(folder) + os.sep, "").replace(str(folder), "the job's folder")
    if home.is_absolute() and home.parent != home:  # a relative one could match any word
        out = out.replace(str(home) + os.sep, "<home>/")
    return api_words(out)


def api_words(message: str) -> str:
    """A message of the engine's as an API client reads it: the command line's flags become
    the API's parameters."""
    for flag, param in _API_NAMES:
        message = message.replace(flag, param)
    return message


def storable(text: str) -> str:
    """``text`` as a job's error is stored: each control character but tab and line breaks
    (PostgreSQL cannot store a NUL at all) written as ``\\x00``, each character UTF-8 cannot
    encode (a lone surrogate) as ``\\ud800``. A reason quoting what an upload holds (a column
    name with a NUL) is stored and read back, instead of the job never being marked failed."""
    out = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    if not_text(out) is not None:
        out = out.encode("utf-8", "backslashreplace").decode("utf-8")
    return out


@dataclass(frozen=True)
class ChunkRecord:
    """What a committed chunk holds, recorded when it commits (``server_job_chunks``)."""

    rows: int
    counts: dict[str, int]
    sha256: str  # of chunks/<k>.csv
    summary_sha256: str  # of chunks/<k>.json


class JobIntegrityError(Exception):
    """A job's chunks or results fail their checks: the job is failed with this reason, not
    done. ``recompute``: the first chunk a resume scrubs again (None: the chunks are sound, a
    resume assembles the results again)."""

    def __init__(self, message: str, recompute: int | None = None) -> None:
        super().__init__(message)
        self.recompute = recompute


def _last_change(folder: Path) -> datetime:
    """When ``folder`` or anything in it last changed (UTC)."""
    newest = 0.0
    for path in [folder, *folder.rglob("*")]:
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:  # removed meanwhile
            continue
    return datetime.fromtimestamp(newest, UTC)


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        write(fh)
        fh.flush()  # a writer of bytes (fh.buffer) flushes its own
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class JobStore:
    """Job rows and files."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.root = settings.home / "jobs"
        #: The job's files are kept in the database (PostgreSQL), the home is a cache.
        self.shared = sharedfiles.enabled(engine)
        if settings.object_store_url and not self.shared:
            raise ConfigError("object_store_url is for replicas that share a PostgreSQL "
                              "database; a SQLite home keeps its job files in its own folder")
        #: where the job files' bytes go (None: in the database)
        self.objects = object_store(settings.object_store_url) if self.shared else None

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def input_path(self, job: JobInfo) -> Path:
        return self.folder(job.id) / f"input.{job.input_format}"

    def results_path(self, job_id: str) -> Path:
        """The results file; with shared files, fetched into the home first when the job is
        done and this home lacks it."""
        return self.local(self.folder(job_id) / "results.csv")

    def summary_path(self, job_id: str) -> Path:
        return self.local(self.folder(job_id) / "summary.json")

    def results_file(self, job: JobInfo) -> Path:
        """The results file of a done job, as its audit record describes it. Raises
        JobIntegrityError when it is missing or differs from the recorded one (SHA-256; with
        shared files, the database's copy is fetched first when this home's differs, and must
        be the recorded one): a damaged file is never served as the job's verdicts. A job
        without an audit record (pruned) is checked for the file only."""
        path = self.results_path(job.id)
        if not path.is_file():
            raise JobIntegrityError("its results file is missing")
        found = audit.audit_log(self.settings).find("job", job.id)
        recorded = (found.data.get("results") or {}).get("sha256") if found else None
        if recorded is None:
            return path
        stored = sharedfiles.info(self.engine, self.shared_name(path)) if self.shared else None
        if stored is not None:  # results_path made the local file the stored one
            sha256 = stored.sha256
        else:
            try:
                sha256 = _file_sha256(path)
            except OSError as exc:
                raise JobIntegrityError(f"its results file cannot be read "
                                        f"({type(exc).__name__})") from exc
        if sha256 != recorded:
            raise JobIntegrityError("its results file differs from the one its audit record "
                                    "describes (SHA-256)")
        return path

    # -- shared files (PostgreSQL) ------------------------------------------------------------
    def shared_name(self, path: Path) -> str:
        """The shared storage name of a file under the jobs folder: ``jobs/<id>/<file>``."""
        return "jobs/" + path.relative_to(self.root).as_posix()

    def local(self, path: Path) -> Path:
        """``path`` as the database holds it (shared files only): a local copy that differs
        from the database's (a chunk this replica wrote but another committed, a damaged
        cache) or is missing is fetched again. A file the database does not hold is this
        home's own. Raises SourceError when a chunk is missing or fails its checksum."""
        if not self.shared:
            return path
        name = self.shared_name(path)
        stored = sharedfiles.info(self.engine, name)
        if stored is None or _matches(path, stored):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.fetch")
        sharedfiles.fetch(self.engine, name, tmp, self.objects)
        os.replace(tmp, path)
        return path

    def publish(self, conn: Connection, *paths: Path) -> None:
        """Store these files of a job in the database inside ``conn``'s transaction."""
        if self.shared:
            for path in paths:
                sharedfiles.put(conn, self.shared_name(path), path, self.objects)

    def chunk_path(self, job_id: str, k: int, suffix: str = "csv") -> Path:
        return self.folder(job_id) / "chunks" / f"{k:07d}.{suffix}"

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def create(self, job_id: str, *, input_name: str | None, input_format: str,
               params: dict[str, Any], who: str | None) -> JobInfo:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(insert(server_jobs_table).values(
                id=job_id, state="queued", created_at=now, updated_at=now, created_by=who,
                input_name=input_name, input_format=input_format, params=params,
                chunk_size=self.settings.chunk_size, chunks_done=0, rows_done=0, counts={}))
            # the upload and its job commit together: any replica can run it
            self.publish(conn, self.folder(job_id) / f"input.{input_format}")
            # the job as made, read before the commit: a runner (of any replica) may claim
            # it the moment it commits, and the answer says what was made, not a later state
            row = conn.execute(select(server_jobs_table).where(
                server_jobs_table.c.id == job_id)).one()
        return _info(row)

    def get(self, job_id: str) -> JobInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(server_jobs_table).where(
                server_jobs_table.c.id == job_id)).first()
        if row is None:
            raise LookupError(job_id)
        return _info(row)

    def find(self, *, owner: str | None = None, before: str | None = None,
             state: str | None = None, limit: int = 50) -> list[JobInfo]:
        """Jobs newest first: those made by the key ``owner`` (None: every job), made before
        the job ``before``, in ``state``."""
        t = server_jobs_table
        q = select(t)
        if owner is not None:
            q = q.where(t.c.params["owner"].as_string() == owner)
        if state is not None:
            q = q.where(t.c.state == state)
        with self.engine.connect() as conn:
            if before is not None:
                ref = conn.execute(select(t.c.created_at, t.c.id).where(t.c.id == before)).first()
                if ref is not None:
                    q = q.where(or_(t.c.created_at < ref.created_at,
                                    and_(t.c.created_at == ref.created_at, t.c.id < ref.id)))
            rows = conn.execute(q.order_by(t.c.created_at.desc(), t.c.id.desc())
                                .limit(limit)).all()
        return [_info(r) for r in rows]

    def cancel(self, job_id: str) -> JobInfo:
        """Cancel a queued, running or failed job. Its upload and verdict rows go (the chunks'
        summaries stay, for its partial summary): the database's copies in the transaction
        that cancels it, this home's at once unless a runner holds the job (that runner
        removes its own when it stops, at its next chunk; :meth:`sweep` whatever is left)."""
        now = utcnow()
        t = server_jobs_table
        with self.engine.begin() as conn:
            before = conn.execute(select(t.c.state, t.c.lease_until).where(
                t.c.id == job_id)).first()
            got = conn.execute(update(t).where(t.c.id == job_id, t.c.state.in_(CANCELLABLE))
                               .values(state="cancelled", updated_at=now, finished_at=now,
                                       lease_owner=None, lease_until=None)).rowcount
            if got and self.shared:
                self._forget_rows(conn, job_id)
        if got:
            lease = as_utc(before.lease_until) if before is not None else None
            held = before is not None and before.state == "running" and (
                lease is not None and lease > now)
            if not held:
                self.discard_rows(job_id)
            if self.shared:
                try:  # the bytes of the files forgotten; a later job collects them if not
                    sharedfiles.collect_garbage(self.engine, self.objects)
                except (SQLAlchemyError, SourceError) as exc:
                    log.warning("job %s: its cancelled files not collected: %s", job_id,
                                type(exc).__name__)
        return self.get(job_id)

    def _forget_rows(self, conn: Connection, job_id: str) -> None:
        """Forget the database's copies of the job's files that hold rows (all but the
        ``.json`` summaries), in ``conn``'s transaction."""
        f = sharedfiles.shared_files_table
        prefix = self.shared_name(self.folder(job_id)) + "/"
        names = [n for n in conn.execute(select(f.c.name).where(
            f.c.name.startswith(prefix, autoescape=True))).scalars() if not n.endswith(".json")]
        if names:
            sharedfiles.remove(conn, names)

    def discard_rows(self, job_id: str) -> int:
        """Remove this home's files of the job that hold rows (its upload, verdict rows,
        results, temporary files), keeping its summaries (``.json``); returns how many went."""
        folder = self.folder(job_id)
        gone = 0
        for path in sorted(folder.rglob("*"), reverse=True) if folder.is_dir() else []:
            if path.is_dir() or (path.suffix == ".json" and not path.name.startswith(".")):
                continue
            try:
                path.unlink()
                gone += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("job %s: %s not removed: %s", job_id, path.name,
                            type(exc).__name__)
        return gone

    def sweep(self, now: datetime | None = None) -> int:
        """Remove from this home what no job needs, and return how many folders it touched:
        the files holding rows of cancelled jobs (:meth:`discard_rows`; a runner, or a replica
        that served the job, may have kept a copy), and the folders no job was made for whose
        files have not changed for :data:`ORPHAN_AGE` (an upload whose process died before
        the job was made, or before the request's own clean-up)."""
        if not self.root.is_dir():
            return 0
        now = now or utcnow()
        folders = {p.name: p for p in self.root.iterdir()
                   if _JOB_ID.fullmatch(p.name) and p.is_dir()}
        names = sorted(folders)
        states: dict[str, str] = {}
        t = server_jobs_table
        with self.engine.connect() as conn:
            for start in range(0, len(names), 500):
                for row in conn.execute(select(t.c.id, t.c.state).where(
                        t.c.id.in_(names[start:start + 500]))):
                    states[row.id] = row.state
        touched = 0
        for name, folder in folders.items():
            state = states.get(name)
            if state == "cancelled":
                touched += self.discard_rows(name) > 0
            elif state is None and _last_change(folder) < now - ORPHAN_AGE:
                # made again in between? then it is a job's: kept
                if self._exists(name):
                    continue
                shutil.rmtree(folder, ignore_errors=True)
                log.info("removed the folder of an upload no job was made for (%s)", name)
                touched += 1
        return touched

    def _exists(self, job_id: str) -> bool:
        t = server_jobs_table
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.id).where(t.c.id == job_id)).first() is not None

    def resume(self, job_id: str) -> JobInfo:
        """Queue a failed job again: it resumes at its first uncommitted chunk (a job whose
        audit record failed only writes its results and record again; one whose chunks failed
        their checks was rewound to the first damaged one, which it scrubs again)."""
        t = server_jobs_table
        with self.engine.begin() as conn:
            conn.execute(update(t).where(t.c.id == job_id, t.c.state == "failed")
                         .values(state="queued", error=None, finished_at=None,
                                 updated_at=utcnow(), lease_owner=None, lease_until=None))
        return self.get(job_id)

    def summary(self, job: JobInfo) -> dict[str, Any]:
        """The final summary, or the committed chunks' so far (``complete`` says which)."""
        if job.state == "done":  # its own summary or none: the chunks' may be gone or stale
            try:
                data: dict[str, Any] = json.loads(self.summary_path(job.id).read_text("utf-8"))
            except FileNotFoundError:
                raise JobIntegrityError("the job is done but its summary file is missing on "
                                        "the server (an operator must restore it)") from None
            except (OSError, ValueError) as exc:
                raise JobIntegrityError(f"the job is done but its summary file cannot be read "
                                        f"({type(exc).__name__})") from exc
            data["complete"] = True
            return data
        try:
            parts = self.chunk_summaries(job)
        except JobIntegrityError:
            now = self.get(job.id)  # finished meanwhile (its chunks' copies went then)
            if now.state == "done" and job.state != "done":
                return self.summary(now)
            raise
        merged = merge_summaries(parts, job)
        out = merged.model_dump(by_alias=True, mode="json")
        out["complete"] = False
        return out

    def chunk_summaries(self, job: JobInfo, upto: int | None = None) -> list[dict[str, Any]]:
        """The summaries of the job's first ``upto`` chunks (default: its committed ones), in
        order. A summary that is missing or unreadable raises JobIntegrityError naming its
        chunk: the counts would silently fall short of the rows."""
        out = []
        for k in range(job.chunks_done if upto is None else upto):
            path = self.local(self.chunk_path(job.id, k, "json"))
            try:
                out.append(json.loads(path.read_text("utf-8")))
            except FileNotFoundError:
                raise JobIntegrityError(f"{_chunk_name(job, k)}: its summary file is missing",
                                        k) from None
            except (OSError, ValueError) as exc:
                raise JobIntegrityError(f"{_chunk_name(job, k)}: its summary file cannot be "
                                        f"read ({type(exc).__name__})", k) from exc
        return out

    def chunk_records(self, job_id: str) -> dict[int, ChunkRecord]:
        """The job's committed chunks' records, by chunk (none for a chunk committed before
        they were recorded)."""
        c = server_job_chunks_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(c).where(c.c.job_id == job_id)).all()
        return {r.chunk: ChunkRecord(r.rows, dict(r.counts or {}), r.sha256, r.summary_sha256)
                for r in rows}


#: The decisions ``uniqueSuppressed`` counts (a verdict file's ``decision`` cell).
_SUPPRESSED = frozenset({"block", "defer", "error"})

#: A chunk's version of a list it was checked without (see :func:`merge_summaries`).
_NOT_USED = "\x00not used"


def merge_summaries(parts: list[dict[str, Any]], job: JobInfo) -> ScrubSummary:
    """One summary from the per-chunk summaries."""
    p = job.params
    s = ScrubSummary(input=job.input_name, campaign=p.get("campaign", "default"),
                     dial_time=datetime.fromisoformat(p["at"]), started_at=job.created_at,
                     finished_at=job.finished_at)
    builder = SummaryBuilder(s)
    # each chunk is checked with the data current when it ran: every version a list (or the
    # ruleset) had is kept, in order, with the rows that used it, and the rows checked while
    # it was not there (imported, removed or selected while the job ran) are named too
    summaries = [ScrubSummary.model_validate(
        {**part, "dial_time": s.dial_time, "started_at": s.started_at}) for part in parts]
    used = [{**summary.lists, **({"ruleset": summary.ruleset} if summary.ruleset else {})}
            for summary in summaries]
    seen: dict[str, list[tuple[str | None, int, int]]] = {
        name: [] for names in used for name in names}
    first = 1
    for summary, versions_of in zip(summaries, used, strict=True):
        builder.add_summary(summary)
        last = first + summary.total_rows - 1
        for name, spans in seen.items():
            version = versions_of.get(name, _NOT_USED)
            if spans and spans[-1][0] == version:
                spans[-1] = (version, spans[-1][1], last)
            else:
                spans.append((version, first, last))
        first = last + 1
    for name, spans in seen.items():
        versions = list(dict.fromkeys(v for v, _, _ in spans if v != _NOT_USED))
        value = versions[0] if len(versions) == 1 else ", ".join(str(v) for v in versions)
        if name == "ruleset":
            s.ruleset = value
        else:
            s.lists[name] = value
        spans = [sp for sp in spans if sp[1] <= sp[2]]  # chunks of no rows used nothing
        if len(spans) > 1:
            what = "the ruleset" if name == "ruleset" else name
            s.warnings.append(f"{what} changed while the job ran: " + "; ".join(
                f"rows {lo:,}-{hi:,} " + ("were checked without it" if v == _NOT_USED else
                                         f"used {v or 'an undated version'}")
                for v, lo, hi in spans))
    elapsed = (job.finished_at - job.created_at).total_seconds() if job.finished_at else 0.0
    builder.finish(job.finished_at, elapsed)
    s.prefilter = merge_stats(part.get("prefilter") or {} for part in parts)
    return s


class JobAuditError(Exception):
    """The job's audit record could not be prepared: the job fails with this reason."""


class _Stop(Exception):
    """The job was cancelled, or another runner took it over."""


class JobRunner:
    """The per-replica background runner (a daemon thread with its own event loop)."""

    def __init__(self, settings: Settings, engine: Engine, provider: CheckerProvider,
                 counter: DecisionCounter, metrics: Metrics, *, poll: float, lease: float,
                 chunk_delay: float = 0.0, ready: Callable[[], bool] | None = None,
                 max_attempts: int = MAX_ATTEMPTS, sweep_every: float = 600.0) -> None:
        self.settings = settings
        self.engine = engine
        self.store = JobStore(settings, engine)
        self.provider = provider
        self.counter = counter
        self.metrics = metrics
        self.poll = poll
        self.lease = lease
        self.chunk_delay = chunk_delay
        #: A job claimed more often than this since it last committed a chunk is failed.
        self.max_attempts = max_attempts
        #: Seconds between two sweeps of this home's jobs folder (:meth:`JobStore.sweep`).
        self.sweep_every = sweep_every
        self._next_sweep = 0.0
        #: jobs paused because the database went away, whose attempt is to be given back
        self._paused: set[str] = set()
        #: No job is claimed until this says so (a replica that has not fetched the lists'
        #: snapshots yet would answer error for them).
        self.ready = ready
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: str | None = None
        #: Called (with the job id) between the last results commit and the transaction that
        #: marks the job done with its audit record: tests crash the runner here.
        self.before_final: Callable[[str], None] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dncguard-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sweep()
            if self.ready is not None and not self.ready():
                self._wake.wait(self.poll)
                self._wake.clear()
                continue
            if not self.run_one():
                self._wake.wait(self.poll)
                self._wake.clear()

    def _sweep(self) -> None:
        """Sweep this home's jobs folder, at most every :attr:`sweep_every` seconds."""
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + self.sweep_every
        try:
            self.store.sweep()
        except (OSError, SQLAlchemyError) as exc:
            log.warning("jobs folder not swept: %s", type(exc).__name__)

    def run_one(self) -> bool:
        """Claim one job and run it; False when there was none to claim."""
        self._give_back_paused()
        try:
            job = self._claim()
        except SQLAlchemyError as exc:
            log.warning("job queue unavailable: %s", type(exc).__name__)
            job = None
        if job is None:
            return False
        try:
            self._run(job)
        except _Stop:
            log.info("job %s stopped (cancelled or taken over)", job.id)
        except SQLAlchemyError as exc:
            # the database went away mid-job: nothing uncommitted counts; the job resumes
            # from its last committed chunk once the lease runs out and the database is back
            log.warning("job %s paused, database unavailable: %s", job.id,
                        type(exc).__name__)
            # a pause is not a crash: its attempt is given back once the database answers
            self._paused.add(job.id)
            self._stop.wait(self.poll)
        except JobIntegrityError as exc:  # not done: failed, rewound to the chunk to redo
            log.error("job %s failed its checks: %s", job.id, exc)
            self._fail(job.id, self._public(job, str(exc)), recompute=exc.recompute)
        except InputError as exc:  # the upload, read further on (an unclosed quote): refused
            log.warning("job %s failed: its upload is refused: %s", job.id, exc)
            self._fail(job.id, self._public(job, str(exc)))
        except Exception as exc:  # the job fails, the runner goes on
            if self._cancelled(job.id):  # its files went under it: nothing failed
                log.info("job %s stopped (cancelled: %s)", job.id, type(exc).__name__)
            else:
                log.exception("job %s failed", job.id)
                self._fail(job.id, self._public(job, f"{type(exc).__name__}: "
                                                     f"{str(exc)[:300]}"))
        finally:
            self._current = None
        if self._cancelled(job.id):  # cancelled while it ran: what it wrote here goes
            self.store.discard_rows(job.id)
        return True

    def _cancelled(self, job_id: str) -> bool:
        """Whether the job is cancelled (False when the database cannot say)."""
        t = server_jobs_table
        try:
            with self.engine.connect() as conn:
                return conn.execute(select(t.c.state).where(
                    t.c.id == job_id)).scalar() == "cancelled"
        except SQLAlchemyError:
            return False

    def _claim(self) -> JobInfo | None:
        """Lease the oldest job that is queued, or running with its lease run out, counting
        the claim (:meth:`_count_attempt`). A job claimed more than :attr:`max_attempts`
        times since it last committed a chunk is failed instead, in the same transaction, and
        the next one is tried."""
        t = server_jobs_table
        now = utcnow()
        free = or_(t.c.lease_until.is_(None), t.c.lease_until < now)
        with self.engine.connect() as conn:
            found = conn.execute(select(t.c.id, t.c.state, t.c.chunks_done, t.c.rows_done)
                                 .where(t.c.state.in_(ACTIVE), free)
                                 .order_by(t.c.created_at).limit(5)).all()
        for job in found:
            with self.engine.begin() as conn:
                # as read: the attempts are counted against this state and progress
                got = conn.execute(update(t).where(
                    t.c.id == job.id, t.c.state == job.state,
                    t.c.chunks_done == job.chunks_done, free).values(
                    state="running", lease_owner=self.owner,
                    lease_until=now + timedelta(seconds=self.lease), updated_at=now)).rowcount
                if not got:
                    continue
                attempts = self._count_attempt(conn, job, now)
                if attempts > self.max_attempts:
                    self._give_up(conn, job, attempts - 1, now)
                    continue
            self._current = job.id
            return self.store.get(job.id)
        return None

    def _count_attempt(self, conn: Connection, job: Any, now: datetime) -> int:
        """Count this claim of ``job`` (its row as read before the claim) and return its
        attempts since it last made progress: 1 when it was queued (new, or resumed) or has
        committed a chunk since the attempts were last counted, else one more than then (its
        last runner stopped before finishing). Not recorded beyond :attr:`max_attempts`."""
        a = server_job_attempts_table
        prev = conn.execute(select(a.c.attempts, a.c.chunks_done).where(
            a.c.job_id == job.id)).first()
        attempts = 1
        if prev is not None and job.state != "queued" and prev.chunks_done == job.chunks_done:
            attempts = int(prev.attempts) + 1
        if attempts > self.max_attempts:
            return attempts
        values = {"attempts": attempts, "chunks_done": job.chunks_done, "claimed_at": now}
        if prev is None:
            conn.execute(insert(a).values(job_id=job.id, **values))
        else:
            conn.execute(update(a).where(a.c.job_id == job.id).values(**values))
        return attempts

    def _give_up(self, conn: Connection, job: Any, attempts: int, now: datetime) -> None:
        """Fail ``job``, just claimed, in ``conn``'s transaction: it was started ``attempts``
        times since it last committed a chunk and its runner stopped each time. Its
        committed chunks are kept: a resume goes on from them."""
        rows = int(job.rows_done)
        why = (f"the job was started {attempts} times since it last made progress and each "
               "run stopped before it finished (its process was killed or crashed, or hit an "
               f"error it could not record), so it is not started again; the "
               f"{job.chunks_done:,} chunks committed ({rows:,} rows) are kept: once the "
               f"cause is found (the server's log) resume the job to go on from row "
               f"{rows + 1:,}")
        t = server_jobs_table
        conn.execute(update(t).where(t.c.id == job.id, t.c.lease_owner == self.owner).values(
            state="failed", error=why, updated_at=now, finished_at=now, lease_owner=None,
            lease_until=None))
        log.error("job %s failed: started %d times without progress (%d chunks committed)",
                  job.id, attempts, job.chunks_done)

    def _public(self, job: JobInfo, message: str) -> str:
        """A job's error as its API client reads it (see :func:`public_error`)."""
        return public_error(message, upload=self.store.input_path(job),
                            folder=self.store.folder(job.id), home=self.settings.home)

    def _fail(self, job_id: str, why: str, *, recompute: int | None = None) -> None:
        """Mark the job failed with ``why`` (as :func:`storable` writes it). ``recompute``:
        rewind it, in the same transaction, to that chunk (its committed rows and counts those
        of the chunks before it), so that a resume scrubs it and every chunk after it again.

        When the database refuses the reason itself (a DataError or IntegrityError: it would
        refuse it again each time the job is claimed, and the job would run forever), the job
        fails with a generic reason and the log keeps the real one. When it is unavailable,
        the job stays ``running`` and is resumed once its lease runs out."""
        try:
            self._record_failure(job_id, why, recompute)
        except (DataError, IntegrityError) as exc:
            log.error("job %s: the database refused its failure reason (%s): %r", job_id,
                      type(exc.orig).__name__, why[:1000])
            try:
                self._record_failure(job_id, (
                    "the job failed, and the database refused to store the reason "
                    f"({type(exc.orig).__name__}); the server's log gives it"), recompute)
            except SQLAlchemyError:
                log.warning("job %s: could not record the failure; it will be resumed", job_id)
        except SQLAlchemyError:
            log.warning("job %s: could not record the failure; it will be resumed", job_id)

    def _record_failure(self, job_id: str, why: str, recompute: int | None) -> None:
        t, c = server_jobs_table, server_job_chunks_table
        now = utcnow()
        values: dict[str, Any] = {"state": "failed", "error": storable(why), "updated_at": now,
                                  "finished_at": now, "lease_owner": None, "lease_until": None}
        with self.engine.begin() as conn:
            if recompute is not None:
                kept = conn.execute(select(c.c.rows, c.c.counts).where(
                    c.c.job_id == job_id, c.c.chunk < recompute)).all()
                if len(kept) != recompute:  # chunks before it unrecorded: from the start
                    recompute, kept = 0, []
                counts: Counter[str] = Counter()
                for rec in kept:
                    counts.update(rec.counts or {})
                values.update(chunks_done=recompute, rows_done=sum(r.rows for r in kept),
                              counts={d: n for d, n in counts.items() if n})
            got = conn.execute(update(t).where(t.c.id == job_id, t.c.lease_owner == self.owner,
                                               t.c.state == "running")
                               .values(**values)).rowcount
            if got and recompute is not None:
                conn.execute(delete(c).where(c.c.job_id == job_id, c.c.chunk >= recompute))

    def _give_back_paused(self) -> None:
        """Give back the attempts of the jobs this runner paused because the database went
        away (:meth:`run_one`): they did not crash, so they must not count towards
        :attr:`max_attempts`. Kept for the next pass while the database cannot answer."""
        a = server_job_attempts_table
        for job_id in sorted(self._paused):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(a).where(a.c.job_id == job_id, a.c.attempts > 0)
                                 .values(attempts=a.c.attempts - 1))
            except SQLAlchemyError:
                return
            self._paused.discard(job_id)

    def _release(self, job_id: str) -> None:
        """Give the lease back (graceful shutdown) so a restarted replica resumes at once,
        and the attempt with it: a run stopped on purpose did not fail."""
        t, a = server_jobs_table, server_job_attempts_table
        with self.engine.begin() as conn:
            got = conn.execute(update(t).where(t.c.id == job_id, t.c.lease_owner == self.owner)
                               .values(lease_owner=None, lease_until=None)).rowcount
            if got:
                conn.execute(update(a).where(a.c.job_id == job_id, a.c.attempts > 0)
                             .values(attempts=a.c.attempts - 1))

    def _heartbeat(self, job_id: str, done: threading.Event) -> None:
        t = server_jobs_table
        while not done.wait(self.lease / 3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(update(t).where(t.c.id == job_id, t.c.lease_owner == self.owner)
                                 .values(lease_until=utcnow() + timedelta(seconds=self.lease)))
            except SQLAlchemyError:
                log.warning("job %s: lease not renewed", job_id)

    # -- processing ---------------------------------------------------------------------------
    def _run(self, job: JobInfo) -> None:
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, done), daemon=True)
        beat.start()
        try:
            asyncio.run(self._process(job))
        finally:
            done.set()
            beat.join()

    async def _process(self, job: JobInfo) -> None:
        p = job.params
        scrubber = await asyncio.to_thread(self.provider.get)
        ctx = scrubber.context(at=datetime.fromisoformat(p["at"]), campaign=p.get("campaign")
                               or "default", purpose=p.get("purpose"),
                               call_type=p.get("call_type"))
        defaults: dict[str, str] = dict(p.get("defaults") or {})
        try:
            source = await asyncio.to_thread(self.store.local, self.store.input_path(job))
            header, slices, _, close = await asyncio.to_thread(
                scrubber.read_slices, source, job.chunk_size, whole=False)
        except InputError as exc:
            self._fail(job.id, self._public(job, str(exc)))
            return
        try:
            try:  # the header's phone and context columns, understood or refused
                if header:
                    find_phone_column(header, p.get("phone_column"))
                run = scrubber.run(header, ctx, phone_column=p.get("phone_column"),
                                   defaults=defaults) if header else None
                # an input column a dialer could read as this job's verdict, as a scrub does
                refuse_stale_verdict(header, run.phone if run is not None else None)
            except InputError as exc:
                self._fail(job.id, self._public(job, str(exc)))
                return
            self.store.chunk_path(job.id, 0).parent.mkdir(parents=True, exist_ok=True)
            counts: Counter[str] = Counter(job.counts)
            rows_done = job.rows_done
            k = 0
            while run is not None:
                sl = await asyncio.to_thread(next, slices, None)
                if sl is None:
                    break
                if k < job.chunks_done:  # committed before: only remember its keys
                    run.skip(sl, await asyncio.to_thread(
                        self._suppressed_rows, job, k, len(run.header)))
                    k += 1
                    continue
                if self._stop.is_set():
                    self._release(job.id)
                    raise _Stop
                # the lists may have changed since the last chunk: its checks, not the old
                run.scrubber = scrubber = await asyncio.to_thread(self.provider.get)
                with tally() as prefilter:  # this chunk's pre-filter work, by source
                    verdicts = await run.scrub(sl)
                part = await asyncio.to_thread(self._write_chunk, job, k, verdicts, run,
                                               prefilter.stats())
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay / 2)
                counts.update({d: n for d, n in part.by_decision.items() if n})
                rows_done += part.total_rows
                await asyncio.to_thread(self._commit, job.id, k, rows_done, dict(counts))
                rows = [(r.decision, r.reasons, place_key(r.state, r.region))
                        for r in verdicts.results()]
                self.counter.record_rows(rows)
                self.metrics.observe_rows((d, reasons) for d, reasons, _ in rows)
                self.metrics.jobs_rows.inc(part.total_rows)
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay / 2)
                k += 1
        finally:
            close()
        await asyncio.to_thread(self._finish, job, k, output_header(header))

    def _write_chunk(self, job: JobInfo, k: int, verdicts: SliceVerdicts, run: ScrubRun,
                     prefilter: dict[str, dict[str, Any]] | None = None) -> ScrubSummary:
        """The chunk's rows of the verdict file (as the CLI writes them: defused, the e164
        column as it is) and its summary, each written to a temporary name and renamed."""
        columns = [*verdicts.input_columns(), *verdicts.columns()]
        _write_atomic(self.store.chunk_path(job.id, k), lambda fh: write_csv_rows(
            columns, cast(IO[bytes], fh.buffer), safe=(len(run.header),)))
        versions = run.scrubber.versions(run.ctx)
        builder = SummaryBuilder(ScrubSummary(dial_time=run.ctx.at, started_at=job.created_at,
                                              lists=dict(versions.lists),
                                              ruleset=versions.ruleset))
        verdicts.count(builder)
        builder.summary.prefilter = prefilter or {}
        part = builder.finish(utcnow(), 0.0)
        data = part.model_dump(by_alias=True, mode="json")
        _write_atomic(self.store.chunk_path(job.id, k, "json"),
                      lambda fh: fh.write(json.dumps(data)))
        return part

    def _chunk_record(self, job_id: str, k: int) -> ChunkRecord:
        """What chunk ``k``'s files, as they are committed, hold: the rows and the rows by
        decision its summary counts, and the SHA-256 of each file."""
        rows_file, summary_file = (self.store.chunk_path(job_id, k),
                                   self.store.chunk_path(job_id, k, "json"))
        raw = summary_file.read_bytes()
        data = json.loads(raw)
        return ChunkRecord(
            rows=int(data["totalRows"]),
            counts={d: int(n) for d, n in (data.get("byDecision") or {}).items() if n},
            sha256=_file_sha256(rows_file), summary_sha256=hashlib.sha256(raw).hexdigest())

    def _commit(self, job_id: str, k: int, rows_done: int, counts: dict[str, int]) -> None:
        """Commit chunk ``k`` (still ours, not cancelled) with its record (in
        ``server_job_chunks``; one left by an earlier run of this chunk or of a later one
        goes) and, on PostgreSQL, its files."""
        t, c = server_jobs_table, server_job_chunks_table
        record = self._chunk_record(job_id, k)
        now = utcnow()
        with self.engine.begin() as conn:
            got = conn.execute(update(t).where(
                t.c.id == job_id, t.c.state == "running", t.c.lease_owner == self.owner,
                t.c.chunks_done == k).values(
                chunks_done=k + 1, rows_done=rows_done, counts=counts, updated_at=now,
                lease_until=now + timedelta(seconds=self.lease))).rowcount
            if not got:
                raise _Stop  # rolls back: no chunk files stored for a chunk not ours
            conn.execute(delete(c).where(c.c.job_id == job_id, c.c.chunk >= k))
            conn.execute(insert(c).values(
                job_id=job_id, chunk=k, rows=record.rows, counts=record.counts,
                sha256=record.sha256, summary_sha256=record.summary_sha256, committed_at=now))
            # the chunk's files commit with the chunk: a successor finishes from them
            self.store.publish(conn, self.store.chunk_path(job_id, k),
                               self.store.chunk_path(job_id, k, "json"))

    def _suppressed_rows(self, job: JobInfo, k: int, columns: int
                         ) -> npt.NDArray[np.bool_] | None:
        """Per row of committed chunk ``k``: whether its verdict was block, defer or error
        (its ``decision`` cell follows the ``columns`` input columns and ``e164``), for
        the resumed run's ``uniqueSuppressed`` (:meth:`ScrubRun.skip`). None when the
        chunk cannot be read (every number of it then counts as counted; the chunk itself
        is checked before the job is done)."""
        try:
            path = self.store.local(self.store.chunk_path(job.id, k))
            with path.open(encoding="utf-8", newline="") as fh:
                return np.array([len(row) > columns + 1 and row[columns + 1] in _SUPPRESSED
                                 for row in csv.reader(fh)], dtype=bool)
        except (OSError, SourceError, ValueError, csv.Error) as exc:
            log.warning("job %s: chunk %d's decisions could not be read (%s); its numbers "
                        "count as suppressed already", job.id, k, type(exc).__name__)
            return None

    def _chunk_problem(self, job: JobInfo, k: int, record: ChunkRecord | None
                       ) -> tuple[str | None, int]:
        """What is wrong with committed chunk ``k`` (None: nothing), and the rows its file
        holds. Its verdict rows and its summary must be there; the rows as many as were
        committed and, byte for byte, those committed (SHA-256), the summary unchanged; and
        the summary must count the rows the file holds (all a chunk committed before records
        were kept is checked against)."""
        try:
            rows, sha256 = _scan_chunk(self.store.local(self.store.chunk_path(job.id, k)))
        except FileNotFoundError:
            return "its verdict rows file is missing", 0
        except (OSError, SourceError) as exc:
            return f"its verdict rows cannot be read ({type(exc).__name__})", 0
        try:
            raw = self.store.local(self.store.chunk_path(job.id, k, "json")).read_bytes()
            data = json.loads(raw)
        except FileNotFoundError:
            return "its summary file is missing", rows
        except (OSError, SourceError, ValueError) as exc:
            return f"its summary file cannot be read ({type(exc).__name__})", rows
        if record is not None:
            if rows != record.rows:
                return f"its file holds {rows:,} rows, {record.rows:,} were committed", rows
            if sha256 != record.sha256:
                return "its file differs from the one committed (SHA-256)", rows
            if hashlib.sha256(raw).hexdigest() != record.summary_sha256:
                return "its summary file differs from the one committed (SHA-256)", rows
        counted = data.get("totalRows") if isinstance(data, dict) else None
        if counted != rows:
            return f"its summary counts {counted} rows, its file holds {rows:,}", rows
        return None, rows

    def _commit_done(self, job: JobInfo, record: audit.JobRecord, chunks: int, rows_done: int,
                     now: datetime) -> None:
        """Mark the job done with its audit record, in one transaction (``_Stop`` when it is
        no longer ours: cancelled, or taken over)."""
        results_rows = record.data["results"]["rows"]
        if results_rows != rows_done:
            raise JobIntegrityError(
                f"the job's results file holds {results_rows:,} rows but {rows_done:,} "
                "were committed, so it is not done; resume the job to assemble it again")
        if self.before_final is not None:
            self.before_final(job.id)
        t = server_jobs_table
        # done and its audit record commit together, or neither does: a runner that dies
        # before this commit leaves the job running, and its successor finishes it.
        with self.engine.begin() as conn:
            got = conn.execute(update(t).where(
                t.c.id == job.id, t.c.state == "running", t.c.lease_owner == self.owner)
                .values(state="done", updated_at=now, finished_at=now, lease_owner=None,
                        lease_until=None, error=None)).rowcount
            if not got:
                raise _Stop
            audit.write_job(audit.audit_log(self.settings), record, conn)
            if self.store.shared:  # the results replace the chunks in the database
                self.store.publish(conn, self.store.results_path(job.id),
                                   self.store.summary_path(job.id))
                sharedfiles.remove(conn, [self.store.shared_name(self.store.chunk_path(
                    job.id, i, suffix)) for i in range(chunks) for suffix in ("csv", "json")])

    def _discard_retained(self, job_id: str, record: audit.JobRecord) -> None:
        """The results copy :func:`audit.prepare_job` retained for a record that was not
        written (the job was cancelled meanwhile, failed, or the transaction failed) goes:
        nothing would refer to it, or prune it. Kept while another runner holds the job (it
        prepares the same copy), and when the database cannot say."""
        t = server_jobs_table
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(t.c.state, t.c.lease_owner).where(
                    t.c.id == job_id)).first()
            if row is not None and row.state == "running" and row.lease_owner not in (
                    None, self.owner):
                return
            audit.discard_job(audit.audit_log(self.settings), record)
        except (SQLAlchemyError, audit.AuditError) as exc:
            log.warning("job %s: its retained results copy was not removed: %s", job_id,
                        type(exc).__name__)

    def _check_chunks(self, job: JobInfo, chunks: int) -> None:
        """Every committed chunk against its record (:meth:`_chunk_problem`), and their rows
        against the job's ``rows_done``. Raises JobIntegrityError naming the damaged chunks:
        the job is rewound to the first of them (to the start when a chunk before it has no
        record), so a resume scrubs them again."""
        if chunks != job.chunks_done:
            raise JobIntegrityError(f"the job committed {job.chunks_done} chunks but its input "
                                    f"now makes {chunks}; the upload is not the one it read")
        records = self.store.chunk_records(job.id)
        bad: list[tuple[int, str]] = []
        total = 0
        for k in range(chunks):
            why, rows = self._chunk_problem(job, k, records.get(k))
            total += rows
            if why is not None:
                bad.append((k, why))
        if bad:
            first = bad[0][0]
            start = first if all(k in records for k in range(first)) else 0
            named = "; ".join(f"{_chunk_name(job, k)}: {why}" for k, why in bad[:5])
            more = f"; and {len(bad) - 5} more chunks" if len(bad) > 5 else ""
            raise JobIntegrityError(
                f"the job's results are not complete, so it is not done: {named}{more}; "
                f"resume the job to scrub it again from row {start * job.chunk_size + 1:,}",
                start)
        if total != job.rows_done:
            raise JobIntegrityError(
                f"the job's chunks hold {total:,} rows but {job.rows_done:,} were committed, "
                "so it is not done; resume the job to scrub it again from the start", 0)

    def _finish(self, job: JobInfo, chunks: int, header: list[str]) -> None:
        """Assemble ``results.csv`` and ``summary.json`` from the committed chunks (each
        checked first: :meth:`_check_chunks`), prepare the audit record, and mark the job done
        with it in one transaction, only when the results' rows, ``rows_done`` and the
        summary's ``totalRows`` agree (else JobIntegrityError: the job fails)."""
        folder = self.store.folder(job.id)
        current = self.store.get(job.id)
        self._check_chunks(current, chunks)

        def write(fh: Any) -> None:
            csv.writer(fh).writerow([defuse(h) for h in header])
            fh.flush()
            for k in range(chunks):
                chunk = self.store.local(self.store.chunk_path(job.id, k))
                with chunk.open("r", encoding="utf-8", newline="") as part:
                    shutil.copyfileobj(part, fh, 1 << 20)

        _write_atomic(self.store.results_path(job.id), write)
        now = utcnow()
        current.finished_at = now
        summary = merge_summaries(self.store.chunk_summaries(current, chunks), current)
        if summary.total_rows != current.rows_done:
            raise JobIntegrityError(
                f"the job's summary counts {summary.total_rows:,} rows but {current.rows_done:,} "
                "were committed, so it is not done; resume the job to assemble it again")
        summary.output = "results.csv"
        _write_atomic(self.store.summary_path(job.id), lambda fh: fh.write(summary.to_json()))
        log_ = audit.audit_log(self.settings)
        # The costly part (copy, hash, Merkle root) outside the transaction; an AuditError
        # here fails the job with its reason (resumable: JobStore.resume).
        try:
            record = audit.prepare_job(log_, job.id, self.store.results_path(job.id), summary,
                                       who=job.created_by)
        except (OSError, audit.AuditError) as exc:
            raise JobAuditError(f"the audit record could not be written "
                                f"({type(exc).__name__}: {exc}); resume the job to retry"
                                ) from exc
        try:
            self._commit_done(job, record, chunks, current.rows_done, now)
        except BaseException:
            self._discard_retained(job.id, record)
            raise
        log.info("job %s done: %d rows in %d chunks (%s)", job.id, summary.total_rows, chunks,
                 folder.name)
        if self.store.shared:
            try:  # the chunks' bytes; a later job collects them if this fails
                sharedfiles.collect_garbage(self.engine, self.store.objects)
            except (SQLAlchemyError, SourceError) as exc:  # the job is done either way
                log.warning("job %s: shared chunks not collected: %s", job.id,
                            type(exc).__name__)
