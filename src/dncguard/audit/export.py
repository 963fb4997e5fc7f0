"""Exports: each job's summary to an HTTP endpoint through the durable outbox, and records
to NDJSON or CSV files.

Delivery uses :class:`dncguard.outbox.Outbox` (topic ``audit.export``): the item is enqueued
in the same transaction as the job's audit record, so a summary is never lost and never sent
for a job that was not recorded. A worker POSTs each due item with an ``Idempotency-Key``
header (also in the body as ``idempotencyKey``); a 2xx acknowledges it, anything else (or no
answer) schedules a retry with exponential backoff, forever, until a 2xx. Delivery is at least
once: before each POST the worker renews its lease on the item for longer than the request can
take (:meth:`Outbox.renew`) and skips an item another worker took over meanwhile, so two live
workers never send one item; a worker that dies mid-delivery leaves its item leased, and when
the lease ends another worker sends it again (the receiver drops the duplicate by its key).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Connection

from .._lazy import lazy_import
from ..config import mask_url
from ..engine.summary import overall_false_positive_rate
from ..errors import InputError
from ..outbox import DEAD, PENDING, Outbox
from ..store import as_utc
from ._log import AuditLog, AuditRecord
from .settings import AuditSettings

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_import("httpx", globals(), "httpx")

EXPORT_TOPIC = "audit.export"
SUPPRESSED_DECISIONS = ("block", "defer", "error")
#: Seconds a delivery's lease outlasts its request's timeout (the database's and the hosts'
#: clocks may differ a little); also the lease of a claimed item not yet being sent, so a
#: killed worker's unsent items come back within it.
LEASE_MARGIN = 60.0


def outbox_for(log: AuditLog, clock: Callable[[], datetime] | None = None) -> Outbox:
    return Outbox(log.engine, clock=clock or log.clock, base_delay=log.audit.export_base_delay,
                  max_delay=log.audit.export_max_delay)


def _false_positive_rate(summary: dict[str, Any]) -> float | None:
    return overall_false_positive_rate(summary.get("prefilter") or {})


def export_payload(rec: AuditRecord) -> dict[str, Any]:
    """The JSON body sent for a job record."""
    s = rec.data.get("summary", {})
    by_decision: dict[str, int] = s.get("byDecision", {})
    key = f"job:{rec.subject}"
    return {
        "type": "dncguard.scrub.summary",
        "idempotencyKey": key,
        "jobId": rec.subject,
        "timestamp": s.get("finished_at") or rec.at.isoformat(),
        "totalContacts": s.get("totalRows", 0),
        "suppressed": sum(int(by_decision.get(d, 0)) for d in SUPPRESSED_DECISIONS),
        "allowed": int(by_decision.get("allow", 0)),
        "invalid": int(by_decision.get("invalid", 0)),
        "suppressionRate": s.get("suppressionRate"),
        "falsePositiveRate": _false_positive_rate(s),
        "prefilter": s.get("prefilter") or {},
        "throughputPerSec": s.get("rowsPerSecond"),
        "uniqueValid": s.get("uniqueValid", 0),
        "duplicates": s.get("duplicates", 0),
        "byDecision": by_decision,
        "byReason": s.get("byReason", {}),
        "byList": s.get("byList", {}),
        "byState": s.get("byState", {}),
        "dataVersions": rec.versions,
        "campaign": s.get("campaign"),
        "dialTime": s.get("dial_time"),
        "startedAt": s.get("started_at"),
        "merkleRoot": rec.data.get("merkle", {}).get("root"),
        "audit": {"seq": rec.seq, "hash": rec.hash, "who": rec.who},
    }


def enqueue_export(log: AuditLog, rec: AuditRecord, conn: Connection | None = None) -> bool:
    """Queue a job record's summary for the export endpoint (once per job id)."""
    payload = export_payload(rec)
    return outbox_for(log).enqueue(EXPORT_TOPIC, payload["idempotencyKey"], payload, conn=conn)


def failure_text(exc: BaseException, audit: AuditSettings) -> str:
    """``Type: message`` of an export failure, for a log: the message's first line, with the
    token and the URL's password masked."""
    lines = str(exc).strip().splitlines()
    return _masked(f"{type(exc).__name__}: {lines[0] if lines else ''}", audit)[:300]


def _masked(text: str, audit: AuditSettings) -> str:
    """``text`` with the export token and the export URL's secrets masked (cut it after:
    never part of a secret)."""
    token = audit.export_token.get_secret_value() if audit.export_token is not None else ""
    if token:
        text = text.replace(token, "***")
    if audit.export_url:
        text = text.replace(audit.export_url, mask_url(audit.export_url))
    return text


@dataclass
class DeliveryReport:
    """``sent``: items this worker delivered (its acknowledgement changed them); ``failed``
    (of which ``dead``: parked); ``lost``: items skipped or left unsettled because another
    worker took them over when this one's lease ran out (they are that worker's)."""

    sent: int = 0
    failed: int = 0
    dead: int = 0
    lost: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(self.sent + other.sent, self.failed + other.failed,
                              self.dead + other.dead, self.lost + other.lost)


class ExportWorker:
    """Delivers due export items to ``url``; call :meth:`run_once` or :meth:`run`.

    ``lease``: seconds an item is leased for from just before its POST; at least the request
    timeout (``export_timeout``) plus :data:`LEASE_MARGIN`, the default."""

    def __init__(self, log: AuditLog, *, url: str | None = None,
                 client: httpx.Client | None = None, outbox: Outbox | None = None,
                 lease: float | None = None, batch: int = 50) -> None:
        least = log.audit.export_timeout + LEASE_MARGIN
        if lease is not None and lease < least:
            raise ValueError(f"an export lease of {lease:g}s is shorter than the request "
                             f"timeout plus {LEASE_MARGIN:g}s ({least:g}s): a slow request "
                             "would outlive it and another worker send the item again")
        target = url or log.audit.export_url
        if not target:
            from ..errors import ConfigError

            raise ConfigError("no export URL: set DNCGUARD_AUDIT_EXPORT_URL or [audit] "
                              "export_url")
        self.url = target
        self.log = log
        self.outbox = outbox or outbox_for(log)
        self.lease = least if lease is None else lease
        self.batch = batch
        headers = {"User-Agent": "dncguard-audit-export"}
        token = log.audit.export_token
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self.client = client or httpx.Client(timeout=log.audit.export_timeout, headers=headers)

    def close(self) -> None:
        self.client.close()

    def run_once(self) -> DeliveryReport:
        """Send every item due now once; returns what happened. The batch is claimed for
        :data:`LEASE_MARGIN` seconds, and each item's lease renewed for :attr:`lease` just
        before its POST: an item another worker took over meanwhile is skipped."""
        report = DeliveryReport()
        items = self.outbox.claim(EXPORT_TOPIC, self.batch, lease=LEASE_MARGIN)
        for item in items:
            if not self.outbox.renew([item.id], lease=self.lease):
                report.lost += 1
                continue
            try:
                resp = self.client.post(self.url, json=item.payload,
                                        headers={"Idempotency-Key": item.key})
                ok = 200 <= resp.status_code < 300
                # the receiver's answer may echo the request: its token is masked, then cut
                error = f"HTTP {resp.status_code}: " + _masked(resp.text, self.log.audit)[:200]
            except httpx.HTTPError as exc:  # its text may hold the URL: never its password
                ok, error = False, f"{type(exc).__name__}: {exc}".replace(
                    self.url, mask_url(self.url))
            if ok:
                acked = self.outbox.ack([item.id])
                report.sent += acked
                report.lost += 1 - acked
            else:
                status = self.outbox.fail(item.id, error)
                if status in (PENDING, DEAD):
                    report.failed += 1
                    report.dead += status == DEAD
                else:
                    report.lost += 1
        return report

    def run(self, *, until_idle: bool = True, max_rounds: int | None = None,
            sleep: Callable[[float], None] | None = None, idle_wait: float = 5.0
            ) -> DeliveryReport:
        """Deliver in rounds; stop when nothing is due (``until_idle``) or after
        ``max_rounds``. Between rounds with nothing due, ``sleep(idle_wait)``."""
        import time

        pause = sleep or time.sleep
        total = DeliveryReport()
        rounds = 0
        while max_rounds is None or rounds < max_rounds:
            rounds += 1
            got = self.run_once()
            total = total + got
            if got.sent == 0 and got.failed == 0:
                if until_idle:
                    break
                pause(idle_wait)
        return total


def outbox_metrics(log: AuditLog, now: datetime | None = None) -> dict[str, float]:
    """The export queue's numbers for a metrics endpoint (:meth:`Outbox.metrics`)."""
    return outbox_for(log).metrics(EXPORT_TOPIC, now)


# -- files ----------------------------------------------------------------------------------

CSV_COLUMNS = ["seq", "at", "kind", "action", "who", "subject", "number_hmac", "number_masked",
               "decision", "reason_codes", "versions", "data", "prev_hash", "hash"]
#: CSV columns dncguard writes in a fixed form (numbers, instants, hex digests, the masked
#: number ``+1202555****``): no letters, so a spreadsheet cannot run a function from them.
#: Every other cell may hold text from outside (a user's name, a list name, a reason) and is
#: defused (:func:`dncguard.io.verdict_file.defuse`).
_FIXED_FORM_COLUMNS = frozenset({"seq", "at", "number_hmac", "number_masked", "prev_hash",
                                 "hash"})


def write_records(records: Iterable[AuditRecord], out: IO[str], fmt: str = "ndjson") -> int:
    """Write records as NDJSON (one JSON object a line, values as recorded) or CSV (text a
    spreadsheet could run as a formula prefixed with ``'``); returns how many."""
    from ..io.verdict_file import defuse

    n = 0
    if fmt == "ndjson":
        for rec in records:
            out.write(json.dumps(rec.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
        return n
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}: use ndjson or csv")
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for rec in records:
        d = rec.to_dict()
        row = []
        for col in CSV_COLUMNS:
            v = d[col]
            if col == "reason_codes":
                v = ";".join(v)
            elif isinstance(v, dict):
                v = json.dumps(v, ensure_ascii=False, sort_keys=True)
            cell = "" if v is None else str(v)
            row.append(cell if col in _FIXED_FORM_COLUMNS else defuse(cell))
        w.writerow(row)
        n += 1
    return n


def export_file(log: AuditLog, path: Path, *, since: datetime | None = None,
                until: datetime | None = None, fmt: str | None = None) -> int:
    """Export records in [since, until) to ``path`` (format from ``fmt`` or the suffix).

    The file is written aside (``.NAME.partial`` next to it) and renamed into place; on any
    failure the partial file is removed and ``path`` is left as it was. An empty range
    (``since`` not before ``until``) and a folder as ``path`` are refused (:class:`InputError`).
    """
    lo, hi = as_utc(since), as_utc(until)
    if lo is not None and hi is not None and lo >= hi:
        raise InputError(f"the range is empty: since {lo.isoformat()} is not before until "
                         f"{hi.isoformat()}")
    if path.is_dir():
        raise InputError(f"{path} is a folder: give the name of the file to write")
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "ndjson")
    tmp = path.with_name(f".{path.name}.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = tmp.open("w", encoding="utf-8", newline="")  # failing, it leaves nothing to remove
    try:
        with fh:
            n = write_records(log.records(since=since, until=until), fh, fmt)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n
