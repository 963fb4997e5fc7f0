"""Opt-outs: the one place that adds or removes a number on an internal list.

Besides the list change itself, an opt-out is queued for write-back to the configured NICE
CXone DNC group when CXone is configured, and a removal queues the expiry of that record.
The queue entry is written in the same transaction as the list change, so neither exists
without the other. The CLI and the HTTP service both come through here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, select

from .lists.store import ListInfo, ListStore
from .store import as_utc, list_entries_table, utcnow


def expiry_after(day: date) -> datetime:
    """The moment an opt-out whose last day is ``day`` (a UTC date) lapses: the midnight that
    ends it. The CLI's ``--expires`` and the console's expiry date both mean the last day the
    opt-out applies; the console once stored the midnight that starts it, a day early."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


EntryStatus = Literal["removed", "expired", "active"]


def entry_status(entry: Mapping[str, Any], now: datetime) -> EntryStatus:
    """Whether a list entry (``ListStore.entries``) is removed, has lapsed, or applies now."""
    expires = entry["expires_at"]
    if entry["removed"]:
        return "removed"
    return "expired" if expires is not None and expires <= now else "active"


def _cxone_configured(store: ListStore) -> bool:
    from .sources.cxone.settings import load_cxone

    return bool(load_cxone(store.settings).configured)


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
