"""Within one push batch a number's changes are coalesced to its last one: only the write
its final state needs goes out, and the earlier changes are settled with it (superseded, not
sent). Before, an expiry then an opt-out of one number went out as two writes, the removal
first: when the opt-out's write failed, CXone no longer blocked the number until its retry."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx

from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout, remove_optout
from dncguard.outbox import DELIVERED, PENDING, Outbox
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import TOPIC, CxoneClient, CxoneSettings, push
from dncguard.store import get_engine

from ..fakes import FakeSleep
from .conftest import cx_settings, make_client

GROUP = 364
PATH = f"/dnc-groups/{GROUP}/records"


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FailAdds(httpx.AsyncBaseTransport):
    """CXone away for adds: each ``POST records`` answers 503 without reaching the sandbox;
    every other request does."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith(PATH):
            return httpx.Response(503, json={"error": "Service Unavailable"}, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def blocks(sandbox: SandboxServer, e164: str) -> bool:
    rec = sandbox.state.records.get(GROUP, {}).get(e164[2:])
    return rec is not None and (rec["_exp"] is None or rec["_exp"] > datetime.now(UTC))


def writes(sandbox: SandboxServer, method: str) -> int:
    return sum(n for k, n in sandbox.state.requests.items()
               if k.startswith(method + " ") and k.endswith(PATH))


def failing_client(cx: CxoneSettings, sleep: FakeSleep) -> CxoneClient:
    return CxoneClient(cx, http=httpx.AsyncClient(transport=FailAdds()), sleep=sleep,
                       rng=random.Random(7))


async def test_an_expiry_then_an_optout_is_one_add_and_a_failed_add_unblocks_nothing(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    clock = Clock()
    box = Outbox(get_engine(cxsettings), clock=clock, rng=random.Random(0))
    cx = cx_settings(sandbox, max_attempts=2)
    p = add_optout(store, "202-555-0191")
    async with make_client(cx, sleep) as client:
        assert (await push(client, box, str(GROUP))).delivered == 1
    assert blocks(sandbox, p)
    remove_optout(store, p)
    add_optout(store, p)  # opted out again before the removal was pushed
    async with failing_client(cx, sleep) as client:
        report = await push(client, box, str(GROUP))
    # the number still blocks on CXone: no removal went out ahead of the failing add
    assert blocks(sandbox, p)
    assert writes(sandbox, "DELETE") == 0
    assert (report.sent, report.delivered, report.superseded) == (1, 0, 1)
    assert len(report.retrying) == 1 and report.write_error
    first, removal, again = box.items(TOPIC, limit=None)
    assert (first.status, removal.status, again.status) == (DELIVERED, DELIVERED, PENDING)
    assert removal.delivered_at is not None and "not sent" in str(removal.last_error)
    assert f"item {again.id}" in str(removal.last_error)
    assert again.attempts == 1  # a failed attempt of the add, retried later
    clock.offset += timedelta(hours=2)
    async with make_client(cx, sleep) as client:
        retry = await push(client, box, str(GROUP))
    assert (retry.sent, retry.delivered, retry.superseded) == (1, 1, 0) and retry.ok
    assert blocks(sandbox, p) and writes(sandbox, "DELETE") == 0
    assert all(it.status == DELIVERED for it in box.items(TOPIC, limit=None))


async def test_an_optout_then_its_removal_sends_only_the_removal(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    box = Outbox(get_engine(cxsettings), rng=random.Random(0))
    cx = cx_settings(sandbox)
    p = add_optout(store, "202-555-0192")
    remove_optout(store, p)
    async with make_client(cx, sleep) as client:
        report = await push(client, box, str(GROUP))
    # one write: the expiry; CXone holds no record of the number, so nothing to expire
    assert (writes(sandbox, "POST"), writes(sandbox, "DELETE")) == (0, 1)
    assert (report.sent, report.delivered, report.superseded) == (1, 0, 1) and report.ok
    assert len(report.nothing_to_expire) == 1 and report.pending_after == 0
    assert not blocks(sandbox, p)
    optout, removal = box.items(TOPIC, limit=None)
    assert optout.status == removal.status == DELIVERED
    assert "not sent" in str(optout.last_error)


async def test_a_parked_last_change_parks_the_changes_it_carries(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    """CXone refuses the number for good: the coalesced write's item is parked, and so are
    the earlier changes it carried, so that a requeue sends them together again."""
    store = ListStore(cxsettings)
    box = Outbox(get_engine(cxsettings), rng=random.Random(0))
    cx = cx_settings(sandbox)
    p = add_optout(store, "202-555-0193")
    remove_optout(store, p)
    add_optout(store, p)

    class Refuse(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and request.url.path.endswith(PATH):
                return httpx.Response(200, request=request, json={"resultSet": {
                    "errorCount": 1, "recordResults": [
                        {"success": False, "error": "Invalid phone number",
                         "phoneNumber": p[2:], "formattedPhone": ""}]}})
            return await self.inner.handle_async_request(request)

    async with CxoneClient(cx, http=httpx.AsyncClient(transport=Refuse()), sleep=sleep,
                           rng=random.Random(7)) as client:
        report = await push(client, box, str(GROUP))
    assert report.sent == 1 and report.superseded == 0 and len(report.dead) == 3
    assert [it.status for it in box.items(TOPIC, limit=None)] == ["dead"] * 3
    assert box.requeue(TOPIC) == 3
    async with make_client(cx, sleep) as client:
        retry = await push(client, box, str(GROUP))
    assert (retry.sent, retry.delivered, retry.superseded) == (1, 1, 2) and retry.ok
    assert blocks(sandbox, p) and writes(sandbox, "DELETE") == 0
