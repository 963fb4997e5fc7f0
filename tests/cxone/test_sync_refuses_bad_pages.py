"""A CXone answer that is not the documented one is never read as "no records", "no groups"
or "not listed": a 200 carrying an error body, a page missing or repeated during a full sync,
and an expiry written with a UTC offset. The last good sync stands, and a number it holds
keeps blocking. (Real sockets to the sandbox; the answers are rewritten on their way back.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from dncguard.config import Settings
from dncguard.errors import SourceError
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.sandbox import SandboxConfig, SandboxServer
from dncguard.sources.cxone._sync import parse_time

from .conftest import FakeSleep, Hook, cx_settings, judge, sync


def error_body(path_end: str, method: str = "GET") -> Hook:
    def hook(request: httpx.Request, response: httpx.Response) -> Any:
        if request.url.path.endswith(path_end) and request.method == method:
            return {"error": "Service temporarily unavailable"}
        return None
    return hook


LISTED = "+12025550101"  # on the sandbox's group 364


async def test_records_answered_with_an_error_body_keep_the_last_sync(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    cx = cx_settings(sandbox, groups=["364"])
    await sync(settings, cx, sleep)
    before = ListStore(settings).get("cxone:364")
    assert before is not None and before.count > 0
    with pytest.raises(SourceError, match="malformed records .no resultSet.: Service"):
        await sync(settings, cx.model_copy(update={"full_sync_hours": 0}), sleep,
                   error_body("/records"))
    after = ListStore(settings).get("cxone:364")
    assert after is not None
    assert (after.count, after.synced_at) == (before.count, before.synced_at)
    assert (await judge(settings, cx, sleep, [LISTED]))[LISTED] is Decision.BLOCK


async def test_groups_answered_with_an_error_body_turn_no_group_off(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    cx = cx_settings(sandbox)  # no groups configured: the sync reads the group list
    await sync(settings, cx, sleep)
    with pytest.raises(SourceError, match="malformed group list"):
        await sync(settings, cx, sleep, error_body("/dnc-groups"))
    info = ListStore(settings).get("cxone:364")
    assert info is not None and info.meta.get("active", True)
    assert (await judge(settings, cx, sleep, [LISTED]))[LISTED] is Decision.BLOCK


@pytest.mark.parametrize("path", ["/dnc-groups", "/dnc-groups/search"])
async def test_live_search_answered_with_an_error_body_is_not_verified(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep, path: str) -> None:
    """Never synced, so the check searches live: an error body from the group list or the
    search is an error verdict, not 'on no group'."""
    cx = cx_settings(sandbox, stale_policy="live_search")
    method = "POST" if path.endswith("search") else "GET"
    got = await judge(settings, cx, sleep, [LISTED], error_body(path, method))
    assert got[LISTED] is Decision.ERROR
    # (the same check with the documented answers blocks it)
    assert (await judge(settings, cx, sleep, [LISTED]))[LISTED] is Decision.BLOCK


@pytest.fixture
def big_group(sandbox_factory: Callable[..., SandboxServer]) -> tuple[SandboxServer, str]:
    sandbox = sandbox_factory(SandboxConfig(max_top=100), data={})
    gid = sandbox.state.add_group("Big")
    sandbox.state.bulk_records(gid, [f"201555{i:04d}" for i in range(300)])
    return sandbox, str(gid)


def page(skip: str, body: Callable[[dict[str, Any]], dict[str, Any]]) -> Hook:
    def hook(request: httpx.Request, response: httpx.Response) -> Any:
        if request.url.path.endswith("/records") and request.url.params.get("skip") == skip:
            return body(response.json())
        return None
    return hook


@pytest.mark.parametrize("case", ["missing", "repeated", "total moved"])
async def test_a_full_sync_with_inconsistent_pages_saves_nothing(
        settings: Settings, big_group: tuple[SandboxServer, str], sleep: FakeSleep,
        case: str) -> None:
    sandbox, gid = big_group
    cx = cx_settings(sandbox, groups=[gid], page_size=100)
    first_page: dict[str, Any] = {}

    def remember(request: httpx.Request, response: httpx.Response) -> Any:
        if request.url.path.endswith("/records") and request.url.params.get("skip") == "0":
            first_page.update(response.json())
        return None

    await sync(settings, cx, sleep, remember)  # a good sync, remembering the first page
    before = ListStore(settings).get(f"cxone:{gid}")
    assert before is not None and before.count == 300
    bodies: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "missing": lambda b: {"resultSet": {"totalRecords": 300, "dncRecords": []}},
        "repeated": lambda b: first_page,
        "total moved": lambda b: {"resultSet": {**b["resultSet"], "totalRecords": 301}},
    }
    with pytest.raises(SourceError, match="inconsistent pages during the sync"):
        await sync(settings, cx.model_copy(update={"full_sync_hours": 0}), sleep,
                   page("100", bodies[case]))
    after = ListStore(settings).get(f"cxone:{gid}")
    assert after is not None and (after.count, after.synced_at) == (300, before.synced_at)
    on_page_two = "+12015550150"
    assert (await judge(settings, cx, sleep, [on_page_two]))[on_page_two] is Decision.BLOCK


async def test_an_expiry_with_an_offset_is_the_same_instant(
        settings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    """Expires two hours from now, written in UTC-5: read as its wall time in UTC it would
    have expired three hours ago."""
    now = datetime.now(UTC)
    later = (now + timedelta(hours=2)).astimezone(timezone(timedelta(hours=-5)))
    text = later.isoformat(timespec="seconds")
    read = parse_time(text)
    assert read == later.replace(microsecond=0) and read is not None and read.tzinfo is UTC

    def offset(request: httpx.Request, response: httpx.Response) -> Any:
        if request.url.path.endswith("/records"):
            body = response.json()
            for record in body["resultSet"]["dncRecords"]:
                record["expiredDate"] = text
            return body
        return None

    cx = cx_settings(sandbox, groups=["364"])
    await sync(settings, cx, sleep, offset)
    assert (await judge(settings, cx, sleep, [LISTED], at=now))[LISTED] is Decision.BLOCK
    after = now + timedelta(hours=2, minutes=1)
    assert (await judge(settings, cx, sleep, [LISTED], at=after))[LISTED] is Decision.ALLOW


async def test_a_group_that_changed_while_read_once_is_read_again(
        settings: Settings, big_group: tuple[SandboxServer, str], sleep: FakeSleep) -> None:
    """A busy group (records added between two pages) is read again, not given up on: the
    second, consistent read is saved."""
    sandbox, gid = big_group
    cx = cx_settings(sandbox, groups=[gid], page_size=100)
    moved: list[int] = []

    def once(request: httpx.Request, response: httpx.Response) -> Any:
        if (request.url.path.endswith("/records") and request.url.params.get("skip") == "100"
                and not moved):
            moved.append(1)
            body = response.json()
            return {"resultSet": {**body["resultSet"], "totalRecords": 301}}
        return None

    await sync(settings, cx, sleep, once)
    assert moved == [1]
    after = ListStore(settings).get(f"cxone:{gid}")
    assert after is not None and after.count == 300
