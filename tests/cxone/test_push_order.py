"""Write-back order: every opt-out and removal reaches CXone, and CXone ends in the state of the
number's last change on the internal list, whatever the batching, retries and re-adds."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout, remove_optout
from dncguard.outbox import DELIVERED, Outbox
from dncguard.sandbox import Fault, SandboxServer
from dncguard.sources.cxone import TOPIC, CxoneClient, PushReport, enqueue_optout, push
from dncguard.store import get_engine

from ..fakes import FakeSleep
from .conftest import cx_settings, make_client, us_numbers

GROUP = 364


class Clock:
    """Real time plus an offset (items are enqueued on real time; backoff is skipped by
    moving this clock forward)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class World:
    def __init__(self, settings: Settings, sandbox: SandboxServer, sleep: FakeSleep,
                 max_attempts: int = 8) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.sleep = sleep
        self.store = ListStore(settings)
        self.clock = Clock()
        self.box = Outbox(get_engine(settings), clock=self.clock, rng=random.Random(0))
        self.cx = cx_settings(sandbox, max_attempts=max_attempts)

    async def push(self, client: CxoneClient | None = None) -> PushReport:
        if client is not None:
            return await push(client, self.box, str(GROUP))
        async with make_client(self.cx, self.sleep) as own:
            return await push(own, self.box, str(GROUP))

    def local(self, e164: str) -> bool:
        store = ListStore(self.settings)
        return bool(store.index(store.get("internal")).contains_numbers([e164])[0])

    def cxone(self, e164: str) -> bool:
        """Whether CXone blocks the number: a record that is not expired."""
        rec = self.sandbox.state.records.get(GROUP, {}).get(e164[2:])
        return rec is not None and (rec["_exp"] is None or rec["_exp"] > datetime.now(UTC))

    def agree(self, *numbers: str) -> None:
        for n in numbers:
            assert self.cxone(n) == self.local(n), (n, self.cxone(n), self.local(n),
                                                    self.box.items(TOPIC, limit=None))


def writes(sandbox: SandboxServer) -> int:
    """Write requests (add or expire records) the sandbox received for the group."""
    return sum(n for k, n in sandbox.state.requests.items()
               if k.split(" ", 1)[0] in ("POST", "DELETE")
               and k.endswith(f"/dnc-groups/{GROUP}/records"))


async def test_optout_again_after_a_pushed_removal_reaches_cxone(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    w = World(cxsettings, sandbox, sleep)
    p = add_optout(w.store, "202-555-0161")
    first = await w.push()
    assert first.delivered == 1 and w.cxone(p) and w.local(p)
    remove_optout(w.store, p)
    second = await w.push()
    assert second.delivered == 1 and not w.cxone(p) and not w.local(p)
    add_optout(w.store, p)  # the same number, again without an expiry
    third = await w.push()
    assert third.sent == 1 and third.delivered == 1 and third.ok
    assert w.local(p) and w.cxone(p)
    assert sandbox.state.records[GROUP]["2025550161"]["expiredDate"] is None


@pytest.mark.parametrize("days", [None, 365])
async def test_optout_removal_optout_in_one_batch_ends_blocked(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep, days: int | None) -> None:
    w = World(cxsettings, sandbox, sleep)
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    p = add_optout(w.store, "202-555-0162")
    remove_optout(w.store, p)
    add_optout(w.store, p, expires=expires)
    report = await w.push()
    assert report.ok and report.pending_after == 0
    # coalesced to the last change: one add, the two before it settled with it, not sent
    assert (report.sent, report.delivered, report.superseded) == (1, 1, 2)
    assert writes(sandbox) == 1
    assert w.local(p) and w.cxone(p)
    rec = sandbox.state.records[GROUP]["2025550162"]
    assert (rec["_exp"] is None) if expires is None else (rec["_exp"] == expires)


async def test_every_interleaving_of_changes_and_pushes_ends_in_agreement(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    """Add (A), add with an expiry (E), remove (R), in every order up to four changes, with
    a push after any of them: after each push CXone blocks the number exactly when the
    internal list has it."""
    w = World(cxsettings, sandbox, sleep)
    later = datetime.now(UTC) + timedelta(days=30)
    sequences = [s for n in (1, 2, 3) for s in itertools.product("AER", repeat=n)]
    sequences += list(itertools.product("AR", repeat=4))
    numbers = iter(us_numbers(2000, start_area=303))
    runs = 0
    async with make_client(w.cx, sleep) as client:
        for seq in sequences:
            for pushes in itertools.product((False, True), repeat=len(seq) - 1):
                p = "+1" + next(numbers)
                for op, push_now in zip(seq, (*pushes, True), strict=True):
                    if op == "R":
                        remove_optout(w.store, p)
                    else:
                        add_optout(w.store, p, expires=later if op == "E" else None)
                    if push_now:
                        report = await w.push(client)
                        assert report.ok and report.pending_after == 0, (seq, pushes, report)
                        w.agree(p)
                runs += 1
    assert runs == 3 + 9 * 2 + 27 * 4 + 16 * 8


async def test_a_retried_delivery_is_sent_once_and_does_not_undo_a_later_change(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    w = World(cxsettings, sandbox, sleep, max_attempts=1)
    p = add_optout(w.store, "202-555-0163")
    assert (await w.push()).delivered == 1
    remove_optout(w.store, p)
    sandbox.state.script.append(Fault(503))  # the expiry's write fails: retried later
    failed = await w.push()
    assert failed.delivered == 0 and len(failed.retrying) == 1
    assert w.cxone(p) and not w.local(p)  # not yet: the removal is still queued
    add_optout(w.store, p)  # opted out again while the removal waits for its retry
    assert not enqueue_optout(get_engine(cxsettings), p)  # the same change: queued once
    again = await w.push()  # the new opt-out is due; the expiry is still backing off
    assert again.delivered == 1 and w.cxone(p) and w.local(p)
    w.clock.offset += timedelta(hours=2)  # the expiry's retry is due now
    before = writes(sandbox)
    retry = await w.push()
    # the old removal is overtaken by the delivered opt-out: not sent, CXone stays blocked
    assert retry.sent == 0 and retry.superseded == 1 and retry.ok
    assert writes(sandbox) == before
    assert w.cxone(p) and w.local(p)
    items = w.box.items(TOPIC, limit=None)
    assert [it.payload["action"] for it in items] == ["add", "expire", "add"]
    assert all(it.status == DELIVERED for it in items)


async def test_a_batch_whose_write_fails_still_ends_in_the_last_change(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    w = World(cxsettings, sandbox, sleep, max_attempts=1)
    p = add_optout(w.store, "202-555-0164")
    remove_optout(w.store, p)
    add_optout(w.store, p)
    remove_optout(w.store, p)
    add_optout(w.store, p)
    sandbox.state.script.append(Fault(503))  # the batch's one write (the last opt-out) fails
    report = await w.push()
    # coalesced to the number's last change: one write; the four before it are settled with
    # it (superseded, not sent) and it is retried later
    assert report.sent == 1 and writes(sandbox) == 1
    assert report.delivered == 0 and len(report.retrying) == 1 and report.superseded == 4
    assert not w.cxone(p) and w.local(p)  # not yet: the opt-out waits for its retry
    w.clock.offset += timedelta(hours=2)
    retry = await w.push()  # the retry carries the number's final state
    assert (retry.sent, retry.delivered, retry.superseded) == (1, 1, 0)
    assert retry.pending_after == 0 and writes(sandbox) == 2
    assert w.cxone(p) and w.local(p)
    remove_optout(w.store, p)
    assert (await w.push()).delivered == 1
    assert not w.cxone(p) and not w.local(p)


async def test_a_requeued_parked_item_neither_undoes_nor_jumps_ahead_of_later_changes(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    w = World(cxsettings, sandbox, sleep)
    # a removal parked (dead) after an opt-out was delivered; the number is opted out again
    p = add_optout(w.store, "202-555-0165")
    assert (await w.push()).delivered == 1
    remove_optout(w.store, p)
    parked = w.box.items(TOPIC, limit=None)[-1]
    assert parked.payload["action"] == "expire"
    w.box.fail(parked.id, "parked for the test", permanent=True)
    add_optout(w.store, p)
    assert (await w.push()).delivered == 1 and w.cxone(p) and w.local(p)
    assert w.box.requeue(TOPIC) == 1  # ``cxone push --retry-dead``
    retry = await w.push()
    assert retry.sent == 0 and retry.superseded == 1 and retry.ok  # not sent: it is overtaken
    assert w.cxone(p) and w.local(p)
    # an opt-out queued behind a parked removal waits with it; requeued, both go out as the
    # number's last change (the removal; the opt-out before it is settled with it, not sent)
    q = add_optout(w.store, "202-555-0166")
    remove_optout(w.store, q)
    removal = w.box.items(TOPIC, limit=None)[-1]
    w.box.fail(removal.id, "parked for the test", permanent=True)
    held = await w.push()
    assert held.sent == 0 and len(held.dead) == 1 and not held.ok
    assert not w.cxone(q) and not w.local(q)
    assert w.box.requeue(TOPIC) == 2
    before = writes(sandbox)
    both = await w.push()
    assert (both.sent, both.superseded) == (1, 1) and both.ok
    # the opt-out never reached CXone, so its record's expiry finds none: nothing to expire
    assert len(both.nothing_to_expire) == 1 and writes(sandbox) == before + 1
    assert not w.cxone(q) and not w.local(q)
    assert "2025550166" not in sandbox.state.records[GROUP]
    assert all(it.status == DELIVERED for it in w.box.items(TOPIC, limit=None))
