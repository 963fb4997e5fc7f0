"""A group's records as ``list_entries`` rows: one row per number, the record that blocks
longest, and what an incremental sync needs to merge new records with the stored rows.

Each row's ``meta`` holds the record's id (``record_id``) and update time, ``alone`` (whether
it was its number's only record, as far as the syncs saw) and, when it was not, ``others``:
the ids of the number's other records read (the row keeps one record of the number). Together
they are every record id of the group a sync has read, which is how an incremental sync tells
a new record from a changed one (:func:`known_ids`). Rows stored before ``others`` existed
name none: a change to such a number's other record counts as new, and the totals then send
the group to a full read, which stores them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select

from ...errors import SourceError
from ...phones import mask
from ...store import list_entries_table
from ._records import blocks_longer, parse_time, record_number

log = logging.getLogger("dncguard.sources.cxone")

#: Values per ``IN (...)`` of a lookup of stored rows.
CHUNK = 500


def _ids(meta: dict[str, Any]) -> set[str]:
    """The record ids a stored row knows of its number: its own and ``others``."""
    own = meta.get("record_id")
    others = meta.get("others")
    return ({str(own)} if own not in (None, "") else set()) | (
        {str(i) for i in others} if isinstance(others, list) else set())


def _set_others(meta: dict[str, Any], ids: Iterable[str]) -> dict[str, Any]:
    """``meta`` with ``others``: ``ids`` but the row's own record id (left out when none)."""
    own = str(meta.get("record_id"))
    others = sorted({i for i in ids if i != own})
    meta.pop("others", None)
    if others:
        meta["others"] = others
    return meta


def build_rows(name: str, records: list[dict[str, Any]], now: datetime, region: str
               ) -> tuple[list[dict[str, Any]], int]:
    """(the rows of ``records`` for list ``name``, how many records have a number that
    cannot be read). A number with several records keeps the one that blocks longest (no
    expiry, else the later expiry); of records that block alike, the most recently updated,
    whatever order they came in."""
    best: dict[str, tuple[datetime, dict[str, Any]]] = {}
    seen: dict[str, int] = {}  # records read of each number
    ids: dict[str, set[str]] = {}  # their ids
    skipped = 0
    floor = datetime.min.replace(tzinfo=now.tzinfo)
    for rec in records:
        e164 = record_number(rec, region)
        if e164 is None:
            skipped += 1
            log.warning("CXone record %s has an unreadable number %s", rec.get("recordId"),
                        mask(str(rec.get("phoneNumber"))))
            continue
        seen[e164] = seen.get(e164, 0) + 1
        if rec.get("recordId") not in (None, ""):
            ids.setdefault(e164, set()).add(str(rec.get("recordId")))
        updated = parse_time(rec.get("lastUpdateTime")) or floor
        expires = parse_time(rec.get("expiredDate"))
        prev = best.get(e164)
        if prev is not None and (not blocks_longer(expires, prev[1]["expires_at"]) or (
                prev[1]["expires_at"] == expires and prev[0] >= updated)):
            continue
        best[e164] = (updated, {
            "list_name": name, "value": e164, "origin": "sync", "removed": False,
            "reason": None, "added_by": "cxone",
            "added_at": parse_time(rec.get("dateCollected")) or now,
            "expires_at": expires,
            "meta": {"record_id": rec.get("recordId"), "updated": rec.get("lastUpdateTime")},
        })
    for e164, (_, row) in best.items():
        row["meta"]["alone"] = seen[e164] == 1  # the number's only record read
        _set_others(row["meta"], ids.get(e164, ()))
    return [row for _, row in best.values()], skipped


def refuse_unreadable(gid: str, records: list[dict[str, Any]], skipped: int, region: str
                      ) -> None:
    """A group with records whose number cannot be read is not saved: saved without
    them, it would look complete and fresh while those numbers are not blocked. The
    last sync stands (and goes stale); the message names how many, masked."""
    if not skipped:
        return
    bad = [r for r in records if record_number(r, region) is None]
    example = bad[0] if bad else {}
    raise SourceError(
        f"CXone group {gid}: {skipped} of {len(records)} records have a phone number "
        f"dncguard cannot read (e.g. record {example.get('recordId')}, "
        f"{mask(str(example.get('phoneNumber') or example.get('formattedPhone') or ''))}); "
        "nothing was saved for the group: fix or expire those records in CXone",
        source="cxone")


def known_ids(conn: Connection, name: str, records: list[dict[str, Any]], region: str
              ) -> set[str]:
    """Every record id the stored rows of ``records``' numbers know (each row's own and its
    ``others``): a record of ``records`` whose id is not among them is new to the group."""
    phones = [e for e in (record_number(r, region) for r in records) if e]
    out: set[str] = set()
    t = list_entries_table
    for i in range(0, len(phones), CHUNK):
        for row in conn.execute(select(t.c.meta).where(
                t.c.list_name == name, t.c.value.in_(phones[i:i + CHUNK]))):
            out |= _ids(dict(row.meta or {}))
    return out


def merge_stored(conn: Connection, name: str, fresh: list[dict[str, Any]],
                 rows: list[dict[str, Any]], region: str
                 ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], bool]:
    """Merge the ``rows`` of an incremental sync (of the ``fresh`` records) with the stored
    ones: (the rows to write, the stored rows kept (value: their new meta), whether a stored
    record now blocks less and may not be its number's only record).

    A stored record that blocks longer and is not among the ``fresh`` records is kept
    (another record of the number, still in the group, which keeps blocking it). One that
    is among them but now blocks less is trusted only when it was its number's only record
    (``alone``, from the last full read on): else another record of the number, older than
    the cursor and so not read, may block it longer, which only a full read can tell. Each
    row written or kept knows the number's records: the stored row's and the fresh ones."""
    ids: dict[str, set[str]] = {}
    for rec in fresh:
        e164 = record_number(rec, region)
        if e164 is not None:
            ids.setdefault(e164, set()).add(str(rec.get("recordId")))
    by_value = {r["value"]: r for r in rows}
    t = list_entries_table
    keep: dict[str, dict[str, Any]] = {}
    weaker = False
    values = list(by_value)
    for i in range(0, len(values), CHUNK):
        for row in conn.execute(select(t.c.value, t.c.expires_at, t.c.meta).where(
                t.c.list_name == name, t.c.value.in_(values[i:i + CHUNK]))):
            stored_meta = dict(row.meta or {})
            number_ids = ids.get(row.value, set())
            among = str(stored_meta.get("record_id")) in number_ids
            alone = among and stored_meta.get("alone") is True
            every = _ids(stored_meta) | number_ids  # the number's records, as far as seen
            written = by_value[row.value]
            written["meta"]["alone"] = alone and written["meta"]["alone"]
            _set_others(written["meta"], every)
            expires = row.expires_at
            if expires is not None and expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
            new = written["expires_at"]
            if new == expires or not blocks_longer(expires, new):
                continue
            if not among:
                keep[row.value] = _set_others({**stored_meta, "alone": False}, every)
            elif not alone:
                weaker = True
    return [r for r in rows if r["value"] not in keep], keep, weaker
