"""The chain's record encoding, bulk writes and the fast verification scan.

A record's hash is the SHA-256 of its canonical JSON (sorted keys, no spaces, UTF-8), which is
the concatenation of each field's own canonical JSON in key order. So a record is encoded once,
before the chain's head is locked, into the bytes before and after its ``prev_hash``: under the
lock each record costs one SHA-256. The JSON columns are stored as that same canonical text, so
verification can rebuild the canonical bytes in SQL (string concatenation, no parsing) and hash
them; a record whose stored text is not canonical (written before this encoding) is rebuilt
from its parsed columns instead, which gives the same hash for an intact record.

Writes are one ``executemany`` of a prepared ``INSERT`` on SQLite (its limit of 32,766 bound
variables rules out one statement of 10,000 rows) and ``COPY`` on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert

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


def jstr(value: str | None) -> str:
    """The canonical JSON text of a string or None (a fast path for plain strings)."""
    if value is None:
        return "null"
    if value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return _PLAIN.encode(value)


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


def pending(at: datetime, kind: str, action: str, who: str | None, subject: str | None,
            number_hmac: str | None, number_masked: str | None, decision: str | None,
            reason_codes: list[str], versions: dict[str, Any], data: dict[str, Any], *,
            plain: bool = False, versions_text: str | None = None) -> Pending:
    """Encode one record; ``at`` is UTC and the three JSON values are JSON-native (string
    keys, lists not tuples), i.e. exactly what reading them back returns. ``plain``: they
    hold no numbers (see :func:`jtext_plain`). ``versions_text``: the canonical text of
    ``versions`` when the caller has it already (records of one batch share it)."""
    at_text = at.isoformat()
    enc = jtext_plain if plain else jtext
    reason_text, data_text = enc(reason_codes), enc(data)
    if versions_text is None:
        versions_text = enc(versions)
    head = (f'{{"action":{jstr(action)},"at":"{at_text}","data":{data_text},'
            f'"decision":{jstr(decision)},"kind":{jstr(kind)},'
            f'"number_hmac":{jstr(number_hmac)},"number_masked":{jstr(number_masked)},'
            f'"prev_hash":"')
    tail = (f'","reason_codes":{reason_text},"subject":{jstr(subject)},'
            f'"versions":{versions_text},"who":{jstr(who)}}}')
    at_sqlite = f"{at_text[:10]} {at_text[11:19]}.{at.microsecond:06d}"
    return Pending(at, at_text, at_sqlite, kind, action, who, subject, number_hmac, number_masked,
                   decision, reason_codes, versions, data, reason_text, versions_text,
                   data_text, head.encode("utf-8"), tail.encode("utf-8"))


def _sha256_type() -> Any:
    """CPython's own SHA-256, whose ``copy()`` is much cheaper than OpenSSL's; else
    hashlib's (the digests are the same)."""
    import importlib

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


# -- writing ------------------------------------------------------------------------------

_SQLITE_INSERT = (f"INSERT INTO audit_records ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in COLUMNS)})")


def insert_records(conn: Connection, rows: Sequence[tuple[int, Pending, str, str]]) -> None:
    """Insert chained records ``(seq, pending, prev_hash, hash)`` in one statement batch."""
    if not rows:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql(_SQLITE_INSERT, [
            (seq, p.at_sqlite, p.kind, p.action, p.who, p.subject,
             p.number_hmac, p.number_masked, p.decision, p.reason_text, p.versions_text,
             p.data_text, prev, digest) for seq, p, prev, digest in rows])
        return
    if dialect == "postgresql":
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
                f"COPY audit_records ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for seq, p, prev, digest in rows:
                copy.write_row((seq, p.at, p.kind, p.action, p.who, p.subject, p.number_hmac,
                                p.number_masked, p.decision, p.reason_text, p.versions_text,
                                p.data_text, prev, digest))
        return
    from .log import audit_records_table  # other databases: SQLAlchemy's own insert

    conn.execute(insert(audit_records_table), [
        {"seq": seq, "at": p.at, "kind": p.kind, "action": p.action, "who": p.who,
         "subject": p.subject, "number_hmac": p.number_hmac, "number_masked": p.number_masked,
         "decision": p.decision, "reason_codes": p.reason_codes, "versions": p.versions,
         "data": p.data, "prev_hash": prev, "hash": digest} for seq, p, prev, digest in rows])


# -- the verification scan ----------------------------------------------------------------


def _q(col: str, dialect: str) -> str:
    """SQL for a text column as a JSON string. PostgreSQL escapes it as JSON does; SQLite
    only wraps it in quotes (json_quote costs more than the rest of the row): a value that
    needs escaping then hashes differently and the record is checked from its parsed
    columns instead, so a record is never passed on a wrong rebuild, only slower."""
    if dialect == "postgresql":
        return f"COALESCE(to_json({col})::text, 'null')"
    return f"COALESCE('\"' || {col} || '\"', 'null')"


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


def body_sql(dialect: str) -> str:
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


#: One record as verification reads it: seq, prev_hash, hash, kind, whether the rebuilt
#: canonical JSON hashes to ``hash`` (None: not known yet), and the rebuilt JSON (SQLite) or
#: the ``data`` text of a prune record (PostgreSQL), else None.
Link = tuple[int, str, str, str, bool | None, str | None]


def _scan_sql(dialect: str, batch: int) -> str:
    body = body_sql(dialect)
    if dialect == "postgresql":  # hashed by the server: only a boolean comes back
        body = body.replace("%", "%%")  # psycopg's placeholders
        return ("SELECT seq, prev_hash, hash, kind, "
                f"COALESCE(encode(sha256(convert_to({body}, 'UTF8')), 'hex') = hash, false), "
                "CASE WHEN kind = 'prune' THEN data::text END FROM audit_records "
                f"WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT {int(batch)}")
    return (f"SELECT seq, prev_hash, hash, kind, NULL, {body} FROM audit_records "
            f"WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT {int(batch)}")


def scan(engine: Engine, upto: int, batch: int = 50_000) -> Iterator[list[Link]]:
    """Every record up to ``upto`` in chain order, ``batch`` at a time, read by a thread of
    its own one batch ahead (SQLite builds the JSON while this thread hashes)."""
    dialect = engine.dialect.name
    sql = _scan_sql(dialect, batch)
    ready: queue.Queue[list[Link] | BaseException | None] = queue.Queue(2)
    stop = threading.Event()

    def read() -> None:
        try:
            with engine.connect() as conn:
                raw: Any = conn.connection.dbapi_connection
                last = 0
                while not stop.is_set():
                    cur = raw.cursor()
                    try:
                        cur.execute(sql, (last, upto))
                        rows = cur.fetchall()
                    finally:
                        cur.close()
                    ready.put(rows)
                    if not rows:
                        return
                    last = int(rows[-1][0])
        except BaseException as exc:  # handed to the consumer
            ready.put(exc)

    reader = threading.Thread(target=read, name="dncguard-audit-verify", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to put
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


def hashes_ok(links: list[Link]) -> list[bool]:
    """Whether each record's rebuilt canonical JSON hashes to its stored hash."""
    sha = hashlib.sha256
    out = []
    for _, _, digest, _, ok, body in links:
        if ok is None:
            try:
                ok = body is not None and sha(body.encode("utf-8")).hexdigest() == digest
            except UnicodeEncodeError:
                ok = False
        out.append(bool(ok))
    return out


__all__ = ["COLUMNS", "Link", "Pending", "body_sql", "hashes_ok", "hmac_pads",
           "insert_records", "jstr", "jtext", "pending", "scan"]
