"""Local DNC lists: import, inspect, remove, manual opt-outs, and fast membership checks.

Kinds and what they hold:

============  ===============================================  ==============
kind          content                                          reason code
============  ===============================================  ==============
internal      the company's own opt-outs                       DNC_INTERNAL
national      a national registry (US FTC, CA DNCL, GB TPS, AU)  DNC_NATIONAL
state         a state or province list (US-FL, US-PR, CA-ON)    DNC_STATE
litigator     known serial plaintiffs                          DNC_LITIGATOR
hashed        SHA-256 of E.164 numbers (optionally salted)      DNC_HASHED
prefix        digit prefixes of E.164 numbers (ranges)          DNC_PREFIX
cxone         records synced from a NICE CXone DNC group        DNC_CXONE
============  ===============================================  ==============

Imported content is a read-only snapshot file (:mod:`dncguard.lists.snapshots`); the database holds
what changes between imports: manual additions (with who, why and an optional expiry),
removals of snapshot numbers, and synced records. Re-importing a list replaces its snapshot
atomically and keeps the previous ``keep_snapshots`` files; manual additions survive a
re-import (an opt-out is never lost to a file refresh), removals do not (the new file is the
new truth), nor does the removal of a number a change list adds (the later word). A full
re-import that is plainly not the whole list (fewer than :data:`SHRINK_FLOOR` of its entries,
or more rejected lines than valid ones) is refused, the list kept, unless ``allow_shrink``. A
change list with no usable record is refused, and one with a rejected record does not move the
list's snapshot date. Each list's files are in a folder of its own under the lists folder,
named in its record (lists stored before folders were recorded keep the one derived from
their name); removing a list deletes only the files its versions name.

Imports of one list at once commit one after the other, never over each other: a change list
whose base another import replaced meanwhile is applied again to the new version (up to
:data:`IMPORT_ATTEMPTS` times, then refused, changing nothing); a complete import is the whole
list, so the last one to commit is current, as if they had run one after the other.

With PostgreSQL the snapshot files are shared through the database (:mod:`.snapshot_share`):
an import publishes its file in the transaction that makes it current, and every other home
fetches it (:meth:`ListStore.sync`, for every list by :mod:`.list_sync`); a home that does not
hold a list's current version answers ``error`` for that list until it does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from .. import audit, sharedfiles
from ..config import Settings
from ..errors import ListError
from ..models import Decision, Reason, ReasonCode
from ..phones import mask, normalise
from ..places import subdivision, subdivision_codes
from ..store import (
    as_utc,
    conflict_insert,
    count_list_change,
    get_engine,
    list_entries_table,
    list_events_table,
    list_versions_table,
    lists_table,
    utcnow,
)
from . import _files as listfiles
from . import share as snapshot_share
from .integrity import SEAL_SUFFIX, Seal, SnapshotFile, SnapshotIntegrityError
from .snapshots import (
    apply_changes,
    build_number_snapshot,
    open_file,
    open_snapshot,
    seal_of,
    snapshot_count,
    sorted_contains,
    write_snapshot,
)

KIND_CODES: dict[str, ReasonCode] = {
    "internal": ReasonCode.DNC_INTERNAL,
    "national": ReasonCode.DNC_NATIONAL,
    "state": ReasonCode.DNC_STATE,
    "litigator": ReasonCode.DNC_LITIGATOR,
    "hashed": ReasonCode.DNC_HASHED,
    "prefix": ReasonCode.DNC_PREFIX,
    "cxone": ReasonCode.DNC_CXONE,
}
#: Lists that inform the rules instead of blocking: ``wireless`` holds wireless and ported-
#: to-wireless numbers (a carrier or port-data download); a number on it is dialed as a
#: mobile line unless its row says otherwise.
INFO_KINDS = ("wireless",)
NUMBER_KINDS = ("internal", "national", "state", "litigator", *INFO_KINDS)
IMPORT_KINDS = (*NUMBER_KINDS, "hashed", "prefix")
ALL_KINDS = (*KIND_CODES, *INFO_KINDS)
MANUAL_KINDS = ("internal", "litigator")
DATED_KINDS = ("national", "state")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_JURISDICTION = re.compile(r"^([A-Z]{2})(?:-(.*))?$", re.DOTALL)
#: The countries a list can be of: their national registries, and the national formats a
#: number file may use (:func:`dncguard.lists._files.country_of`).
LIST_COUNTRIES = ("US", "CA", "GB", "AU")
#: What a state list's subdivision is, per country whose subdivisions the state-list check can
#: match (:func:`dncguard.sources.local.applies_to`: a number's state from its area code, its
#: row's ``state`` or ZIP code; a row's ``state`` is one of the codes of
#: ``data/subdivisions.csv``). GB and AU have none.
_SUBDIVISIONS = {"US": "US state or territory", "CA": "Canadian province or territory"}
#: What each kind does with a jurisdiction: dated kinds are scoped by it; number kinds read
#: national-format numbers in its country's format; hashed and prefix lists hold E.164 forms.
_SCOPED_KINDS = DATED_KINDS
_COUNTRY_KINDS = ("internal", "litigator", "wireless")

#: When each national registry opened (a snapshot cannot be older): the US National Do Not
#: Call Registry 2003-06-27, the UK TPS 1999-05-01 (its statutory basis), Canada's National
#: DNCL 2008-09-30, Australia's Do Not Call Register 2007-05-31. Other lists: 1991-12-20 (the
#: TCPA, the oldest rule a list here serves).
REGISTRY_OPENED = {"US": date(2003, 6, 27), "GB": date(1999, 5, 1), "CA": date(2008, 9, 30),
                   "AU": date(2007, 5, 31)}
LISTS_EARLIEST = date(1991, 12, 20)


def snapshot_date_problem(snapshot: date, jurisdiction: str | None, today: date) -> str | None:
    """Why a snapshot date cannot be right: in the future (it would count as fresh until
    then), or before the list could exist. None when it can."""
    if snapshot > today:
        return (f"{snapshot.isoformat()} is in the future; the date of the download is at "
                f"most today ({today.isoformat()})")
    country = (jurisdiction or "").split("-")[0]
    opened = REGISTRY_OPENED.get(country, LISTS_EARLIEST) if "-" not in (jurisdiction or "") \
        else LISTS_EARLIEST
    if snapshot < opened:
        return f"{snapshot.isoformat()} is before the list could exist ({opened.isoformat()})"
    return None


def _base_snapshot_date(info: ListInfo | None) -> date | None:
    """The snapshot date of the list a change list applies to (None when it has none: a kind
    that does not age); a stored date that cannot be read refuses the change list, since
    no record could be told to be older than the snapshot or not."""
    if info is None or not info.snapshot_date:
        return None
    try:
        return date.fromisoformat(info.snapshot_date)
    except ValueError:
        raise ListError(f"list {info.name}: its snapshot date {info.snapshot_date!r} cannot be "
                        "read, so no change record can be told to be newer than it; import "
                        "the whole list") from None


def _same_base_date(info: ListInfo | None, base_date: date | None) -> None:
    """Refuse a change list whose list another import gave a new snapshot date while it was
    applied: its records were judged against the old date (a full import of a later day
    already reflects the records dated before that day)."""
    if info is None:
        return
    now = _base_snapshot_date(info)
    if now != base_date:
        raise ListError(
            f"list {info.name!r}: another import changed its snapshot date from "
            f"{base_date.isoformat() if base_date else 'none'} to "
            f"{now.isoformat() if now else 'none'} while this change list was applied; this "
            "import changed nothing: run it again")


def _removal_hint(kind: str) -> str:
    """How a number leaves a list of ``kind`` when ``dnc remove`` cannot take it off."""
    if kind in NUMBER_KINDS:
        return "remove numbers by importing a change list (--changes) with a D record"
    if kind == "cxone":
        return ("it mirrors a CXone DNC group: remove the number in CXone, then run "
                "'dncguard cxone sync'")
    held = "hashes" if kind == "hashed" else "digit prefixes"
    return (f"it holds {held}, not numbers, and change lists apply to number lists only: "
            "re-import the whole list without the entry (lists import with the same --name "
            "replaces it)")


def _check_expected(path: Path, values: npt.NDArray[Any],
                    expected: list[tuple[str, str]], salt: str | None) -> None:
    """Refuse a hashed list file that does not hold the hash of every ``expected`` number
    (as given, E.164), made as a lookup makes it (see :func:`_files.hash_number`)."""
    hashes = np.array([listfiles.hash_number(e164, salt) for _, e164 in expected], dtype="S32")
    held = sorted_contains(values, hashes)
    missing = [pair for pair, ok in zip(expected, held.tolist(), strict=True) if not ok]
    if missing:
        given, e164 = missing[0]
        how = f"SHA-256 of the salt and {e164}" if salt else f"SHA-256 of {e164}"
        more = f" (and {len(missing) - 1} more --expect)" if len(missing) > 1 else ""
        raise ListError(
            f"{path}: --expect {given}{more}: its hash ({how}, in hex, as lookups make it) "
            "is not in the file, so the file's hashes are made another way (without the '+', "
            "in national format, with another salt or algorithm) or the number is not on the "
            "list; nothing was imported")


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def jurisdiction_problem(kind: str, jurisdiction: str) -> str | None:
    """Why a list of ``kind`` cannot have ``jurisdiction`` (upper case, ``GB`` not ``UK``);
    None when it can. A national list names its country (US, CA, GB, AU); a state list a
    subdivision the state-list check can match: a US state, DC or territory, or a Canadian
    province or territory (``US-FL``, ``US-PR``, ``CA-ON``; the codes of
    :func:`dncguard.places.subdivision_codes`, which a row's ``state`` is read as too). An
    internal, litigator or wireless list applies to every number: its jurisdiction only names
    the country whose national format the file uses. Hashed and prefix lists hold forms of
    E.164 numbers and use none."""
    if kind not in (*_SCOPED_KINDS, *_COUNTRY_KINDS):
        held = "SHA-256 hashes" if kind == "hashed" else "digit prefixes"
        return (f"{_a(kind)} list does not use a jurisdiction: it holds {held} of E.164 "
                "numbers, whatever their country; leave --jurisdiction out")
    found = _JURISDICTION.match(jurisdiction)
    country, sub = (found.group(1), found.group(2)) if found else ("", None)
    if country not in LIST_COUNTRIES:
        return ("not a country a list can be of: use US, CA, GB or AU" +
                (", with the state or province (e.g. US-FL)" if kind == "state" else ""))
    if kind == "state":
        if sub is None:
            return "a state list's jurisdiction names the state, e.g. US-FL"
        what = _SUBDIVISIONS.get(country)
        if what is None:
            return (f"dncguard knows no {country} subdivisions to match numbers to; a state "
                    "list is of a US state or territory or a Canadian province or territory "
                    f"(e.g. US-FL, CA-ON), a {country} registry is --kind national "
                    f"--jurisdiction {country}")
        if sub not in subdivision_codes(country):
            named = subdivision(sub)
            hint = (f"; did you mean {named[0]}-{named[1]}?" if named
                    else f"; use the two-letter postal code, e.g. {country}-"
                         f"{'FL' if country == 'US' else 'ON'}")
            return f"{sub or 'an empty code'} is not a {what} code{hint}"
        return None
    if sub is not None:
        if kind == "national":
            return (f"a national list's jurisdiction is its country ({country}); a list of one "
                    f"state or province is --kind state --jurisdiction {jurisdiction}")
        return (f"{_a(kind)} list applies to every number, whatever its state; its "
                "jurisdiction only names the country whose national format the file uses "
                f"({country})")
    return None


@dataclass(frozen=True)
class ListInfo:
    """A list's metadata as stored."""

    name: str
    kind: str
    jurisdiction: str | None
    snapshot_date: str | None
    count: int
    current_file: str | None
    salt: str | None
    created_at: datetime
    updated_at: datetime
    synced_at: datetime | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> ReasonCode:
        return KIND_CODES[self.kind]

    @property
    def scope_problem(self) -> str | None:
        """Why the numbers this national or state list applies to cannot be told from its
        stored jurisdiction (one stored before such jurisdictions were refused, e.g. a state
        list of ``US-FA``, which no number would ever match): checking it must fail closed.
        None when they can, or the list is of another kind."""
        if self.kind not in _SCOPED_KINDS or not self.jurisdiction:
            return None
        problem = jurisdiction_problem(self.kind, self.jurisdiction)
        if problem is None:
            return None
        return f"list {self.name}: jurisdiction {self.jurisdiction}: {problem}; re-import it"

    @property
    def seal(self) -> Seal | None:
        """The database's record of the current snapshot's seal (None: written before seals)."""
        return Seal.of_meta(self.meta, self.current_file)


@dataclass
class ImportResult:
    info: ListInfo
    report: listfiles.ParseReport
    added: int = 0
    deleted: int = 0


def _row_to_info(row: Any) -> ListInfo:
    return ListInfo(
        name=row.name,
        kind=row.kind,
        jurisdiction=row.jurisdiction,
        snapshot_date=row.snapshot_date,
        count=row.count,
        current_file=row.current_file,
        salt=row.salt,
        created_at=as_utc(row.created_at) or utcnow(),
        updated_at=as_utc(row.updated_at) or utcnow(),
        synced_at=as_utc(row.synced_at),
        meta=dict(row.meta or {}),
    )


def _safe_folder(name: str) -> str:
    """The folder of a list stored before folders were recorded (see :func:`_folder_name`):
    its name with every character a folder name cannot hold replaced by ``_``, which two
    names can share (``optouts:web`` and ``optouts_web``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


#: A name that is a folder name as it is (no character replaced, no leading '.', '-' or '_').
_PLAIN_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: What a recorded folder may be: one path component under the lists folder.
_RECORDED_FOLDER = re.compile(r"^(?!\.\.?$)[A-Za-z0-9_.-]{1,200}$")
#: The key of a list's ``meta`` that records its folder under the lists folder.
FOLDER_KEY = "folder"


def check_new_name(name: str) -> None:
    """Refuse (ListError) a name a new list may not have: every list is made through here
    (an import as much as a first ``dnc add`` or a CXone sync), so every list can be named on
    the command line and in a campaign's ``lists``."""
    if not _NAME.match(name):
        raise ListError(f"list name {name!r}: start with a letter or digit, then use letters, "
                        "digits, '_', '-', '.', ':' (at most 100 characters)")


def _folder_name(name: str, meta: dict[str, Any] | None) -> str:
    """The folder under the lists folder that holds list ``name``'s snapshot files: the one
    its record names (every list made since folders are recorded), else the one it has
    always had (:func:`_safe_folder`; such a list's folder is never moved)."""
    recorded = (meta or {}).get(FOLDER_KEY)
    if isinstance(recorded, str) and _RECORDED_FOLDER.match(recorded):
        return recorded
    return _safe_folder(name)


def _folder_candidates(name: str) -> list[str]:
    """Folders a new list ``name`` may get, in order of preference: the name itself when it
    is a plain folder name; otherwise, and when that is taken, its readable part and a hash
    of the exact name, so that two names never share a folder."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    readable = _safe_folder(name)[:80]
    hashed = [f"{readable}-{digest[:n]}" for n in (10, 20, 64)]
    return ([name] if _PLAIN_FOLDER.match(name) else []) + hashed


#: How a snapshot problem begins when this home has not fetched the list's current version yet
#: (shared snapshots): it is fetched shortly, nothing is wrong with the list itself.
NOT_HELD = "this replica does not hold snapshot"
FETCH_FAILED = "this replica could not fetch snapshot"


def snapshot_remedy(problem: str) -> str:
    """What to do about a list's snapshot problem (:meth:`ListStore.snapshot_problem`'s
    words): fetch it when this replica only lacks it, retry a failed fetch, else re-import."""
    if NOT_HELD in problem:  # not fetched yet: nothing to re-import
        return "dncguard lists sync fetches it at once"
    if FETCH_FAILED in problem:  # a damaged copy in the database, or the database away
        return ("dncguard lists sync tries again; if it fails the same way, re-import the "
                "list")
    return "re-import the list"
#: (list name, snapshot file) -> why this process could not fetch that version from the
#: database: its checks and /readyz then say so instead of "not fetched yet" (a damaged chunk
#: is not cured by waiting; re-importing the list is).
_FETCH_FAILED: dict[tuple[str, str | None], str] = {}


class ListStore:
    """Create, import, inspect and remove lists; record manual opt-outs."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or get_engine(settings)
        #: Snapshots are published to the database and fetched from it (PostgreSQL): the
        #: files under the home are a cache of the database's versions.
        self.shared = sharedfiles.enabled(self.engine)

    # -- metadata ---------------------------------------------------------------------------
    def all(self) -> list[ListInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(lists_table).order_by(lists_table.c.name)).all()
        return [_row_to_info(r) for r in rows]

    def get(self, name: str) -> ListInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(lists_table).where(lists_table.c.name == name)).first()
        if row is None:
            known = ", ".join(i.name for i in self.all()) or "none yet"
            raise ListError(f"no list named {name!r} (lists: {known})")
        return _row_to_info(row)

    def folder(self, name: str) -> Path:
        """The folder of list ``name``'s snapshot files (see :meth:`folder_of`); for a list
        that does not exist, the folder it would get if it were made now."""
        info = self._find(name)
        if info is not None:
            return self.folder_of(info)
        return self.settings.lists_dir / self._new_folder(name, self.all())

    def folder_of(self, info: ListInfo) -> Path:
        """The folder of the list's snapshot files: the one its record names, or (a list
        stored before folders were recorded) the one derived from its name, as always."""
        return self.settings.lists_dir / _folder_name(info.name, info.meta)

    def _new_folder(self, name: str, lists: list[ListInfo]) -> str:
        """The folder for a new list ``name``: one no other list uses (compared ignoring
        case, for file systems that do), recorded in the list's ``meta`` when it is made."""
        taken = {_folder_name(i.name, i.meta).casefold() for i in lists if i.name != name}
        for candidate in _folder_candidates(name):
            if candidate.casefold() not in taken:
                return candidate
        raise ListError(f"list name {name!r}: no folder is free for it; choose another name")

    def snapshot_path(self, info: ListInfo) -> Path | None:
        return self.folder_of(info) / info.current_file if info.current_file else None

    def snapshot_problem(self, info: ListInfo) -> str | None:
        """Why the list's current snapshot cannot be trusted (None when it verifies, or the
        list has no snapshot). Cheap for a file verified before and unchanged since."""
        if info.current_file is None:
            return None
        try:
            self.open_current(info)
        except SnapshotIntegrityError as exc:
            return str(exc)
        except OSError as exc:
            return f"snapshot unreadable: {exc.strerror} ({info.name}/{info.current_file})"
        return None

    def open_current(self, info: ListInfo) -> SnapshotFile:
        """The list's current snapshot, verified against the database's seal. With shared
        snapshots a version this home does not hold yet is named as such. Raises
        :class:`SnapshotIntegrityError`."""
        path = self.snapshot_path(info)
        if path is None:
            raise SnapshotIntegrityError(f"list {info.name} has no snapshot")
        try:
            return open_file(path, info.seal)
        except SnapshotIntegrityError:
            if self.shared and not path.exists():
                failed = _FETCH_FAILED.get((info.name, info.current_file))
                if failed is not None:  # fetching it failed: waiting will not help
                    raise SnapshotIntegrityError(
                        f"{FETCH_FAILED} {path.parent.name}/{path.name} "
                        f"(the list's current version) from the database: {failed}") from None
                raise SnapshotIntegrityError(
                    f"{NOT_HELD} {path.parent.name}/{path.name} "
                    "(the list's current version) yet; it is fetched from the database"
                    ) from None
            raise

    # -- shared snapshots (PostgreSQL) ------------------------------------------------------
    def sync(self, info: ListInfo) -> bool:
        """Make this home hold the list's current version (shared snapshots only): fetched
        from the database when missing or damaged. True when it was fetched. Raises
        :class:`SnapshotIntegrityError` when it cannot be."""
        if not self.shared or info.current_file is None or self.snapshot_problem(info) is None:
            return False
        seal = info.seal
        key = (info.name, info.current_file)
        try:
            if seal is None:
                raise SnapshotIntegrityError(
                    f"list {info.name}: the database has no seal for snapshot "
                    f"{info.current_file}; import the list again")
            snapshot_share.materialise(self.engine, self.folder_of(info), seal)
        except SnapshotIntegrityError as exc:
            _FETCH_FAILED[key] = str(exc)
            raise
        _FETCH_FAILED.pop(key, None)
        return True

    def ensure(self, name: str, kind: str, jurisdiction: str | None = None,
               meta: dict[str, Any] | None = None) -> ListInfo:
        """The list of that name, created empty if it does not exist yet. Safe when several
        processes make the same new list at once (their first ``dnc add`` on a fresh home, two
        CXone syncs): the insert skips a row another one made meanwhile, and every caller gets
        the one stored list (refused, as always, when it is of another kind)."""
        check_new_name(name)
        if kind not in ALL_KINDS:
            raise ListError(f"unknown kind {kind!r}; kinds: {', '.join(ALL_KINDS)}")
        info = self._find(name)
        if info is None:
            now = utcnow()
            folder = self._new_folder(name, self.all())
            with self.engine.begin() as conn:
                _insert_if_absent(conn, lists_table, lists_table.c.name, {
                    "name": name, "kind": kind, "jurisdiction": jurisdiction, "count": 0,
                    "meta": {**(meta or {}), FOLDER_KEY: folder}, "created_at": now,
                    "updated_at": now})
                count_list_change(conn)
                row = conn.execute(select(lists_table).where(lists_table.c.name == name)).first()
            if row is None:  # made by another process and removed again meanwhile
                raise ListError(f"list {name!r} was removed while it was being created; "
                                "run the command again")
            info = _row_to_info(row)
        if info.kind != kind:
            raise ListError(f"list {name!r} is of kind {info.kind}, not {kind}")
        return info

    # -- import -----------------------------------------------------------------------------
    def import_file(
        self,
        path: Path,
        *,
        kind: str,
        name: str,
        jurisdiction: str | None = None,
        snapshot_date: date | None = None,
        changes: bool = False,
        salt: str | None = None,
        who: str | None = None,
        allow_shrink: bool = False,
        expect: Sequence[str] = (),
    ) -> ImportResult:
        """Import a file as the new content of a list (or apply it as a change list).

        A full re-import of a list of any kind is refused, the list left as it was, unless
        ``allow_shrink``: when it would leave the list with fewer than :data:`SHRINK_FLOOR`
        of its current entries (a truncated or partial file reads as a smaller list, and
        every entry it lost would stop blocking), and when the file's rejected lines
        outnumber its valid ones (a file mostly not understood: damaged, mis-encoded, or of
        another kind or format). ``allow_shrink`` is refused with a change list, which never
        replaces the list. A hashed list's ``salt`` must be printable ASCII
        (:func:`dncguard.lists._files.salt_problem`).

        ``expect`` (hashed lists only) names numbers the file must hold: each is hashed as a
        lookup hashes it (its E.164 form with the list's salt), and the import is refused,
        nothing imported, naming the first whose hash is not in the file: a file hashed in
        another way (without the '+', in national format, with another salt or algorithm)
        would otherwise import and match nothing."""
        if kind not in IMPORT_KINDS:
            raise ListError(f"kind {kind!r} cannot be imported; kinds: {', '.join(IMPORT_KINDS)}")
        if salt is not None and kind != "hashed":
            held = "digit prefixes" if kind == "prefix" else "numbers"
            raise ListError(f"--salt is for hashed lists only; {_a(kind)} list holds {held}, "
                            "not hashes: leave --salt out")
        if salt is not None and kind == "hashed":
            bad_salt = listfiles.salt_problem(salt)
            if bad_salt:  # never the salt itself in the message
                raise ListError(f"--salt: {bad_salt}; give the salt the list's hashes were "
                                "made with, in printable ASCII; nothing was imported")
        if expect and kind != "hashed":
            raise ListError(f"--expect is for hashed lists only, to prove that their hashes "
                            f"are made as lookups make them; {_a(kind)} list can be checked "
                            "with 'dncguard check' after the import: leave --expect out")
        expected: list[tuple[str, str]] = []
        for phone in expect:
            try:
                expected.append((phone, self._e164(phone, None)))
            except ListError as exc:
                raise ListError(f"--expect: {exc}; nothing was imported") from None
        if snapshot_date is not None and kind not in DATED_KINDS:
            raise ListError(f"{_a(kind)} list does not age: --snapshot-date is only for "
                            "national and state registry snapshots; leave it out")
        if jurisdiction is not None:
            given = jurisdiction
            jurisdiction = re.sub(r"^UK(?=-|$)", "GB", jurisdiction.strip().upper())
            if not jurisdiction:
                raise ListError(f"--jurisdiction is empty; {_a(kind)} list "
                                + ("needs one (e.g. US, US-FL, GB)" if kind in DATED_KINDS
                                   else "can leave it out"))
            problem = jurisdiction_problem(kind, jurisdiction)
            if problem:
                raise ListError(f"--jurisdiction {given.strip()}: {problem}")
        if changes and kind not in NUMBER_KINDS:
            raise ListError("change lists apply to number lists only")
        if changes and allow_shrink:
            raise ListError("--allow-shrink is for full imports: a change list adds and "
                            "deletes the numbers it names and never replaces the list, so "
                            "there is nothing for it to allow; leave --allow-shrink out")
        lists = self.all()
        existing = {i.name: i for i in lists}.get(name)
        if existing is None:  # a list made before the rule keeps its name
            check_new_name(name)
        if existing and existing.kind != kind:
            raise ListError(f"list {name!r} is of kind {existing.kind}, not {kind}")
        if changes and (existing is None or existing.current_file is None):
            raise ListError(f"list {name!r} has no snapshot to apply changes to; import it first")
        if changes:
            assert existing is not None
            # a change list applies to the list as it is: its numbers are read in the list's
            # own jurisdiction, which it never changes
            if jurisdiction is not None and jurisdiction != existing.jurisdiction:
                raise ListError(
                    f"--jurisdiction {jurisdiction}: list {name!r} is of jurisdiction "
                    f"{existing.jurisdiction or 'none'}, and a change list applies to the list "
                    "as it is; leave --jurisdiction out (or import the whole list to change it)")
            if existing.scope_problem:
                raise ListError(f"{existing.scope_problem} (a change list cannot fix it)")
            jurisdiction = existing.jurisdiction
        if kind in DATED_KINDS:
            if not jurisdiction:
                raise ListError(f"a {kind} list needs --jurisdiction (e.g. US, US-FL, GB)")
            if snapshot_date is None:
                raise ListError(f"a {kind} list needs --snapshot-date (the date of the download)")
        if snapshot_date is not None:
            problem = snapshot_date_problem(snapshot_date, jurisdiction, utcnow().date())
            if problem:
                raise ListError(f"--snapshot-date: {problem}")
        # a change list applies on top of the list's snapshot: a change dated before it is
        # already in it (applied again it would undo a later change the snapshot holds)
        base_date = _base_snapshot_date(existing) if changes else None
        if base_date is not None and snapshot_date is not None and snapshot_date < base_date:
            raise ListError(
                f"--snapshot-date {snapshot_date.isoformat()} is before the snapshot date of "
                f"list {name!r} ({base_date.isoformat()}): that download already reflects "
                "this change list; nothing was applied")
        if kind == "hashed" and existing is not None and salt is None:
            if existing.salt:
                # the stored salt is the old file's: kept silently, a new file of hashes
                # made without it (or with another) would match nothing
                raise ListError(
                    f"list {name!r} holds hashes salted with its stored salt; a re-import "
                    "must say which salt the new file's hashes use: give it with --salt, or "
                    "--no-salt (--salt \"\") if they are unsalted")
            salt = existing.salt
        if kind == "hashed":
            salt = salt or None  # "" and None both mean unsalted: stored as None

        # a list's snapshot files live in its folder; a new list gets one no other list uses
        folder = (self.folder_of(existing) if existing is not None
                  else self.settings.lists_dir / self._new_folder(name, lists))
        region = self.settings.default_region
        added = deleted = count = 0
        values: npt.NDArray[Any] | None = None
        file_name: str | None = None
        adds = dels = listed = np.zeros(0, dtype=np.uint64)
        if changes:
            adds, dels, report = listfiles.read_changes(path, jurisdiction=jurisdiction,
                                                        default_region=region,
                                                        not_before=base_date)
        elif kind in NUMBER_KINDS and _national_scale(path, jurisdiction or region):
            # a national registry: straight from the file's blocks into a bitmap, no sort (a
            # number the bitmap cannot hold makes it a sorted snapshot, never a dropped number)
            report = listfiles.ParseReport()
            file_name, count = build_number_snapshot(folder, listfiles.iter_numbers(
                path, jurisdiction=jurisdiction, default_region=region, report=report))
            report.accepted = count
        elif kind in NUMBER_KINDS:
            values, report = listfiles.read_numbers(path, jurisdiction=jurisdiction,
                                                    default_region=region)
        elif kind == "hashed":
            values, report = listfiles.read_hashes(path)
        else:
            values, report = listfiles.read_prefixes(path)
        if report.accepted == 0 and changes:
            # refused as a file with no usable records is: nothing applied, and above all
            # the list's snapshot date not moved (a stale registry would count as fresh)
            first = (f"{report.rejected:,} records rejected; first: "
                     f"{report.reject_samples[0]}" if report.reject_samples
                     else "the file holds no records")
            raise ListError(f"{path}: no usable change records ({first}); nothing was "
                            "applied and the list's snapshot date is unchanged")
        if report.accepted == 0 and not changes:
            if file_name is not None:
                self._discard(folder, file_name)
            why = "; ".join(report.reject_samples[:3])
            raise ListError(f"{path}: no valid entries found" + (f" ({why})" if why else ""))
        if expected:
            assert values is not None
            _check_expected(path, values, expected, salt)
        replacing = not changes and existing is not None and existing.current_file is not None
        if replacing and not allow_shrink and report.rejected > report.valid_lines:
            # a file mostly not understood is not the list: the old one stays
            if file_name is not None:
                self._discard(folder, file_name)
            first = f"; first: {report.reject_samples[0]}" if report.reject_samples else ""
            raise ListError(
                f"{path}: {report.rejected:,} lines rejected against {report.valid_lines:,} "
                f"valid{first}; a file mostly not understood (damaged, mis-encoded, or of "
                f"another kind or format) would replace list {name!r}: check the file, or "
                "pass --allow-shrink to import its valid entries anyway; nothing was imported")

        if file_name is None and not changes:
            assert values is not None
            file_name = write_snapshot(folder, values,
                                       layout="auto" if kind in NUMBER_KINDS else "sorted")
            count = int(values.size)
        if (replacing and not allow_shrink and existing is not None
                and count < existing.count * SHRINK_FLOOR):
            assert file_name is not None
            self._discard(folder, file_name)
            raise ListError(
                f"{path}: {count:,} entries against {existing.count:,} in list {name!r} now "
                f"({1 - count / existing.count:.0%} fewer); {_shrink_risk(existing.kind)}: "
                f"check the file, or pass --allow-shrink if the "
                f"{'registry' if existing.kind in DATED_KINDS else 'list'} really shrank; "
                "nothing was imported")
        seal = seal_of(folder / file_name) if file_name is not None else None
        # The snapshot date says the list holds the registry as of that day: a change list
        # moves it only when every one of its records was applied.
        snap = (snapshot_date.isoformat()
                if snapshot_date and not (changes and report.rejected) else None)
        # The commit is conditional on what this import read (see _commit_import): a change
        # list is redone on the list's new version when another import made one meanwhile,
        # a few times at most, so no concurrent import's changes are ever dropped.
        committed = False
        try:
            for attempt in range(1, IMPORT_ATTEMPTS + 1):
                if changes:
                    if existing is None or existing.current_file is None:
                        raise ListError(f"list {name!r} was removed while this change list was "
                                        "applied; import it first")
                    try:
                        folder = self.folder_of(existing)
                        file_name, count, added, deleted, listed = self._apply_change_list(
                            existing, adds, dels)
                        seal = seal_of(folder / file_name)
                    except (SnapshotIntegrityError, OSError):
                        # the base may have been replaced and pruned, or the list removed,
                        # while it was read: redo on the new version (or refuse, removed); a
                        # base still current that fails is the error
                        fresh = self._find(name)
                        if attempt == IMPORT_ATTEMPTS or (
                                fresh is not None
                                and fresh.current_file == existing.current_file):
                            raise
                        existing = fresh
                        _same_base_date(existing, base_date)
                        continue
                assert file_name is not None and seal is not None
                try:
                    committed, lifted = self._commit_import(
                        path, name=name, kind=kind, jurisdiction=jurisdiction, snap=snap,
                        changes=changes, salt=salt, who=who, existing=existing, seal=seal,
                        folder=folder, count=count, report=report, added=added,
                        deleted=deleted, adds=adds, listed=listed)
                except IntegrityError:
                    # two imports creating one list: the other made it first; update it
                    if existing is not None or self._find(name) is None:
                        raise
                if committed:
                    added += lifted
                    break
                if changes:  # made on a base that is no longer current: never published
                    self._discard(folder, file_name)
                existing = self._find(name)
                if existing is not None and existing.kind != kind:
                    raise ListError(f"list {name!r} is of kind {existing.kind}, not {kind}")
                if changes and existing is not None and existing.jurisdiction != jurisdiction:
                    raise ListError(
                        f"list {name!r}: another import changed its jurisdiction from "
                        f"{jurisdiction or 'none'} to {existing.jurisdiction or 'none'} while "
                        "this change list was applied; this import changed nothing: run it "
                        "again")
                if changes:
                    _same_base_date(existing, base_date)
            else:
                what = "this change list was applied" if changes else "it was imported"
                raise ListError(f"list {name} changed while {what} (by another import, "
                                f"{IMPORT_ATTEMPTS} times); this import changed nothing: run "
                                "it again")
        finally:
            if not committed and file_name is not None:
                self._discard(folder, file_name)
        self._prune_versions(name, folder)
        return ImportResult(self.get(name), report, added=added, deleted=deleted)

    def _find(self, name: str) -> ListInfo | None:
        """The list of that name as stored now (None when there is none)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(lists_table).where(lists_table.c.name == name)).first()
        return None if row is None else _row_to_info(row)

    def _apply_change_list(self, base: ListInfo, adds: npt.NDArray[np.uint64],
                           dels: npt.NDArray[np.uint64]
                           ) -> tuple[str, int, int, int, npt.NDArray[np.uint64]]:
        """A new snapshot file: ``base``'s current snapshot with the changes applied; returns
        (file name, count, numbers added, numbers deleted, the added numbers the base
        snapshot held already)."""
        self.sync(base)  # a replica that has not fetched it yet
        folder = self.folder_of(base)
        current_path = folder / str(base.current_file)
        current = open_snapshot(current_path, base.seal)  # never patch a damaged file
        before = snapshot_count(current)
        held = sorted_contains(current, adds)
        added = int((~held).sum())
        file_name, new_snap = apply_changes(folder, current_path, adds, dels,
                                            expected=base.seal)
        count = snapshot_count(new_snap)
        return file_name, count, added, before + added - count, adds[held]

    def _discard(self, folder: Path, file_name: str) -> None:
        """Delete a snapshot file this process wrote and no version names."""
        (folder / file_name).unlink(missing_ok=True)
        (folder / (file_name + SEAL_SUFFIX)).unlink(missing_ok=True)

    def _commit_import(self, path: Path, *, name: str, kind: str, jurisdiction: str | None,
                       snap: str | None, changes: bool, salt: str | None, who: str | None,
                       existing: ListInfo | None, seal: Seal, folder: Path, count: int,
                       report: listfiles.ParseReport, added: int, deleted: int,
                       adds: npt.NDArray[np.uint64], listed: npt.NDArray[np.uint64]
                       ) -> tuple[bool, int]:
        """Make the snapshot file ``seal`` names (in ``folder``) the list's current version,
        with its version record, events and (PostgreSQL) its published copy, in one
        transaction. Returns (committed, numbers listed again): False, with nothing changed,
        when the list is not what the import read any more: a change list's base is no longer
        current, or the list was removed. A complete import replaces whatever version is
        current (the last to commit wins, as if run one after the other). A change list
        lifts every earlier removal (``dnc remove``) of a number it adds (``adds``); those
        the base snapshot held already (``listed``) are counted as listed again.

        The list's row is written first, so the transaction holds it (PostgreSQL: its row
        lock; SQLite: the database's write lock) from the check until the commit: two imports
        of one list commit one after the other, and the second sees the first's version."""
        t = lists_table
        e = list_entries_table
        now = utcnow()
        file_name = seal.file
        lifted = 0
        fields: dict[str, Any] = {"kind": kind, "current_file": file_name, "count": count,
                                  "updated_at": now, "salt": salt}
        if not changes:  # a change list applies to the list as it is, in its jurisdiction
            fields["jurisdiction"] = jurisdiction
        if snap or not changes:
            fields["snapshot_date"] = snap
        try:
            with self.engine.begin() as conn:
                version_date = snap
                if existing is None:
                    conn.execute(insert(t).values(
                        name=name, created_at=now,
                        meta={"snapshot": seal.to_json(), FOLDER_KEY: folder.name}, **fields))
                else:
                    held = conn.execute(update(t).where(
                        t.c.name == name,
                        t.c.current_file.is_not_distinct_from(existing.current_file)
                        if changes else true()).values(updated_at=now)).rowcount
                    if held != 1:
                        raise _BaseMoved
                    row = conn.execute(select(t.c.kind, t.c.meta, t.c.snapshot_date)
                                       .where(t.c.name == name)).one()
                    if row.kind != kind:
                        raise ListError(f"list {name!r} is of kind {row.kind}, not {kind}")
                    if _folder_name(name, row.meta) != folder.name:
                        raise ListError(
                            f"list {name} was removed and made again while it was imported; "
                            "this import changed nothing: run it again")
                    meta = {**dict(row.meta or {}), "snapshot": seal.to_json()}
                    conn.execute(update(t).where(t.c.name == name).values(meta=meta, **fields))
                    if not changes:  # removals were made against the old file
                        conn.execute(delete(e).where(e.c.list_name == name, e.c.removed))
                    else:
                        if not snap:  # the list's date stays; so does its version's
                            version_date = row.snapshot_date
                        lifted = _lift_removals(conn, name, adds, listed)
                conn.execute(insert(list_versions_table).values(
                    list_name=name, file=file_name, snapshot_date=version_date, count=count,
                    changes=changes, source_file=path.name, created_at=now, created_by=who))
                if self.shared:  # current and published commit together, or neither does
                    snapshot_share.publish(conn, folder, file_name, seal, name)
                detail = {"file": path.name, "count": count, "added": added + lifted,
                          "deleted": deleted, "rejected": report.rejected}
                conn.execute(insert(list_events_table).values(
                    at=now, list_name=name, action="changes" if changes else "import", who=who,
                    detail=detail))
                audit.record_list_change(
                    self.settings, "changes" if changes else "import", name, who=who,
                    detail={**detail, "kind": kind, "jurisdiction": jurisdiction,
                            "snapshot_date": snap}, conn=conn)
                count_list_change(conn)
        except _BaseMoved:
            return False, 0
        return True, lifted

    def _prune_versions(self, name: str, folder: Path) -> None:
        keep = self.settings.keep_snapshots
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(list_versions_table.c.id, list_versions_table.c.file)
                .where(list_versions_table.c.list_name == name)
                .order_by(list_versions_table.c.id.desc())
            ).all()
            old = rows[keep:]
            kept = {r.file for r in rows[:keep]}
            if old:
                conn.execute(delete(list_versions_table).where(
                    list_versions_table.c.id.in_([r.id for r in old])))
                if self.shared:
                    snapshot_share.forget(conn, folder.name,
                                          sorted({r.file for r in old} - kept))
        if old and self.shared:
            sharedfiles.collect_garbage(self.engine)
        for r in old:
            if r.file not in kept:
                (folder / r.file).unlink(missing_ok=True)
                (folder / (r.file + SEAL_SUFFIX)).unlink(missing_ok=True)

    def versions(self, name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(list_versions_table).where(list_versions_table.c.list_name == name)
                .order_by(list_versions_table.c.id.desc())).all()
        return [dict(r._mapping) for r in rows]

    # -- removal ----------------------------------------------------------------------------
    def remove_list(self, name: str, who: str | None = None) -> ListInfo:
        """Remove a list: its records, and the snapshot files its versions name (only those:
        a folder may be shared with another list stored before folders were recorded, whose
        files stay)."""
        info = self.get(name)
        folder = self.folder_of(info)
        with self.engine.begin() as conn:
            files = {r.file for r in conn.execute(select(list_versions_table.c.file).where(
                list_versions_table.c.list_name == name))}
            current = conn.execute(select(lists_table.c.current_file).where(
                lists_table.c.name == name)).scalar()
            files |= {f for f in (info.current_file, current) if f}
            # the list's row first, as imports and opt-outs take it: one lock order for all
            conn.execute(delete(lists_table).where(lists_table.c.name == name))
            # the numbers added by hand (opt-outs, synced records) it held: lifted with it, and
            # the change log and the audit trail say how many (``count`` is the snapshot's)
            held = conn.execute(select(func.count()).select_from(list_entries_table).where(
                list_entries_table.c.list_name == name,
                list_entries_table.c.removed.is_(False))).scalar_one()
            conn.execute(delete(list_entries_table).where(list_entries_table.c.list_name == name))
            conn.execute(delete(list_versions_table).where(
                list_versions_table.c.list_name == name))
            conn.execute(insert(list_events_table).values(
                at=utcnow(), list_name=name, action="rm", who=who,
                detail={"count": info.count, "entries": int(held)}))
            audit.record_list_change(self.settings, "rm", name, who=who,
                                     detail={"count": info.count, "entries": int(held),
                                             "kind": info.kind}, conn=conn)
            if self.shared:
                snapshot_share.forget(conn, folder.name, sorted(files))
                snapshot_share.notify(conn, name)
            count_list_change(conn)
        if self.shared:
            sharedfiles.collect_garbage(self.engine)
        for file in files:
            (folder / file).unlink(missing_ok=True)
            (folder / (file + SEAL_SUFFIX)).unlink(missing_ok=True)
        try:  # the folder too, when nothing else is left in it
            left = [f.name for f in folder.iterdir()] if folder.is_dir() else None
            if left == [_FETCH_LOCK]:
                (folder / _FETCH_LOCK).unlink()
            if left is not None and left in ([], [_FETCH_LOCK]):
                folder.rmdir()
        except OSError:
            pass  # another list's files, or one made meanwhile: the folder stays
        return info

    # -- manual entries ---------------------------------------------------------------------
    def add_number(self, phone: str, *, list_name: str = "internal", reason: str | None = None,
                   expires: datetime | None = None, who: str | None = None,
                   region: str | None = None, then: ChangeHook | None = None,
                   create: bool = False) -> str:
        """Add one number to an internal or litigator list; returns its E.164 form.

        A list that does not exist is refused unless ``create`` (or it is ``internal``, made
        on first use): an opt-out on a misspelt list would be read by no campaign. An expiry
        that has passed is refused: the opt-out would lift nothing. Adding a number already
        listed keeps the later expiry of the two (none is the latest): an opt-out is never
        shortened by another (``remove_number`` first, to shorten one on purpose).
        ``then(conn, e164, info)`` runs inside the same transaction (e.g. to queue the
        opt-out for write-back, so the change and its delivery commit together or not at all).
        """
        e164 = self._e164(phone, region)
        now = utcnow()
        expiry = as_utc(expires)
        if expiry is not None and expiry <= now:
            raise ListError(f"expires {expiry.isoformat()} has already passed: the opt-out "
                            "would lift nothing")
        try:
            info = self.get(list_name)
        except ListError:
            if not create and list_name != "internal":
                names = [i.name for i in self.all() if i.kind in MANUAL_KINDS]
                close = [n for n in names if n.lower() == list_name.lower()]
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ListError(
                    f"no list named {list_name!r}{hint}; internal and litigator lists: "
                    f"{', '.join(names) or 'none'}; pass --create (API: \"create\": true) to "
                    "make a new internal list") from None
            info = self.ensure(list_name, "internal")
        if info.kind not in MANUAL_KINDS:
            raise ListError(f"list {list_name!r} is of kind {info.kind}; numbers are added by "
                            "hand to internal or litigator lists only")
        with self.engine.begin() as conn:
            # the list's row first, as imports and list removals take it: one lock order
            if conn.execute(update(lists_table).where(lists_table.c.name == list_name)
                            .values(updated_at=now)).rowcount != 1:
                raise ListError(f"list {list_name!r} was removed while the opt-out was "
                                "written; nothing was changed: add it again")
            expires = _put_optout(conn, list_name, e164, reason=reason, who=who, now=now,
                                  expiry=expiry)
            conn.execute(insert(list_events_table).values(
                at=now, list_name=list_name, action="add", who=who, why=reason,
                detail={"number": mask(e164),
                        "expires": expires.isoformat() if expires else None}))
            audit.record_list_change(
                self.settings, "add", list_name, who=who, why=reason, number=e164,
                detail={"expires": expires.isoformat() if expires else None}, conn=conn)
            if then is not None:
                then(conn, e164, info)
            count_list_change(conn)
        return e164

    def remove_number(self, phone: str, *, list_name: str = "internal", who: str | None = None,
                      why: str | None = None, region: str | None = None,
                      then: ChangeHook | None = None) -> tuple[str, bool]:
        """Remove a number from a list; returns (E.164, whether it was on the list).

        ``then`` runs inside the same transaction when the number was listed. A list removed
        meanwhile (``lists rm`` after the list was read) is refused, nothing written: a removal
        left behind would unlist the number on a list made later under the same name.
        """
        e164 = self._e164(phone, region)
        info = self.get(list_name)
        if info.kind not in MANUAL_KINDS:
            raise ListError(f"list {list_name!r} is of kind {info.kind}; "
                            + _removal_hint(info.kind))
        self.sync(info)  # a replica that has not fetched the current version yet
        in_file = bool(self.index(info).contains_numbers([e164], snapshot_only=True)[0])
        now = utcnow()
        e = list_entries_table
        with self.engine.begin() as conn:
            # the list's row first, as add_number, imports and list removals take it (one lock
            # order); gone since it was read: nothing is written
            if conn.execute(update(lists_table).where(lists_table.c.name == list_name)
                            .values(updated_at=now)).rowcount != 1:
                raise ListError(f"list {list_name!r} was removed while the removal was "
                                "written; nothing was changed")
            # an entry whose expiry has passed lists nothing: it goes, but was not listed
            mine = and_(e.c.list_name == list_name, e.c.value == e164, ~e.c.removed)
            gone = conn.execute(select(func.count()).select_from(e).where(
                mine, or_(e.c.expires_at.is_(None), e.c.expires_at > now))).scalar_one()
            conn.execute(delete(e).where(mine))
            if in_file:
                conn.execute(delete(list_entries_table).where(
                    list_entries_table.c.list_name == list_name,
                    list_entries_table.c.value == e164))
                conn.execute(insert(list_entries_table).values(
                    list_name=list_name, value=e164, origin="manual", removed=True, reason=why,
                    added_by=who, added_at=now))
            conn.execute(insert(list_events_table).values(
                at=now, list_name=list_name, action="remove", who=who, why=why,
                detail={"number": mask(e164), "was_listed": bool(gone or in_file)}))
            audit.record_list_change(self.settings, "remove", list_name, who=who, why=why,
                                     number=e164, detail={"was_listed": bool(gone or in_file)},
                                     conn=conn)
            if then is not None and (gone or in_file):
                then(conn, e164, info)
            count_list_change(conn)
        return e164, bool(gone or in_file)

    def _e164(self, phone: str, region: str | None) -> str:
        result = normalise(phone, region or self.settings.default_region)
        if not result.ok or result.e164 is None:  # not echoed: a mistyped number is still one
            raise ListError(result.message or "not a valid number")
        return result.e164

    def entry_counts(self, name: str) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(list_entries_table.c.removed, func.count())
                .where(list_entries_table.c.list_name == name)
                .group_by(list_entries_table.c.removed)).all()
        counts = {"added": 0, "removed": 0}
        for removed, n in rows:
            counts["removed" if removed else "added"] = int(n)
        return counts

    def entries(self, name: str) -> list[dict[str, Any]]:
        """The database entries of a list, oldest first: numbers added by hand (or synced)
        and removals of snapshot numbers (``removed`` true). Keys: ``list_name``, ``value``
        (the E.164 number), ``origin``, ``removed``, ``reason``, ``added_by``, ``added_at``
        and ``expires_at`` (UTC, or None). Numbers of the imported snapshot are not entries.
        """
        t = list_entries_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.list_name, t.c.value, t.c.origin, t.c.removed, t.c.reason,
                       t.c.added_by, t.c.added_at, t.c.expires_at)
                .where(t.c.list_name == name).order_by(t.c.added_at, t.c.id)).all()
        return [{**r._mapping, "removed": bool(r.removed), "added_at": as_utc(r.added_at),
                 "expires_at": as_utc(r.expires_at)} for r in rows]

    def index(self, info: ListInfo) -> ListIndex:
        return ListIndex(self, info)


#: The lock file a shared home's fetches of a list's snapshots take (:mod:`.share`).
_FETCH_LOCK = ".fetch.lock"

#: A full re-import of a list (of any kind) may not leave it with fewer than this share of its
#: current entries without ``allow_shrink`` (registries change by a few percent between
#: downloads; a truncated file loses far more).
SHRINK_FLOOR = 0.9


def _shrink_risk(kind: str) -> str:
    """What a truncated file of a list of ``kind`` does, for the shrink guard's refusal."""
    if kind in DATED_KINDS:
        return ("a truncated or partial download reads as a smaller registry and makes every "
                "number it lost callable")
    lost = {"hashed": "every number whose hash it lost callable",
            "prefix": "every number of each range it lost callable",
            "wireless": "every number it lost unknown as a wireless line"}.get(
                kind, "every number it lost callable")
    return f"a truncated or partial file reads as a smaller list and makes {lost}"

NATIONAL_SCALE_BYTES = 1 << 30  # number files above 1 GiB (~80M numbers) build a bitmap


def _national_scale(path: Path, jurisdiction: str) -> bool:
    """A US/CA number file big enough to build as a NANP bitmap straight from its blocks."""
    country = listfiles.country_of(jurisdiction, "US")
    try:
        return country in ("US", "CA") and path.stat().st_size > NATIONAL_SCALE_BYTES
    except OSError:
        return False


#: How many times an import tries to commit while other imports of its list commit first (a
#: change list is redone on each new version) before it gives up and asks to be run again.
IMPORT_ATTEMPTS = 5


def _insert_if_absent(conn: Connection, table: Table, key: Column[Any],
                      values: dict[str, Any]) -> None:
    """Insert a row unless one with its ``key`` exists, as one statement that skips a row
    another transaction inserted meanwhile (``ON CONFLICT DO NOTHING``: SQLite, PostgreSQL;
    elsewhere the insert's unique violation is caught in a savepoint)."""
    ignoring = conflict_insert(conn, table)
    if ignoring is not None:
        conn.execute(ignoring.values(**values).on_conflict_do_nothing(index_elements=[key]))
    else:
        try:
            with conn.begin_nested():
                conn.execute(insert(table).values(**values))
        except IntegrityError:
            pass  # made meanwhile by another transaction; the caller reads it


def _put_optout(conn: Connection, list_name: str, e164: str, *, reason: str | None,
                who: str | None, now: datetime, expiry: datetime | None) -> datetime | None:
    """Write the opt-out of ``e164`` on ``list_name`` (a manual entry) in ``conn``'s
    transaction; returns the expiry it has now (None: never).

    An opt-out in force is never shortened by a later one: the later expiry of the two stands
    and none (never) beats any, so 'callback later' cannot lift 'never call me again'. A lapsed
    opt-out, or a removal of a snapshot number, is replaced. One upsert (``INSERT ... ON
    CONFLICT DO UPDATE``, SQLite and PostgreSQL) that decides from the row as committed, so
    two opt-outs of one number at once (two replicas) both succeed: the second waits for the
    first's commit and merges with it, where an insert after a read would fail on the unique
    key. The reason and who are the later opt-out's."""
    e = list_entries_table
    values = {"list_name": list_name, "value": e164, "origin": "manual", "removed": False,
              "reason": reason, "added_by": who, "added_at": now, "expires_at": expiry,
              "meta": None}
    upsert = conflict_insert(conn, e)
    if upsert is None:  # no upsert here: read, then replace (a concurrent one may fail)
        prior = conn.execute(select(e.c.expires_at).where(
            e.c.list_name == list_name, e.c.value == e164, ~e.c.removed)).first()
        if prior is not None:
            held = as_utc(prior.expires_at)
            if held is None:
                expiry = None
            elif held > now and expiry is not None and held > expiry:
                expiry = held
        conn.execute(delete(e).where(e.c.list_name == list_name, e.c.value == e164))
        conn.execute(insert(e).values(**{**values, "expires_at": expiry}))
        return expiry
    given, kept = upsert.excluded.expires_at, e.c.expires_at
    stands = case(
        (e.c.removed == true(), given),  # a removal of a snapshot number: replaced
        (kept.is_(None), kept),  # never: stands
        (given.is_(None), given),  # never: beats any expiry
        (and_(kept > now, kept > given), kept),  # in force and later: stands
        else_=given)
    row = conn.execute(upsert.values(**values).on_conflict_do_update(
        index_elements=[e.c.list_name, e.c.value],
        set_={"origin": "manual", "removed": False, "reason": upsert.excluded.reason,
              "added_by": upsert.excluded.added_by, "added_at": upsert.excluded.added_at,
              "meta": None, "expires_at": stands},
    ).returning(e.c.expires_at)).one()
    return as_utc(row.expires_at)


def _lift_removals(conn: Connection, name: str, adds: npt.NDArray[np.uint64],
                   listed: npt.NDArray[np.uint64]) -> int:
    """Delete the removals (``dnc remove``) of list ``name`` of numbers a change list adds:
    the change list is the later word, and the number is listed again. Returns how many of
    them the base snapshot held (numbers the change list lists again without adding them to
    the file)."""
    if not adds.size:
        return 0
    e = list_entries_table
    removed = [(r.id, r.value[1:]) for r in conn.execute(
        select(e.c.id, e.c.value).where(e.c.list_name == name, e.c.removed))
        if r.value[1:].isascii() and r.value[1:].isdigit()]
    if not removed:
        return 0
    values = np.array([int(v) for _, v in removed], dtype=np.uint64)
    hit = sorted_contains(adds, values)
    ids = [removed[i][0] for i in np.flatnonzero(hit).tolist()]
    for at in range(0, len(ids), 500):
        conn.execute(delete(e).where(e.c.id.in_(ids[at: at + 500])))
    return int(sorted_contains(listed, values[hit]).sum())


class _BaseMoved(Exception):
    """The list is not what the import read any more (its transaction rolls back)."""


#: Runs inside a list change's transaction: (connection, E.164, the list).
ChangeHook = Callable[[Connection, str, "ListInfo"], None]

_Entries = tuple[npt.NDArray[np.uint64], npt.NDArray[np.float64], npt.NDArray[np.uint64]]


class ListIndex:
    """Membership checks against one list: its snapshot plus the database entries."""

    def __init__(self, store: ListStore, info: ListInfo) -> None:
        self.store = store
        self.info = info
        self._file: SnapshotFile | None = None
        self._entries: _Entries | None = None
        #: a national or state list whose stored jurisdiction is not understood: every
        #: lookup raises (the check answers SOURCE_ERROR), never a silent miss
        self._scope_problem = info.scope_problem

    @property
    def _snapshot(self) -> npt.NDArray[Any] | None:
        """The snapshot, verified against its seal on first use and re-checked (one ``stat``)
        before every use: a damaged, truncated or missing file raises
        :class:`SnapshotIntegrityError`, which fails this list's check (``SOURCE_ERROR``), never
        setup and never the process."""
        if self._file is None:
            if self.info.current_file is None:
                return None
            self._file = self.store.open_current(self.info)
        return self._file.current()

    def _load_entries(self) -> _Entries:
        """The database entries, loaded once: added values sorted with their expiry (as a
        timestamp, inf for none), and the sorted removals."""
        if self._entries is None:
            t = list_entries_table
            with self.store.engine.connect() as conn:
                rows = conn.execute(select(t.c.value, t.c.removed, t.c.expires_at)
                                    .where(t.c.list_name == self.info.name)).all()
            adds = sorted((int(r.value[1:]), as_utc(r.expires_at)) for r in rows
                          if not r.removed)
            values = np.array([v for v, _ in adds], dtype=np.uint64)
            expiry = np.array([e.timestamp() if e else np.inf for _, e in adds], dtype=float)
            removed = np.array(sorted(int(r.value[1:]) for r in rows if r.removed),
                               dtype=np.uint64)
            self._entries = (values, expiry, removed)
        return self._entries

    def contains_numbers(self, e164s: list[str], *, at: datetime | None = None,
                         snapshot_only: bool = False) -> npt.NDArray[np.bool_]:
        digits = np.array([int(e[1:]) for e in e164s], dtype=np.uint64)
        return self.contains(digits, at=at, snapshot_only=snapshot_only)

    def contains(self, digits: npt.NDArray[np.uint64], *, at: datetime | None = None,
                 snapshot_only: bool = False) -> npt.NDArray[np.bool_]:
        """Which numbers (E.164 as integers) are on the list at the instant ``at`` (default
        now). Raises :class:`ListError` for a list whose jurisdiction is not understood
        (:attr:`ListInfo.scope_problem`)."""
        if self._scope_problem is not None:
            raise ListError(self._scope_problem)
        kind = self.info.kind
        snap = self._snapshot
        if kind == "hashed":
            if snap is None:
                return np.zeros(digits.shape, dtype=bool)
            salt = self.info.salt
            bad_salt = listfiles.salt_problem(salt or "")
            if bad_salt:  # stored before such salts were refused: fail, never miss
                raise ListError(f"list {self.info.name}: its stored salt: {bad_salt}; "
                                "re-import the list with its --salt")
            hashes = np.array([listfiles.hash_number(f"+{d}", salt) for d in digits.tolist()],
                              dtype="S32")
            return sorted_contains(snap, hashes)
        if kind == "prefix":
            if snap is None:
                return np.zeros(digits.shape, dtype=bool)
            return np.asarray(listfiles.prefix_hits(snap, digits) != "", dtype=bool)
        hit = (sorted_contains(snap, digits) if snap is not None
               else np.zeros(digits.shape, dtype=bool))
        if snapshot_only:
            return hit
        values, expiry, removed = self._load_entries()
        if removed.size:
            hit &= ~sorted_contains(removed, digits)
        active = values[expiry > (at or utcnow()).timestamp()]
        if active.size:
            hit |= sorted_contains(active, digits)
        return hit

    def reason(self) -> Reason:
        """The reason a hit on this list gives."""
        info = self.info
        what = {"hashed": "hash", "prefix": "number range"}.get(info.kind, "number")
        dated = f" (snapshot {info.snapshot_date})" if info.snapshot_date else ""
        where = f" [{info.jurisdiction}]" if info.jurisdiction else ""
        return Reason(
            code=info.code, decision=Decision.BLOCK, source="cxone" if info.kind == "cxone"
            else "local", list=info.name,
            detail=f"{what} on {info.kind} list {info.name}{where}{dated}",
        )
