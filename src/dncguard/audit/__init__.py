"""The audit trail: tamper-evident records of checks, scrub jobs and list changes.

Entry points used by the rest of dncguard (each takes the core :class:`~dncguard.Settings`)::

    from dncguard import audit

    audit.record_check(settings, verdict, who="cli:alice")
    audit.record_job(settings, job_id, output_path, summary, who="cli:alice")
    audit.record_list_change(settings, "add", "internal", who="cli:alice", number="+1202...")

Raw numbers are never stored: a number appears as its HMAC-SHA256 under the audit key plus a
masked form (``+1202555****``). See ``docs/audit.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from ..config import Settings
from ..engine.summary import ScrubSummary
from ..errors import AuditError
from ..models import DataVersions, Reason, Verdict
from ..phones import mask
from ..store import as_utc, get_engine
from ._chain import Pending, jtext_plain, pending, stamps
from ._jobs import (
    JobRecord,
    NumberDigests,
    discard_job,
    new_job_id,
    prepare_job,
    prove,
    verify_proof,
    write_job,
)
from ._jobs import record_job as _record_job
from ._log import AuditLog, AuditRecord, ChainBroken, VerifyResult
from ._writer import AuditUnavailable, AuditWriter
from .export import (
    EXPORT_TOPIC,
    ExportWorker,
    enqueue_export,
    export_file,
    export_payload,
    outbox_metrics,
)
from .health import AuditHealth, health, readiness_problems
from .settings import AuditSettings, load_audit_settings
from .tables import GENESIS

#: Actions recorded for list changes.
LIST_ACTIONS = ("import", "changes", "rm", "add", "remove", "sync", "push", "consent", "attempt")

_logs: dict[tuple[str, str, str], AuditLog] = {}


def audit_log(settings: Settings, conn: Connection | None = None) -> AuditLog:
    """The :class:`AuditLog` of these settings (cached per home and database).

    ``conn``: an open transaction the first use may create the tables in.
    """
    key = (str(settings.home), settings.db_url, str(settings.config_file))
    log = _logs.get(key)
    if log is None or log.engine is not get_engine(settings):
        log = AuditLog(settings, conn=conn)
        _logs[key] = log
    return log


_writers: dict[tuple[str, str, str], AuditWriter] = {}


def audit_writer(settings: Settings) -> AuditWriter:
    """This process's group-commit writer for these settings (see :mod:`.writer`)."""
    key = (str(settings.home), settings.db_url, str(settings.config_file))
    found = _writers.get(key)
    if found is None or found.log is not audit_log(settings):
        found = AuditWriter(audit_log(settings), health(settings))
        _writers[key] = found
    return found


@dataclass(frozen=True, slots=True)
class _ReasonFields:
    """What a record reads off a verdict's reasons, worked out once per distinct list."""

    reasons: tuple[Reason, ...]  # held, so that no other object takes their ids meanwhile
    codes: tuple[str, ...]
    lists: tuple[str, ...]
    sources: tuple[str, ...]
    rules: tuple[str, ...]
    codes_text: str  # the canonical JSON of ``codes``


class _Shared:
    """What the records of one batch of checks share, encoded once: times, data versions and
    reasons (the verdicts of a batch share these objects; each is keyed by its identity and
    held while it is a key, so that no other object can take its id)."""

    def __init__(self) -> None:
        self._times: dict[int, tuple[datetime, str]] = {}
        self._versions: tuple[object, dict[str, Any], str] = (None, {}, "")
        self._reasons: dict[tuple[int, ...], _ReasonFields] = {}
        self._when: tuple[datetime, tuple[str, str]] | None = None

    def when(self, log: AuditLog) -> tuple[datetime, tuple[str, str]]:
        """The records' time (the log's clock, read once: records made together share
        it) and its texts (:func:`~._chain.stamps`)."""
        if self._when is None:
            at = as_utc(log.clock())
            assert at is not None
            self._when = (at, stamps(at))
        return self._when

    def iso(self, value: datetime) -> str:
        hit = self._times.get(id(value))
        if hit is None or hit[0] is not value:
            if len(self._times) >= _SHARED_MAX:
                self._times.clear()
            hit = self._times[id(value)] = (value, value.isoformat())
        return hit[1]

    def versions(self, value: DataVersions) -> tuple[dict[str, Any], str]:
        if value is not self._versions[0]:
            plain = {"lists": dict(value.lists), "ruleset": value.ruleset}
            self._versions = (value, plain, jtext_plain(plain))
        return self._versions[1], self._versions[2]

    def reasons(self, reasons: list[Reason]) -> _ReasonFields:
        key = tuple(map(id, reasons))
        hit = self._reasons.get(key)
        if hit is None:
            if len(self._reasons) >= _SHARED_MAX:
                self._reasons.clear()
            codes = tuple(str(r.code) for r in reasons)
            hit = self._reasons[key] = _ReasonFields(
                tuple(reasons), codes, tuple(sorted({r.list for r in reasons if r.list})),
                tuple(sorted({r.source for r in reasons if r.source})),
                tuple(sorted({r.rule for r in reasons if r.rule})), jtext_plain(list(codes)))
        return hit


#: Entries :class:`_Shared` keeps of each kind (a batch has few distinct ones).
_SHARED_MAX = 256


def _check_fields(log: AuditLog, verdict: Verdict, who: str | None,
                  extra: dict[str, Any], shared: _Shared | None = None) -> Pending:
    """A check's record, encoded (its values are JSON-native as built here)."""
    shared = shared or _Shared()
    why = shared.reasons(verdict.reasons)
    nxt = verdict.next_allowed_at
    data: dict[str, Any] = {
        "dial_time": shared.iso(verdict.dial_time),
        "checked_at": shared.iso(verdict.checked_at),
        "region": verdict.region, "state": verdict.state,
        "next_allowed_at": shared.iso(nxt) if nxt else None,
        "lists": list(why.lists), "sources": list(why.sources), "rules": list(why.rules),
    }
    e164 = verdict.e164
    if e164 is None and verdict.input.strip():
        data["input_hmac"] = log.number_hmac(verdict.input.strip())
    masked = mask(e164) if e164 else None
    codes = list(why.codes)
    versions, versions_text = shared.versions(verdict.versions)
    if extra:  # values from the caller: normalised through JSON by fields()
        data.update(extra)
        return log.fields("check", "check", who=who, subject=masked, number=e164,
                          decision=verdict.decision.value, reason_codes=codes,
                          versions=versions, data=data)
    when, stamped = shared.when(log)
    return pending(when, "check", "check", who, masked, log.number_hmac(e164) if e164 else None,
                   masked, verdict.decision.value, codes, versions, data, plain=True,
                   versions_text=versions_text, reason_text=why.codes_text, stamped=stamped)


def check_records(settings: Settings, verdicts: list[Verdict], whos: list[str | None]
                  ) -> list[Pending]:
    """The records of these checks, each with its own ``who`` (see :func:`check_fields`)."""
    log = audit_log(settings)
    shared = _Shared()
    return [_check_fields(log, v, who, {}, shared)
            for v, who in zip(verdicts, whos, strict=True)]


def check_fields(settings: Settings, verdicts: list[Verdict], *, who: str | None = None,
                 **extra: Any) -> list[Pending]:
    """The records of these checks, encoded, ready for :meth:`AuditLog.append_many` (or an
    :class:`AuditWriter`): the costly part of recording, done before the chain is locked."""
    log = audit_log(settings)
    shared = _Shared()
    return [_check_fields(log, v, who, extra, shared) for v in verdicts]


def record_check(settings: Settings, verdict: Verdict, *, who: str | None = None,
                 conn: Connection | None = None, **extra: Any) -> AuditRecord:
    """Record one real-time check (``extra`` goes into the record's data, e.g. campaign)."""
    log = audit_log(settings, conn)
    return log.append_many([_check_fields(log, verdict, who, extra)], conn=conn)[0]


def record_checks(settings: Settings, verdicts: list[Verdict], *, who: str | None = None,
                  conn: Connection | None = None, **extra: Any) -> list[AuditRecord]:
    """Record a batch of checks (one record each) in one transaction under one lock."""
    log = audit_log(settings, conn)
    return log.append_many([_check_fields(log, v, who, extra) for v in verdicts], conn=conn)


def record_job(settings: Settings, job_id: str, output_path: Path, summary: ScrubSummary, *,
               who: str | None = None, conn: Connection | None = None,
               numbers: NumberDigests | None = None, name: str | None = None
               ) -> AuditRecord:
    """Record a finished scrub job (Merkle root, retained results) and queue its export;
    ``numbers``: the number HMACs computed while the file was written (optional, checked
    against the file, see :class:`NumberDigests`); ``name``: the file name recorded
    (default: ``output_path``'s)."""
    return _record_job(audit_log(settings, conn), job_id, output_path, summary, who=who,
                       conn=conn, numbers=numbers, name=name)


def number_digests(settings: Settings) -> NumberDigests:
    """A :class:`NumberDigests` with the audit key of ``settings``' home (may raise what
    reading or creating the key raises)."""
    return NumberDigests(audit_log(settings).key)


def record_list_change(settings: Settings, action: str, list_name: str, *,
                       who: str | None = None, why: str | None = None,
                       number: str | None = None, detail: dict[str, Any] | None = None,
                       conn: Connection | None = None) -> AuditRecord:
    """Record a list change: ``action`` is one of :data:`LIST_ACTIONS` (others are accepted).

    ``number`` (E.164) is stored as HMAC plus mask; ``detail`` must not hold raw numbers.
    Pass ``conn`` to append in the same transaction as the change itself.
    """
    data: dict[str, Any] = {"why": why, **(detail or {})}
    return audit_log(settings, conn).append("list", action, who=who, subject=list_name,
                                      number=number, data=data, conn=conn)


__all__ = [
    "EXPORT_TOPIC",
    "GENESIS",
    "LIST_ACTIONS",
    "AuditError",
    "AuditHealth",
    "AuditUnavailable",
    "AuditWriter",
    "JobRecord",
    "NumberDigests",
    "AuditLog",
    "AuditRecord",
    "ChainBroken",
    "AuditSettings",
    "ExportWorker",
    "VerifyResult",
    "Pending",
    "audit_log",
    "audit_writer",
    "health",
    "readiness_problems",
    "check_fields",
    "check_records",
    "discard_job",
    "enqueue_export",
    "export_file",
    "export_payload",
    "load_audit_settings",
    "number_digests",
    "new_job_id",
    "outbox_metrics",
    "prepare_job",
    "prove",
    "record_check",
    "record_checks",
    "record_job",
    "record_list_change",
    "verify_proof",
    "write_job",
]
