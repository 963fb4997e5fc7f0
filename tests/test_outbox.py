"""The durable outbox: idempotency, claim/ack/fail, backoff, leases, restarts, dead items."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from dncguard.outbox import DEAD, DELIVERED, PENDING, Outbox

T0 = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'outbox.db'}"


def box(url: str, clock: Clock, **kw: object) -> Outbox:
    return Outbox(create_engine(url), clock=clock, rng=random.Random(0), **kw)  # type: ignore[arg-type]


def test_enqueue_is_idempotent_per_topic_and_key(db: str) -> None:
    clock = Clock()
    ob = box(db, clock)
    assert ob.enqueue("t", "k1", {"n": 1})
    assert not ob.enqueue("t", "k1", {"n": 2})
    assert ob.enqueue("other", "k1", {"n": 3})
    assert ob.stats("t") == {PENDING: 1, DELIVERED: 0, DEAD: 0}
    assert ob.items("t")[0].payload == {"n": 1}


def test_claim_ack_and_leases(db: str) -> None:
    clock = Clock()
    ob = box(db, clock)
    for i in range(5):
        ob.enqueue("t", f"k{i}", {"i": i})
    first = ob.claim("t", 3, lease=60)
    assert [it.payload["i"] for it in first] == [0, 1, 2]
    # the leased ones are skipped
    assert [it.payload["i"] for it in ob.claim("t", 10, lease=60)] == [3, 4]
    assert ob.claim("t", 10) == []
    assert ob.ack([first[0].id]) == 1
    clock.advance(61)  # the lease of the unacknowledged items ran out (a crashed worker)
    again = ob.claim("t", 10)
    assert sorted(it.payload["i"] for it in again) == [1, 2, 3, 4]
    assert ob.stats("t")[DELIVERED] == 1


def test_fail_schedules_backoff_and_survives_restart(db: str) -> None:
    clock = Clock()
    ob = box(db, clock, base_delay=10, max_delay=100)
    ob.enqueue("t", "k", {"x": 1})
    item = ob.claim("t")[0]
    assert ob.fail(item.id, "HTTP 503") == PENDING
    assert ob.claim("t") == []  # not due yet
    stored = ob.items("t")[0]
    assert stored.attempts == 1 and stored.last_error == "HTTP 503"
    assert T0 + timedelta(seconds=5) <= stored.next_attempt_at <= T0 + timedelta(seconds=10)
    # a restart: a new engine over the same database sees the same state
    clock.advance(11)
    ob2 = box(db, clock, base_delay=10, max_delay=100)
    again = ob2.claim("t")
    assert [it.key for it in again] == ["k"]
    ob2.fail(again[0].id, "HTTP 503")
    later = ob2.items("t")[0]
    assert later.attempts == 2
    assert later.next_attempt_at >= clock.now + timedelta(seconds=10)  # doubled backoff


def test_a_late_failure_leaves_a_delivered_item_delivered(db: str) -> None:
    """A worker whose lease ran out reports its failure after a second worker delivered the
    item: the item stays delivered (not pending again, so it is not sent twice), and a dead
    item stays dead."""
    clock = Clock()
    ob = box(db, clock, max_attempts=1)
    ob.enqueue("t", "k", {})
    slow = ob.claim("t", lease=60)[0]
    clock.advance(61)
    fast = ob.claim("t", lease=60)[0]
    assert ob.ack([fast.id]) == 1
    assert ob.fail(slow.id, "ReadTimeout") == DELIVERED
    assert ob.stats("t") == {PENDING: 0, DELIVERED: 1, DEAD: 0}
    assert ob.items("t")[0].attempts == 0
    ob.enqueue("t", "d", {})
    (dead,) = ob.claim("t")
    assert ob.fail(dead.id, "HTTP 500") == DEAD
    assert ob.fail(dead.id, "HTTP 500") == DEAD
    assert ob.items("t", DEAD)[0].attempts == 1


def test_permanent_and_max_attempts_park_items_as_dead_not_dropped(db: str) -> None:
    clock = Clock()
    ob = box(db, clock, max_attempts=2, base_delay=1)
    ob.enqueue("t", "a", {})
    ob.enqueue("t", "b", {})
    a, b = ob.claim("t")
    assert ob.fail(a.id, "Invalid phone number", permanent=True) == DEAD
    assert ob.fail(b.id, "HTTP 500") == PENDING
    clock.advance(5)
    (b2,) = ob.claim("t")
    assert ob.fail(b2.id, "HTTP 500") == DEAD
    assert ob.stats("t") == {PENDING: 0, DELIVERED: 0, DEAD: 2}
    assert {it.last_error for it in ob.items("t", DEAD)} == {"Invalid phone number",
                                                               "HTTP 500"}
    assert ob.requeue("t") == 2
    assert len(ob.claim("t")) == 2


def test_claim_filter_and_release(db: str) -> None:
    clock = Clock()
    ob = box(db, clock)
    ob.enqueue("t", "a", {"g": "1"})
    ob.enqueue("t", "b", {"g": "2"})
    got = ob.claim("t", where=lambda it: it.payload["g"] == "2")
    assert [it.key for it in got] == ["b"]
    ob.release([got[0].id])
    assert {it.key for it in ob.claim("t")} == {"a", "b"}


def test_claim_filter_looks_past_items_it_does_not_take(db: str) -> None:
    """A filtered claim passes over any number of due items the filter refuses (another CXone
    group's, whose pusher is not running): it looked at the 4 x limit oldest only, so a
    group's items queued behind 400 of another group's were never claimed."""
    clock = Clock()
    ob = box(db, clock)
    for i in range(450):
        ob.enqueue("t", f"other{i}", {"g": "other"})
    for i in range(3):
        ob.enqueue("t", f"mine{i}", {"g": "mine"})
    got = ob.claim("t", 100, where=lambda it: it.payload["g"] == "mine")
    assert [it.key for it in got] == ["mine0", "mine1", "mine2"]
    # the limit still holds, oldest first, across pages
    ob.release([it.id for it in got])
    assert [it.key for it in ob.claim("t", 2, where=lambda it: it.payload["g"] == "mine")] \
        == ["mine0", "mine1"]
    assert len(ob.claim("t", 1000)) == 451  # the other group's, and mine2


def test_backlog_aggregates_every_pending_item(db: str) -> None:
    """The metrics' backlog numbers come from one aggregate query over every pending item
    (they were read from the 100,000 oldest items, each loaded, at every /metrics scrape)."""
    clock = Clock()
    ob = box(db, clock, base_delay=1)
    assert ob.backlog("t") == (0, None, 0)
    for i in range(5):
        ob.enqueue("t", f"k{i}", {})
        clock.advance(10)
    ob.enqueue("other", "x", {})
    first, second, *_ = ob.claim("t", 5)
    ob.fail(first.id, "HTTP 500")
    ob.fail(second.id, "HTTP 500")
    clock.advance(5)
    (again,) = [i for i in ob.claim("t", 5) if i.id == first.id]
    ob.fail(again.id, "HTTP 500")
    third = ob.items("t")[2]
    ob.ack([third.id])
    assert ob.backlog("t") == (2, T0, 2)
