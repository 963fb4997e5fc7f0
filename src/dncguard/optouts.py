"""Opt-outs: the one place that adds or removes a number on an internal list.

Besides the list change itself, an opt-out is queued for write-back to the configured NICE
CXone DNC group when CXone is configured, and a removal queues the expiry of that record.
The queue entry is written in the same transaction as the list change, so neither exists
without the other. The CLI and the HTTP service both come through here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from .lists.store import ListInfo, ListStore
from .store import utcnow


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

            enqueue_optout(store.engine, e164, expires, conn=conn)

    return store.add_number(phone, list_name=list_name, reason=reason, expires=expires, who=who,
                            region=region, then=queue, create=create)


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
