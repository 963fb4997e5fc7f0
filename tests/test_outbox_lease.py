"""Leases held by one worker at a time: a worker renews its lease before each attempt, and a
worker that lost an item (its lease ran out and another worker claimed it) changes nothing
of it: its renewal, acknowledgement, failure and release all leave the item to the new
holder. Before, a stale worker's ack or failure settled an item another worker held."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from dncguard.outbox import DELIVERED, LOST, PENDING, Outbox

T0 = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two(request: pytest.FixtureRequest, tmp_path: Path
        ) -> Iterator[tuple[Clock, Outbox, Outbox]]:
    """Two workers (two replicas) over one database (a SQLite file, or PostgreSQL), on one
    clock."""
    url = (f"sqlite:///{tmp_path / 'outbox.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_url"))
    engine = create_engine(url)
    clock = Clock()
    yield (clock, Outbox(engine, clock=clock, rng=random.Random(0)),
           Outbox(engine, clock=clock, rng=random.Random(1)))
    engine.dispose()


def test_a_stale_worker_settles_nothing_another_worker_holds(
        two: tuple[Clock, Outbox, Outbox]) -> None:
    clock, a, b = two
    a.enqueue("t", "x", {})
    a.enqueue("t", "y", {})
    x, y = a.claim("t", lease=60)
    clock.now += timedelta(seconds=61)  # a's lease ran out (a slow retry) ...
    assert [it.id for it in b.claim("t", lease=60)] == [x.id, y.id]  # ... and b took both
    assert a.ack([x.id]) == 0  # a's late success: b's item, untouched
    assert a.fail(y.id, "HTTP 503") == LOST
    stored = {it.id: it for it in a.items("t")}
    assert stored[x.id].status == PENDING and stored[y.id].attempts == 0
    assert b.ack([x.id]) == 1  # the holder settles it
    assert b.fail(y.id, "HTTP 503") == PENDING
    assert a.stats("t")[DELIVERED] == 1


def test_renew_succeeds_for_the_holder_only(two: tuple[Clock, Outbox, Outbox]) -> None:
    clock, a, b = two
    a.enqueue("t", "x", {})
    a.enqueue("t", "y", {})
    x, y = a.claim("t", lease=60)
    clock.now += timedelta(seconds=50)
    assert a.renew([x.id, y.id], lease=60) == 2
    clock.now += timedelta(seconds=50)  # past the claim's lease, within the renewed one
    assert b.claim("t") == []
    clock.now += timedelta(seconds=11)
    # ran out, but nobody claimed them since: still a's, so a renews them
    assert a.renew([x.id], lease=60) == 1
    assert [it.id for it in b.claim("t", lease=60)] == [y.id]
    assert a.renew([x.id, y.id], lease=60) == 1  # y is b's now: a must not send it
    assert b.renew([x.id], lease=60) == 0
    assert a.release([x.id, y.id]) == 1  # gives back its own only
    assert b.renew([y.id], lease=60) == 1
    assert b.ack([y.id]) == 1
    assert b.renew([y.id], lease=60) == 0  # settled: nothing to renew


def test_an_item_nobody_holds_is_settled_by_its_late_sender(
        two: tuple[Clock, Outbox, Outbox]) -> None:
    """b's attempt failed and let the item go while a's attempt went through: a's ack
    counts (the item was delivered), and a late ack of an item b delivered counts not."""
    clock, a, b = two
    a.enqueue("t", "x", {})
    a.enqueue("t", "y", {})
    x, y = a.claim("t", lease=60)
    clock.now += timedelta(seconds=61)
    b.claim("t", lease=60)
    assert b.fail(x.id, "HTTP 503") == PENDING
    assert b.ack([y.id]) == 1
    assert a.ack([x.id, y.id]) == 1
    assert {it.id: it.status for it in a.items("t")} == {x.id: DELIVERED, y.id: DELIVERED}
