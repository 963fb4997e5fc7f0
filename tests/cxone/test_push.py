"""Write-back: durable queue, partial failures item by item, transient failures retried."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.outbox import DEAD, DELIVERED, PENDING, Outbox
from dncguard.sandbox import Fault, SandboxServer
from dncguard.sources.cxone import TOPIC, CxoneSync, enqueue_expire, enqueue_optout, push
from dncguard.store import get_engine

from .conftest import FakeSleep, cx_settings, decisions, make_client, scrubber, verdicts


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_optouts_pushed_with_partial_failures_reported_item_by_item(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    engine = get_engine(settings)
    store = ListStore(settings)
    good = [store.add_number(p, reason="asked") for p in
            ("202-555-0161", "212-555-0162", "305-555-0163")]
    for e164 in good:
        assert enqueue_optout(engine, e164)
    assert not enqueue_optout(engine, good[0])  # idempotent
    expires = datetime.now(UTC) + timedelta(days=90)
    assert enqueue_optout(engine, "+14155550164", expires, group_id="364")
    assert enqueue_optout(engine, "+123", group_id="364")  # CXone will refuse it
    assert enqueue_optout(engine, "+16175550165", group_id="365")  # another group: not now
    box = Outbox(engine, rng=random.Random(0))
    async with make_client(cx_settings(sandbox), sleep) as client:
        report = await push(client, box, "364")
    assert report.sent == 5
    assert report.delivered == 4
    assert report.dead == [("****", "Invalid phone number")]
    assert not report.retrying
    recs = sandbox.state.records[364]
    assert {"2025550161", "2125550162", "3055550163", "4155550164"} <= set(recs)
    assert recs["4155550164"]["expiredDate"] is not None
    stats = box.stats(TOPIC)
    assert stats == {PENDING: 1, DELIVERED: 4, DEAD: 1}  # the other group's item waits
    dead = box.items(TOPIC, DEAD)
    assert dead[0].last_error == "Invalid phone number"  # kept, never dropped
    # the pushed numbers come back through a sync and block via the CXone check
    cx = cx_settings(sandbox)
    async with make_client(cx, sleep) as client:
        await CxoneSync(settings, cx, client).sync(["364"])
    scr, _ = scrubber(settings, cx, sleep)
    out = await verdicts(scr, ["+14155550164", "+15125550100"])
    assert decisions(out) == {"+14155550164": Decision.BLOCK, "+15125550100": Decision.ALLOW}


async def test_transient_failures_are_retried_later_not_dropped(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    engine = get_engine(settings)
    clock = Clock()
    box = Outbox(engine, clock=clock, rng=random.Random(0), base_delay=30)
    for p in ("+12025550171", "+12125550172"):
        enqueue_optout(engine, p, outbox=box)
    sandbox.state.script.extend([Fault(503)] * 3)
    cx = cx_settings(sandbox, max_attempts=3)
    async with make_client(cx, sleep) as client:
        first = await push(client, box, "364")
        assert first.delivered == 0 and len(first.retrying) == 2
        assert box.stats(TOPIC)[PENDING] == 2
        assert (await push(client, box, "364")).sent == 0  # backoff: not due yet
        clock.now += timedelta(seconds=61)
        second = await push(client, box, "364")
    assert second.delivered == 2 and second.ok
    assert box.items(TOPIC)[0].attempts == 1
    assert {"2025550171", "2125550172"} <= set(sandbox.state.records[364])


async def test_queue_survives_restart_and_expiry_is_pushed(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    engine = get_engine(settings)
    enqueue_expire(engine, "+12025550101", datetime.now(UTC) - timedelta(minutes=1))
    engine.dispose()  # a restart: the queue is in the database
    box = Outbox(get_engine(settings))
    async with make_client(cx_settings(sandbox), sleep) as client:
        report = await push(client, box, "364")
    assert report.delivered == 1
    assert sandbox.state.records[364]["2025550101"]["expiredDate"] is not None
