"""A number blocks while any of its CXone records does: a newer expired record of a number
never hides an older one that still blocks, in a full sync or an incremental one; a live
search answer with a record of no group, and an answer with entries that are not objects, are
not verified. (Real sockets to the sandbox; answers are rewritten on their way back.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import SourceError
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import CxoneCheck

from .conftest import (
    FakeSleep,
    SandboxClock,
    client,
    clocked_group,
    cx_settings,
    decisions,
    judge,
    records_hook,
    sync,
    verdicts,
)
from .test_sync_fail_closed import PAST

A, B = "2025550101", "6175550105"


def seeded(sandbox_factory: Any) -> tuple[SandboxServer, SandboxClock, int]:
    return clocked_group(sandbox_factory, "Any record", [A, B])


async def test_a_newer_expired_record_does_not_hide_an_active_one(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, clock, gid = seeded(sandbox_factory)
    # the same number again (country code first: another record), newer and expired
    sb.state.add_record(gid, "1" + A, expired=PAST)
    cx = cx_settings(sb)
    (g,) = (await sync(settings, cx, sleep)).groups
    assert (g.mode, g.records) == ("full", 3)
    assert (await judge(settings, cx, sleep, ["+1" + A]))["+1" + A] is Decision.BLOCK


async def test_an_incremental_sync_keeps_the_record_that_still_blocks(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, clock, gid = seeded(sandbox_factory)
    cx = cx_settings(sb)
    await sync(settings, cx, sleep)
    clock.now += timedelta(seconds=5)
    sb.state.add_record(gid, "1" + A, expired=PAST)  # a new record of A, expired
    (g,) = (await sync(settings, cx, sleep)).groups
    assert (g.mode, g.fetched) == ("incremental", 2)  # and B, the cursor's record, again
    assert (await judge(settings, cx, sleep, ["+1" + A]))["+1" + A] is Decision.BLOCK
    # the stored record itself expiring still turns the number free
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, A)
    # (read in full: the row keeps one record id a number, so the other record of A, read
    # again in the cursor's millisecond, counts as new and the totals disagree)
    await sync(settings, cx, sleep)
    assert (await judge(settings, cx, sleep, ["+1" + A]))["+1" + A] is Decision.ALLOW


async def test_a_record_that_comes_to_block_longer_replaces_the_stored_one(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, clock, gid = seeded(sandbox_factory)
    sb.state.expire_record(gid, A)
    cx = cx_settings(sb)
    await sync(settings, cx, sleep)
    assert (await judge(settings, cx, sleep, ["+1" + A]))["+1" + A] is Decision.ALLOW
    clock.now += timedelta(seconds=5)
    sb.state.add_record(gid, "1" + A)  # a new record of A that blocks
    (g,) = (await sync(settings, cx, sleep)).groups
    assert g.mode == "incremental"
    assert (await judge(settings, cx, sleep, ["+1" + A]))["+1" + A] is Decision.BLOCK


async def test_a_live_search_record_without_a_group_is_not_verified(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, _, gid = seeded(sandbox_factory)
    cx = cx_settings(sb, max_sync_age_hours=1, stale_policy="live_search")
    await sync(settings, cx, sleep)

    def nameless(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path.endswith("/dnc-groups/search"):
            body = response.json()
            for r in body.get("searchResults") or []:
                r.pop("dncGroupId", None)
            return httpx.Response(200, json=body, request=request)
        return None

    store = ListStore(settings)
    check = CxoneCheck(settings, cx, store=store,
                       client_factory=lambda: client(cx, sleep, nameless),
                       clock=lambda: datetime.now(UTC) + timedelta(hours=2))  # stale
    out = await verdicts(Scrubber(settings, checks=[check]), ["+1" + A, "+13055550103"])
    got = decisions(out)
    assert got == {"+1" + A: Decision.ERROR, "+13055550103": Decision.ALLOW}
    assert "without a group id" in out[0].reasons[0].detail


@pytest.mark.parametrize("junk", [None, "2025550101", 7])
async def test_a_records_page_with_an_entry_that_is_not_an_object_fails_the_sync(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, junk: Any) -> None:
    sb, _, _ = seeded(sandbox_factory)
    cx = cx_settings(sb)
    # (the newest-record probe before the full read is the first page to carry the junk)
    with pytest.raises(SourceError, match="1 of [23] entries are not objects"):
        await sync(settings, cx, sleep, records_hook(lambda records: [*records, junk]))
    info = ListStore(settings).get(f"cxone:{sb.state.groups and next(iter(sb.state.groups))}")
    assert info is None or info.synced_at is None
