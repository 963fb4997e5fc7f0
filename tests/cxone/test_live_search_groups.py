"""Live search (``stale_policy=live_search``): a hit in a group that the group list left out
(no content, an empty or a short list) is confirmed with ``GET /dnc-groups/{id}``: gone,
inactive or removed it does not count, any other group it does, and a group that cannot be
asked about leaves the number unverified. A search answer that is empty but not a 204, or
that repeats a key, is not verified either. (Real sockets to the sandbox.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import Decision, ReasonCode
from dncguard.sources.cxone import CxoneCheck
from dncguard.sources.cxone.source import search_number
from dncguard.sources.local import LocalListsCheck
from dncguard.store import utcnow

from .conftest import FakeSleep, Hook, client, cx_settings, judge, sync, verdicts

US = "+12025550101"


def group_list(mode: str) -> Hook:
    def hook(request: httpx.Request, response: httpx.Response) -> Any:
        if request.method != "GET" or not request.url.path.endswith("/dnc-groups"):
            return None
        if mode == "204":
            return httpx.Response(204, request=request)
        body = response.json()
        rs = body["resultSet"]
        if mode == "empty":
            rs["dncGroups"], rs["totalGroups"] = [], 0
        else:  # short: 364 left out, no totalGroups
            rs["dncGroups"] = [g for g in rs["dncGroups"] if g["dncGroupId"] != 364]
            del rs["totalGroups"]
        return body
    return hook


@pytest.mark.parametrize("mode", ["204", "empty", "short"])
async def test_a_hit_in_a_group_the_list_left_out_counts(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, mode: str) -> None:
    sb = sandbox_factory()
    cx = cx_settings(sb, stale_policy="live_search")  # nothing synced: every number searched
    assert await judge(settings, cx, sleep, [US], group_list(mode)) == {US: Decision.BLOCK}


@pytest.mark.parametrize(("change", "decision"), [
    ("deleted", Decision.ALLOW), ("inactive", Decision.ALLOW), ("removed", Decision.ALLOW),
    ("unreadable", Decision.ERROR)])
async def test_a_left_out_group_is_asked_about(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, change: str,
        decision: Decision) -> None:
    sb = sandbox_factory()
    cx = cx_settings(sb, stale_policy="live_search", max_attempts=2)
    listed = group_list("empty")

    def hook(request: httpx.Request, response: httpx.Response) -> Any:
        if request.url.path.endswith("/dnc-groups/364"):
            if change == "deleted":
                return httpx.Response(404, json={"error": "not_found"}, request=request)
            if change == "unreadable":
                return httpx.Response(503, request=request)
            body = response.json()
            g = body["resultSet"]["dncGroups"][0]
            g["isActive" if change == "inactive" else "isRemoved"] = change == "removed"
            return body
        return listed(request, response)

    assert await judge(settings, cx, sleep, [US], hook) == {US: decision}


async def test_a_group_outside_the_configured_groups_is_not_asked_about(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb = sandbox_factory()
    cx = cx_settings(sb, stale_policy="live_search", groups=["365"])
    asked: list[str] = []
    listed = group_list("empty")

    def hook(request: httpx.Request, response: httpx.Response) -> Any:
        if "/dnc-groups/36" in request.url.path:
            asked.append(request.url.path)
        return listed(request, response)

    # 365 was never synced: it is searched live; the hit in 364 is not one of the groups
    assert await judge(settings, cx, sleep, [US], hook) == {US: Decision.ALLOW}
    assert asked == []


@pytest.mark.parametrize("answer", ["empty 200", "repeated key", "repeated results"])
async def test_a_search_answer_that_cannot_be_read_is_not_verified(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, answer: str) -> None:
    sb = sandbox_factory()
    cx = cx_settings(sb, stale_policy="live_search", max_sync_age_hours=1, max_attempts=2)
    await sync(settings, cx, sleep)

    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if "search" not in request.url.path:
            return None
        raw = response.content.decode()
        if answer == "empty 200":
            raw = ""
        elif answer == "repeated key":  # the record lapsed long ago, says the last copy
            raw = raw.replace('"expiredDate":null',
                              '"expiredDate":null,"expiredDate":"2020-01-01T00:00:00Z"')
        else:
            raw = raw[:-1] + ',"searchResults":[]}'
        assert raw != response.content.decode() or answer == "empty 200"
        return httpx.Response(200, content=raw.encode(), request=request,
                              headers={"content-type": "application/json"})

    store = ListStore(settings)
    check = CxoneCheck(settings, cx, store=store, clock=lambda: utcnow() + timedelta(hours=2),
                       client_factory=lambda: client(cx, sleep, hook))
    (v,) = await verdicts(Scrubber(settings, checks=[LocalListsCheck(store), check]), [US])
    assert v.decision is Decision.ERROR
    assert [r.code for r in v.reasons] == [ReasonCode.SOURCE_ERROR]


async def test_the_search_reads_groups_as_the_check_does(
        sandbox_factory: Any, sleep: FakeSleep) -> None:
    """``search_number(..., groups=True)`` (what ``cxone search`` can show): a record of the
    inactive group 366 does not block, and says its group is inactive, as the check reads it;
    a group the list leaves out is asked about."""
    sb = sandbox_factory()
    cx = cx_settings(sb)
    now = utcnow()
    async with client(cx, sleep) as c:
        (inactive,) = await search_number(c, "+17025550106", now, groups=True)
        assert (inactive["groupActive"], inactive["blocking"]) == (False, False)
        assert [r["blocking"] for r in await search_number(c, "+17025550106", now)] == [True]
    async with client(cx, sleep, group_list("empty")) as c:
        (active,) = await search_number(c, US, now, groups=True)
        assert (active["groupActive"], active["blocking"]) == (True, True)
