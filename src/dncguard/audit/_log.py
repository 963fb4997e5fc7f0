"""The hash-chained audit log: tables, appends, verification, checkpoints and pruning.

Every record carries ``prev_hash`` (the hash of the record before it; 64 zeros for the
first) and ``hash`` = SHA-256 of its canonical JSON including ``prev_hash``. The single row of
``audit_head`` holds the sequence number and hash of the last record: appends lock that row
(an ``UPDATE`` first, which takes PostgreSQL's row lock and SQLite's write lock) so concurrent
writers on any number of processes or replicas extend one chain.

Every ``checkpoint_interval``-th record also lands in ``audit_checkpoints``. Pruning verifies
the chain, then deletes the records up to the newest checkpoint before the first record not
older than the retention period (by the records' own times); verification then starts from
that checkpoint's hash, so what remains still verifies, and the prune itself is a record in
the chain.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, overload

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from ..config import Settings
from ..errors import AuditError
from ..outbox import outbox_table
from ..phones import mask
from ..store import as_utc, get_engine, metadata, note_driver_error, sqlite_write_lock, utcnow
from ._chain import (
    Batch,
    Link,
    Pending,
    chain_rows,
    hashes_ok,
    hmac_pads,
    insert_records_pg,
    jtext,
    links,
    pending,
    quick_check,
    scan,
    sqlite_chain,
    stamps,
    write_chain,
)
from .settings import AuditSettings, audit_dir, hmac_key, load_audit_settings
from .tables import (
    AUDIT_TABLES,
    GENESIS,
    NOT_CHECKS,
    audit_checkpoints_table,
    audit_head_table,
    audit_records_table,
)

Clock = Callable[[], datetime]
#: How many times :meth:`AuditLog.verify` runs when a prune may have raced it.
_VERIFY_TRIES = 3


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime
    kind: str
    action: str
    who: str | None
    subject: str | None
    number_hmac: str | None
    number_masked: str | None
    decision: str | None
    reason_codes: list[str]
    versions: dict[str, Any]
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """What the hash covers (everything but ``seq`` and ``hash``)."""
        return {
            "at": _iso(self.at), "kind": self.kind, "action": self.action, "who": self.who,
            "subject": self.subject, "number_hmac": self.number_hmac,
            "number_masked": self.number_masked, "decision": self.decision,
            "reason_codes": self.reason_codes, "versions": self.versions, "data": self.data,
            "prev_hash": self.prev_hash,
        }

    def computed_hash(self) -> str:
        return record_hash(self.content())

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.content(), "hash": self.hash}


@dataclass
class VerifyResult:
    """The outcome of :meth:`AuditLog.verify`; ``bad_seq`` names the first bad record."""

    ok: bool
    checked: int
    first_seq: int | None = None
    last_seq: int | None = None
    head_seq: int = 0
    problem: str | None = None  # edited | deleted | reordered | truncated | checkpoint
    bad_seq: int | None = None
    message: str = "chain intact"
    anchored_at: int = 0  # the checkpoint the remaining chain starts from (0: genesis)
    notes: list[str] = field(default_factory=list)

    def fail(self, problem: str, seq: int, message: str) -> VerifyResult:
        """Mark this result failed at record ``seq``; returns it."""
        self.ok, self.problem, self.bad_seq, self.message = False, problem, seq, message
        return self


class ChainBroken(AuditError):
    """:meth:`AuditLog.prune` refused: the chain does not verify (``result`` says where)."""

    def __init__(self, result: VerifyResult) -> None:
        self.result = result
        super().__init__(
            f"the audit chain is broken ({result.problem}, record {result.bad_seq}): "
            f"{result.message}. Nothing was pruned: deleting records now could remove the "
            "evidence; investigate ('dncguard audit verify') and restore the database from a "
            "backup")


def _iso(value: datetime) -> str:
    v = as_utc(value)
    assert v is not None
    return v.isoformat()


def canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def record_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def record_of(row: Any) -> AuditRecord:
    """A record from its row as :meth:`AuditLog.select_records` reads it (the JSON columns,
    and on SQLite the time, as their stored text, parsed here). A row whose columns are not
    of the kinds dncguard writes (a time that is no time, JSON that does not parse or of
    another type, a job record whose sections are not what dncguard writes: an edited row)
    raises :class:`AuditError` naming the record, never a bare TypeError or ValueError."""
    try:
        rec = _parsed(row)
        if rec.kind == "job":
            _job_shape(rec.data)
        return rec
    except (TypeError, ValueError, RecursionError) as exc:
        raise AuditError(f"audit record {row.seq} is not stored as dncguard writes it "
                         f"({type(exc).__name__}); run 'dncguard audit verify'") from None


_JSON_COLUMNS: tuple[tuple[str, type], ...] = (
    ("reason_codes", list), ("versions", dict), ("data", dict))
_TEXT_COLUMNS = ("kind", "action", "prev_hash", "hash")
_NULLABLE_TEXT_COLUMNS = ("who", "subject", "number_hmac", "number_masked", "decision")


def _parsed(row: Any) -> AuditRecord:
    """A record from its columns as :func:`_stored_column` selects them, checking their
    types; raises TypeError, ValueError (a time or JSON that does not parse) or
    RecursionError (JSON nested too deep)."""
    at = as_utc(row.at if isinstance(row.at, datetime) else datetime.fromisoformat(row.at))
    assert at is not None
    values: dict[str, Any] = {}
    for name, kind in _JSON_COLUMNS:
        value = json.loads(getattr(row, name))  # TypeError for a number or NULL
        if type(value) is not kind:
            raise TypeError(f"{name} is not a {kind.__name__}")
        values[name] = value
    if not all(isinstance(code, str) for code in values["reason_codes"]) or not isinstance(
            values["versions"].get("lists", {}), dict):
        raise TypeError("reason_codes or versions")
    if not all(isinstance(getattr(row, name), str) for name in _TEXT_COLUMNS) or not all(
            isinstance(getattr(row, name), str | None) for name in _NULLABLE_TEXT_COLUMNS):
        raise TypeError("a text column")
    return AuditRecord(
        seq=int(row.seq), at=at, kind=row.kind, action=row.action, who=row.who,
        subject=row.subject, number_hmac=row.number_hmac, number_masked=row.number_masked,
        decision=row.decision, reason_codes=values["reason_codes"],
        versions=values["versions"], data=values["data"], prev_hash=row.prev_hash,
        hash=row.hash)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _counts(value: Any) -> bool:
    return isinstance(value, dict) and all(_count(v) for v in value.values())


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


Fields = dict[str, Callable[[Any], bool]]
#: What `audit jobs`, search, the report and proofs read of a job record's sections.
_JOB_SECTIONS: dict[str, Fields] = {
    "summary": {**dict.fromkeys(("totalRows", "uniqueValid", "uniqueSuppressed", "duplicates",
                                 "sourceErrors", "rowErrorCount"), _count),
                "byDecision": _counts, "byReason": _counts, "byList": _counts,
                "byState": lambda v: isinstance(v, dict) and all(map(_counts, v.values())),
                "suppressionRate": lambda v: v is None or _count(v) or isinstance(v, float),
                "lists": lambda v: isinstance(v, dict),
                **dict.fromkeys(("ruleset", "dial_time", "started_at", "finished_at",
                                 "campaign", "input"), _text)},
    "results": {"file": _text, "sha256": _text, "retained": _text,
                "rows": lambda v: v is None or _count(v)},
    "merkle": {"root": lambda v: isinstance(v, str), "leaf": _text, "leaves": _count,
               "rows": _count, "block_rows": _count},
}


def _job_shape(data: dict[str, Any]) -> None:
    """Raise TypeError unless a job record's ``summary``, ``results`` and ``merkle`` (when
    present) are objects whose fields are of the types dncguard writes."""
    for name, fields in _JOB_SECTIONS.items():
        if name not in data:
            continue
        section = data[name]
        if not isinstance(section, dict) or not all(
                ok(section[k]) for k, ok in fields.items() if k in section):
            raise TypeError(f"a job record's {name}")


def _stored_column(col: Column[Any], sqlite: bool) -> ColumnElement[Any]:
    """A column of ``audit_records`` selected as stored: the JSON columns as their text, and
    on SQLite the time as its text too (PostgreSQL stores an instant, not text)."""
    if isinstance(col.type, JSON):
        return (type_coerce(col, String) if sqlite else cast(col, Text)).label(col.name)
    if col.name == "at" and sqlite:
        return type_coerce(col, String).label(col.name)
    return col


def _as_stored(row: Any, sqlite: bool) -> AuditRecord | None:
    """A record from its columns as stored (:func:`_stored_column`), or None when they do not
    re-encode to themselves, i.e. are not what dncguard writes: JSON of another type, or other
    text for the same value (only its canonical text, or ``json.dumps``'s, which records
    written before the canonical encoding hold); on SQLite a BLOB in place of text, or a time
    in another form than :func:`.stamps`'s (another offset for the same instant: ranges and
    exports compare the stored text)."""
    try:
        if sqlite and not isinstance(row.at, str):
            return None
        rec = _parsed(row)
        if sqlite and stamps(rec.at)[1] != row.at:
            return None
        texts = [getattr(row, name) for name, _ in _JSON_COLUMNS]
        if not all(isinstance(text, str) and text in (jtext(value), json.dumps(value))
                   for text, value in zip(texts, (rec.reason_codes, rec.versions, rec.data),
                                          strict=True)):
            return None
    except (TypeError, ValueError, RecursionError):  # JSON that does not parse, and the like
        return None
    return rec


def _instant(value: Any) -> datetime | None:
    """A stored time (a datetime, or SQLite's text) as a UTC instant; None if it is none."""
    try:
        return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))
    except (TypeError, ValueError):
        return None


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so what is hashed is exactly what the database returns."""
    return json.loads(json.dumps(value, default=str))


#: Why nothing is appended to a trail whose head row is gone.
NO_HEAD = ("the audit chain's head (the audit_head row) is missing while the trail holds "
           "records: it was deleted, so where the chain ends is unknown and nothing more is "
           "appended to it ('dncguard audit verify' reports it); restore the database from a "
           "backup")


def _started(conn: Connection) -> bool:
    """Whether the trail holds records or checkpoints: a missing head row was then deleted,
    and is not made again (verification reports it; appends refuse)."""
    return any(conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None
               for table in (audit_records_table, audit_checkpoints_table))


def ensure_tables(bind: Engine | Connection) -> None:
    """Create the audit tables (idempotent) and the chain's head row, unless the trail holds
    records already (then a missing head was deleted: that is left for verification to
    report, not covered up).

    Pass the caller's connection when a transaction is open on it: on SQLite, DDL from another
    connection would wait for that transaction's write lock.
    """
    # The outbox table too: an export is enqueued inside the audit transaction, where creating
    # a table from another connection would wait on SQLite's write lock.
    tables = [*AUDIT_TABLES, outbox_table]
    head = select(audit_head_table.c.id).where(audit_head_table.c.id == 1)
    if isinstance(bind, Connection):
        metadata.create_all(bind, tables=tables)
        if bind.execute(head).first() is None and not _started(bind):
            bind.execute(insert(audit_head_table).values(
                id=1, seq=0, hash=GENESIS, updated_at=utcnow()))
        return
    for attempt in range(3):
        try:
            metadata.create_all(bind, tables=tables)
            break
        except (OperationalError, ProgrammingError):  # another process created one first
            if attempt == 2:
                raise
    with bind.connect() as conn:
        missing = conn.execute(head).first() is None and not _started(conn)
    if missing:
        try:
            with bind.begin() as conn:
                conn.execute(insert(audit_head_table).values(
                    id=1, seq=0, hash=GENESIS, updated_at=utcnow()))
        except IntegrityError:  # a concurrent process created it
            pass


def _prune_data(body: str | None) -> dict[str, Any]:
    """A prune record's data from what verification read: its rebuilt JSON (SQLite) or its
    data column (PostgreSQL)."""
    found: dict[str, Any] = json.loads(body or "{}")
    inner = found.get("data") if "prev_hash" in found else found
    return dict(inner or {})


# The head's two statements, built once: an append is a short transaction (a group commit
# of a few checks), where building them took about as long as running them.
_h = audit_head_table
_LOCK_HEAD = (update(_h).where(_h.c.id == 1).values(updated_at=bindparam("now"))
              .returning(_h.c.seq, _h.c.hash))
_SQLITE_LOCK_HEAD = "UPDATE audit_head SET updated_at = ? WHERE id = 1 RETURNING seq, hash"
_SQLITE_NEW_HEAD = "INSERT INTO audit_head (id, seq, hash, updated_at) VALUES (1, 0, ?, ?)"
_SQLITE_STARTED = ("SELECT EXISTS (SELECT 1 FROM audit_records) "
                   "OR EXISTS (SELECT 1 FROM audit_checkpoints)")
_SQLITE_MOVE_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"
_SQLITE_CHECKPOINT = ("INSERT INTO audit_checkpoints (seq, hash, at, created_at) "
                      "VALUES (?, ?, ?, ?)")
_PG_LOCK_HEAD = _SQLITE_LOCK_HEAD.replace("?", "%s")
_PG_NEW_HEAD = _SQLITE_NEW_HEAD.replace("?", "%s")
_PG_STARTED = _SQLITE_STARTED
_PG_MOVE_HEAD = _SQLITE_MOVE_HEAD.replace("?", "%s")
_PG_CHECKPOINT = _SQLITE_CHECKPOINT.replace("?", "%s")
_MOVE_HEAD = update(_h).where(_h.c.id == 1).values(seq=bindparam("new_seq"),
                                                   hash=bindparam("new_hash"))
del _h


#: Records at or below the chain head: one appended without the audit log (beyond the
#: head, which every append moves in its own transaction) is forged, and left out of a
#: search. No head row (deleted: verification reports it) leaves every record in.
WITHIN_HEAD = audit_records_table.c.seq <= func.coalesce(
    select(audit_head_table.c.seq).where(audit_head_table.c.id == 1).scalar_subquery(),
    audit_records_table.c.seq)


def checkpointed(first: int, last: int, every: int) -> range:
    """The sequence numbers among ``first..last`` that are checkpointed (every ``every``-th
    record of the chain; none when ``every`` is 0)."""
    return range(first + (-first) % every, last + 1, every) if every else range(0)


def _head_from(cur: Any, row: Any, started: str, new_head: str, now: Any) -> tuple[int, str]:
    """The chain head ``(seq, hash)`` the lock's statement read (``row``), or, with no head
    row, a new one at the genesis, never over records or checkpoints (then NO_HEAD: the head
    was deleted). ``cur`` is a driver cursor whose ``execute`` returns itself (sqlite3's and
    psycopg's); ``started`` and ``new_head`` are its driver's statements."""
    if row is not None:
        return int(row[0]), str(row[1])
    if cur.execute(started).fetchone()[0]:
        raise AuditError(NO_HEAD)
    cur.execute(new_head, (GENESIS, now))
    return 0, GENESIS


class AuditLog:
    """Appends to and verifies the audit chain of one home / database."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None,
                 audit: AuditSettings | None = None, clock: Clock = utcnow,
                 conn: Connection | None = None) -> None:
        self.settings = settings
        self.audit = audit or load_audit_settings(settings)
        self.engine = engine or get_engine(settings)
        self.clock = clock
        self._key: bytes | None = None
        self._pads: tuple[Any, Any] | None = None
        self.key_generated = False
        ensure_tables(conn if conn is not None else self.engine)

    # -- numbers ----------------------------------------------------------------------------
    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key, self.key_generated = hmac_key(self.settings, self.audit)
        return self._key

    def number_hmac(self, number: str) -> str:
        """HMAC-SHA256 of an E.164 number with the audit key (hex): RFC 2104 with the key's
        pads hashed once (copying a hash state is much cheaper than a new HMAC)."""
        pads = self._pads
        if pads is None:
            pads = self._pads = hmac_pads(self.key)
        inner = pads[0].copy()
        inner.update(number.encode("utf-8"))
        outer = pads[1].copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())

    @property
    def folder(self) -> Path:
        return audit_dir(self.settings)

    # -- appending --------------------------------------------------------------------------
    def append(
        self,
        kind: str,
        action: str,
        *,
        who: str | None = None,
        subject: str | None = None,
        number: str | None = None,
        decision: str | None = None,
        reason_codes: list[str] | None = None,
        versions: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        at: datetime | None = None,
        conn: Connection | None = None,
    ) -> AuditRecord:
        """Append one record (in ``conn``'s transaction when given, else in its own).

        ``number`` (E.164) is stored only as its HMAC and masked form.
        """
        fields = self.fields(kind, action, who=who, subject=subject, number=number,
                             decision=decision, reason_codes=reason_codes, versions=versions,
                             data=data, at=at)
        if conn is not None:
            return self._append(conn, fields)
        with self.engine.begin() as own:
            return self._append(own, fields)

    def fields(self, kind: str, action: str, *, who: str | None = None,
               subject: str | None = None, number: str | None = None,
               decision: str | None = None, reason_codes: list[str] | None = None,
               versions: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
               at: datetime | None = None, native: bool = False) -> Pending:
        """One record, encoded (the arguments of :meth:`append`), for :meth:`append_many`.

        ``native``: the values are already JSON-native and hold no numbers (string keys,
        lists, strings, None, booleans), so the round trip through JSON that normalises
        them is skipped and a faster encoder writes the same canonical text.
        """
        when = as_utc(at or self.clock())
        assert when is not None
        codes: list[str] = list(reason_codes or [])
        vers: dict[str, Any] = versions or {}
        values: dict[str, Any] = data or {}
        if not native:
            codes, vers, values = _jsonable(codes), _jsonable(vers), _jsonable(values)
        return pending(when, kind, action, who, subject,
                       self.number_hmac(number) if number else None,
                       mask(number) if number else None, decision, codes, vers, values,
                       plain=native)

    def append_many(self, many: list[Pending], *, conn: Connection | None = None
                    ) -> list[AuditRecord]:
        """Append several records (built with :meth:`fields`) under one lock, in order, in
        one transaction (``conn``'s when given): one chain step per record, one insert."""
        if conn is not None:
            return self._write(conn, many)
        with sqlite_write_lock(self.engine), self.engine.begin() as own:
            return self._write(own, many)

    def append_quiet(self, many: list[Pending]) -> tuple[int, str]:
        """:meth:`append_many` in its own transaction, returning only the new head
        ``(seq, hash)`` (the group-commit writer needs no record objects)."""
        return self.append_gathered(lambda: many)

    def append_gathered(self, take: Callable[[], list[Pending]]) -> tuple[int, str]:
        """Append, in one transaction, the records ``take()`` returns; it is called once
        the chain head is locked, so records handed over while this waited for the lock
        (another process's transaction) join this one (the group-commit writer). The new
        head ``(seq, hash)``."""
        if self.engine.dialect.name == "sqlite":
            with sqlite_write_lock(self.engine):
                return self._append_sqlite(take)
        if self.engine.dialect.name == "postgresql":
            return self._append_postgres(take)
        with self.engine.begin() as own:
            head = self._lock_head(own)
            return self._write(own, take(), records=False, head=head)

    def _append_postgres(self, take: Callable[[], list[Pending]]) -> tuple[int, str]:
        """:meth:`append_gathered` on PostgreSQL through the driver, in psycopg's pipeline
        mode: the transaction's statements go out together instead of one round trip each.
        Locking the head (with its BEGIN) is one round trip, the records' COPY two (a
        pipeline cannot carry a COPY; pipelined INSERTs, one or one per record, were slower
        for every count from 1 to 200), the head's move, the checkpoints and the COMMIT
        one: four, where the same transaction through SQLAlchemy took six (besides the
        pool's ping), and a group of pre-dial checks waits for its commit (measured in
        docs/performance.md). Raises SQLAlchemy's DBAPIError for the driver's errors, as the
        other paths do."""
        dbapi: Any = self.engine.dialect.loaded_dbapi
        raw: Any = self.engine.raw_connection()
        try:
            pg = raw.driver_connection
            try:
                with pg.cursor() as cur:
                    now = utcnow()
                    with pg.pipeline():
                        cur.execute(_PG_LOCK_HEAD, (now,))
                        row = cur.fetchone()
                    seq, prev = _head_from(cur, row, _PG_STARTED, _PG_NEW_HEAD, now)
                    many = take()
                    if many:
                        first = seq + 1
                        chained = chain_rows(many, seq, prev)
                        seq, prev = seq + len(many), chained[-1][3]
                        insert_records_pg(pg, chained)
                        every = self.audit.checkpoint_interval
                        marks = [(s, chained[s - first][3], many[s - first].at_text, now)
                                 for s in checkpointed(first, seq, every)]
                        with pg.pipeline():
                            cur.execute(_PG_MOVE_HEAD, (seq, prev))
                            if marks:
                                cur.executemany(_PG_CHECKPOINT, marks)
                            pg.commit()
                    else:
                        pg.commit()
            except BaseException:
                pg.rollback()
                raise
        except dbapi.Error as exc:
            if note_driver_error(self.engine, exc, raw.dbapi_connection):
                raw.invalidate(exc)  # never put back into the pool
            raise DBAPIError.instance("audit append", None, exc, dbapi.Error) from exc
        finally:
            raw.close()
        return seq, prev

    def _append_sqlite(self, take: Callable[[], list[Pending]], *, keep: bool = True
                       ) -> tuple[int, str]:
        """:meth:`append_gathered` on SQLite through the driver: the statements of
        :meth:`_write` without SQLAlchemy's execution machinery, which costs more than the
        statements themselves for the few records of a group commit (0.43 against 0.23 ms
        of CPU for a commit of five records, of which the commit's own write is most).
        ``keep=False`` rolls the transaction back (:meth:`probe`). Raises SQLAlchemy's
        DBAPIError for the driver's errors, as the other paths do."""
        try:
            raw: Any = self.engine.raw_connection()
        except sqlite3.Error as exc:  # opening the connection (its pragmas)
            raise DBAPIError.instance("audit append", None, exc, sqlite3.Error) from exc
        try:
            db = raw.driver_connection
            cur = db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                now = stamps(utcnow())[1]
                row = cur.execute(_SQLITE_LOCK_HEAD, (now,)).fetchone()
                seq, prev = _head_from(cur, row, _SQLITE_STARTED, _SQLITE_NEW_HEAD, now)
                many = take()
                if many:
                    first = seq + 1
                    digests = sqlite_chain(cur, many, seq, prev)
                    seq, prev = seq + len(many), digests[-1]
                    cur.execute(_SQLITE_MOVE_HEAD, (seq, prev))
                    every = self.audit.checkpoint_interval
                    marks = [(s, digests[s - first], many[s - first].at_sqlite, now)
                             for s in checkpointed(first, seq, every)]
                    if marks:
                        cur.executemany(_SQLITE_CHECKPOINT, marks)
                if keep:
                    db.commit()
                else:
                    db.rollback()
            except BaseException:
                if db.in_transaction:
                    db.rollback()
                raise
            finally:
                cur.close()
        except sqlite3.Error as exc:  # reported as SQLAlchemy reports it on the other paths
            raise DBAPIError.instance("audit append", None, exc, sqlite3.Error) from exc
        finally:
            raw.close()
        return seq, prev

    def _lock_head(self, conn: Connection) -> tuple[int, str]:
        """Lock the chain head for this transaction and read it."""
        h = audit_head_table
        # A write first: PostgreSQL takes the row lock (like SELECT ... FOR UPDATE), SQLite
        # takes its database write lock, so what it returns is the latest committed head.
        row = conn.execute(_LOCK_HEAD, {"now": utcnow()}).first()
        if row is None:
            if _started(conn):
                raise AuditError(NO_HEAD)
            conn.execute(insert(h).values(id=1, seq=0, hash=GENESIS, updated_at=utcnow()))
            return 0, GENESIS
        return int(row.seq), str(row.hash)

    def _append(self, conn: Connection, fields: Pending) -> AuditRecord:
        return self._write(conn, [fields])[0]

    @overload
    def _write(self, conn: Connection, many: list[Pending]) -> list[AuditRecord]: ...

    @overload
    def _write(self, conn: Connection, many: list[Pending], records: Literal[False],
               head: tuple[int, str] | None = None) -> tuple[int, str]: ...

    def _write(self, conn: Connection, many: list[Pending], records: bool = True,
               head: tuple[int, str] | None = None) -> list[AuditRecord] | tuple[int, str]:
        """Lock the head (unless ``head`` is what this transaction's lock read), chain
        ``many`` after it, insert them, move the head, checkpoint; the records (or, with
        ``records=False``, only the new head)."""
        if not many:
            return [] if records else head or self._lock_head(conn)
        seq, prev = head or self._lock_head(conn)
        first = seq + 1
        digests = write_chain(conn, many, seq, prev)
        seq += len(many)
        conn.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digests[-1]})
        every = self.audit.checkpoint_interval
        if every:
            now = utcnow()
            marks = [{"seq": s, "hash": digests[s - first], "at": many[s - first].at,
                      "created_at": now} for s in checkpointed(first, seq, every)]
            if marks:
                conn.execute(insert(audit_checkpoints_table), marks)
        if not records:
            return seq, digests[-1]
        return [AuditRecord(s, p.at, p.kind, p.action, p.who, p.subject, p.number_hmac,
                            p.number_masked, p.decision, p.reason_codes, p.versions, p.data,
                            pv, d)  # AuditRecord's field order
                for s, p, pv, d in zip(range(first, seq + 1), many, [prev, *digests[:-1]],
                                       digests, strict=True)]

    def probe(self) -> None:
        """A trial append (lock, chain, insert, move the head) by the path appends take,
        rolled back: raises when the chain cannot be written now."""
        trial = [self.fields("probe", "probe", native=True)]
        if self.engine.dialect.name == "sqlite":  # the path the group commit takes
            with sqlite_write_lock(self.engine):
                self._append_sqlite(lambda: trial, keep=False)
            return
        with self.engine.connect() as conn:
            tx = conn.begin()
            try:
                self._write(conn, trial)
            finally:
                tx.rollback()

    def checkpoint(self) -> int:
        """Checkpoint the current head now (also done every ``checkpoint_interval`` records)."""
        with self.engine.begin() as conn:
            seq, digest = self._lock_head(conn)
            if seq == 0:
                return 0
            row = conn.execute(select(audit_records_table.c.at).where(
                audit_records_table.c.seq == seq)).first()
            done = conn.execute(select(audit_checkpoints_table.c.seq).where(
                audit_checkpoints_table.c.seq == seq)).first()
            if row is not None and done is None:
                conn.execute(insert(audit_checkpoints_table).values(
                    seq=seq, hash=digest, at=row.at, created_at=utcnow()))
        return seq

    # -- reading ----------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """The chain head ``(seq, hash)``; ``(0, GENESIS)`` when there is no head row."""
        return self._head_row() or (0, GENESIS)

    def _head_row(self) -> tuple[int, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_head_table.c.seq, audit_head_table.c.hash).where(
                audit_head_table.c.id == 1)).first()
        return (int(row.seq), str(row.hash)) if row else None

    def select_records(self) -> Select[Any]:
        """A select of ``audit_records`` whose rows :func:`record_of` reads: the columns as
        stored (:func:`_stored_column`), so a value that does not parse is named with its
        record rather than raised while the rows are fetched."""
        sqlite = self.engine.dialect.name == "sqlite"
        return select(*[_stored_column(c, sqlite) for c in audit_records_table.c])

    def records(self, *, since: datetime | None = None, until: datetime | None = None,
                kind: str | None = None, upto: int | None = None, batch: int = 5000
                ) -> Iterator[AuditRecord]:
        """Records in chain order, optionally within [since, until) (instants, in any time
        zone), of one kind, and with sequence numbers up to ``upto``."""
        t = audit_records_table
        # UTC, as the times are stored: SQLite compares the stored text, so a bound in
        # another zone would be compared as its wall-clock time
        since, until = as_utc(since), as_utc(until)
        last = 0
        while True:
            q = self.select_records().where(t.c.seq > last)
            if upto is not None:
                q = q.where(t.c.seq <= upto)
            if since is not None:
                q = q.where(t.c.at >= since)
            if until is not None:
                q = q.where(t.c.at < until)
            if kind is not None:
                q = q.where(t.c.kind == kind)
            with self.engine.connect() as conn:
                rows = conn.execute(q.order_by(t.c.seq).limit(batch)).all()
            if not rows:
                return
            for row in rows:
                yield record_of(row)
            last = int(rows[-1].seq)

    def get(self, seq: int) -> AuditRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(self.select_records().where(
                audit_records_table.c.seq == seq)).first()
        return record_of(row) if row else None

    def find(self, kind: str, subject: str, actions: Sequence[str] | None = None
             ) -> AuditRecord | None:
        """The latest record of that kind about that subject (e.g. a job id), of one of
        ``actions`` when given (a list's ``import`` or ``rm``)."""
        t = audit_records_table
        q = self.select_records().where(t.c.kind == kind, t.c.subject == subject)
        if actions is not None:
            q = q.where(t.c.action.in_(list(actions)))
        if kind != "check":
            q = q.where(NOT_CHECKS)  # the partial index's own term, so that it is used
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(t.c.seq.desc()).limit(1)).first()
        return record_of(row) if row else None

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(
                audit_records_table)).scalar_one())

    # -- verification -----------------------------------------------------------------------
    def verify(self) -> VerifyResult:
        """Check the whole remaining chain; the result names the first bad record.

        A failure that a prune committed meanwhile would also cause (the records up to a
        checkpoint gone, and the prune's own record beyond the head this read) is checked
        again, from the start, when the head has moved since it was read."""
        for _ in range(_VERIFY_TRIES):
            res, head, racy = self._verify()
            if not racy or self._head_row() == head:
                break
        return res

    def _verify(self) -> tuple[VerifyResult, tuple[int, str] | None, bool]:
        """One verification: the result, the head it read (None: no head row), and whether
        its failure is one a concurrent prune would also cause."""
        # Checkpoints first, then the head: a checkpoint and the head move in one transaction,
        # so every checkpoint read is covered by the head read after it. Records appended while
        # this runs (beyond that head) are left for the next verification; a record beyond the
        # head in the head's own snapshot was not appended through the log.
        with self.engine.connect() as conn:
            cps = {int(r.seq): str(r.hash) for r in conn.execute(
                select(audit_checkpoints_table.c.seq, audit_checkpoints_table.c.hash)).all()}
        head, forged = self._head_and_beyond()
        head_seq, head_hash = head or (0, GENESIS)
        res = VerifyResult(ok=True, checked=0, head_seq=head_seq)
        bad = res.fail
        if head is None:  # only an empty trail is without one (appends refuse to make it)
            t = audit_records_table
            with self.engine.connect() as conn:
                low, high = conn.execute(select(func.min(t.c.seq), func.max(t.c.seq))).one()
            if low is not None:
                return bad("head", int(low), f"the chain head (the audit_head row) is missing "
                           f"but records {low} to {high} remain: it was deleted"), head, False
        walk = _Walk(self, cps, res)
        for batch in scan(self.engine, head_seq):
            if batch.count and (found := walk.batch(batch)) is not None:
                return found, head, False
        expected_seq, expected_prev, prunes = walk.seq, walk.prev, walk.prunes
        last = res.last_seq or 0
        if res.anchored_at and prunes.get(res.anchored_at) != cps.get(res.anchored_at):
            earlier = [t for t in prunes if t < res.anchored_at]
            start = max(earlier) + 1 if earlier else 1
            return bad("deleted", start, f"records {start} to {res.anchored_at} were deleted "
                       "without a prune: no prune record in the chain covers them"), head, True
        if expected_seq is None and head_seq:
            # A prune leaves a record of its own beyond the head, so records at or below a
            # head above 0 are never all gone: at least those after the newest checkpoint
            # below the head (the furthest a prune could have reached) were deleted.
            below = [seq for seq in cps if seq < head_seq]
            return bad("truncated", max(below) + 1 if below else 1,
                       f"every record is gone but the head says {head_seq} were written "
                       "(a prune leaves a record of its own)"), head, True
        beyond = [seq for seq in cps if seq > max(last, head_seq)]
        if beyond:
            return bad("truncated", max(last, head_seq) + 1, f"truncated: checkpoint "
                       f"{max(beyond)} exists but the chain ends at record {last}"), head, False
        if head_seq > last:
            return bad("truncated", last + 1, f"truncated: records {last + 1} to {head_seq} are "
                       f"missing (the chain ends at record {last}, the head at {head_seq})"
                       ), head, False
        if forged is not None:
            return bad("edited", forged, f"record {forged} was not appended through the "
                       f"audit log (the chain head is at {head_seq})"), head, False
        if expected_seq is None:  # no records, none expected
            res.message = "no records"
            return res, head, False
        if head_hash != expected_prev:
            return bad("edited", last, f"record {last} does not match the chain head"), head, False
        if (moved := self._checkpoint_moved(head_seq)) is not None:
            return bad("checkpoint", moved, f"checkpoint {moved}'s time does not match record "
                       f"{moved}'s: the checkpoint or the record was altered"), head, False
        noun = "record" if res.checked == 1 else "records"
        res.message = (f"chain intact: {res.checked:,} {noun} ({res.first_seq} to {last})"
                       + (f", anchored at checkpoint {res.anchored_at}" if res.anchored_at
                          else ""))
        return res, head, False

    def _head_and_beyond(self) -> tuple[tuple[int, str] | None, int | None]:
        """The chain head (None: no head row) and the first record beyond it, read in one
        statement (one snapshot): an append inserts its records and moves the head in one
        transaction, so a record beyond the head there was not appended through the log,
        whatever is being appended meanwhile."""
        h, t = audit_head_table, audit_records_table
        first_beyond = select(func.min(t.c.seq)).where(t.c.seq > h.c.seq).scalar_subquery()
        with self.engine.connect() as conn:
            row = conn.execute(select(h.c.seq, h.c.hash, first_beyond.label("beyond"))
                               .where(h.c.id == 1)).first()
        if row is None:
            return None, None
        return (int(row.seq), str(row.hash)), None if row.beyond is None else int(row.beyond)

    def _checkpoint_moved(self, upto: int) -> int | None:
        """The first checkpoint up to ``upto`` whose time is not its record's (pruning goes
        by the records' own times, but a checkpoint is a copy of its record)."""
        c, t = audit_checkpoints_table, audit_records_table
        sqlite = self.engine.dialect.name == "sqlite"
        c_at, r_at = ((type_coerce(c.c.at, String), type_coerce(t.c.at, String)) if sqlite
                      else (c.c.at, t.c.at))
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.c.seq, c_at.label("c_at"), r_at.label("r_at"))
                                .join_from(c, t, t.c.seq == c.c.seq)
                                .where(c.c.seq <= upto, c_at != r_at)
                                .order_by(c.c.seq)).all()
        for row in rows:  # another text for the same instant (SQLite) is the same time
            if _instant(row.c_at) is None or _instant(row.c_at) != _instant(row.r_at):
                return int(row.seq)
        return None

    def _records_at(self, seqs: list[int]) -> dict[int, AuditRecord]:
        """The records at these sequence numbers, from their columns as stored; one whose
        columns do not re-encode to themselves (:func:`_as_stored`) is left out
        (verification names it edited)."""
        t = audit_records_table
        sqlite = self.engine.dialect.name == "sqlite"
        stored = self.select_records()
        out: dict[int, AuditRecord] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(seqs), 500):
                for row in conn.execute(stored.where(t.c.seq.in_(seqs[i:i + 500]))).all():
                    rec = _as_stored(row, sqlite)
                    if rec is not None:
                        out[rec.seq] = rec
        return out

    def _seq_of_hash(self, digest: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(audit_records_table.c.seq).where(
                audit_records_table.c.hash == digest)).first()
        return int(row.seq) if row else None

    # -- retention --------------------------------------------------------------------------
    def prune(self, *, now: datetime | None = None, retention_days: int | None = None,
              who: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Delete records older than the retention period, up to the newest checkpoint
        before the first record that is not.

        Only whole checkpointed stretches go: the first remaining record is then chained to a
        checkpoint. How far is decided from the records' own times (hashed into the chain),
        never from the checkpoints' copies. Retained job files of pruned job records go too.
        The prune is recorded. The chain is verified first: a broken chain raises
        :class:`ChainBroken` and nothing is deleted (that would remove the evidence, and the
        prune's record would chain on from it). ``retention_days`` overrides the setting;
        below 1 it is refused (:class:`InputError`): it would reach records of today or the
        future, i.e. the whole checkpointed trail.
        """
        from ..errors import InputError

        if retention_days is not None and retention_days < 1:
            raise InputError(f"retention_days: {retention_days} is not a number of days; "
                             "give 1 or more")
        now = as_utc(now or self.clock())
        assert now is not None
        days = self.audit.retention_days if retention_days is None else retention_days
        cutoff = now - timedelta(days=days)
        t, c = audit_records_table, audit_checkpoints_table
        out: dict[str, Any] = {"cutoff": _iso(cutoff), "through": 0, "deleted": 0, "jobs": []}
        checked = self.verify()
        if not checked.ok:
            raise ChainBroken(checked)
        with self.engine.begin() as conn:
            self._lock_head(conn)
            # Records up to the verified end only; none from the first not older than the
            # cutoff on (appends read the clock before the lock, so times may step back).
            young = conn.execute(select(t.c.seq).where(t.c.at >= cutoff)
                                 .order_by(t.c.seq).limit(1)).scalar()
            upto = checked.last_seq or 0
            if young is not None:
                upto = min(upto, int(young) - 1)
            cp = conn.execute(select(c.c.seq, c.c.hash).where(c.c.seq <= upto)
                              .order_by(c.c.seq.desc()).limit(1)).first()
            if cp is None:
                return out
            through = int(cp.seq)
            first = conn.execute(select(func.min(t.c.seq))).scalar()
            if first is None or int(first) > through:
                return out
            jobs = [str(r.subject) for r in conn.execute(select(t.c.subject).where(
                t.c.seq <= through, t.c.kind == "job")).all() if r.subject]
            n = int(conn.execute(select(func.count()).select_from(t).where(
                t.c.seq <= through)).scalar_one())
            out.update(through=through, deleted=n, jobs=jobs, checkpoint=str(cp.hash))
            if dry_run:
                return out
            conn.execute(delete(t).where(t.c.seq <= through))
            self._append(conn, self.fields(
                "prune", "prune", who=who, at=now,
                data={"through_seq": through, "checkpoint_hash": str(cp.hash), "deleted": n,
                      "cutoff": _iso(cutoff), "retention_days": days, "jobs": len(jobs)}))
        for job in jobs:
            folder = self.folder / "jobs" / safe_name(job)
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
        return out


class _Walk:
    """Verification's walk along the chain: the record that must come next and the hash it
    must be chained to; a range of records at a time (:func:`.chain.quick_check`), or row by
    row when a range does not pass, which names the first bad record."""

    def __init__(self, log: AuditLog, checkpoints: dict[int, str], res: VerifyResult) -> None:
        self.log, self.cps, self.res = log, checkpoints, res
        self.seq: int | None = None  # the next record's sequence number (None: not started)
        self.prev = GENESIS
        self.prunes: dict[int, str] = {}  # through_seq -> checkpoint hash, from prune records

    def start(self, seq: int) -> VerifyResult | None:
        """The first remaining record is ``seq``: find its anchor."""
        self.res.first_seq = seq
        if seq > 1:
            anchor = self.cps.get(seq - 1)
            if anchor is None:
                return self.res.fail("deleted", 1, f"records 1 to {seq - 1} are missing and "
                                     "no checkpoint covers them: they were deleted")
            self.prev = anchor
            self.res.anchored_at = seq - 1
        self.seq = seq
        return None

    def batch(self, b: Batch) -> VerifyResult | None:
        """Check the records of one range (it holds at least one); a failed result or None."""
        if self.seq is None:
            assert b.first is not None
            if (failed := self.start(int(b.first))) is not None:
                return failed
        assert self.seq is not None
        quick = quick_check(b, self.seq, self.prev, self.cps)
        if quick is not None:
            unhashed, last_hash = quick
            prunes = [int(x) for x in b.prunes.split(",")] if b.prunes else []
            parsed = self.log._records_at(unhashed + prunes) if unhashed or prunes else {}
            if all((rec := parsed.get(seq)) is not None and rec.computed_hash() == rec.hash
                   for seq in unhashed) and all(seq in parsed for seq in prunes):
                for seq in prunes:
                    self._prune(parsed[seq].data)
                self.seq, self.prev = self.seq + b.count, last_hash
                self.res.checked += b.count
                self.res.last_seq = b.last
                return None
        return self.rows(links(self.log.engine, b.after, b.upto))

    def _prune(self, data: dict[str, Any]) -> None:
        self.prunes[int(data.get("through_seq", 0))] = str(data.get("checkpoint_hash", ""))

    def rows(self, found: list[Link]) -> VerifyResult | None:
        """Check records one by one; a failed result or None."""
        res, bad, cps = self.res, self.res.fail, self.cps
        if not found:
            return None
        oks = hashes_ok(found)
        slow: dict[int, AuditRecord] = {}
        if not all(oks):  # not canonical text (older records), or edited
            slow = self.log._records_at([ln[0] for ln, ok in zip(found, oks, strict=True)
                                         if not ok])
        for (seq, prev_hash, digest, kind, _, body), ok in zip(found, oks, strict=True):
            if self.seq is None and (failed := self.start(seq)) is not None:
                return failed
            assert self.seq is not None
            if seq != self.seq:
                expected_seq = self.seq
                missing = (f"record {expected_seq}" if seq == expected_seq + 1
                           else f"records {expected_seq} to {seq - 1}")
                return bad("deleted", expected_seq, f"{missing} deleted (the chain jumps "
                           f"from record {expected_seq - 1} to record {seq})")
            rec = slow.get(seq)
            if not ok and rec is None:
                return bad("edited", seq, f"record {seq} was edited: a column no longer holds "
                           "what was written (other text for its value, another type, a "
                           "BLOB, or a time in another form)")
            if not ok and rec is not None and rec.computed_hash() != rec.hash:
                return bad("edited", seq, f"record {seq} was edited: its content no "
                           "longer matches its hash")
            if prev_hash != self.prev:
                moved = self.log._seq_of_hash(prev_hash)
                if moved is not None:
                    return bad("reordered", seq, f"record {seq} is out of order: it was "
                               f"chained after the record now numbered {moved}")
                prev = seq - 1
                return bad("edited", prev, f"record {prev} was edited or replaced, or a "
                           f"record after it deleted: record {seq} was chained to a "
                           "different predecessor")
            if kind == "prune":
                self._prune(rec.data if rec is not None else _prune_data(body))
            cp = cps.get(seq)
            if cp is not None and cp != digest:
                return bad("checkpoint", seq, f"checkpoint {seq} does not match record "
                           f"{seq}: the checkpoint or the record was altered")
            self.prev = digest
            self.seq = seq + 1
        res.checked += len(found)
        res.last_seq = found[-1][0]
        return None


def safe_name(value: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in value)[:150] or "_"
