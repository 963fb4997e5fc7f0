"""Opt-outs: the one place that adds or removes a number on an internal list.

Besides the list change itself, an opt-out is queued for write-back to the configured NICE
CXone DNC group when CXone is configured here or write-back is in use in the database, and a
removal queues the expiry of that record (:func:`queue_writeback` catches up on the rest).
The queue entry is written in the same transaction as the list change, so neither exists
without the other. The CLI and the HTTP service both come through here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import Connection, select

from .lists.store import ListInfo, ListStore
from .store import as_utc, list_entries_table, utcnow

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


def queue_writeback(store: ListStore, *, now: datetime | None = None) -> tuple[int, int]:
    """Queue for CXone write-back what the queue does not hold yet: an opt-out for every
    number in force on an internal list whose last queued change is not that opt-out (with
    its expiry; the later one when two lists hold it), and an expiry for every number whose
    last queued change is an opt-out that no internal list holds now. Opt-outs recorded
    before write-back was set up, or where it was not, reach CXone this way. Returns (opt-outs
    queued, expiries queued)."""
    from .outbox import Outbox
    from .sources.cxone.push import TOPIC, enqueue_expire, enqueue_optout

    now = now or utcnow()
    box = Outbox(store.engine)
    internal = [i for i in store.all() if i.kind == "internal"]
    wanted: dict[str, datetime | None] = {}
    for info in internal:
        for entry in store.entries(info.name):
            if entry_status(entry, now) != "active":
                continue
            e164, expires = str(entry["value"]), entry["expires_at"]
            if e164 in wanted:
                before = wanted[e164]
                expires = None if before is None or expires is None else max(before, expires)
            wanted[e164] = expires
    added = sum(enqueue_optout(store.engine, e164, expires, outbox=box)
                for e164, expires in wanted.items())
    gone = [n for n in box.subjects(TOPIC) if n not in wanted]
    held = np.zeros(len(gone), dtype=bool)
    readable = np.array([n[1:].isdigit() and len(n) <= 16 for n in gone], dtype=bool)
    if readable.any():
        digits = np.array([int(n[1:]) for n, ok in zip(gone, readable, strict=True) if ok],
                          dtype=np.uint64)
        for info in internal:  # an imported list's own numbers are not ours to expire
            held[readable] |= store.index(info).contains(digits, at=now)
    expired = 0
    for e164, on_a_list in zip(gone, held.tolist(), strict=True):
        last = None if on_a_list else box.latest(TOPIC, e164, where=_payload_of(e164))
        if last is None or last.payload.get("action", "add") != "add":
            continue
        lapses = last.payload.get("expires")
        if lapses and datetime.fromisoformat(str(lapses).replace("Z", "+00:00")) <= now:
            continue  # CXone's record lapsed by itself
        expired += enqueue_expire(store.engine, e164, now, outbox=box)
    return added, expired


def add_optout(store: ListStore, phone: str, *, list_name: str = "internal",
               reason: str | None = None, expires: datetime | None = None,
               who: str | None = None, region: str | None = None, create: bool = False) -> str:
    """Add ``phone`` to an internal (or litigator) list; returns its E.164 form. A list that
    does not exist is refused unless ``create`` (``internal`` is made on first use)."""
    push = _cxone_configured(store)

    def queue(conn: Connection, e164: str, info: ListInfo) -> None:
        if push and info.kind == "internal":
            from .sources.cxone.push import enqueue_optout

            # the expiry the opt-out has now: an opt-out in force is never shortened (the
            # later expiry of the two stands), on CXone's side either
            enqueue_optout(store.engine, e164, _expiry(conn, info.name, e164), conn=conn)

    return store.add_number(phone, list_name=list_name, reason=reason, expires=expires, who=who,
                            region=region, then=queue, create=create)


def _expiry(conn: Connection, list_name: str, e164: str) -> datetime | None:
    """The expiry of the opt-out of ``e164`` on ``list_name`` as written in ``conn``'s
    transaction (None: never)."""
    e = list_entries_table
    return as_utc(conn.execute(select(e.c.expires_at).where(
        e.c.list_name == list_name, e.c.value == e164)).scalar_one())


def remove_optout(store: ListStore, phone: str, *, list_name: str = "internal",
                  who: str | None = None, why: str | None = None,
                  region: str | None = None) -> tuple[str, bool]:
    """Remove ``phone`` from a list; returns (E.164, whether it was listed)."""
    push = _cxone_configured(store)

    def queue(conn: Connection, e164: str, info: ListInfo) -> None:
        if push and info.kind == "internal":
            from .sources.cxone.push import enqueue_expire

            enqueue_expire(store.engine, e164, utcnow(), conn=conn)

    return store.remove_number(phone, list_name=list_name, who=who, why=why, region=region,
                               then=queue)
