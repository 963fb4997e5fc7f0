"""A write retried past its pusher's lease is given up, never sent after a later pusher's.

Pusher A sends a number's removal; CXone throttles it (429, Retry-After 120). While A waits,
its lease runs out, the number is opted out again, and pusher B (another replica) sends the
removal and the new opt-out in order. Before, A's retry then went out and expired the
record: CXone stopped blocking a number dncguard holds, with every item 'delivered' and
nothing left for a backfill to correct. Now A renews its lease before each attempt, finds
the item taken over, and gives the write up. (B coalesces the removal and the opt-out it
holds to one add: test_push_coalesce.)"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout, queue_writeback, remove_optout
from dncguard.outbox import DELIVERED, Outbox
from dncguard.sandbox import Fault, SandboxServer
from dncguard.sources.cxone import TOPIC, CxoneClient, push
from dncguard.store import get_engine

from ..fakes import FakeSleep
from .conftest import cx_settings, make_client

GROUP = 364
NUMBER = "+12025550177"


def blocks(sandbox: SandboxServer) -> bool:
    rec = sandbox.state.records.get(GROUP, {}).get(NUMBER[2:])
    return rec is not None and (rec["_exp"] is None or rec["_exp"] > datetime.now(UTC))


def writes(sandbox: SandboxServer) -> int:
    return sum(n for k, n in sandbox.state.requests.items()
               if k.split(" ", 1)[0] in ("POST", "DELETE")
               and k.endswith(f"/dnc-groups/{GROUP}/records"))


async def test_a_retry_that_outlives_its_lease_is_given_up(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    engine = get_engine(cxsettings)
    t0 = datetime.now(UTC) + timedelta(seconds=5)
    a = Outbox(engine, clock=lambda: t0, rng=random.Random(0))
    # B runs later than any lease A took (A's clock stands still while it waits)
    b = Outbox(engine, clock=lambda: t0 + timedelta(seconds=301), rng=random.Random(1))
    cx = cx_settings(sandbox, max_attempts=6)
    add_optout(store, NUMBER)
    async with make_client(cx, sleep) as client:
        assert (await push(client, a, str(GROUP))).delivered == 1
    remove_optout(store, NUMBER)
    sandbox.state.script.append(Fault(429, retry_after="120"))  # A's removal is throttled
    seen: list[str] = []

    async def wait(seconds: float) -> None:
        """A's wait for the Retry-After: meanwhile the number is opted out again and B
        pushes both changes."""
        if seconds >= 100 and not seen:
            add_optout(store, NUMBER)
            async with make_client(cx, FakeSleep()) as other:
                got = await push(other, b, str(GROUP))
            seen.append(f"B delivered {got.delivered}")
            assert blocks(sandbox)

    async with CxoneClient(cx, sleep=wait, rng=random.Random(7)) as slow:
        report = await push(slow, a, str(GROUP))
    assert seen == ["B delivered 1"]  # the removal and the opt-out: one add
    assert blocks(sandbox)  # A's stale removal did not follow B's opt-out
    assert report.delivered == 0 and report.lease_lost == 1
    assert writes(sandbox) == 1 + 1 + 1  # the first opt-out, A's throttled try, B's add
    items = a.items(TOPIC, limit=None)
    assert [it.payload["action"] for it in items] == ["add", "expire", "add"]
    assert all(it.status == DELIVERED for it in items)
    assert queue_writeback(store) == (0, 0)
