"""An incremental CXone sync is trusted only when its newest-first walk proves it saw every
change since the last sync; otherwise the group is read in full. Each case re-activates a
record without changing the group's total, the change a wrong walk misses: the number would
come back ``allow`` while CXone blocks it. (Real sockets to the sandbox, whose clock the test
sets; requests or answers are rewritten on their way.)"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx
import pytest

from dncguard.config import Settings
from dncguard.models import Decision
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import CxoneClient, CxoneSettings, CxoneSync

from .conftest import (
    FakeSleep,
    Hook,
    Rewriting,
    SandboxClock,
    clocked_group,
    cx_settings,
    judge,
    sync,
)

FUTURE = "2027-06-01T00:00:00.000Z"
A, B, C = "2025550101", "6175550105", "3125550142"


def seeded(sandbox_factory: Any) -> tuple[SandboxServer, SandboxClock, int]:
    """A group of A, B (expired) and C, each written a second after the other."""
    sb, clock, gid = clocked_group(sandbox_factory, "Trust", [A, B, C])
    sb.state.expire_record(gid, B)
    return sb, clock, gid


def walk_hook(change: Any) -> Hook:
    """Records of the newest-first walk (not its one-record probe) passed through
    ``change(body)`` on their way back."""
    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        params = request.url.params
        if (request.url.path.endswith("/records") and "orderBy" in params
                and params.get("top") != "1"):
            body = response.json()
            change(body["resultSet"])
            return httpx.Response(200, json=body, request=request)
        return None
    return hook


class DropOrder(httpx.AsyncBaseTransport):
    """A server that ignores ``orderBy``: the parameter never reaches the sandbox, which then
    answers in the order the records were written (oldest first)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_remove_param("orderBy")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def sync_through(settings: Settings, cx: CxoneSettings, sleep: FakeSleep,
                       transport: httpx.AsyncBaseTransport) -> Any:
    http = httpx.AsyncClient(transport=transport)
    async with CxoneClient(cx, http=http, sleep=sleep, rng=random.Random(7)) as c:
        return await CxoneSync(settings, cx, c).sync()


async def first_sync(settings: Settings, sb: SandboxServer, sleep: FakeSleep
                     ) -> CxoneSettings:
    cx = cx_settings(sb)
    (g,) = (await sync(settings, cx, sleep)).groups
    assert g.mode == "full"
    assert (await judge(settings, cx, sleep, ["+1" + B]))["+1" + B] is Decision.ALLOW
    return cx


async def test_a_server_that_ignores_order_by_gets_a_full_sync(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, clock, gid = seeded(sandbox_factory)
    cx = await first_sync(settings, sb, sleep)
    clock.now += timedelta(seconds=5)
    sb.state.add_record(gid, B)  # re-added: blocks again, same total
    (g,) = (await sync_through(settings, cx, sleep, DropOrder())).groups
    assert g.mode == "full"
    assert (await judge(settings, cx, sleep, ["+1" + B]))["+1" + B] is Decision.BLOCK


async def test_the_same_change_with_order_honoured_is_incremental(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, clock, gid = seeded(sandbox_factory)
    cx = await first_sync(settings, sb, sleep)
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, B, FUTURE)  # blocks again until June, same record
    (g,) = (await sync(settings, cx, sleep)).groups
    assert (g.mode, g.fetched) == ("incremental", 1)
    assert (await judge(settings, cx, sleep, ["+1" + B]))["+1" + B] is Decision.BLOCK


def _empty(rs: dict[str, Any]) -> None:
    rs["dncRecords"] = []  # the total still says 3


def _no_time(rs: dict[str, Any]) -> None:
    for r in rs["dncRecords"]:
        r["lastUpdateTime"] = None


@pytest.mark.parametrize("change", [_empty, _no_time],
                         ids=["an empty page before the cursor", "records without a time"])
async def test_a_walk_that_proves_nothing_gets_a_full_sync(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, change: Any) -> None:
    sb, clock, gid = seeded(sandbox_factory)
    cx = await first_sync(settings, sb, sleep)
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, B, FUTURE)
    (g,) = (await sync_through(settings, cx, sleep, Rewriting(walk_hook(change)))).groups
    assert g.mode == "full"
    assert (await judge(settings, cx, sleep, ["+1" + B]))["+1" + B] is Decision.BLOCK


async def test_a_change_in_the_cursors_own_millisecond_is_read(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, clock, gid = seeded(sandbox_factory)
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, A)  # the newest record: the cursor is this moment
    cx = await first_sync(settings, sb, sleep)
    # in the same millisecond, after the sync read the group: B blocks again
    sb.state.expire_record(gid, B, FUTURE)
    assert sb.state.groups[gid]["lastUpdateTime"] == sb.state.records[gid][A]["lastUpdateTime"]
    (g,) = (await sync(settings, cx, sleep)).groups
    assert g.mode in ("incremental", "full")
    assert (await judge(settings, cx, sleep, ["+1" + B]))["+1" + B] is Decision.BLOCK
