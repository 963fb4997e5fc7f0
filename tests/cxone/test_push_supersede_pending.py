"""A stale change is not sent while a later change of its number is pending.

The number's removal fails (CXone answers 503) and waits for its retry; the number is opted
out again, and that write fails too. The removal's retry falls due first. Before, it was sent
alone (only a *delivered* later change superseded it): CXone expired the record and stopped
blocking the number until the opt-out's own retry, 30 s to an hour later (or never, if it
kept failing). Now the removal is settled as superseded by the pending opt-out."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout, remove_optout
from dncguard.outbox import DELIVERED, Outbox
from dncguard.sandbox import Fault, SandboxServer
from dncguard.sources.cxone import TOPIC, push
from dncguard.store import get_engine

from ..fakes import FakeSleep
from .conftest import cx_settings, make_client

GROUP = "364"
NUMBER = "+12025550178"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now


def blocks(sandbox: SandboxServer) -> bool:
    rec = sandbox.state.records.get(int(GROUP), {}).get(NUMBER[2:])
    return rec is not None and (rec["_exp"] is None or rec["_exp"] > datetime.now(UTC))


async def test_a_removal_retry_is_not_sent_ahead_of_a_pending_optout(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    clock = Clock()
    box = Outbox(get_engine(cxsettings), clock=clock, rng=random.Random(3), base_delay=60,
                 max_delay=60)
    add_optout(store, NUMBER)
    async with make_client(cx_settings(sandbox, max_attempts=1), sleep) as client:
        assert (await push(client, box, GROUP)).delivered == 1
        remove_optout(store, NUMBER)
        sandbox.state.script.append(Fault(503))
        assert len((await push(client, box, GROUP)).retrying) == 1  # the removal waits
        clock.now += timedelta(seconds=29)  # within the removal's backoff (30 to 60 s)
        add_optout(store, NUMBER)
        sandbox.state.script.append(Fault(503))
        assert len((await push(client, box, GROUP)).retrying) == 1  # so does the opt-out
        _, removal, optout = box.items(TOPIC, limit=None)
        assert removal.next_attempt_at < optout.next_attempt_at
        clock.now = removal.next_attempt_at  # the removal is due, the opt-out not yet
        stale = await push(client, box, GROUP)
        assert stale.sent == 0 and stale.superseded == 1
        assert blocks(sandbox)  # CXone never stopped blocking the number
        clock.now = optout.next_attempt_at
        last = await push(client, box, GROUP)
        assert last.delivered == 1 and blocks(sandbox)
    assert [it.status for it in box.items(TOPIC, limit=None)] == [DELIVERED] * 3
