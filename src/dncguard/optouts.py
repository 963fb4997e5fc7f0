"""Opt-outs: the one place that adds or removes a number on an internal list.

Besides the list change itself, a change of an internal list queues, for write-back to the
configured NICE CXone DNC group (when CXone is configured here or write-back is in use in the
database), the state the number has across every internal list after it: an opt-out with the
expiry it has there (none when a list holds it for good, else the latest), or, when no internal
list holds it any more, the expiry of CXone's record (:func:`queue_writeback` catches up on the
rest, by the same rule). The queue entry is written in the same transaction as the list change,
so neither exists without the other. The CLI and the HTTP service both come through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import Connection, select

from .config import Settings
from .lists.store import ListInfo, ListStore
from .store import as_utc, list_entries_table, lists_table, utcnow

if TYPE_CHECKING:
    from .outbox import OutboxItem


#: The latest of the world's UTC offsets (UTC-12): a calendar day has ended everywhere 12
#: hours after it ends in UTC.
_LAST_ZONE = timedelta(hours=12)


def expiry_after(day: date) -> datetime:
    """The moment an opt-out whose last day is ``day`` lapses: once that day has ended
    everywhere, the called party's zone whichever it is (12:00 UTC the next day). The CLI's
    ``--expires`` and the console's expiry date both mean the last day the opt-out applies.
    Ending it at UTC's midnight let calls through from 19:00 on the day itself in New York;
    the console once stored the midnight that starts the day, a day early."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) + _LAST_ZONE


EntryStatus = Literal["removed", "expired", "active"]


def entry_status(entry: Mapping[str, Any], now: datetime) -> EntryStatus:
    """Whether a list entry (``ListStore.entries``) is removed, has lapsed, or applies now."""
    expires = entry["expires_at"]
    if entry["removed"]:
        return "removed"
    return "expired" if expires is not None and expires <= now else "active"


def _cxone_configured(store: ListStore) -> bool:
    """Whether opt-outs are queued for CXone write-back: the CXone credentials are set here,
    or write-back is in use in this database (its queue has held an item: another host, such
    as the service, holds the credentials and pushes what is queued)."""
    from .outbox import Outbox
    from .sources.cxone.push import TOPIC
    from .sources.cxone.settings import load_cxone

    return bool(load_cxone(store.settings).configured) or Outbox(store.engine).used(TOPIC)


def _payload_of(e164: str) -> Callable[[OutboxItem], bool]:
    """Whether a write-back item is about ``e164`` (as the queue's own lookups check)."""
    return lambda item: item.payload.get("e164") == e164


def _in_force(entries: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, datetime | None]:
    """The numbers in force on ``entries`` (of internal lists, as :func:`entry_status` reads
    them), each with the expiry CXone's record gets: none when one of them holds the number
    for good, else the latest of theirs. The one rule for the backfill and for each change."""
    wanted: dict[str, datetime | None] = {}
    for entry in entries:
        if entry_status(entry, now) != "active":
            continue
        e164, expires = str(entry["value"]), entry["expires_at"]
        if e164 in wanted:
            before = wanted[e164]
            expires = None if before is None or expires is None else max(before, expires)
        wanted[e164] = expires
    return wanted


def _held(store: ListStore, lists: list[ListInfo], numbers: list[str], now: datetime
          ) -> list[bool]:
    """Which of ``numbers`` (E.164) one of ``lists`` holds at ``now``, its imported snapshot
    included, as a check reads it."""
    held = np.zeros(len(numbers), dtype=bool)
    readable = np.array([n[1:].isdigit() and len(n) <= 16 for n in numbers], dtype=bool)
    if readable.any():
        digits = np.array([int(n[1:]) for n, ok in zip(numbers, readable, strict=True) if ok],
                          dtype=np.uint64)
        for info in lists:
            held[readable] |= store.index(info).contains(digits, at=now)
    return [bool(h) for h in held.tolist()]


def _internal(store: ListStore) -> list[ListInfo]:
    return [i for i in store.all() if i.kind == "internal"]


def queue_writeback(store: ListStore, *, now: datetime | None = None) -> tuple[int, int]:
    """Queue for CXone write-back what the queue does not hold yet: an opt-out for every
    number in force on an internal list whose last queued change is not that opt-out (with
    its expiry across the lists, :func:`_in_force`), and an expiry for every number whose
    last queued change is an opt-out that no internal list holds now. Opt-outs recorded
    before write-back was set up, or where it was not, reach CXone this way. Returns (opt-outs
    queued, expiries queued)."""
    from .outbox import Outbox
    from .sources.cxone.push import TOPIC, enqueue_expire, enqueue_optout

    now = now or utcnow()
    box = Outbox(store.engine)
    internal = _internal(store)
    wanted = _in_force((e for info in internal for e in store.entries(info.name)), now)
    added = sum(enqueue_optout(store.engine, e164, expires, outbox=box)
                for e164, expires in wanted.items())
    gone = [n for n in box.subjects(TOPIC) if n not in wanted]
    expired = 0
    # an imported list's own numbers are not ours to expire
    for e164, on_a_list in zip(gone, _held(store, internal, gone, now), strict=True):
        last = None if on_a_list else box.latest(TOPIC, e164, where=_payload_of(e164))
        if last is None or last.payload.get("action", "add") != "add":
            continue
        lapses = last.payload.get("expires")
        if lapses and datetime.fromisoformat(str(lapses).replace("Z", "+00:00")) <= now:
            continue  # CXone's record lapsed by itself
        expired += enqueue_expire(store.engine, e164, now, outbox=box)
    return added, expired


def _entries_of(conn: Connection, e164: str) -> list[dict[str, Any]]:
    """The entries of ``e164`` on every internal list as written in ``conn``'s transaction."""
    e, lists = list_entries_table, lists_table
    rows = conn.execute(select(e.c.value, e.c.removed, e.c.expires_at)
                        .join(lists, lists.c.name == e.c.list_name)
                        .where(lists.c.kind == "internal", e.c.value == e164)).all()
    return [{"value": r.value, "removed": bool(r.removed), "expires_at": as_utc(r.expires_at)}
            for r in rows]


def _queue_state(store: ListStore, conn: Connection, e164: str, changed: str) -> None:
    """Queue, in ``conn``'s transaction, the state ``e164`` has on CXone's side after a change
    of the internal list ``changed``: its opt-out with the expiry it has across every internal
    list (nothing is queued when that is the number's last queued change), or, when no
    internal list holds it any more (the snapshot of another imported one included), the
    expiry of its record. A removal from one list thus never unblocks a number another list
    still holds, and an opt-out on a second list never shortens the first's."""
    from .sources.cxone.push import enqueue_expire, enqueue_optout

    now = utcnow()
    state = _in_force(_entries_of(conn, e164), now)
    if e164 in state:
        enqueue_optout(store.engine, e164, state[e164], conn=conn)
        return
    imported = [i for i in _internal(store) if i.name != changed and i.current_file]
    if not _held(store, imported, [e164], now)[0]:
        enqueue_expire(store.engine, e164, now, conn=conn)


def _writeback(store: ListStore) -> Callable[[Connection, str, ListInfo], None]:
    """The hook a list change runs in its transaction: queue the number's CXone state
    (:func:`_queue_state`) after a change of an internal list, while write-back is in use."""
    push = _cxone_configured(store)

    def queue(conn: Connection, e164: str, info: ListInfo) -> None:
        if push and info.kind == "internal":
            _queue_state(store, conn, e164, info.name)

    return queue


def add_optout(store: ListStore, phone: str, *, list_name: str = "internal",
               reason: str | None = None, expires: datetime | None = None,
               who: str | None = None, region: str | None = None, create: bool = False) -> str:
    """Add ``phone`` to an internal (or litigator) list; returns its E.164 form. A list that
    does not exist is refused unless ``create`` (``internal`` is made on first use)."""
    return store.add_number(phone, list_name=list_name, reason=reason, expires=expires, who=who,
                            region=region, then=_writeback(store), create=create)


def stored_expiry(store: ListStore, list_name: str, e164: str) -> datetime | None:
    """The expiry ``e164``'s entry on ``list_name`` has as stored (None: none, for good):
    an add keeps the later of two expiries, so what was asked is not always what holds."""
    e = list_entries_table
    with store.engine.connect() as conn:
        found = conn.execute(select(e.c.expires_at).where(
            e.c.list_name == list_name, e.c.value == e164)).scalar()
    return as_utc(found)


def not_read_by(settings: Settings, list_name: str) -> list[str]:
    """The configured campaigns that do not read ``list_name``: their profile narrows the
    lists (``lists = [...]``) and leaves it out. An opt-out stored there is not seen by their
    checks, which ``dnc add`` and ``POST /v1/dnc`` say rather than imply otherwise."""
    return sorted(name for name, profile in settings.campaigns.items()
                  if profile.lists is not None and list_name not in profile.lists)


def remove_optout(store: ListStore, phone: str, *, list_name: str = "internal",
                  who: str | None = None, why: str | None = None,
                  region: str | None = None) -> tuple[str, bool]:
    """Remove ``phone`` from a list; returns (E.164, whether it was listed)."""
    return store.remove_number(phone, list_name=list_name, who=who, why=why, region=region,
                               then=_writeback(store))
