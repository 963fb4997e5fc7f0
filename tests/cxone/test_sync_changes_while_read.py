"""A full sync is saved only when the group did not change while it was read (the group and
its newest record are probed before and after the read), and an incremental sync does not
trust a record that now blocks less than the stored one: another record of its number,
older than the cursor, may still block it. (Real sockets to the sandbox.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from dncguard.config import Settings
from dncguard.errors import SourceError
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.sandbox import SandboxConfig

from .conftest import FakeSleep, clocked_group, cx_settings, judge, sync
from .test_sync_fail_closed import PAST

SEVEN = {"groups": [{"dncGroupId": 364, "dncGroupName": "Internal DNC", "records": [
    {"phoneNumber": "3055550103", "expiredDate": PAST},
    "2025550111", "2025550112", "2025550113", "2025550114", "2025550115", "2025550116"]}]}


def first_page_hook(sb: Any, times: int) -> Any:
    """After the first page of each of the first ``times`` full reads, one record is removed
    and one added: the total stays, and every record read is distinct."""
    done: list[int] = []

    def hook(request: httpx.Request, response: httpx.Response) -> None:
        q = dict(request.url.params)
        if (request.method == "GET" and request.url.path.endswith("/364/records")
                and q.get("skip") == "0" and "orderBy" not in q and len(done) < times):
            n = len(done)
            done.append(n)
            gone = "3055550103" if n == 0 else f"20255502{n - 1:02d}"
            sb.state.remove_record(364, gone)
            sb.state.add_record(364, f"20255502{n:02d}")
    return hook


async def test_a_group_that_changes_between_pages_is_read_again(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb = sandbox_factory(SandboxConfig(max_top=3), data=SEVEN)
    cx = cx_settings(sb, groups=["364"], page_size=3)
    report = await sync(settings, cx, sleep, first_page_hook(sb, 1))
    (g,) = report.groups
    assert (g.mode, g.records, g.fetched) == ("full", 7, 7)
    numbers = [f"+1202555011{i}" for i in range(1, 7)] + ["+12025550200"]
    assert set((await judge(settings, cx, sleep, numbers)).values()) == {Decision.BLOCK}


async def test_a_group_that_keeps_changing_is_not_saved(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb = sandbox_factory(SandboxConfig(max_top=3), data=SEVEN)
    cx = cx_settings(sb, groups=["364"], page_size=3)
    with pytest.raises(SourceError, match="changed while it was read"):
        await sync(settings, cx, sleep, first_page_hook(sb, 3))
    info = ListStore(settings).get("cxone:364")
    assert info is None or info.synced_at is None


A = "2025550101"


async def test_a_record_that_now_blocks_less_does_not_hide_another_of_its_number(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    """Two records of one number: R2 (``1`` + A, expiring in 30 days, older) and R1 (A, no
    expiry, newer); the full sync keeps R1. R1 is then expired on CXone: the incremental sync
    reads only R1 (R2 is older than its cursor), so it reads the group in full instead of
    storing the expired R1, and R2 still blocks the number."""
    sb, clock, gid = clocked_group(sandbox_factory, "Two records", [])
    sb.state.add_record(gid, "1" + A, expired=(clock.now + timedelta(days=30)).isoformat())
    for phone in (A, "6175550105"):
        clock.now += timedelta(seconds=1)
        sb.state.add_record(gid, phone)
    cx = cx_settings(sb, groups=[str(gid)])
    first = await sync(settings, cx, sleep)
    assert first.groups[0].mode == "full"
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, A)
    again = await sync(settings, cx, sleep)
    assert again.groups[0].mode == "full"
    at = clock.now + timedelta(days=1)
    assert await judge(settings, cx, sleep, ["+1" + A], at=at) == {"+1" + A: Decision.BLOCK}


async def test_a_second_record_added_later_is_not_hidden_either(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    """A lone record's expiry is taken incrementally. A number's only record R1 (no expiry)
    is synced; R2 (``1`` + A, 30 days) arrives and is read incrementally (R1 still blocks
    longer and is kept); R1 is expired: the number has another record, so the group is read
    in full and R2 blocks."""
    sb, clock, gid = clocked_group(sandbox_factory, "Later", [A, "6175550105"])
    cx = cx_settings(sb, groups=[str(gid)])
    assert (await sync(settings, cx, sleep)).groups[0].mode == "full"
    at = clock.now + timedelta(days=1)
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, "6175550105")
    assert (await sync(settings, cx, sleep)).groups[0].mode == "incremental"
    assert await judge(settings, cx, sleep, ["+16175550105"], at=at) == {
        "+16175550105": Decision.ALLOW}
    clock.now += timedelta(seconds=5)
    sb.state.add_record(gid, "1" + A, expired=(clock.now + timedelta(days=30)).isoformat())
    clock.now += timedelta(seconds=1)
    sb.state.add_record(gid, "3125550104")  # the newest record: the next sync's cursor
    assert (await sync(settings, cx, sleep)).groups[0].mode == "incremental"
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, A)
    assert (await sync(settings, cx, sleep)).groups[0].mode == "full"
    assert await judge(settings, cx, sleep, ["+1" + A], at=at) == {"+1" + A: Decision.BLOCK}
