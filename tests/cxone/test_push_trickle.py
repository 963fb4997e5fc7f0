"""A write whose answer trickles in (one byte at a time, each read well within httpx's
per-read timeout) is cut off when its attempt's time is up, inside the pusher's lease, and
counted as a failed attempt: retried, never delivered on an answer that did not arrive.

Each attempt is bounded as a whole by ``DNCGUARD_CXONE_TIMEOUT_SECONDS`` (the resilience
layer's timeout around connecting, sending and reading the whole answer), and a pusher's
lease is that timeout plus the longest wait before the next attempt plus a margin, renewed
before each attempt: an attempt never outlives the lease it was sent under."""

from __future__ import annotations

import random

from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout
from dncguard.outbox import DELIVERED, PENDING, Outbox
from dncguard.sandbox import Fault, SandboxServer
from dncguard.sources.cxone import TOPIC, push
from dncguard.store import get_engine

from ..fakes import FakeSleep
from .conftest import cx_settings, make_client

GROUP = 364
NUMBER = "+12025550177"
WRITE = f"POST /inContactAPI/services/v33.0/dnc-groups/{GROUP}/records"


async def test_a_trickled_answer_is_a_failed_attempt_retried_within_the_lease(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    outbox = Outbox(get_engine(cxsettings), rng=random.Random(0))
    add_optout(store, NUMBER)
    # the answer, some 150 bytes, would take 15 s; each byte comes 0.1 s after the last
    sandbox.state.config.trickle_delay = 0.1
    sandbox.state.script.append(Fault(kind="trickle"))
    cx = cx_settings(sandbox, timeout_seconds=1.5, max_attempts=2)
    leases: list[float] = []
    async with make_client(cx, sleep) as client:
        original = outbox.renew

        def renew(ids: list[int], *, lease: float) -> int:
            leases.append(lease)
            return original(ids, lease=lease)

        outbox.renew = renew  # type: ignore[method-assign]
        report = await push(client, outbox, str(GROUP))
    # the first attempt was cut off at 1.5 s; the second, under a renewed lease, delivered
    assert (report.sent, report.delivered) == (1, 1) and report.ok
    assert sandbox.state.requests[WRITE] == 2 and len(sleep.calls) == 1
    # each attempt renewed the lease first, for longer than the attempt may last
    assert len(leases) == 2 and all(lease > cx.timeout_seconds for lease in leases)
    (item,) = outbox.items(TOPIC)
    assert item.status == DELIVERED


async def test_an_answer_that_never_arrives_whole_is_not_delivered(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    outbox = Outbox(get_engine(cxsettings), rng=random.Random(0))
    add_optout(store, NUMBER)
    sandbox.state.config.trickle_delay = 0.1
    sandbox.state.script.append(Fault(kind="trickle"))
    cx = cx_settings(sandbox, timeout_seconds=1.5, max_attempts=1)
    async with make_client(cx, sleep) as client:
        report = await push(client, outbox, str(GROUP))
    # CXone took the record, but its answer did not come whole in time: a failed attempt
    assert sandbox.state.records[GROUP].get(NUMBER[2:]) is not None
    assert (report.sent, report.delivered, len(report.retrying)) == (1, 0, 1)
    assert report.write_error is not None and "timed out" in report.write_error
    (item,) = outbox.items(TOPIC)
    assert item.status == PENDING and item.attempts == 1
