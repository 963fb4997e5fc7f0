"""Checks for the service, rebuilt whenever the database's list data changes.

Each request asks the database for a cheap *list version* (one query of maximum ids and times
over the list tables). While it is unchanged the list indexes (memory-mapped snapshots plus the
database entries) are reused; any opt-out, removal or import changes it, so the very next check
on every replica sees the change. When the database cannot answer, checks fail closed.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, func, select

from ..checks import CheckContext, default_checks
from ..config import Settings
from ..lists import ListStore
from ..models import Decision, Reason, ReasonCode, Verdict, merge_reasons
from ..phones import normalise
from ..pipeline import Scrubber
from ..store import list_entries_table, list_events_table, lists_table


def _version_query() -> Select[Any]:
    e, v, lt = list_entries_table, list_events_table, lists_table
    return select(
        select(func.max(e.c.id)).scalar_subquery(),
        select(func.max(v.c.id)).scalar_subquery(),
        select(func.count()).select_from(lt).scalar_subquery(),
        select(func.max(lt.c.updated_at)).scalar_subquery(),
        select(func.max(lt.c.synced_at)).scalar_subquery(),
    )


_VERSION_QUERY = _version_query()


def list_version(engine: Engine) -> tuple[Any, ...]:
    """A token that changes whenever a list, a list entry or a list event is written.

    Only maxima and the (small) count of lists: every query is an index lookup, whatever the
    size of the entries table. Inserting an entry raises its maximum id; every deletion through
    :class:`~dncguard.lists.ListStore` also writes a list event. Writers that delete or update
    entries directly must write a list event or touch ``lists.updated_at``/``synced_at`` too.
    """
    with engine.connect() as conn:
        row = conn.execute(_VERSION_QUERY).one()
    return tuple(row)


class CheckerProvider:
    """Hands out a :class:`Scrubber` whose checks reflect the database right now."""

    def __init__(self, settings: Settings, engine: Engine, cache: bool = True) -> None:
        self.settings = settings
        self.engine = engine
        self.cache = cache
        self._lock = threading.Lock()
        self._token: tuple[Any, ...] | None = None
        self._scrubber: Scrubber | None = None

    def get(self) -> Scrubber:
        """Raises SQLAlchemyError when the database cannot answer (callers fail closed)."""
        token = list_version(self.engine)
        with self._lock:
            if self.cache and self._scrubber is not None and token == self._token:
                return self._scrubber
        store = ListStore(self.settings, self.engine)
        scrubber = Scrubber(self.settings, checks=default_checks(self.settings, store))
        with self._lock:
            self._token, self._scrubber = token, scrubber
        return scrubber


def unavailable_verdict(phone: str, ctx: CheckContext, region: str | None, why: str,
                        now: datetime) -> Verdict:
    """The fail-closed verdict when nothing could be checked: ``error`` / SOURCE_ERROR."""
    n = normalise(phone, region)
    reasons = [Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source="database",
                      detail=f"the database could not be read ({why}); not verified")]
    if not n.ok and n.error is not None:
        reasons.insert(0, Reason(code=n.error, decision=Decision.INVALID, detail=n.message))
    decision, nxt = merge_reasons(reasons)
    return Verdict(input=phone, e164=n.e164, decision=decision, reasons=reasons, region=n.region,
                   next_allowed_at=nxt, dial_time=ctx.at, checked_at=now)
