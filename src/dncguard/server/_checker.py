"""Checks for the service, prepared once per *list version*.

The list version is a cheap token (one query: the count of committed list changes, plus
maximum ids and times over the list tables) that changes with any opt-out, removal, import or
sync. :class:`CheckerProvider` keeps the checks built for the current token (memory-mapped
snapshots plus the database entries) and rebuilds them only when it changes. The real-time
path (:mod:`.realtime`) reads the token once per batch of concurrent requests, so an opt-out
committed before a request arrived is honoured by that request on every replica, without a
database round trip per request. When the database cannot answer, checks fail closed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, literal_column, select

from ..config import Settings
from ..engine.findings import Findings
from ..engine.scrubber import Scrubber
from ..lists.store import ListInfo, ListStore
from ..models import DataVersions, Decision, Reason, ReasonCode, Verdict, merge_reasons
from ..phones import normalise
from ..sources.local import LocalListsCheck
from ..sources.protocol import Batch, Check, CheckContext
from ..sources.registry import default_checks
from ..store import (
    LIST_CHANGES_ROW,
    driver_row,
    list_changes_table,
    list_entries_table,
    list_events_table,
    lists_table,
    read_engine,
)


def _version_query() -> Select[Any]:
    e, v, lt, c = list_entries_table, list_events_table, lists_table, list_changes_table
    return select(
        # first: the count every list-changing transaction moves as its last write
        select(c.c.n).where(c.c.id == literal_column(str(LIST_CHANGES_ROW))).scalar_subquery(),
        select(func.max(e.c.id)).scalar_subquery(),
        select(func.max(v.c.id)).scalar_subquery(),
        select(func.count()).select_from(lt).scalar_subquery(),
        select(func.max(lt.c.updated_at)).scalar_subquery(),
        select(func.max(lt.c.synced_at)).scalar_subquery(),
    )


_VERSION_QUERY = _version_query()
#: the query's text by dialect (it has no parameter), run through the driver (the token is
#: only compared, so its values need no conversion)
_VERSION_SQL: dict[str, str] = {}


def list_version(bind: Engine | Connection) -> tuple[Any, ...]:
    """A token that changes whenever a list change commits.

    Its first value is the count of committed list changes (``list_changes.n``): every
    transaction that writes list data adds one as its last write
    (:func:`~dncguard.store.count_list_change`), under the row's lock, so the committed count
    moves with every commit, in whatever order the changes started. Maxima alone did not: an
    opt-out that commits after a change that started later has committed raises no maximum
    (the later one's are higher), and the replicas kept checks that allow its number. The
    maxima and the (small) count of lists follow it, for the changes of a replica of an older
    version during a rolling upgrade (which does not count its changes). Every part is a
    primary-key or index lookup, whatever the size of the entries table. One query per batch
    of pre-dial checks, sent through the driver (:func:`driver_row`).
    """
    if isinstance(bind, Connection):
        return _version_on(bind)
    with bind.connect() as conn:
        return _version_on(conn)


def _version_on(conn: Connection) -> tuple[Any, ...]:
    name = conn.dialect.name
    sql = _VERSION_SQL.get(name)
    if sql is None:
        sql = _VERSION_SQL[name] = str(_VERSION_QUERY.compile(dialect=conn.dialect))
    row = driver_row(conn, sql)
    assert row is not None  # an aggregate query has one row
    return row


class Direct:
    """A check whose findings run in the calling thread.

    The local lists and the rules hand their (synchronous, array) work to a thread pool when
    awaited; the real-time checker already runs in its own thread, where that hand-off costs
    more than the work for a handful of numbers. Remote sources keep their own ``findings``.
    """

    def __init__(self, inner: Check, run: Any) -> None:
        self._inner = inner
        self._run = run
        self.name = inner.name
        self.always = inner.always

    def versions(self) -> DataVersions:
        return self._inner.versions()

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        return await self._inner.check(batch, ctx)

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        found: Findings = self._run(batch, ctx)
        return found

    def timezones(self, batch: Batch) -> list[tuple[str, str]] | None:
        return self._inner.timezones(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def direct(check: Check) -> Check:
    """``check`` with its synchronous findings called directly, when it has them."""
    from ..sources.rules import RulesCheck

    if isinstance(check, LocalListsCheck):
        return Direct(check, check._findings)
    if isinstance(check, RulesCheck):
        return Direct(check, check.evaluate_groups)
    return check


class VersionStore(ListStore):
    """The list store of one list version: the lists' metadata (:meth:`all`) is read once,
    when first asked for, instead of once per batch. Every change of the lists table counts
    as a list change (:func:`~dncguard.store.count_list_change`), which changes the version
    token, and with it the checks and this store."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        super().__init__(settings, engine)
        self._infos: list[ListInfo] | None = None
        self._infos_lock = threading.Lock()

    def all(self) -> list[ListInfo]:
        with self._infos_lock:
            if self._infos is None:
                self._infos = super().all()
            return list(self._infos)


@dataclass(frozen=True)
class Prepared:
    """The checks of one list version: ``scrubber`` for jobs and batches, ``direct`` (same
    check objects, findings in the calling thread) for the real-time checker."""

    token: tuple[Any, ...]
    scrubber: Scrubber
    direct: Scrubber


class CheckerProvider:
    """Hands out the checks that reflect the database's lists right now."""

    def __init__(self, settings: Settings, engine: Engine, cache: bool = True) -> None:
        self.settings = settings
        self.engine = engine
        self.cache = cache
        self._lock = threading.Lock()
        self._current: Prepared | None = None
        self._reads = read_engine(engine)

    def refresh(self) -> Prepared:
        """The checks for the current list version (one query; rebuilt when it changed).
        Raises SQLAlchemyError when the database cannot answer (callers fail closed)."""
        token = list_version(self._reads)
        with self._lock:
            current = self._current
        if self.cache and current is not None and current.token == token:
            return current
        store = VersionStore(self.settings, self.engine)
        checks = default_checks(self.settings, store)
        # audit=False: the service records its checks itself, once each (see .realtime)
        prepared = Prepared(token, Scrubber(self.settings, checks=checks, audit=False),
                            Scrubber(self.settings, checks=[direct(c) for c in checks],
                                     audit=False))
        with self._lock:
            self._current = prepared
        return prepared

    def get(self) -> Scrubber:
        """The scrubber for the current list version (see :meth:`refresh`)."""
        return self.refresh().scrubber

    def prepared(self) -> Scrubber:
        """The scrubber prepared last, without asking the database (one query when none is
        prepared yet): for building a request's context (campaign profiles are checked
        against its lists) without a Scrubber, and its checks, per request."""
        current = self._current
        return current.scrubber if current is not None else self.get()


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


def audit_unavailable(verdict: Verdict, why: str) -> Verdict:
    """What is answered instead of ``verdict`` when its audit record could not be written:
    ``error`` with AUDIT_UNAVAILABLE after the verdict's own ``error`` reasons (a source that
    failed too); an unrecorded allow, defer or block is not disclosed."""
    reason = Reason(code=ReasonCode.AUDIT_UNAVAILABLE, decision=Decision.ERROR,
                    source="audit", detail=f"the audit record could not be written ({why}); "
                    "not verified: check again")
    kept = [r for r in verdict.reasons if r.decision is Decision.ERROR]
    return verdict.model_copy(update={"decision": Decision.ERROR, "reasons": [*kept, reason],
                                      "next_allowed_at": None})
