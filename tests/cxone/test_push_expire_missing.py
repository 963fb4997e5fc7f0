"""An expiry CXone refuses is looked up before it is retried: when the group holds no record
of the number that still blocks after the expiry, there is nothing to expire and the item is
settled (counted, logged, kept with its note), not retried forever. A record that still
blocks, or a search that fails, leaves the expiry to be retried."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dncguard.config import Settings
from dncguard.outbox import DELIVERED, PENDING, Outbox
from dncguard.sandbox import Fault, SandboxServer
from dncguard.sources.cxone import TOPIC, CxoneClient, enqueue_expire, push
from dncguard.store import get_engine

from .conftest import FakeSleep, cx_settings, make_client

NEVER_HELD = "+12025550177"


async def test_an_expiry_of_a_number_the_group_never_held_is_settled(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    engine = get_engine(settings)
    enqueue_expire(engine, NEVER_HELD, datetime.now(UTC) - timedelta(minutes=1))
    box = Outbox(engine, rng=random.Random(0))
    async with make_client(cx_settings(sandbox), sleep) as client:
        report = await push(client, box, "364")
        again = await push(client, box, "364")
    assert report.sent == 1 and report.ok
    assert len(report.nothing_to_expire) == 1
    assert NEVER_HELD[2:] not in report.nothing_to_expire[0]  # masked
    assert not report.retrying and not report.dead
    assert again.sent == 0  # settled: not sent again
    (item,) = box.items(TOPIC)
    assert item.status == DELIVERED
    assert item.last_error is not None and item.last_error.startswith("nothing to expire")
    assert sum(n for k, n in sandbox.state.requests.items()
               if k.endswith("/dnc-groups/search")) == 1  # looked up once


async def test_an_expiry_whose_record_is_expired_already_is_settled(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    """The group holds the number with an expiry before the one asked for: nothing blocks
    after it, so nothing is left to expire (the sandbox refuses the write meanwhile)."""
    engine = get_engine(settings)
    enqueue_expire(engine, NEVER_HELD, datetime.now(UTC) - timedelta(minutes=1))
    box = Outbox(engine, rng=random.Random(0))
    search = CxoneClient.search

    async def expired_record_appears(self: CxoneClient, digits: str) -> list[dict[str, Any]]:
        earlier = (datetime.now(UTC) - timedelta(days=3)).isoformat().replace("+00:00", "Z")
        sandbox.state.add_record(364, digits, earlier)
        return await search(self, digits)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CxoneClient, "search", expired_record_appears)
        async with make_client(cx_settings(sandbox), sleep) as client:
            report = await push(client, box, "364")
    assert len(report.nothing_to_expire) == 1 and report.ok


async def test_a_refused_expiry_of_a_number_that_still_blocks_is_retried(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    """Refused as not found, yet the search shows a record with no expiry (another system
    added it meanwhile): the expiry is retried, not settled."""
    engine = get_engine(settings)
    enqueue_expire(engine, NEVER_HELD, datetime.now(UTC) - timedelta(minutes=1))
    box = Outbox(engine, rng=random.Random(0))
    search = CxoneClient.search

    async def added_meanwhile(self: CxoneClient, digits: str) -> list[dict[str, Any]]:
        sandbox.state.add_record(364, digits)
        return await search(self, digits)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CxoneClient, "search", added_meanwhile)
        async with make_client(cx_settings(sandbox), sleep) as client:
            report = await push(client, box, "364")
    assert not report.nothing_to_expire
    assert len(report.retrying) == 1 and "not found" in report.retrying[0][1]
    (item,) = box.items(TOPIC)
    assert item.status == PENDING


async def test_a_refused_expiry_whose_search_fails_is_retried(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    engine = get_engine(settings)
    enqueue_expire(engine, NEVER_HELD, datetime.now(UTC) - timedelta(minutes=1))
    box = Outbox(engine, rng=random.Random(0))
    search = CxoneClient.search

    async def failing(self: CxoneClient, digits: str) -> list[dict[str, Any]]:
        sandbox.state.script.extend([Fault(503)] * 3)
        return await search(self, digits)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CxoneClient, "search", failing)
        async with make_client(cx_settings(sandbox, max_attempts=3), sleep) as client:
            report = await push(client, box, "364")
    assert not report.nothing_to_expire
    assert len(report.retrying) == 1
    (item,) = box.items(TOPIC)
    assert item.status == PENDING
