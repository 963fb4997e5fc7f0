"""The CXone sync never leaves a number it could not read, or a group it could not confirm
gone, looking verified: records outside the default region are read (CXone stores the full
digits without ``+``), a record still unreadable fails the group's sync (masked), two records
of a number updated at the same time keep the one that blocks longest, and a short, empty or
no-content group list turns no synced group off. (Real sockets to the sandbox; answers are
rewritten on their way back.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dncguard.config import Settings, load_settings
from dncguard.errors import SourceError
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone._sync import to_e164
from dncguard.store import list_entries_table

from .conftest import FakeSleep, Hook, client, cx_settings, judge, records_hook, sync


def region_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, region: str) -> Settings:
    monkeypatch.setenv("DNCGUARD_DEFAULT_REGION", region)
    settings = load_settings(home=tmp_path / "home")
    assert settings.default_region == region
    return settings


# -- D1: records outside the default region ------------------------------------------------

UK, AU, US = "+442079460123", "+61291234567", "+12025550101"


@pytest.mark.parametrize(("region", "stored"), [
    ("US", ["2025550101", "442079460123", "61291234567"]),
    ("CA", ["2025550101", "442079460123", "61291234567"]),
    # a NANP number as CXone (and dncguard's write-back) stores it: ten digits, or eleven
    ("GB", ["2025550101", "442079460123", "61291234567"]),
    ("AU", ["12025550101", "442079460123", "61291234567"]),
    ("AU", ["2025550101", "442079460123", "0291234567"]),
])
async def test_records_of_other_regions_are_read_and_block(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_factory: Any,
        sleep: FakeSleep, region: str, stored: list[str]) -> None:
    settings = region_settings(tmp_path, monkeypatch, region)
    sb = sandbox_factory(data={"groups": [
        {"dncGroupId": 364, "dncGroupName": "Internal DNC", "records": stored}]})
    cx = cx_settings(sb, groups=["364"])
    report = await sync(settings, cx, sleep)
    (g,) = report.groups
    assert (g.mode, g.records, g.fetched, g.skipped) == ("full", 3, 3, 0)
    got = await judge(settings, cx, sleep, [US, UK, AU])
    assert got == {US: Decision.BLOCK, UK: Decision.BLOCK, AU: Decision.BLOCK}


def test_to_e164_reads_full_digits_in_any_home() -> None:
    for region in ("US", "CA", "GB", "AU"):
        assert to_e164("442079460123", region) == UK
        assert to_e164("61291234567", region) == AU
        assert to_e164("12025550101", region) == US
    assert to_e164("2025550101", "GB") == US
    assert to_e164("2025550101", "AU") == US
    assert to_e164("+442079460123", "US") == UK
    assert to_e164("12345", "US") is None


async def test_a_record_that_cannot_be_read_fails_the_group_and_keeps_the_last_sync(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep,
        caplog: pytest.LogCaptureFixture) -> None:
    sb = sandbox_factory(data={"groups": [
        {"dncGroupId": 364, "dncGroupName": "Internal DNC",
         "records": ["2025550101", "6175550105"]}]})
    cx = cx_settings(sb, groups=["364"])
    await sync(settings, cx, sleep)
    before = ListStore(settings).get("cxone:364")
    assert before is not None and before.count == 2 and before.synced_at is not None

    bad = "999888777666555444"  # no reading makes a phone number of it

    def garble(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in records:
            if r["phoneNumber"] == "6175550105":
                r["phoneNumber"] = r["formattedPhone"] = bad
        return records

    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError, match=r"1 of 2 records have a phone number dncguard "
                                          r"cannot read") as info:
        await sync(settings, cx.model_copy(update={"full_sync_hours": 0}), sleep,
                   records_hook(garble))
    assert bad not in str(info.value) and bad[:-4] + "****" in str(info.value)
    assert bad not in caplog.text
    after = ListStore(settings).get("cxone:364")
    assert after is not None
    assert (after.count, after.synced_at) == (before.count, before.synced_at)


async def test_a_first_sync_with_an_unreadable_record_leaves_the_group_unsynced(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb = sandbox_factory(data={"groups": [
        {"dncGroupId": 364, "dncGroupName": "Internal DNC", "records": ["2025550101"]}]})
    cx = cx_settings(sb, groups=["364"])

    def add_junk(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [*records, {**records[0], "recordId": 1, "phoneNumber": "12345",
                           "formattedPhone": "12345"}]

    def junk(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        out = records_hook(add_junk)(request, response)
        if out is not None:
            body = out.json()
            body["resultSet"]["totalRecords"] += 1
            return httpx.Response(200, json=body, request=request)
        return None

    with pytest.raises(SourceError, match="cannot read"):
        await sync(settings, cx, sleep, junk)
    info = ListStore(settings).get("cxone:364")
    assert info is None or info.synced_at is None


# -- D5: two records of one number updated at the same time --------------------------------

def _two_records(first: str | None, second: str | None) -> Callable[..., list[dict[str, Any]]]:
    def change(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        (rec,) = records
        same = rec["lastUpdateTime"]
        return [{**rec, "recordId": 1, "expiredDate": first, "lastUpdateTime": same},
                {**rec, "recordId": 2, "expiredDate": second, "lastUpdateTime": same}]
    return change


PAST = "2020-01-01T00:00:00.000Z"


def _future(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("a", "b", "kept"), [
    (None, PAST, None),              # no expiry beats an expired record
    (None, "soon", None),            # no expiry beats any expiry
    ("later", "soon", "later"),      # a later expiry beats an earlier one
    ("soon", PAST, "soon"),
])
async def test_a_tie_keeps_the_record_that_blocks_longest(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, reverse: bool,
        a: str | None, b: str | None, kept: str | None) -> None:
    names = {"soon": _future(3), "later": _future(30), PAST: PAST, None: None}
    first, second = names[a], names[b]
    if reverse:
        first, second = second, first
    sb = sandbox_factory(data={"groups": [
        {"dncGroupId": 364, "dncGroupName": "Internal DNC", "records": ["2025550101"]}]})
    cx = cx_settings(sb, groups=["364"])

    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        out = records_hook(_two_records(first, second))(request, response)
        if out is not None:
            body = out.json()
            body["resultSet"]["totalRecords"] = 2
            return httpx.Response(200, json=body, request=request)
        return None

    await sync(settings, cx, sleep, hook)
    t = list_entries_table
    with ListStore(settings).engine.connect() as conn:
        rows = conn.execute(select(t.c.expires_at).where(t.c.list_name == "cxone:364")).all()
    assert len(rows) == 1
    want = names[kept]
    got = rows[0].expires_at
    if want is None:
        assert got is None
    else:
        assert got is not None
        assert got.replace(tzinfo=UTC) == datetime.fromisoformat(want.replace("Z", "+00:00"))
    assert (await judge(settings, cx, sleep, [US]))[US] is Decision.BLOCK


# -- D3: a short, empty or no-content group list -------------------------------------------

TWO = {"groups": [
    {"dncGroupId": 364, "dncGroupName": "Internal DNC", "records": ["2025550101"]},
    {"dncGroupId": 365, "dncGroupName": "Collections DNC", "records": ["6175550105"]}]}
OTHER = "+16175550105"


def group_list(mode: str) -> Hook:
    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method != "GET" or not request.url.path.endswith("/dnc-groups"):
            return None
        if mode == "204":
            return httpx.Response(204, request=request)
        body = response.json()
        rs = body["resultSet"]
        if mode == "truncated":  # totalGroups still says 2
            rs["dncGroups"] = rs["dncGroups"][:1]
        elif mode == "empty":
            rs["dncGroups"], rs["totalGroups"] = [], 0
        elif mode == "short, no total":
            rs["dncGroups"] = rs["dncGroups"][:1]
            del rs["totalGroups"]
        return httpx.Response(200, json=body, request=request)
    return hook


@pytest.mark.parametrize(("mode", "error"), [
    ("truncated", "group list is incomplete: it says 2 groups but lists 1"),
    ("204", "left out DNC group 364, which CXone still has"),
    ("empty", "left out DNC group 364, which CXone still has"),
    ("short, no total", "left out DNC group 365, which CXone still has"),
])
async def test_a_short_or_empty_group_list_turns_no_group_off(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, mode: str,
        error: str) -> None:
    sb = sandbox_factory(data=TWO)
    cx = cx_settings(sb)  # no groups configured: the sync reads the group list
    await sync(settings, cx, sleep)
    assert await judge(settings, cx, sleep, [US, OTHER]) == {
        US: Decision.BLOCK, OTHER: Decision.BLOCK}
    with pytest.raises(SourceError, match=error):
        await sync(settings, cx, sleep, group_list(mode))
    for gid in ("364", "365"):
        info = ListStore(settings).get(f"cxone:{gid}")
        assert info is not None and info.meta.get("active", True), gid
    assert await judge(settings, cx, sleep, [US, OTHER]) == {
        US: Decision.BLOCK, OTHER: Decision.BLOCK}


@pytest.mark.parametrize("mode", ["204", "empty", "listed"])
async def test_a_group_cxone_confirms_gone_is_turned_off(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, mode: str) -> None:
    """Group 365 is deleted on CXone (GET /dnc-groups/365 answers 404): it is turned off,
    whatever the group list looks like; group 364, still there, is not."""
    sb = sandbox_factory(data=TWO)
    cx = cx_settings(sb)
    await sync(settings, cx, sleep)
    with sb.state.lock:
        del sb.state.groups[365]
    if mode == "listed":  # the list (correctly) holds only 364
        await sync(settings, cx, sleep)
    else:
        # the list says nothing, so 364 is confirmed too: it still exists, and the sync fails
        with pytest.raises(SourceError, match="left out DNC group 364"):
            await sync(settings, cx, sleep, group_list(mode))
        info = ListStore(settings).get("cxone:365")
        assert info is not None and info.meta.get("active", True)
        return
    gone = ListStore(settings).get("cxone:365")
    kept = ListStore(settings).get("cxone:364")
    assert gone is not None and gone.meta["active"] is False and gone.meta["removed"] is True
    assert kept is not None and kept.meta.get("active", True)


async def test_only_removed_groups_missing_from_an_empty_list_are_turned_off(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    """Every synced group is gone on CXone (404 each): the empty list is then believed."""
    sb = sandbox_factory(data=TWO)
    cx = cx_settings(sb)
    await sync(settings, cx, sleep)
    with sb.state.lock:
        sb.state.groups.clear()
    await sync(settings, cx, sleep, group_list("204"))
    for gid in ("364", "365"):
        info = ListStore(settings).get(f"cxone:{gid}")
        assert info is not None and info.meta["active"] is False and info.meta["removed"]


async def test_the_group_call_tells_404_from_no_content(
        sandbox: SandboxServer, sleep: FakeSleep) -> None:
    cx = cx_settings(sandbox)

    def no_content(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path.endswith("/dnc-groups/364"):
            return httpx.Response(204, request=request)
        return None

    async with client(cx, sleep) as c:
        assert (await c.group("364") or {}).get("dncGroupId") == 364
        assert await c.group("999999") is None
    async with client(cx, sleep, no_content) as c:
        with pytest.raises(SourceError, match="no content for DNC group 364"):
            await c.group("364")
