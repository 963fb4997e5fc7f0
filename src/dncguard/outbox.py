"""A durable outbox in the database: deliveries that must happen eventually, exactly once per
idempotency key, surviving restarts.

Used by the CXone write-back (topic ``cxone.push``) and designed for the audit export. The API:

* :meth:`Outbox.enqueue` ``(topic, key, payload)`` stores an item once per ``(topic, key)``;
  returns whether it was new. Call it in the caller's transaction by passing ``conn``.
* :meth:`Outbox.claim` ``(topic, limit)`` leases due items to one worker for ``lease`` seconds
  (a crashed worker's items come back when the lease ends).
* :meth:`Outbox.renew` ``(ids, lease)`` extends the lease of items this worker still holds;
  a worker renews before each attempt to send and gives the send up when an item is no
  longer its own (its lease ran out and another worker claimed it): two workers never send
  one item at once, and a stale attempt never follows a later worker's.
* :meth:`Outbox.ack` ``(ids)`` marks items delivered (``note`` records why, e.g. an item
  superseded by a later one for the same subject, whose delivery made its own unnecessary).
* :meth:`Outbox.fail` ``(id, error, permanent=False)`` records the error and schedules the
  next attempt with exponential backoff (full jitter), or parks the item as ``dead`` when the
  error is permanent or ``max_attempts`` is reached. Dead items are kept and reported, never
  dropped; :meth:`Outbox.requeue` revives them.
* ``renew`` and ``release`` change only items this worker holds: pending and claimed by it
  (``claimed_by``), whether or not its lease has run out, as long as no other worker claimed
  them since. ``ack`` and ``fail`` change only pending items no other worker holds (this one
  does, or none). A worker that lost an item to another changes nothing of it.
* :meth:`Outbox.stats` and :meth:`Outbox.items` report what is pending, delivered and dead;
  :meth:`Outbox.latest` finds the newest item of a subject (a producer that keys items per
  event chains them: see the CXone write-back, whose subject is the phone number).

An item's subject (``enqueue(..., subject=...)``) is kept in ``outbox_subjects``, one row per
item, and found by equality through ``ix_outbox_subjects_lookup`` (topic, subject, item id),
so the lookup does not slow as the outbox grows (items are never purged). It is a table of its
own rather than a column of ``outbox``: databases made by ``create_all`` before migrations are
adopted only when ``outbox`` has exactly its original columns (:mod:`dncguard.migrations`).

Item states: ``pending`` -> ``delivered`` | ``dead``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from .store import as_utc, metadata, utcnow

outbox_table = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", String(100), nullable=False),
    Column("key", String(400), nullable=False),  # idempotency key, unique per topic
    Column("payload", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True)),
    Column("claimed_by", String(100)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("topic", "key", name="uq_outbox_topic_key"),
    Index("ix_outbox_due", "topic", "status", "next_attempt_at"),
)

#: The subject of an item that has one (revision 0007_outbox_subjects), written with the item.
outbox_subjects_table = Table(
    "outbox_subjects",
    metadata,
    Column("item_id", Integer, ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("topic", String(100), nullable=False),
    Column("subject", String(100), nullable=False),
    Index("ix_outbox_subjects_lookup", "topic", "subject", "item_id"),
)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
#: What :meth:`Outbox.fail` returns for a pending item another worker holds (it claimed the
#: item once this worker's lease ran out): nothing was changed.
LOST = "lost"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    topic: str
    key: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row.id, topic=row.topic, key=row.key, payload=dict(row.payload or {}),
        status=row.status, attempts=row.attempts,
        next_attempt_at=as_utc(row.next_attempt_at) or utcnow(), last_error=row.last_error,
        created_at=as_utc(row.created_at) or utcnow(), delivered_at=as_utc(row.delivered_at))


class Outbox:
    """The outbox over one engine (its table is created on first use)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        base_delay: float = 30.0,
        max_delay: float = 3600.0,
        max_attempts: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        self.rng = rng or random.Random()
        self.worker = uuid.uuid4().hex[:12]
        metadata.create_all(engine, tables=[outbox_table, outbox_subjects_table])

    def _held(self) -> ColumnElement[bool]:
        """The items this worker holds: pending and claimed by it. Its lease may have run
        out: no other worker claimed the item since (a claim would have named that worker),
        so no other worker sends it."""
        return and_(outbox_table.c.claimed_by == self.worker, outbox_table.c.status == PENDING)

    def _settleable(self) -> ColumnElement[bool]:
        """The items this worker may settle (ack, fail): pending and held by no other worker
        (by this one, or by none: e.g. another worker's attempt failed and let it go, while
        this worker's own attempt went through)."""
        t = outbox_table
        return and_(t.c.status == PENDING,
                    or_(t.c.claimed_by == self.worker, t.c.claimed_by.is_(None)))

    # -- producers --------------------------------------------------------------------------
    def enqueue(self, topic: str, key: str, payload: dict[str, Any], *,
                subject: str | None = None, conn: Connection | None = None,
                delay: float = 0.0) -> bool:
        """Store an item once per (topic, key); False when that key is already queued.
        ``subject`` (at most 100 characters) makes the item findable by :meth:`latest`."""
        if subject is not None and not 0 < len(subject) <= 100:
            raise ValueError("an outbox subject has 1 to 100 characters")
        now = self.clock()
        values = {"topic": topic, "key": key, "payload": payload, "status": PENDING,
                  "attempts": 0, "next_attempt_at": now + timedelta(seconds=delay),
                  "created_at": now, "updated_at": now}
        exists = select(outbox_table.c.id).where(outbox_table.c.topic == topic,
                                                 outbox_table.c.key == key)

        def store(c: Connection) -> bool:
            if c.execute(exists).first() is not None:
                return False
            pk = c.execute(insert(outbox_table).values(**values)).inserted_primary_key
            if subject is not None:
                if pk is None:  # never for a single-row insert; an unfindable item is worse
                    raise RuntimeError("the database returned no id for the new outbox item")
                c.execute(insert(outbox_subjects_table).values(
                    item_id=pk[0], topic=topic, subject=subject))
            return True

        if conn is not None:
            return store(conn)
        try:
            with self.engine.begin() as own:
                return store(own)
        except IntegrityError:  # a concurrent producer stored the same key
            return False

    # -- consumers --------------------------------------------------------------------------
    def claim(self, topic: str, limit: int = 100, *, lease: float = 300.0,
              where: Callable[[OutboxItem], bool] | None = None,
              in_order: bool = False) -> list[OutboxItem]:
        """Lease up to ``limit`` due items (oldest first) to this outbox's worker; with
        ``where``, the oldest due items it accepts, however many it passes over to find them
        (due items of another CXone group whose pusher is not running must not hide this
        group's behind them).

        ``in_order``: an item with a subject is not taken while an earlier pending item of
        its subject that ``where`` accepts is leased to another worker, or is due and not
        taken in this claim. Two workers then never hold two changes of one subject at once,
        so a later change is never sent while an earlier one is on its way. (An earlier item
        waiting for its retry does not hold a later one back: its sender finds the later
        change delivered first, see the CXone write-back.)"""
        now = self.clock()
        t = outbox_table
        due = and_(t.c.topic == topic, t.c.status == PENDING, t.c.next_attempt_at <= now,
                   or_(t.c.claimed_until.is_(None), t.c.claimed_until <= now))
        out: list[OutboxItem] = []
        page = max(limit, 1) * 4
        after = 0
        with self.engine.begin() as conn:
            while len(out) < limit:
                rows = conn.execute(select(t).where(due, t.c.id > after).order_by(t.c.id)
                                    .limit(page)).all()
                waiting = (self._earlier_pending(conn, topic, rows, where, now) if in_order
                           else {})
                taken = {it.id for it in out}
                for row in rows:
                    if len(out) >= limit:
                        break
                    item = _item(row)
                    if where is not None and not where(item):
                        continue
                    if any(e not in taken and (leased or ready)
                           for e, leased, ready in waiting.get(row.id, ())):
                        continue  # an earlier change of its subject is held or due
                    got = conn.execute(update(t).where(t.c.id == row.id, due).values(
                        claimed_until=now + timedelta(seconds=lease), claimed_by=self.worker,
                        updated_at=now)).rowcount
                    if got:
                        out.append(item)
                        taken.add(item.id)
                if len(rows) < page:
                    break
                after = rows[-1].id
        return out

    @staticmethod
    def _earlier_pending(conn: Connection, topic: str, rows: Sequence[Any],
                         where: Callable[[OutboxItem], bool] | None, now: datetime
                         ) -> dict[int, list[tuple[int, bool, bool]]]:
        """For each of ``rows`` with a subject, the pending items of its subject before it
        that ``where`` accepts: (id, leased at ``now``, due at ``now``)."""
        if not rows:
            return {}
        t, s = outbox_table, outbox_subjects_table
        ids = [r.id for r in rows]
        subject_of = {int(r[0]): str(r[1]) for r in conn.execute(
            select(s.c.item_id, s.c.subject).where(s.c.item_id.in_(ids)))}
        if not subject_of:
            return {}
        pending: dict[str, list[tuple[int, bool, bool]]] = {}
        for row in conn.execute(
                select(t, s.c.subject).join(s, s.c.item_id == t.c.id)
                .where(s.c.topic == topic, s.c.subject.in_(set(subject_of.values())),
                       t.c.status == PENDING, t.c.id < max(ids))
                .order_by(t.c.id)):
            if where is None or where(_item(row)):
                until = as_utc(row.claimed_until)
                due = as_utc(row.next_attempt_at)
                pending.setdefault(str(row.subject), []).append(
                    (int(row.id), until is not None and until > now,
                     due is not None and due <= now))
        return {i: [e for e in pending.get(subj, ()) if e[0] < i]
                for i, subj in subject_of.items()}

    def renew(self, ids: Iterable[int], *, lease: float) -> int:
        """Lease the given items this worker holds for ``lease`` seconds from now; returns how
        many it still held. Fewer than asked: some item was claimed by another worker since
        (this worker's lease ran out), or settled: do not send it."""
        ids = list(ids)
        if not ids:
            return 0
        now = self.clock()
        with self.engine.begin() as conn:
            return int(conn.execute(update(outbox_table).where(
                outbox_table.c.id.in_(ids), self._held()).values(
                claimed_until=now + timedelta(seconds=lease), updated_at=now)).rowcount)

    def ack(self, ids: Iterable[int], *, note: str | None = None) -> int:
        """Mark the given pending items delivered; returns how many were (an item another
        worker claimed since is left to it, and counts not). ``note`` (kept as the item's
        last message) says why when the item was not sent itself."""
        ids = list(ids)
        if not ids:
            return 0
        now = self.clock()
        values: dict[str, Any] = {"status": DELIVERED, "delivered_at": now, "updated_at": now,
                                  "claimed_until": None, "claimed_by": None}
        if note is not None:
            values["last_error"] = note[:1000]
        with self.engine.begin() as conn:
            return int(conn.execute(update(outbox_table).where(
                outbox_table.c.id.in_(ids), self._settleable()).values(**values)).rowcount)

    def backoff(self, attempts: int) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** min(max(attempts - 1, 0), 30)))
        return self.rng.uniform(cap / 2, cap)

    def fail(self, item_id: int, error: str, *, permanent: bool = False) -> str:
        """Record a failed attempt; returns the item's new status (pending or dead). An item
        that is no longer pending (delivered meanwhile by a worker whose lease followed an
        expired one, or dead) keeps its status, which is returned: a late failure must not
        send a delivered item again. A pending item another worker claimed since is left to
        it: :data:`LOST` is returned."""
        now = self.clock()
        t = outbox_table
        with self.engine.begin() as conn:
            row = conn.execute(select(t.c.attempts, t.c.status, t.c.claimed_by)
                               .where(t.c.id == item_id)).first()
            if row is None:
                raise KeyError(item_id)
            if row.status != PENDING:
                return str(row.status)
            if row.claimed_by not in (None, self.worker):
                return LOST
            attempts = int(row.attempts) + 1
            dead = permanent or (self.max_attempts is not None and attempts >= self.max_attempts)
            if not conn.execute(update(t).where(t.c.id == item_id, self._settleable()).values(
                attempts=attempts, last_error=error[:1000], updated_at=now, claimed_until=None,
                claimed_by=None, status=DEAD if dead else PENDING,
                next_attempt_at=now + timedelta(seconds=0 if dead else self.backoff(attempts))
            )).rowcount:
                return LOST  # taken by another worker between the two statements
        return DEAD if dead else PENDING

    def release(self, ids: Iterable[int]) -> int:
        """Give the given items this worker holds back without counting an attempt (e.g.
        shutdown, or a send given up); returns how many it held."""
        ids = list(ids)
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return int(conn.execute(update(outbox_table).where(
                outbox_table.c.id.in_(ids), self._held()).values(
                claimed_until=None, claimed_by=None)).rowcount)

    def requeue(self, topic: str, ids: Iterable[int] | None = None) -> int:
        """Make dead items pending again (all of the topic, or the given ids)."""
        t = outbox_table
        cond = and_(t.c.topic == topic, t.c.status == DEAD)
        if ids is not None:
            cond = and_(cond, t.c.id.in_(list(ids)))
        now = self.clock()
        with self.engine.begin() as conn:
            return int(conn.execute(update(t).where(cond).values(
                status=PENDING, next_attempt_at=now, updated_at=now)).rowcount)

    # -- reporting --------------------------------------------------------------------------
    def stats(self, topic: str) -> dict[str, int]:
        """Item counts by status (pending, delivered, dead)."""
        t = outbox_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.status, func.count()).where(t.c.topic == topic)
                                .group_by(t.c.status)).all()
        out = {PENDING: 0, DELIVERED: 0, DEAD: 0}
        out.update({str(s): int(n) for s, n in rows})
        return out

    def backlog(self, topic: str) -> tuple[int, datetime | None, int]:
        """The pending items of ``topic`` in one aggregate query, however many there are:
        (how many failed at least once, the oldest one's creation time or None, the most
        attempts any has made)."""
        t = outbox_table
        with self.engine.connect() as conn:
            row = conn.execute(select(
                func.count().filter(t.c.attempts > 0), func.min(t.c.created_at),
                func.max(t.c.attempts)).where(t.c.topic == topic,
                                              t.c.status == PENDING)).one()
        failing, oldest, most = row
        return int(failing or 0), as_utc(oldest), int(most or 0)

    def metrics(self, topic: str, now: datetime | None = None) -> dict[str, float]:
        """The queue of ``topic`` for a metrics endpoint (Prometheus gauges), from two
        aggregate queries (no item is read): ``pending``, ``delivered``, ``dead``,
        ``failing`` (pending items that failed at least once), ``oldest_pending_age_seconds``
        and ``max_attempts``."""
        stats = self.stats(topic)
        failing, oldest, most = self.backlog(topic)
        now = now or utcnow()
        return {
            "pending": float(stats[PENDING]),
            "delivered": float(stats[DELIVERED]),
            "dead": float(stats[DEAD]),
            "failing": float(failing),
            "oldest_pending_age_seconds": (max((now - oldest).total_seconds(), 0.0)
                                           if oldest else 0.0),
            "max_attempts": float(most),
        }

    def items(self, topic: str, status: str | None = None, limit: int | None = 1000, *,
              after: int | None = None) -> list[OutboxItem]:
        """Items of ``topic`` in id (enqueue) order; ``after`` keeps those with a larger id,
        ``limit=None`` returns them all."""
        t = outbox_table
        q = select(t).where(t.c.topic == topic)
        if status is not None:
            q = q.where(t.c.status == status)
        if after is not None:
            q = q.where(t.c.id > after)
        q = q.order_by(t.c.id)
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(q).all()]

    def failing(self, topic: str, limit: int = 100) -> list[OutboxItem]:
        """Up to ``limit`` undelivered items of ``topic`` that failed at least once (pending
        ones awaiting a retry and dead ones), in id (enqueue) order, whatever the number of
        items before them; the limit is applied by the database."""
        t = outbox_table
        q = (select(t).where(t.c.topic == topic, t.c.status.in_((PENDING, DEAD)),
                             t.c.attempts > 0)
             .order_by(t.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(q).all()]

    def used(self, topic: str) -> bool:
        """Whether ``topic`` has ever held an item (any status; items are never deleted)."""
        t = outbox_table
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.id).where(t.c.topic == topic).limit(1)).first() \
                is not None

    def subjects(self, topic: str) -> list[str]:
        """Every subject items of ``topic`` were enqueued with, in order."""
        s = outbox_subjects_table
        with self.engine.connect() as conn:
            return [str(v) for v in conn.execute(
                select(s.c.subject).where(s.c.topic == topic).distinct()
                .order_by(s.c.subject)).scalars()]

    def latest(self, topic: str, subject: str, *,
               where: Callable[[OutboxItem], bool] | None = None,
               conn: Connection | None = None) -> OutboxItem | None:
        """The newest item (any status) of ``topic`` enqueued with ``subject`` and that passes
        ``where``; read in the caller's transaction when ``conn`` is given. An equality lookup
        through ``ix_outbox_subjects_lookup``, newest first (items without a subject are never
        found)."""
        t, s = outbox_table, outbox_subjects_table
        q = (select(t).join(s, s.c.item_id == t.c.id)
             .where(s.c.topic == topic, s.c.subject == subject)
             .order_by(s.c.item_id.desc()))

        def first(rows: Iterator[Any]) -> OutboxItem | None:
            for row in rows:
                item = _item(row)
                if where is None or where(item):
                    return item
            return None

        if conn is not None:
            return first(iter(conn.execute(q)))
        with self.engine.connect() as own:
            return first(iter(own.execute(q)))
