"""The chain's record encoding, bulk writes and the fast verification scan.

A record's hash is the SHA-256 of its canonical JSON (sorted keys, no spaces, UTF-8), which is
the concatenation of each field's own canonical JSON in key order. So a record is encoded once,
before the chain's head is locked, into the bytes before and after its ``prev_hash``: under the
lock each record costs one SHA-256. The JSON columns are stored as that same canonical text, so
verification can rebuild the canonical bytes in SQL (string concatenation, no parsing) and hash
them; a record whose stored text is not canonical (written before this encoding) is rebuilt
from its parsed columns instead, which gives the same hash for an intact record. Either way
its columns must be stored as dncguard writes them (no BLOB for text, on SQLite the time in
SQLAlchemy's storage form): ranges and lookups compare what is stored.

Writes are a few multi-row ``INSERT`` statements on SQLite (its limit of 32,766 bound
variables rules out one statement of 10,000 rows) and ``COPY`` on PostgreSQL.

Verification reads the chain in ranges of sequence numbers, each as one row of aggregates
(:class:`Batch`: the sequence numbers, hashes and previous hashes joined, and on SQLite the
rebuilt records joined by newlines, which canonical JSON never holds), by reader threads of
their own (SQLite builds the text and PostgreSQL hashes it while Python hashes the previous
range): a range is checked with a few comparisons of whole strings and one SHA-256 per
record. A range that does not pass is read again row by row (:func:`links`) and checked by the
record-by-record rules, which name the first bad record.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert

from ._numbers import hmac_pads
from .tables import audit_records_table

COLUMNS = ("seq", "at", "kind", "action", "who", "subject", "number_hmac", "number_masked",
           "decision", "reason_codes", "versions", "data", "prev_hash", "hash")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_PLAIN = json.JSONEncoder(ensure_ascii=False)


def jtext(value: Any) -> str:
    """The canonical JSON text of a JSON-native value."""
    return _CANONICAL.encode(value)


def jtext_plain(value: Any) -> str:
    """:func:`jtext` of a value made only of strings, None, booleans, lists and dicts with
    string keys (no numbers): orjson writes exactly the same text for those, 15 times
    faster. Numbers are left to :func:`jtext` (float and big-int forms differ)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def _jstr(value: str) -> str:
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return _PLAIN.encode(value)


#: :func:`jstr` of values seen before (kinds, actions, decisions, callers, masked numbers):
#: short ones are kept, up to a bound.
_JSTR: dict[str | None, str] = {None: "null"}
_JSTR_MAX = 4096


def jstr(value: str | None) -> str:
    """The canonical JSON text of a string or None (a fast path for plain strings)."""
    found = _JSTR.get(value)
    if found is not None:
        return found
    assert value is not None
    text = _jstr(value)
    if len(value) <= 64 and len(_JSTR) < _JSTR_MAX:
        _JSTR[value] = text
    return text


def iso(at: datetime) -> str:
    """``at.isoformat()``; orjson writes the same text for UTC (and naive) times, three times
    faster."""
    if at.tzinfo is UTC or at.tzinfo is None:
        return orjson.dumps(at).decode("ascii")[1:-1]
    return at.isoformat()


@dataclass(slots=True)
class Pending:
    """One record ready to be chained: its fields, its JSON columns as canonical text and
    its canonical bytes around ``prev_hash``."""

    at: datetime
    at_text: str  # ISO 8601, as hashed
    at_sqlite: str  # SQLAlchemy's storage form of ``at`` on SQLite
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
    reason_text: str
    versions_text: str
    data_text: str
    head: bytes
    tail: bytes

    def digest(self, prev: str) -> str:
        return hashlib.sha256(self.head + prev.encode("ascii") + self.tail).hexdigest()


def stamps(at: datetime) -> tuple[str, str]:
    """A record's time (UTC) as hashed (ISO 8601) and as SQLAlchemy stores a datetime on
    SQLite (always six digits of fraction)."""
    at_text = iso(at)
    return at_text, (f"{at_text[:10]} {at_text[11:26]}" if at.microsecond
                     else f"{at_text[:10]} {at_text[11:19]}.000000")


def pending(at: datetime, kind: str, action: str, who: str | None, subject: str | None,
            number_hmac: str | None, number_masked: str | None, decision: str | None,
            reason_codes: list[str], versions: dict[str, Any], data: dict[str, Any], *,
            plain: bool = False, versions_text: str | None = None,
            reason_text: str | None = None, stamped: tuple[str, str] | None = None
            ) -> Pending:
    """Encode one record; ``at`` is UTC and the three JSON values are JSON-native (string
    keys, lists not tuples), i.e. exactly what reading them back returns. ``plain``: they
    hold no numbers (see :func:`jtext_plain`). ``versions_text``: the canonical text of
    ``versions`` when the caller has it already (records of one batch share it),
    ``reason_text`` that of ``reason_codes``, and ``stamped`` :func:`stamps` of ``at``."""
    at_text, at_sqlite = stamped or stamps(at)
    enc = jtext_plain if plain else jtext
    data_text = enc(data)
    if reason_text is None:
        reason_text = enc(reason_codes)
    if versions_text is None:
        versions_text = enc(versions)
    hmac_text = "null" if number_hmac is None else _jstr(number_hmac)  # unique: not kept
    head = (f'{{"action":{jstr(action)},"at":"{at_text}","data":{data_text},'
            f'"decision":{jstr(decision)},"kind":{jstr(kind)},'
            f'"number_hmac":{hmac_text},"number_masked":{jstr(number_masked)},"prev_hash":"')
    tail = (f'","reason_codes":{reason_text},"subject":{jstr(subject)},'
            f'"versions":{versions_text},"who":{jstr(who)}}}')
    return Pending(at, at_text, at_sqlite, kind, action, who, subject, number_hmac, number_masked,
                   decision, reason_codes, versions, data, reason_text, versions_text,
                   data_text, head.encode("utf-8"), tail.encode("utf-8"))


# -- writing ------------------------------------------------------------------------------

_SQLITE_INSERT = (f"INSERT INTO audit_records ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in COLUMNS)})")
#: Rows per multi-row ``INSERT`` on SQLite, largest first: a transaction's rows go in as
#: few statements as these sizes allow (each prepared once per connection), the last few
#: (fewer than the smallest) by ``executemany``. Few statements matter when other threads
#: want the GIL (requests being encoded while the group commit writes): ``sqlite3`` lets go
#: of it for every statement, then waits for it back, up to the switch interval each time.
SQLITE_BLOCKS = (2048, 512, 128, 32, 8)

Row = tuple[Any, ...]
_flat = itertools.chain.from_iterable


@functools.cache
def _sqlite_many(rows: int) -> str:
    one = f"({', '.join('?' for _ in COLUMNS)})"
    return f"INSERT INTO audit_records ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)}"


def _sqlite_rows(conn: Connection, rows: list[Row]) -> None:
    """Insert rows on SQLite in blocks of :data:`SQLITE_BLOCKS` (within the connection's
    limit of bound variables), the rest by ``executemany``."""
    raw: Any = conn.connection.driver_connection
    for sql, params in _sqlite_blocks(raw, rows):
        conn.exec_driver_sql(sql, params)  # a list of rows: executemany


def _sqlite_blocks(db: sqlite3.Connection, rows: list[Row]
                   ) -> Iterator[tuple[str, tuple[Any, ...] | list[Row]]]:
    """The statements that insert ``rows``: multi-row blocks (one tuple of parameters
    each), then the rest (a list of rows, for ``executemany``)."""
    fit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(COLUMNS)
    done, n = 0, len(rows)
    for size in SQLITE_BLOCKS:
        if size <= fit:
            while n - done >= size:
                yield _sqlite_many(size), tuple(_flat(rows[done:done + size]))
                done += size
    if done < n:
        yield _SQLITE_INSERT, rows[done:]


def _sqlite_chain_rows(many: Sequence[Pending], seq: int, prev: str
                       ) -> tuple[list[Row], list[str]]:
    """The rows of ``many`` chained after record ``seq`` (hash ``prev``), and their hashes."""
    sha = hashlib.sha256
    rows: list[Row] = []  # the hash and the row in one pass
    digests: list[str] = []
    for p in many:
        seq += 1
        digest = sha(p.head + prev.encode("ascii") + p.tail).hexdigest()
        rows.append((seq, p.at_sqlite, p.kind, p.action, p.who, p.subject, p.number_hmac,
                     p.number_masked, p.decision, p.reason_text, p.versions_text, p.data_text,
                     prev, digest))
        digests.append(digest)
        prev = digest
    return rows, digests


def sqlite_chain(cur: sqlite3.Cursor, many: Sequence[Pending], seq: int, prev: str
                 ) -> list[str]:
    """:func:`write_chain` on a SQLite driver cursor whose transaction holds the head."""
    rows, digests = _sqlite_chain_rows(many, seq, prev)
    for sql, params in _sqlite_blocks(cur.connection, rows):
        if isinstance(params, tuple):
            cur.execute(sql, params)
        else:
            cur.executemany(sql, params)
    return digests


def write_chain(conn: Connection, many: Sequence[Pending], seq: int, prev: str) -> list[str]:
    """Chain ``many`` after record ``seq`` (whose hash is ``prev``) and insert them, in the
    transaction of ``conn`` that holds the chain head: their hashes, in order."""
    if conn.dialect.name != "sqlite":
        chained = chain_rows(many, seq, prev)
        insert_records(conn, chained)
        return [c[3] for c in chained]
    rows, digests = _sqlite_chain_rows(many, seq, prev)
    _sqlite_rows(conn, rows)
    return digests


Chained = tuple[int, Pending, str, str]


def chain_rows(many: Sequence[Pending], seq: int, prev: str) -> list[Chained]:
    """``many`` chained after record ``seq`` (whose hash is ``prev``): ``(seq, pending,
    prev_hash, hash)`` each."""
    sha = hashlib.sha256
    chained = []
    for p in many:
        seq += 1
        digest = sha(p.head + prev.encode("ascii") + p.tail).hexdigest()
        chained.append((seq, p, prev, digest))
        prev = digest
    return chained


def record_row(chained: Chained) -> tuple[Any, ...]:
    """A chained record's column values in :data:`COLUMNS` order, as PostgreSQL reads them
    (texts: the instant in ISO 8601, the JSON columns as their canonical text)."""
    seq, p, prev, digest = chained
    return (seq, p.at_text, p.kind, p.action, p.who, p.subject, p.number_hmac,
            p.number_masked, p.decision, p.reason_text, p.versions_text, p.data_text, prev,
            digest)


def insert_records_pg(pg: Any, rows: Sequence[Chained]) -> None:
    """Insert chained records by COPY on a psycopg connection."""
    with pg.cursor() as cur, cur.copy(
            f"COPY audit_records ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(record_row(row))


def insert_records(conn: Connection, rows: Sequence[Chained]) -> None:
    """Insert chained records ``(seq, pending, prev_hash, hash)`` in one statement batch."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        _sqlite_rows(conn, [
            (seq, p.at_sqlite, p.kind, p.action, p.who, p.subject,
             p.number_hmac, p.number_masked, p.decision, p.reason_text, p.versions_text,
             p.data_text, prev, digest) for seq, p, prev, digest in rows])
        return
    if dialect == "postgresql":
        insert_records_pg(conn.connection.driver_connection, rows)
        return
    # other databases: SQLAlchemy's own insert
    conn.execute(insert(audit_records_table), [
        {"seq": seq, "at": p.at, "kind": p.kind, "action": p.action, "who": p.who,
         "subject": p.subject, "number_hmac": p.number_hmac, "number_masked": p.number_masked,
         "decision": p.decision, "reason_codes": p.reason_codes, "versions": p.versions,
         "data": p.data, "prev_hash": prev, "hash": digest} for seq, p, prev, digest in rows])


# -- the verification scan ----------------------------------------------------------------


def _q(col: str, dialect: str) -> str:
    """SQL for a text column as a JSON string. PostgreSQL escapes it as JSON does; SQLite
    only wraps it in quotes (json_quote costs more than the rest of the row) and doubles any
    quote inside, which no JSON holds: a value that needs escaping then hashes differently and
    the record is checked from its parsed columns instead, so a record is never passed on a
    wrong rebuild, only slower (no text can move from one column to the next unseen)."""
    if dialect == "postgresql":
        return f"COALESCE(to_json({col})::text, 'null')"
    return f"""CASE WHEN {col} IS NULL THEN 'null' ELSE printf('"%w"', {col}) END"""


def _at(dialect: str) -> str:
    if dialect == "postgresql":
        u = "(at AT TIME ZONE 'UTC')"
        return (f"to_char({u}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({u}, 'US') "
                f"= '000000' THEN '' ELSE '.' || to_char({u}, 'US') END || '+00:00'")
    return ("substr(at, 1, 10) || 'T' || CASE WHEN substr(at, 20) IN ('', '.000000') "
            "THEN substr(at, 12, 8) ELSE substr(at, 12) END || '+00:00'")


_KEYS = ("action", "at", "data", "decision", "kind", "number_hmac", "number_masked",
         "prev_hash", "reason_codes", "subject", "versions", "who")
_JSON_COLUMNS = ("data", "reason_codes", "versions")
#: The text columns that may be NULL.
_NULLABLE = ("decision", "number_hmac", "number_masked", "subject", "who")


def _body_sql(dialect: str) -> str:
    """SQL rebuilding each record's canonical JSON from its stored columns."""
    parts = []
    for key in _KEYS:
        if key == "at":
            parts.append(f"'\"' || {_at(dialect)} || '\"'")
        elif key in _JSON_COLUMNS:
            parts.append(f"{key}::text" if dialect == "postgresql" else key)
        else:
            parts.append(_q(key, dialect))
    template = "{" + ",".join(f'"{k}":%s' for k in _KEYS) + "}"
    if dialect == "postgresql":
        return f"format('{template}', {', '.join(parts)})"
    return f"printf('{template}', {', '.join(parts)})"


#: SQLite: a row whose columns are not stored as dncguard writes them, in ways the rebuild
#: would not see: a BLOB in place of text (the same bytes rebuild the same JSON, but compare
#: unlike text, so ranges and lookups miss the record), or a time other than SQLAlchemy's
#: 26-character storage form ``2026-11-19 15:00:00.000000`` (the rebuild drops the space and
#: a zero fraction, so other text could rebuild the same). Its rebuild is empty, which is
#: never taken as hashing right: the record is checked from its stored columns, which must
#: then re-encode to themselves (``AuditLog._records_at``). ``x >= x''`` holds exactly for a
#: BLOB (BLOBs sort after every other value) and costs less than ``typeof`` (a function
#: call); a BLOB ``seq`` is outside every range verification reads.
_SQLITE_NOT_AS_WRITTEN = " OR ".join([f"{col} >= x''" for col in COLUMNS if col != "seq"]
                                     + ["length(at) <> 26", "substr(at, 11, 1) <> ' '"])


def body_sql(dialect: str) -> str:
    """SQL rebuilding each record's canonical JSON from its stored columns (on SQLite empty
    for a row not stored as dncguard writes it: :data:`_SQLITE_NOT_AS_WRITTEN`)."""
    body = _body_sql(dialect)
    if dialect == "postgresql":
        return body
    return f"CASE WHEN {_SQLITE_NOT_AS_WRITTEN} THEN '' ELSE {body} END"


def _sqlite_body() -> str:
    """:func:`body_sql` for SQLite with one ``printf`` for the usual record (no NULL text, a
    time with a fraction of a second), which writes the same text with far fewer steps."""
    args, fields = [], []
    for key in _KEYS:
        if key == "at":
            fields.append('"at":"%wT%w+00:00"')
            args += ["substr(at, 1, 10)", "substr(at, 12)"]
        elif key in _JSON_COLUMNS:
            fields.append(f'"{key}":%s')
            args.append(key)
        else:
            fields.append(f'"{key}":"%w"')
            args.append(key)
    usual = f"printf('{{{','.join(fields)}}}', {', '.join(args)})"
    unusual = " OR ".join([f"{col} IS NULL" for col in _NULLABLE]
                          + ["substr(at, 20) IN ('', '.000000')"])
    return (f"CASE WHEN {_SQLITE_NOT_AS_WRITTEN} THEN '' WHEN {unusual} THEN "
            f"{_body_sql('sqlite')} ELSE {usual} END")


@dataclass(slots=True)
class Batch:
    """The records with sequence numbers in ``(after, upto]`` as verification reads them: one
    row of aggregates, each list joined by commas in chain order."""

    after: int
    upto: int
    count: int
    first: int | None
    last: int | None
    seqs: str | None
    prev_hashes: str | None
    hashes: str | None
    prunes: str | None  # the prune records' sequence numbers
    bodies: bytes | None  # SQLite: the rebuilt canonical JSON of each record, newline-joined
    unhashed: str | None  # PostgreSQL: the records whose rebuilt JSON does not hash to hash


def _batch_sql(dialect: str) -> str:
    if dialect == "postgresql":  # hashed by the server: only the records that fail come back
        body = body_sql(dialect).replace("%", "%%")  # psycopg's placeholders
        return ("SELECT count(*), min(seq), max(seq), string_agg(seq::text, ',' ORDER BY seq), "
                "string_agg(prev_hash, ',' ORDER BY seq), string_agg(hash, ',' ORDER BY seq), "
                "string_agg(CASE WHEN kind = 'prune' THEN seq::text END, ','), NULL, "
                "string_agg(CASE WHEN ok THEN NULL ELSE seq::text END, ',') FROM (SELECT seq, "
                "prev_hash, hash, kind, COALESCE(encode(sha256(convert_to("
                f"{body}, 'UTF8')), 'hex') = hash, false) AS ok FROM audit_records "
                "WHERE seq > %s AND seq <= %s) AS t")
    return ("SELECT count(*), min(seq), max(seq), group_concat(seq, ','), "
            "group_concat(prev_hash, ','), group_concat(hash, ','), "
            "group_concat(CASE WHEN kind = 'prune' THEN seq END, ','), "
            "CAST(group_concat(body, char(10)) AS BLOB), NULL FROM (SELECT seq, prev_hash, hash, "
            f"kind, {_sqlite_body()} AS body FROM audit_records WHERE seq > ? AND seq <= ? "
            "ORDER BY seq)")


def _first_seq(engine: Engine, upto: int) -> int | None:
    with engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection
        cur = raw.cursor()
        try:
            mark = "%s" if engine.dialect.name == "postgresql" else "?"
            cur.execute(f"SELECT min(seq) FROM audit_records WHERE seq <= {mark}", (upto,))
            row = cur.fetchone()
        finally:
            cur.close()
    return None if row is None or row[0] is None else int(row[0])


def scan(engine: Engine, upto: int, batch: int = 20_000, readers: int = 2
         ) -> Iterator[Batch]:
    """Every record up to ``upto`` in chain order, ``batch`` sequence numbers at a time (a
    range may hold fewer records, or none), read by ``readers`` threads of their own, each a
    range or two ahead: SQLite builds the text (and PostgreSQL hashes it) outside the GIL."""
    low = _first_seq(engine, upto)
    if low is None:
        return
    ranges = [(lo, min(lo + batch, upto)) for lo in range(low - 1, upto, batch)]
    readers = max(1, min(readers, len(ranges)))
    sql = _batch_sql(engine.dialect.name)
    queues: list[queue.Queue[Batch | BaseException]] = [queue.Queue(2) for _ in range(readers)]
    stop = threading.Event()

    def read(k: int) -> None:
        try:
            with engine.connect() as conn:
                raw: Any = conn.connection.dbapi_connection
                for lo, hi in ranges[k::readers]:
                    if stop.is_set():
                        return
                    cur = raw.cursor()
                    try:
                        cur.execute(sql, (lo, hi))
                        row = cur.fetchone()
                    finally:
                        cur.close()
                    queues[k].put(Batch(lo, hi, int(row[0]), *row[1:]))
        except BaseException as exc:  # handed to the consumer
            queues[k].put(exc)

    threads = [threading.Thread(target=read, args=(k,), name=f"dncguard-audit-verify-{k}",
                                daemon=True) for k in range(readers)]
    for thread in threads:
        thread.start()
    try:
        for i in range(len(ranges)):
            item = queues[i % readers].get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for thread, waiting in zip(threads, queues, strict=True):
            while thread.is_alive():  # unblock a reader waiting to put
                try:
                    waiting.get(timeout=0.1)
                except queue.Empty:
                    pass
            thread.join()


def quick_check(b: Batch, seq: int, prev: str, checkpoints: dict[int, str]
                ) -> tuple[list[int], str] | None:
    """Whether the records of ``b`` extend a chain whose next record is ``seq`` and whose last
    hash is ``prev``: ``None`` when they must be checked row by row, else the records whose
    rebuilt JSON did not hash to their hash (to be checked from their parsed columns; the
    range passes only if they do) and the last record's hash."""
    n, first, hashes = b.count, b.first, b.hashes
    if not n or first != seq or b.last != seq + n - 1 or hashes is None:
        return None
    if b.seqs != ",".join(map(str, range(seq, seq + n))):
        return None
    if b.bodies is not None:  # SQLite: hash the rebuilt records here
        pieces = b.bodies.split(b"\n")  # canonical JSON holds no newline
        if len(pieces) != n:
            return None
        sha = hashlib.sha256
        got = [sha(piece).hexdigest() if piece else "" for piece in pieces]  # "": not as
        # written (_SQLITE_NOT_AS_WRITTEN), to be checked from its stored columns
        unhashed: list[int] = []
        if ",".join(got) != hashes:
            stored = hashes.split(",")
            if len(stored) != n:
                return None
            unhashed = [seq + i for i, (a, z) in enumerate(zip(got, stored, strict=True))
                        if a != z]
    else:
        unhashed = [int(x) for x in b.unhashed.split(",")] if b.unhashed else []
    # Each stored hash is now the one computed here, or one to be checked from the parsed
    # columns: 64 characters without a comma when the range passes.
    cut = hashes.rfind(",")
    if b.prev_hashes != (prev if n == 1 else f"{prev},{hashes[:cut]}"):
        return None
    marks = (checkpoints.items() if len(checkpoints) <= n
             else ((s, checkpoints.get(s)) for s in range(seq, seq + n)))
    for cp, found in marks:
        if found is not None and seq <= cp < seq + n:
            at = (cp - seq) * 65
            if hashes[at:at + 64] != found:
                return None
    return unhashed, hashes[cut + 1:]


#: One record as the row-by-row check reads it: seq, prev_hash, hash, kind, whether the
#: rebuilt canonical JSON hashes to ``hash`` (None: not known yet), and the rebuilt JSON
#: (SQLite) or the ``data`` text of a prune record (PostgreSQL), else None.
Link = tuple[int, str, str, str, bool | None, str | None]


def _links_sql(dialect: str) -> str:
    body = body_sql(dialect)
    if dialect == "postgresql":  # hashed by the server: only a boolean comes back
        body = body.replace("%", "%%")  # psycopg's placeholders
        return ("SELECT seq, prev_hash, hash, kind, "
                f"COALESCE(encode(sha256(convert_to({body}, 'UTF8')), 'hex') = hash, false), "
                "CASE WHEN kind = 'prune' THEN data::text END FROM audit_records "
                "WHERE seq > %s AND seq <= %s ORDER BY seq")
    return (f"SELECT seq, prev_hash, hash, kind, NULL, {body} FROM audit_records "
            f"WHERE seq > ? AND seq <= ? ORDER BY seq")


def links(engine: Engine, after: int, upto: int) -> list[Link]:
    """The records with sequence numbers in ``(after, upto]``, row by row, in chain order."""
    with engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection
        cur = raw.cursor()
        try:
            cur.execute(_links_sql(engine.dialect.name), (after, upto))
            return list(cur.fetchall())
        finally:
            cur.close()


def hashes_ok(links: list[Link]) -> list[bool]:
    """Whether each record's rebuilt canonical JSON hashes to its stored hash."""
    sha = hashlib.sha256
    out = []
    for _, _, digest, _, ok, body in links:
        if ok is None:
            try:  # an empty body: not stored as written (_SQLITE_NOT_AS_WRITTEN)
                ok = (body is not None and body != ""
                      and sha(body.encode("utf-8")).hexdigest() == digest)
            except UnicodeEncodeError:
                ok = False
        out.append(bool(ok))
    return out


__all__ = ["COLUMNS", "Batch", "Link", "Pending", "body_sql", "hashes_ok", "hmac_pads",
           "insert_records", "iso", "jstr", "jtext", "links", "pending", "quick_check", "scan",
           "sqlite_chain", "stamps", "write_chain"]
