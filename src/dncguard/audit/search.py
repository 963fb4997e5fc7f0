"""Every audit record about one phone number: what dncguard knew about it, and when.

"What did we know about this number on the day we called it?" A record holds a number only as
its HMAC-SHA256 under the audit key (``number_hmac``) and a masked form, so a search computes
the number's HMAC and selects the records carrying it: checks, opt-outs and removals
(``dnc add``/``remove``, the API's ``/v1/dnc``), consents and attempts. A scrub job's record
carries no number: the job's retained results file is read for the rows holding the number
(each of those rows can then be proven with ``dncguard audit prove JOB_ID ROW``).

Costs: the records table has no index on ``number_hmac`` (an append would write a page of it
in a random place for every check; see migration 0003), so a search reads the records of its
time range (the ``at`` index narrows that range); each job of the range costs one read of its
results file (hashed, to know it is the file the record describes). Bound a search on a large
trail with ``since``/``until``.

Only the current audit key can match numbers: records written under another key are not found
(dncguard refuses to search when no key exists at all, rather than generating one).
A record beyond the chain head was not appended through the audit log (``audit verify``
reports it) and is left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ..errors import DncGuardError, InputError
from ..io.verdict_file import verdict_cells
from ..phones import mask, normalise
from ..store import as_utc
from ._log import WITHIN_HEAD, AuditLog, AuditRecord, record_of
from .settings import key_path
from .tables import NOT_CHECKS, audit_records_table

#: Most records a search returns by default (newest first), and at most.
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: Most scrub jobs whose results files one search reads (newest first).
DEFAULT_MAX_JOBS = 200

_READ = 4 << 20


@dataclass(frozen=True)
class JobRow:
    """A row of a scrub job's results holding the number."""

    row: int  # 1-based data row, as ``dncguard audit prove`` takes it
    decision: str
    reason_codes: list[str]
    next_allowed_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "decision": self.decision, "reasons": self.reason_codes,
                "nextAllowedAt": self.next_allowed_at}


@dataclass(frozen=True)
class Hit:
    """One audit record about the number (for a job: the job's record and its rows)."""

    seq: int
    at: datetime
    kind: str  # check | list | job
    action: str  # check; add, remove, consent, attempt, ...; scrub
    who: str | None
    subject: str | None  # the list name, the job id, or (checks) the masked number
    number_masked: str | None
    decision: str | None
    reason_codes: list[str]
    versions: dict[str, Any]
    data: dict[str, Any]
    rows: list[JobRow] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "kind": self.kind,
                "action": self.action, "who": self.who, "subject": self.subject,
                "number": self.number_masked, "decision": self.decision,
                "reasons": self.reason_codes, "versions": self.versions, "data": self.data,
                "rows": None if self.rows is None else [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class UnsearchedJob:
    """A job of the range whose results could not be searched, and why."""

    job_id: str
    seq: int
    at: datetime
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "seq": self.seq, "at": self.at.isoformat(),
                "why": self.why}


@dataclass
class SearchResult:
    """The records about one number, newest first."""

    number_masked: str
    since: datetime | None
    until: datetime | None
    hits: list[Hit] = field(default_factory=list)
    truncated: bool = False  # more records than the limit: narrow the range
    jobs_searched: int = 0
    jobs_not_searched: list[UnsearchedJob] = field(default_factory=list)
    jobs_left: int = 0  # jobs of the range beyond ``max_jobs``, not read

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number_masked,
            "from": self.since.isoformat() if self.since else None,
            "to": self.until.isoformat() if self.until else None,
            "records": [h.to_json() for h in self.hits],
            "truncated": self.truncated,
            "jobsSearched": self.jobs_searched,
            "jobsNotSearched": [j.to_json() for j in self.jobs_not_searched],
            "jobsLeft": self.jobs_left,
        }


def parse_bound(value: str | None, name: str, *, end: bool = False) -> datetime | None:
    """A search bound: a date (a whole UTC day: ``from`` its first instant, ``to`` its end,
    so ``from D to D`` is day D) or an ISO 8601 instant with an offset (``to`` excluded).
    Raises :class:`InputError` naming ``name`` (a flag or a query field)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is None:
            raise InputError(f"{name}: {value!r} has no UTC offset; add one or Z (or give a "
                             "date, YYYY-MM-DD)")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InputError(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 "
                         "instant with an offset") from None


def search_number(log: AuditLog, phone: str, *, since: datetime | None = None,
                  until: datetime | None = None, limit: int = DEFAULT_LIMIT,
                  jobs: bool = True, max_jobs: int = DEFAULT_MAX_JOBS,
                  region: str | None = None) -> SearchResult:
    """The audit records about ``phone`` (E.164 or national format) recorded in
    [``since``, ``until``), newest first, at most ``limit`` (``truncated`` says when there
    were more): every record carrying the number's HMAC, and (``jobs``) the scrub jobs of
    the range whose results hold the number, with those rows (at most ``max_jobs`` jobs are
    read, newest first; ``jobs_left`` counts the others).

    Raises :class:`InputError` for a number that is not valid or a bad range, and
    :class:`DncGuardError` when no audit key exists (nothing could be matched).
    """
    n = normalise(phone, region or log.settings.default_region)
    if not n.ok or n.e164 is None:
        raise InputError(f"phone: {n.message or 'not a valid number'}")
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit: {limit} is not between 1 and {MAX_LIMIT:,}")
    if max_jobs < 0:
        raise InputError(f"max_jobs: {max_jobs} is negative")
    since, until = as_utc(since), as_utc(until)
    if since is not None and until is not None and since >= until:
        raise InputError(f"the range is empty: from {since.isoformat()} is not before to "
                         f"{until.isoformat()}")
    _require_key(log)
    e164 = n.e164
    out = SearchResult(number_masked=mask(e164), since=since, until=until)
    hits = _number_records(log, log.number_hmac(e164), since, until, limit + 1)
    # Jobs older than the limit-th record cannot make the cut.
    floor = hits[limit - 1].seq if len(hits) > limit else 0
    if jobs:
        hits.extend(_job_hits(log, e164, since, until, floor, max_jobs, out))
    hits.sort(key=lambda h: h.seq, reverse=True)
    out.truncated = len(hits) > limit
    out.hits = hits[:limit]
    return out


def _require_key(log: AuditLog) -> None:
    """Refuse to search without a key: generating one now would match nothing."""
    configured = log.audit.hmac_key
    if configured is not None and configured.get_secret_value():
        return
    path = key_path(log.settings)
    if not path.is_file():
        raise DncGuardError(
            f"no audit HMAC key: DNCGUARD_AUDIT_HMAC_KEY is not set and {path} does not exist, "
            "so no audit record can be matched to a number (restore the key file from backup "
            "if it was lost)")


def _number_records(log: AuditLog, digest: str, since: datetime | None,
                    until: datetime | None, most: int) -> list[Hit]:
    t = audit_records_table
    q = log.select_records().where(t.c.number_hmac == digest, WITHIN_HEAD)
    if since is not None:
        q = q.where(t.c.at >= since)
    if until is not None:
        q = q.where(t.c.at < until)
    with log.engine.connect() as conn:
        rows = conn.execute(q.order_by(t.c.seq.desc()).limit(most)).all()
    out = []
    for row in rows:
        r = record_of(row)
        out.append(Hit(seq=r.seq, at=r.at, kind=r.kind, action=r.action, who=r.who,
                       subject=r.subject, number_masked=r.number_masked, decision=r.decision,
                       reason_codes=r.reason_codes, versions=r.versions, data=r.data))
    return out


def _job_hits(log: AuditLog, e164: str, since: datetime | None, until: datetime | None,
              floor: int, max_jobs: int, out: SearchResult) -> list[Hit]:
    """The jobs of the range (newer than record ``floor``) whose results hold ``e164``."""
    t = audit_records_table
    cond: list[Any] = [t.c.kind == "job", NOT_CHECKS, t.c.seq > floor, WITHIN_HEAD]
    if since is not None:
        cond.append(t.c.at >= since)
    if until is not None:
        cond.append(t.c.at < until)
    with log.engine.connect() as conn:
        rows = conn.execute(log.select_records().where(*cond).order_by(t.c.seq.desc())
                            .limit(max_jobs)).all()
        if len(rows) == max_jobs:
            total = int(conn.execute(select(func.count()).select_from(t).where(*cond))
                        .scalar_one())
            out.jobs_left = total - max_jobs
    hits = []
    for row in rows:
        rec = record_of(row)
        job_id = rec.subject or str(rec.data.get("job_id", ""))
        found, why = _job_rows(log, rec, e164)
        if why is not None:
            out.jobs_not_searched.append(UnsearchedJob(job_id, rec.seq, rec.at, why))
            continue
        out.jobs_searched += 1
        if not found:
            continue
        results = rec.data.get("results") or {}
        rows_total = (rec.data.get("summary") or {}).get("totalRows", results.get("rows"))
        hits.append(Hit(
            seq=rec.seq, at=rec.at, kind=rec.kind, action=rec.action, who=rec.who,
            subject=job_id, number_masked=mask(e164), decision=found[0].decision,
            reason_codes=found[0].reason_codes, versions=rec.versions,
            data={"job_id": job_id, "file": results.get("file"), "rows": rows_total},
            rows=found))
    return hits


def _job_rows(log: AuditLog, rec: AuditRecord, e164: str) -> tuple[list[JobRow], str | None]:
    """The rows of a job's retained results holding ``e164``, or why they cannot be read."""
    results = rec.data.get("results") or {}
    retained = results.get("retained")
    if not retained:
        return [], "its results file was not retained (retain_results was off)"
    path = log.settings.home / str(retained)
    if not path.is_file():
        return [], f"its retained results file is gone ({retained})"
    try:
        digest, mentions = _hash_and_find(path, e164.encode("ascii"))
    except OSError as exc:
        return [], f"its retained results file cannot be read ({exc.strerror or exc})"
    if digest != results.get("sha256"):
        return [], (f"its retained results file was altered ({retained} no longer has the "
                    "SHA-256 in the record)")
    if not mentions:
        return [], None
    try:
        found = [JobRow(i, cells[1], [c for c in cells[2].split(";") if c], cells[4] or None)
                 for i, cells in enumerate(verdict_cells(path), 1) if cells[0] == e164]
    except (DncGuardError, OSError, ValueError) as exc:
        return [], f"its retained results file cannot be read as a verdict file ({exc})"
    return found, None


def _hash_and_find(path: Path, needle: bytes) -> tuple[str, bool]:
    """The file's SHA-256, and whether it may hold ``needle``: a CSV file is searched for
    the bytes as it is hashed; any other format (compressed) is always read row by row."""
    h = hashlib.sha256()
    plain = path.suffix.lower() == ".csv"
    found = not plain
    tail = b""
    with path.open("rb") as fh:
        while block := fh.read(_READ):
            h.update(block)
            if not found:
                found = needle in tail + block[:len(needle) - 1] or needle in block
                tail = block[-(len(needle) - 1):]
    return h.hexdigest(), found
