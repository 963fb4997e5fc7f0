"""Saving a synced group: its entries and its state in one transaction.

The entries (``list_entries``), the list's state (``meta``: the cursor, the total, the group's
fields; ``synced_at``, which the check keys its index of the group on; ``count``), the sync's
event and audit record, and the list-change count are written together or not at all. Written
in two transactions, a crash between them left new entries under the old state: a running
service kept its index of the old entries (``synced_at`` had not moved) while a service started
then read the new ones, and the next incremental sync compared the new entries with the old
cursor and total."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from ... import audit
from ...config import Settings
from ...errors import SourceError
from ...store import count_list_change, list_entries_table, list_events_table, lists_table

#: Rows per insert of a full sync's entries.
INSERT_CHUNK = 20_000
#: Values per ``IN (...)`` when an incremental sync replaces rows.
DELETE_CHUNK = 500

Entries = Callable[[Connection], None]


def replace_all(name: str, rows: list[dict[str, Any]]) -> Entries:
    """A full sync's entries: every row of list ``name`` replaced by ``rows``."""
    def write(conn: Connection) -> None:
        conn.execute(delete(list_entries_table).where(list_entries_table.c.list_name == name))
        for i in range(0, len(rows), INSERT_CHUNK):
            conn.execute(insert(list_entries_table), rows[i:i + INSERT_CHUNK])
    return write


def upsert(name: str, rows: list[dict[str, Any]], kept: dict[str, dict[str, Any]]) -> Entries:
    """An incremental sync's entries: the rows of ``rows``' numbers replaced by them, and the
    meta of the stored rows ``kept`` (value: meta) updated."""
    t = list_entries_table

    def write(conn: Connection) -> None:
        values = [r["value"] for r in rows]
        for i in range(0, len(values), DELETE_CHUNK):
            conn.execute(delete(t).where(t.c.list_name == name,
                                         t.c.value.in_(values[i:i + DELETE_CHUNK])))
        if rows:
            conn.execute(insert(t), rows)
        for value, meta in kept.items():
            conn.execute(update(t).where(t.c.list_name == name, t.c.value == value)
                         .values(meta=meta))
    return write


def save_group(engine: Engine, settings: Settings, name: str, meta: dict[str, Any],
               now: datetime, *, entries: Entries | None = None, count: int | None = None,
               event: dict[str, Any] | None = None) -> None:
    """In one transaction: ``entries`` written (when given), then list ``name``'s ``meta``,
    ``synced_at`` and ``count`` (counted from the entries when not given) saved, the sync's
    ``event`` recorded (list event and audit record) when given, and the change counted."""
    with engine.begin() as conn:
        # the list's row first (as imports and list removals take it): a list removed while
        # the group was read gets no entries, no "sync" after its "rm" in the trail
        if conn.execute(update(lists_table).where(lists_table.c.name == name)
                        .values(updated_at=now)).rowcount != 1:
            raise SourceError(f"list {name} was removed while CXone was read; nothing was "
                              "saved (sync again to make it anew)", source="cxone")
        if entries is not None:
            entries(conn)
        if count is None:
            count = int(conn.execute(select(func.count()).select_from(list_entries_table)
                                     .where(list_entries_table.c.list_name == name))
                        .scalar_one())
        conn.execute(update(lists_table).where(lists_table.c.name == name).values(
            meta=meta, synced_at=now, updated_at=now, count=count))
        if event is not None:
            conn.execute(insert(list_events_table).values(
                at=now, list_name=name, action="sync", who="cxone", detail=event))
            audit.record_list_change(settings, "sync", name, who="cxone",
                                     detail={**event, "count": count}, conn=conn)
        count_list_change(conn)  # the transaction's last write
