"""Consent records and the attempt log, kept in the dncguard database.

Tables ``rules_consent`` and ``rules_attempts`` live on :data:`dncguard.store.metadata`; they
are created on first use (idempotent). Numbers are stored in E.164 and logged masked only.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    ARRAY,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    Row,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from ... import audit
from ...config import Settings
from ...errors import InputError
from ...phones import mask, mask_digits, normalise
from ...store import as_utc, driver_row, get_engine, metadata, read_engine, utcnow
from .schema import CONSENT_TYPES, OUTCOMES, PURPOSES, outcome_key

if TYPE_CHECKING:
    import _csv

log = logging.getLogger(__name__)

consent_table = Table(
    "rules_consent",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("e164", String(20), nullable=False, index=True),
    Column("type", String(20), nullable=False),
    Column("granted", Date, nullable=False),
    Column("expires", Date),
    Column("revoked", Date),
    Column("source", String(300)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

attempts_table = Table(
    "rules_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("e164", String(20), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("campaign", String(200), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("outcome", String(40)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # a debt's (subject's) attempts to any of its numbers (migration 0008)
    Index("ix_rules_attempts_subject_at", "subject", "at"),
)

_created: set[int] = set()


def rules_engine(settings: Settings) -> Engine:
    """The database engine with the rules tables created."""
    engine = get_engine(settings)
    if id(engine) not in _created:
        metadata.create_all(engine, tables=[consent_table, attempts_table])
        _created.add(id(engine))
    return engine


#: The type of a revocation-only record: ``consent revoke`` of a number that holds no consent
#: to revoke stores one (granted and revoked on the revocation date), so that a consent dated
#: on or before it that arrives later is revoked too. Never a consent itself.
REVOCATION = "revocation"


@dataclass(frozen=True)
class ConsentRecord:
    type: str
    granted: date
    expires: date | None = None
    revoked: date | None = None


#: How far after this machine's clock an attempt may be stamped (a dialer's clock may run a
#: little ahead): a later attempt is refused, and the caps count the attempts stamped up to
#: this long after the dial time (fail closed).
CLOCK_SKEW = timedelta(minutes=5)

_DIGIT = re.compile(r"\d")


def quoted(value: str, limit: int = 40) -> str:
    """``value`` quoted for a one-line message, never a phone number: in a value of 7 or more
    digits only the first digits are shown (at most 6, and never the last 4), the others
    masked as :func:`dncguard.phones.mask` masks a number (``'+120255*****'``,
    ``'2026-**-**'``); a value longer than ``limit`` is cut."""
    value = mask_digits(value)
    return repr(value if len(value) <= limit else value[:limit - 3] + "...")


#: The longest campaign or subject an attempt stores (the columns' length), counted as stored:
#: lower case can lengthen a subject (``İ`` is two characters in lower case).
KEY_MAX = 200


def _long(value: str) -> str:
    return (f"is {len(value)} characters long as stored (spaces around removed, lower case "
            f"for a subject); at most {KEY_MAX}")


def subject_key(text: str | None) -> str | None:
    """A subject (or a campaign standing in for one) as stored and compared: spaces around
    removed, lower case (``DEBT-42`` and `` debt-42`` are one debt: counting them together
    is the stricter reading); None when blank."""
    key = (text or "").strip().lower()
    return key or None


def campaign_problem(settings: Settings, name: str) -> str | None:
    """Why an attempt's campaign (as stored: spaces around removed) cannot be recorded, None
    when it can: it must name a campaign profile of ``settings`` (``default``, or a
    configured ``[campaigns.NAME]``: :meth:`~dncguard.config.Settings.campaign`), the names
    a check accepts. An attempt under a misspelt campaign would count for no check: the caps
    would never see it (fail open)."""
    try:
        settings.campaign(name)
    except InputError:
        known = ", ".join(["default", *sorted(k for k in settings.campaigns if k != "default")])
        return (f"{quoted(name)} names no campaign profile; configured: {known} "
                "([campaigns.NAME] in the settings file)")
    return None


def parse_outcome(text: str | None) -> str | None:
    """An attempt's outcome as stored: None when missing or blank, else the one of
    :data:`OUTCOMES` it names (any case, spaces around ignored). Anything else raises
    ValueError naming the value (masked when it could be a phone number, :func:`quoted`)
    and the accepted outcomes."""
    key = outcome_key(text)
    if key is None or key in OUTCOMES:
        return key
    raise ValueError(f"{quoted(text or '')} is not a known outcome; use one of "
                     f"{', '.join(OUTCOMES)} (or none)")


@dataclass(frozen=True)
class Attempt:
    at: datetime
    campaign: str
    purpose: str
    subject: str
    outcome: str | None = None


#: What storing an attempt did: a new row, the outcome written on the stored attempt that had
#: none, or nothing (the same attempt is on file).
ADDED, UPDATED, DUPLICATE = "added", "updated", "duplicate"


@dataclass(frozen=True)
class RowError:
    line: int  # the file's line the row starts on (the header is line 1, blank lines count)
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.message}"


@dataclass
class ImportReport:
    """What an import did. A file is imported whole or not at all: with any ``errors`` (a
    row rejected) nothing was written, and ``added``, ``updated`` and ``duplicates`` are 0."""

    rows: int = 0
    added: int = 0
    updated: int = 0  # attempts whose outcome was written on the stored attempt
    duplicates: int = 0
    errors: list[RowError] = field(default_factory=list)


T = TypeVar("T")


def _checked(report: ImportReport, rows: Iterable[FileRow],
             check: Callable[[int, dict[str, str], tuple[str, ...]],
                             tuple[list[RowError], T | None]]) -> list[T]:
    """Every row checked (counted in ``report``, its errors added there): what the good rows
    would write, or nothing once any row is bad (an import is all or nothing; the good rows
    are not kept in memory after the first bad one)."""
    good: list[T] = []
    for i, r, blank in rows:
        report.rows += 1
        errs, found = check(i, r, blank)
        if errs:
            report.errors.extend(errs)
            good.clear()  # none of them will be written
        elif found is not None and not report.errors:
            good.append(found)
    return good


#: Statements that read the rows of a batch's numbers, built once per query and dialect
#: (building a statement costs more than running it).
_BY_NUMBERS: dict[tuple[str, str], Select[Any]] = {}

#: A batch of at least this many numbers first asks whether the table has any row at all:
#: one cheap query that saves, on a home without consent or attempt records, sending every
#: number of a file's slice to the database (a few ms per 1,000 numbers). Smaller batches
#: (the pre-dial path) skip the probe, whose round trip would cost more than it saves.
PROBE_EMPTY_FROM = 1_000
_ANY_ROW: dict[str, Select[Any]] = {}


#: Whether any of a few numbers has a row in a table, in the driver's own SQL (see
#: :func:`numbers_with_rows`), by dialect: the test of one table (on SQLite each test reads
#: the one JSON parameter again, by its number; on PostgreSQL each has its own parameter).
_ANY_FOR_NUMBERS = {
    "sqlite": "EXISTS (SELECT 1 FROM {} WHERE e164 IN (SELECT value FROM json_each(?1)))",
    "postgresql": "EXISTS (SELECT 1 FROM {} WHERE e164 = ANY(%s))",
}
_ANY_SQL: dict[tuple[str, tuple[str, ...]], str] = {}


def any_for_numbers(conn: Connection, e164s: list[str], table: Table) -> bool:
    """Whether any of ``e164s`` has a row in ``table`` (consents, attempts): see
    :func:`numbers_with_rows`."""
    return numbers_with_rows(conn, e164s, [table])[0]


def numbers_with_rows(conn: Connection, e164s: list[str], tables: list[Table]
                      ) -> tuple[bool, ...]:
    """For each of ``tables`` (consents, attempts), whether any of ``e164s`` has a row in
    it: one query for all of them, sent through the driver
    (:func:`~dncguard.store.driver_row`). The pre-dial path asks this for every group of
    checks and most numbers have no record (then nothing more is read); SQLAlchemy's
    statement execution and result handling cost several times the query itself (on SQLite
    about 40 µs a query against 6 µs), and on a database server each query is a round trip.
    True for each, without asking, on a database other than SQLite and PostgreSQL. Raises
    SQLAlchemy's DBAPIError when the database cannot answer."""
    if not e164s or not tables:
        return tuple(False for _ in tables)
    dialect = conn.dialect.name
    test = _ANY_FOR_NUMBERS.get(dialect)
    if test is None:
        return tuple(True for _ in tables)
    names = tuple(t.name for t in tables)
    sql = _ANY_SQL.get((dialect, names))
    if sql is None:
        sql = _ANY_SQL[(dialect, names)] = "SELECT " + ", ".join(
            test.format(name) for name in names)
    numbers = sorted(set(e164s))
    params = ((json.dumps(numbers),) if dialect == "sqlite"
              else tuple(numbers for _ in tables))
    row = driver_row(conn, sql, params)
    if row is None or len(row) != len(tables):
        raise RuntimeError(f"the records query answered {row!r}")
    return tuple(bool(v) for v in row)


def has_rows(conn: Connection, table: Table) -> bool:
    """Whether ``table`` (consents, attempts) holds any row: one cheap query."""
    probe = _ANY_ROW.get(table.name)
    if probe is None:
        probe = _ANY_ROW[table.name] = select(table.c.e164).limit(1)
    return conn.execute(probe).first() is not None


def _rows_for(conn: Connection, name: str, table: Table, wanted: list[str],
              build: Callable[[], Select[Any]], *, column: str = "e164",
              **params: Any) -> list[Row[Any]]:
    """The rows the query ``build()`` (named ``name``) finds for the values ``wanted`` of
    ``table``'s ``column`` (the numbers; or, say, the subjects), in one query for the whole
    batch: on SQLite the values are one JSON parameter, on PostgreSQL one array parameter,
    however many. Nothing, without sending the values, when a large batch meets an empty
    table."""
    if not wanted:
        return []
    if len(wanted) >= PROBE_EMPTY_FROM and not has_rows(conn, table):
        return []
    dialect = conn.dialect.name
    stmt = _BY_NUMBERS.get((name, dialect))
    if stmt is None:
        where: ColumnElement[bool]
        if dialect == "sqlite":
            each = func.json_each(bindparam("numbers")).table_valued("value")
            where = table.c[column].in_(select(each.c.value))
        else:
            where = table.c[column] == func.any(bindparam("numbers", type_=ARRAY(String)))
        stmt = _BY_NUMBERS[(name, dialect)] = build().where(where)
    numbers = sorted(set(wanted))
    return list(conn.execute(stmt, {"numbers": json.dumps(numbers) if dialect == "sqlite"
                                    else numbers, **params}))


def _recent_attempts() -> Select[Any]:
    """Attempts since the ``since`` parameter, oldest first (narrowed by :func:`_rows_for`)."""
    t = attempts_table.c
    return (select(t.e164, t.at, t.campaign, t.purpose, t.subject, t.outcome)
            .where(t.at >= bindparam("since", type_=DateTime(timezone=True)))
            .order_by(t.at, t.id))


#: The columns of a consent file: required, then optional (``consent import``).
CONSENT_COLUMNS = (("phone", "type", "date"), ("expires", "revoked"))
#: The columns of an attempts file: required, then optional (``attempts import``).
ATTEMPT_COLUMNS = (("phone", "at"), ("campaign", "purpose", "subject", "outcome"))


def _shown(names: list[str]) -> str:
    """Column names for a one-line message (odd ones quoted, at most 10; a name that could be
    a phone number, as when a file has no header row, masked: :func:`quoted`)."""
    out = [n if n.isprintable() and n and "," not in n and len(n) <= 40
           and len(_DIGIT.findall(n)) < 7 else quoted(n) for n in names[:10]]
    return ", ".join(out) + (f" and {len(names) - 10} more" if len(names) > 10 else "")


#: A file's data row: the line it starts on, ``{column: value}`` (spaces around removed), and
#: the columns whose cell held only spaces (given, but blank: not the same as an empty cell).
FileRow = tuple[int, dict[str, str], tuple[str, ...]]


@contextmanager
def _read_rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...]
               ) -> Iterator[tuple[list[str], Iterator[FileRow]]]:
    """Open a CSV file: the columns its header names, and its data rows (:data:`FileRow`), read
    one at a time while the ``with`` block lasts, each with the line of the file it starts on
    (the header is line 1; blank lines are skipped but counted, so the number is the one an
    editor shows). The header may name only ``required`` and ``optional`` columns (any case,
    spaces around them ignored).

    A header with a column it does not know (a misspelt ``revoked`` would drop revocations),
    a column twice, or a required column missing refuses the whole file (InputError) before
    anything is imported. A row's non-blank value with no column name (past the header's
    end, or under an empty header cell) is kept under ``"column N"`` for the import to
    reject that row: no value is dropped unseen. A file that cannot be read, or stops being
    readable part way (not UTF-8, a broken quote), is refused (InputError)."""
    accepted = f"{', '.join(required)}" + (
        f" and optionally {', '.join(optional)}" if optional else "")
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            raw = next(reader, None)
            if raw is None or not any(h.strip() for h in raw):
                raise InputError(f"{path}: no header row; the first line must name the "
                                 f"columns: {accepted}")
            header = [h.strip().lower() for h in raw]
            named = [h for h in header if h]
            unknown = [h for h in dict.fromkeys(named) if h not in required + optional]
            twice = [h for h in dict.fromkeys(named) if named.count(h) > 1]
            missing = [c for c in required if c not in named]
            problems = ([f"unknown column(s) {_shown(unknown)}"] if unknown else []) + (
                [f"column(s) {_shown(twice)} given twice"] if twice else []) + (
                [f"missing column(s) {', '.join(missing)}"] if missing else [])
            if problems:
                raise InputError(f"{path}: {'; '.join(problems)}; the columns are "
                                 f"{accepted}; nothing was imported")
            yield named, _data_rows(reader, header, named)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path} is not a readable CSV file: {exc}") from None


def _data_rows(reader: _csv.Reader, header: list[str], named: list[str]) -> Iterator[FileRow]:
    """The data rows of :func:`_read_rows`, one at a time."""
    while True:
        line = reader.line_num + 1  # where the next row starts
        cells = next(reader, None)
        if cells is None:
            return
        if not cells:
            continue  # a blank line
        row = dict.fromkeys(named, "")
        blank: tuple[str, ...] = ()
        for n, value in enumerate(cells, start=1):
            name = header[n - 1] if n <= len(header) else ""
            cell = value.strip()
            if name:
                row[name] = cell
                if value and not cell:
                    blank += (name,)
            elif cell:
                row[f"column {n}"] = cell
        yield line, row, blank


def _nameless(r: dict[str, str], line: int, errors: list[RowError]) -> None:
    """Reject the row of ``line`` for each value that has no column name (see
    :func:`_read_rows`), quoted masked (it may be a phone number: :func:`quoted`)."""
    for key, value in r.items():
        if key.startswith("column "):
            errors.append(RowError(line, key, f"{quoted(value)} is in a column with no name "
                                              "in the header; name the column or remove the "
                                              "value"))


def _date(value: str, name: str, line: int, errors: list[RowError]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(RowError(line, name, f"{quoted(value)} is not a date (YYYY-MM-DD)"))
        return None


#: The TCPA was enacted on 1991-12-20: an earlier consent date is a typo or a placeholder
#: (0001-01-01), never consent a rule can rely on.
CONSENT_EARLIEST = date(1991, 12, 20)


def consent_date_problem(granted: date, today: date) -> str | None:
    """Why a consent date cannot be right (None when it can)."""
    if granted < CONSENT_EARLIEST:
        return (f"{granted.isoformat()} is before the TCPA ({CONSENT_EARLIEST.isoformat()}); "
                "not a consent date a rule can rely on")
    if granted > today:
        return f"{granted.isoformat()} is in the future"
    return None


def revoked_date_problem(revoked: date, granted: date, today: date) -> str | None:
    """Why a consent's revocation date cannot be right (None when it can): before the
    consent date (such a record would read as current consent) or in the future (as
    ``consent revoke`` refuses)."""
    if revoked < granted:
        return (f"{revoked.isoformat()} is before the consent date {granted.isoformat()}; "
                "a consent cannot be revoked before it was given")
    if revoked > today:
        return f"{revoked.isoformat()} is in the future"
    return None


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant with an offset (raises ValueError otherwise)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("has no UTC offset")
    return parsed.astimezone(UTC)


def _now() -> datetime:
    return utcnow()


class ConsentStore:
    """Express / express-written consent and EBR records, with expiry and revocation.
    ``clock`` (default: the system clock, UTC) says what today is."""

    def __init__(self, settings: Settings, default_region: str | None = None, *,
                 clock: Callable[[], datetime] = _now) -> None:
        self.settings = settings
        self.engine = rules_engine(settings)
        #: the engine for a batch's lookups (consent and attempts; see store.read_engine)
        self.reads = read_engine(self.engine)
        self.region = default_region or settings.default_region
        self.clock = clock

    def add(self, phone: str, type_: str, granted: date, *, expires: date | None = None,
            revoked: date | None = None, source: str | None = None,
            who: str | None = None) -> bool:
        """Add one record (E.164 or national format); False when it is already stored.
        A consent date before the TCPA or in the future, an expiry not after it, and a
        revocation before it or in the future are refused (InputError, the message starting
        with the field: ``consent date``, ``expires``, ``revoked``)."""
        n = normalise(phone, self.region)
        if not n.ok or n.e164 is None:
            raise InputError(f"not a valid phone number: {n.message}")
        if type_ not in CONSENT_TYPES:
            raise InputError(f"consent type must be one of {', '.join(CONSENT_TYPES)}")
        today = self.clock().astimezone(UTC).date()
        problem = consent_date_problem(granted, today)
        if problem:
            raise InputError(f"consent date: {problem}")
        if expires is not None and expires <= granted:
            raise InputError("expires: is not after the consent date")
        problem = revoked_date_problem(revoked, granted, today) if revoked else None
        if problem:
            raise InputError(f"revoked: {problem}")
        with self.engine.begin() as conn:
            return self._insert(conn, n.e164, ConsentRecord(type_, granted, expires, revoked),
                                source, who)

    def records(self, phone: str) -> list[ConsentRecord]:
        """Every consent record of one number (E.164 or national format), oldest first
        (revocation-only records, of type :data:`REVOCATION`, among them)."""
        n = normalise(phone, self.region)
        if not n.ok or n.e164 is None:
            raise InputError(f"not a valid phone number: {n.message}")
        found = self.for_numbers([n.e164]).get(n.e164, [])
        return sorted(found, key=lambda r: (r.granted, r.type))

    def revoke(self, phone: str, on: date, *, type_: str | None = None,
               who: str | None = None, why: str | None = None) -> int:
        """Revoke a number's consents (of one type, or every type) as of ``on``: a revocation
        record is added for each type held, so the history stays. Returns how many.

        When none is held (0), a revocation-only record (type :data:`REVOCATION`, dated
        ``on``) is stored instead, unless a revocation on or after ``on`` is on file: a
        revocation revokes every consent of the number granted on or before its date (the
        rules' revoke-all reading), so a consent dated on or before ``on`` that is imported
        later is revoked too."""
        n = normalise(phone, self.region)
        if not n.ok or n.e164 is None:
            raise InputError(f"not a valid phone number: {n.message}")
        if type_ is not None and type_ not in CONSENT_TYPES:
            raise InputError(f"consent type must be one of {', '.join(CONSENT_TYPES)}")
        if on > self.clock().astimezone(UTC).date():
            raise InputError(f"revocation date {on.isoformat()} is in the future")
        records = self.for_numbers([n.e164]).get(n.e164, [])
        held = [r for r in records
                if r.type in CONSENT_TYPES and (type_ is None or r.type == type_)
                and r.granted <= on and (r.revoked is None or r.revoked > on)]
        covered = any(r.revoked is not None and r.revoked >= on for r in records)
        done = 0
        with self.engine.begin() as conn:
            for rec in held:
                done += self._insert(conn, n.e164, ConsentRecord(rec.type, rec.granted,
                                                                 rec.expires, on),
                                     why or "revoked", who)
            if not done and not covered:
                self._insert(conn, n.e164, ConsentRecord(REVOCATION, on, None, on),
                             why or "revoked", who)
        return done

    def _insert(self, conn: Connection, e164: str, rec: ConsentRecord,
                source: str | None, who: str | None = None) -> bool:
        t = consent_table.c
        cond = and_(t.e164 == e164, t.type == rec.type, t.granted == rec.granted,
                    t.expires.is_(None) if rec.expires is None else t.expires == rec.expires,
                    t.revoked.is_(None) if rec.revoked is None else t.revoked == rec.revoked)
        if conn.execute(select(t.id).where(cond).limit(1)).first():
            return False
        conn.execute(insert(consent_table).values(
            e164=e164, type=rec.type, granted=rec.granted, expires=rec.expires,
            revoked=rec.revoked, source=source, created_at=utcnow()))
        audit.record_list_change(
            self.settings, "consent", "consents", number=e164, conn=conn, who=who,
            detail={"type": rec.type, "granted": rec.granted.isoformat(),
                    "expires": rec.expires.isoformat() if rec.expires else None,
                    "revoked": rec.revoked.isoformat() if rec.revoked else None,
                    "source": source})
        log.info("consent %s for %s", rec.type, mask(e164))
        return True

    def import_csv(self, path: Path, who: str | None = None) -> ImportReport:
        """Import ``phone,type,date[,expires][,revoked]``, all or nothing: every row is
        checked first, and the file is written (in one transaction) only when none is bad.
        Bad rows are reported (by the file's line and the field), not raised, and then
        nothing is imported: a grant stored while the same file's revocation of it is
        rejected would read as consent. A header with any other column (or one twice, or one
        missing) is refused (InputError) and nothing is imported."""
        today = self.clock().astimezone(UTC).date()
        report = ImportReport()
        with _read_rows(path, *CONSENT_COLUMNS) as (_, rows):
            good = _checked(report, rows, lambda i, r, _blank: self._check_row(i, r, today))
        if report.errors:
            return report  # nothing written
        with self.engine.begin() as conn:
            for e164, rec in good:
                if self._insert(conn, e164, rec, str(path.name), who):
                    report.added += 1
                else:
                    report.duplicates += 1
        return report

    def _check_row(self, i: int, r: dict[str, str], today: date
                   ) -> tuple[list[RowError], tuple[str, ConsentRecord] | None]:
        """Check one row (of line ``i``) of :meth:`import_csv`: its errors, or none and its
        number and record."""
        errs: list[RowError] = []
        _nameless(r, i, errs)
        n = normalise(r.get("phone", ""), self.region)
        if not n.ok or n.e164 is None:
            errs.append(RowError(i, "phone", n.message or "not a valid number"))
        kind = r.get("type", "").lower()
        if kind not in CONSENT_TYPES:
            errs.append(RowError(i, "type", f"{quoted(kind)} is not one of "
                                            f"{', '.join(CONSENT_TYPES)}"))
        granted = _date(r.get("date", ""), "date", i, errs)
        if granted is None and not any(e.field == "date" for e in errs):
            errs.append(RowError(i, "date", "is empty"))
        problem = consent_date_problem(granted, today) if granted else None
        if problem:
            errs.append(RowError(i, "date", problem))
        expires = _date(r.get("expires", ""), "expires", i, errs)
        revoked = _date(r.get("revoked", ""), "revoked", i, errs)
        if granted and expires and expires <= granted:
            errs.append(RowError(i, "expires", "is not after the consent date"))
        problem = revoked_date_problem(revoked, granted, today) if (
            granted and revoked) else None
        if problem:
            errs.append(RowError(i, "revoked", problem))
        if errs:
            return errs, None
        assert n.e164 is not None and granted is not None
        return errs, (n.e164, ConsentRecord(kind, granted, expires, revoked))

    def has_records(self, conn: Connection, e164s: list[str] | None = None) -> bool:
        """Whether the table holds any record (``e164s`` None), or one of any of ``e164s``:
        the cheap question asked before a batch's records are read."""
        return (has_rows(conn, consent_table) if e164s is None
                else any_for_numbers(conn, e164s, consent_table))

    def with_attempts(self, conn: Connection, e164s: list[str]) -> tuple[bool, bool]:
        """Whether any of ``e164s`` has a consent record, and whether any has an attempt
        (of any age): both questions in one query (a group of pre-dial checks asks them
        together)."""
        found = numbers_with_rows(conn, e164s, [consent_table, attempts_table])
        return found[0], found[1]

    def for_numbers(self, e164s: list[str], conn: Connection | None = None
                    ) -> dict[str, list[ConsentRecord]]:
        """The records of those numbers that have any (one query per batch), read on
        ``conn`` when given."""
        if conn is None:
            with self.engine.connect() as own:
                return self.for_numbers(e164s, own)
        out: dict[str, list[ConsentRecord]] = {}
        t = consent_table.c
        rows = _rows_for(conn, "consent", consent_table, e164s,
                         lambda: select(t.e164, t.type, t.granted, t.expires, t.revoked))
        for row in rows:
            out.setdefault(row.e164, []).append(
                ConsentRecord(row.type, row.granted, row.expires, row.revoked))
        return out


def attempt_time_problem(at: datetime, now: datetime) -> str | None:
    """Why an attempt's time cannot be right (None when it can): more than
    :data:`CLOCK_SKEW` after ``now``, an attempt not made yet."""
    if at > now + CLOCK_SKEW:
        return (f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} is in the future (more than "
                f"{CLOCK_SKEW.seconds // 60} minutes after now, "
                f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})")
    return None


class AttemptStore:
    """The attempt log that frequency caps count. ``clock`` (default: the system clock) says
    what now is: an attempt stamped more than :data:`CLOCK_SKEW` after it is refused."""

    def __init__(self, settings: Settings, default_region: str | None = None, *,
                 clock: Callable[[], datetime] = _now) -> None:
        self.settings = settings
        self.engine = rules_engine(settings)
        self.region = default_region or settings.default_region
        self.clock = clock

    def record(self, phone: str, at: datetime, *, campaign: str = "default",
               purpose: str = "telemarketing", subject: str | None = None,
               outcome: str | None = None, who: str | None = None) -> bool:
        """Record one attempt; False when nothing was stored, the same attempt being on file
        (see :meth:`record_status`)."""
        return self.record_status(phone, at, campaign=campaign, purpose=purpose,
                                  subject=subject, outcome=outcome, who=who) != DUPLICATE

    def record_status(self, phone: str, at: datetime, *, campaign: str = "default",
                      purpose: str = "telemarketing", subject: str | None = None,
                      outcome: str | None = None, who: str | None = None) -> str:
        """Record one attempt: :data:`ADDED`, :data:`UPDATED` or :data:`DUPLICATE` (see
        :meth:`_insert`). The subject defaults to the campaign; both are stored without the
        spaces around them, the subject in lower case (:func:`subject_key`). Refused
        (InputError, the message starting with the field): a time without an offset or more
        than :data:`CLOCK_SKEW` in the future, an unknown purpose or outcome, a blank
        campaign or subject (one given as only spaces too), a campaign that names no campaign
        profile (:func:`campaign_problem`), a number that is not valid."""
        if at.tzinfo is None:
            raise InputError("at: the attempt time needs a UTC offset")
        when = at.astimezone(UTC)
        problem = attempt_time_problem(when, self.clock())
        if problem:
            raise InputError(f"at: {problem}")
        if purpose not in PURPOSES:
            raise InputError(f"purpose: must be one of {', '.join(PURPOSES)}")
        try:
            known = parse_outcome(outcome)
        except ValueError as exc:
            raise InputError(f"outcome: {exc}") from None
        n = normalise(phone, self.region)
        if not n.ok or n.e164 is None:
            raise InputError(f"not a valid phone number: {n.message}")
        name = campaign.strip()
        if not name:
            raise InputError("campaign: is blank")
        problem = campaign_problem(self.settings, name)
        if problem:
            raise InputError(f"campaign: {problem}")
        key = subject_key(name if subject is None else subject)
        if key is None:
            raise InputError("subject: is blank; leave it out to count by the campaign")
        for field_name, value in (("campaign", name), ("subject", key)):
            if len(value) > KEY_MAX:
                raise InputError(f"{field_name}: {_long(value)}")
        with self.engine.begin() as conn:
            return self._insert(conn, n.e164, Attempt(when, name, purpose, key, known), who)

    def _insert(self, conn: Connection, e164: str, att: Attempt,
                who: str | None = None) -> str:
        """Store one attempt (its subject a :func:`subject_key`).

        :data:`DUPLICATE`: the same attempt is on file (number, time, subject, campaign,
        purpose and outcome; or all but the outcome, this one having none). :data:`UPDATED`:
        that attempt is on file without an outcome and this one has one, a final outcome sent
        again (a ``conversation`` then starts its pause): it is written on the stored attempt
        and the change recorded in the audit trail. Else :data:`ADDED`, a row of its own: an
        attempt sent again with another purpose or campaign, or an outcome other than the
        stored one, is counted under both readings (the caps see the stricter), never
        dropped."""
        t = attempts_table.c
        same = conn.execute(select(t.id, t.campaign, t.purpose, t.outcome).where(and_(
            t.e164 == e164, t.at == att.at, t.subject == att.subject)).order_by(t.id)).all()
        alike = [r for r in same if r.campaign == att.campaign and r.purpose == att.purpose]
        if att.outcome in {outcome_key(r.outcome) for r in alike} or (
                att.outcome is None and alike):
            return DUPLICATE
        detail = {"at": att.at.isoformat(), "campaign": att.campaign, "purpose": att.purpose,
                  "subject": att.subject, "outcome": att.outcome}
        blank = next((r for r in alike if outcome_key(r.outcome) is None), None)
        if blank is not None:
            conn.execute(update(attempts_table).where(t.id == blank.id)
                         .values(outcome=att.outcome))
            audit.record_list_change(
                self.settings, "attempt", "attempts", number=e164, conn=conn, who=who,
                detail={**detail, "updated": True, "previous_outcome": None})
            return UPDATED
        conn.execute(insert(attempts_table).values(
            e164=e164, at=att.at, campaign=att.campaign, purpose=att.purpose,
            subject=att.subject, outcome=att.outcome, created_at=utcnow()))
        audit.record_list_change(self.settings, "attempt", "attempts", number=e164, conn=conn,
                                 who=who, detail=detail)
        return ADDED

    def import_csv(self, path: Path, who: str | None = None, *,
                   purpose: str | None = None) -> ImportReport:
        """Import ``phone,at[,campaign][,purpose][,subject][,outcome]``, all or nothing:
        every row is checked first, and the file is written (in one transaction) only when
        none is bad. Bad rows are reported (by the file's line and the field), not raised,
        and then nothing is imported: the caps would not count a rejected attempt. Every row
        needs its purpose: a blank ``purpose`` cell takes ``purpose`` (the file's default the
        user gave) and is otherwise an error; without that default a file with no
        ``purpose`` column is refused. A ``campaign`` must name a campaign profile
        (:func:`campaign_problem`; an empty cell is ``default``); an empty ``subject`` cell
        counts by the campaign, one of only spaces is an error. A header with any other
        column (or one twice, or one missing) is refused too (InputError), and nothing is
        imported."""
        if purpose is not None and purpose not in PURPOSES:
            raise InputError(f"purpose: must be one of {', '.join(PURPOSES)}")
        now = self.clock()
        report = ImportReport()
        campaigns: dict[str, str | None] = {}  # campaign -> why it is refused (None: known)
        with _read_rows(path, *ATTEMPT_COLUMNS) as (columns, rows):
            if purpose is None and "purpose" not in columns:
                raise InputError(f"{path}: no purpose column; add one ({', '.join(PURPOSES)}) "
                                 "or give the file's purpose (--purpose); nothing was imported")
            good = _checked(report, rows, lambda i, r, blank: self._check_row(
                i, r, blank, now, purpose, campaigns))
        if report.errors:
            return report  # nothing written
        with self.engine.begin() as conn:
            for e164, att in good:
                done = self._insert(conn, e164, att, who)
                if done == ADDED:
                    report.added += 1
                elif done == UPDATED:
                    report.updated += 1
                else:
                    report.duplicates += 1
        return report

    def _check_row(self, i: int, r: dict[str, str], blank: tuple[str, ...], now: datetime,
                   purpose: str | None, campaigns: dict[str, str | None]
                   ) -> tuple[list[RowError], tuple[str, Attempt] | None]:
        """Check one row of :meth:`import_csv` (its line ``i``, the columns ``blank`` given
        as only spaces): its errors, or none and its number and attempt. ``campaigns``
        keeps each campaign's :func:`campaign_problem`, asked once a file."""
        errs: list[RowError] = []
        _nameless(r, i, errs)
        n = normalise(r.get("phone", ""), self.region)
        if not n.ok or n.e164 is None:
            errs.append(RowError(i, "phone", n.message or "not a valid number"))
        at: datetime | None = None
        try:
            at = parse_instant(r.get("at", ""))
        except (ValueError, OverflowError):
            errs.append(RowError(i, "at", f"{quoted(r.get('at', ''))} is not an ISO 8601 "
                                          "instant with an offset"))
        problem = attempt_time_problem(at, now) if at is not None else None
        if problem:
            errs.append(RowError(i, "at", problem))
        why = r.get("purpose", "").lower() or purpose
        if why is None:
            errs.append(RowError(i, "purpose", f"is empty; give the call's purpose "
                                               f"({', '.join(PURPOSES)}), or the file's "
                                               "(--purpose)"))
        elif why not in PURPOSES:
            errs.append(RowError(i, "purpose", f"{quoted(why)} is not one of "
                                               f"{', '.join(PURPOSES)}"))
        outcome: str | None = None
        try:
            outcome = parse_outcome(r.get("outcome"))
        except ValueError as exc:
            errs.append(RowError(i, "outcome", str(exc)))
        campaign = r.get("campaign") or "default"
        if campaign not in campaigns:
            campaigns[campaign] = campaign_problem(self.settings, campaign)
        problem = campaigns[campaign]
        if problem:
            errs.append(RowError(i, "campaign", problem))
        elif len(campaign) > KEY_MAX:
            errs.append(RowError(i, "campaign", _long(campaign)))
        if "subject" in blank:
            errs.append(RowError(i, "subject", "is only spaces; leave the cell empty to "
                                               "count by the campaign, or give the subject"))
        subject = subject_key(r.get("subject")) or subject_key(campaign)
        assert subject is not None
        if len(subject) > KEY_MAX:
            errs.append(RowError(i, "subject", _long(subject)))
        if errs:
            return errs, None
        assert n.e164 is not None and at is not None and why is not None
        return errs, (n.e164, Attempt(at, campaign, why, subject, outcome))

    def has_records(self, conn: Connection, e164s: list[str] | None = None) -> bool:
        """Whether the table holds any attempt (``e164s`` None), or one of any of ``e164s``
        (of any age): the cheap question asked before a batch's attempts are read."""
        return (has_rows(conn, attempts_table) if e164s is None
                else any_for_numbers(conn, e164s, attempts_table))

    def for_numbers(self, e164s: list[str], since: datetime, conn: Connection | None = None
                    ) -> dict[str, list[Attempt]]:
        """The attempts since ``since`` of those numbers that have any, oldest first, read
        on ``conn`` when given."""
        if conn is None:
            with self.engine.connect() as own:
                return self.for_numbers(e164s, since, own)
        out: dict[str, list[Attempt]] = {}
        for row in _rows_for(conn, "attempts", attempts_table, e164s, _recent_attempts,
                             since=since):
            out.setdefault(row.e164, []).append(_attempt(row))
        return out

    def for_subjects(self, subjects: list[str], since: datetime, conn: Connection
                     ) -> dict[str, list[tuple[str, Attempt]]]:
        """The attempts since ``since`` on these subjects (a debt, an offer), to any number:
        subject key (:func:`subject_key`, as stored) -> (number, attempt), oldest first. One
        query through the subject index, the subjects one parameter (a JSON array on SQLite,
        an array on PostgreSQL), however many; nothing is sent when a large batch meets an
        empty table."""
        keys = sorted({k for s in subjects if (k := subject_key(s)) is not None})
        out: dict[str, list[tuple[str, Attempt]]] = {}
        for row in _rows_for(conn, "attempts-by-subject", attempts_table, keys,
                             _recent_attempts, column="subject", since=since):
            attempt = _attempt(row)
            out.setdefault(attempt.subject, []).append((row.e164, attempt))
        return out


def _attempt(row: Row[Any]) -> Attempt:
    """A stored attempt, its subject compared as :func:`subject_key` (rows stored before
    subjects were normalised on write keep their spelling in the table)."""
    at = as_utc(row.at)
    assert at is not None
    return Attempt(at, row.campaign, row.purpose, subject_key(row.subject) or "", row.outcome)
