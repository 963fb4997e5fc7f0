"""Each group is synced on its own: one that cannot be synced (an unreadable record, its
skills unreadable) keeps its last sync and does not stop the others; the sync then fails
naming it (the CLI exits 2). Group flags that are not JSON booleans refuse the group list.
(Real sockets to the sandbox; answers are rewritten on their way back.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dncguard.cli._cxone import app
from dncguard.config import Settings
from dncguard.errors import SourceError
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.sandbox import SandboxServer

from .conftest import FakeSleep, client, cx_settings, judge, sync
from .test_sync_fail_closed import TWO

US, OTHER, NEW = "+12025550101", "+16175550105", "+12025550177"


async def test_an_unreadable_record_fails_only_its_group(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb = sandbox_factory(data=TWO)
    cx = cx_settings(sb)
    await sync(settings, cx, sleep)
    sb.state.add_record(364, "12345")  # unreadable, in the first group
    sb.state.add_record(365, NEW[2:])  # a new opt-out in the second
    with pytest.raises(SourceError, match="group 364: .*cannot read") as raised:
        await sync(settings, cx, sleep)
    report = raised.value.report  # type: ignore[attr-defined]
    assert [g.group_id for g in report.groups] == ["365"]
    assert [f.group_id for f in report.failed] == ["364"]
    assert await judge(settings, cx, sleep, [US, OTHER, NEW]) == {
        US: Decision.BLOCK, OTHER: Decision.BLOCK, NEW: Decision.BLOCK}


async def test_unreadable_skills_fail_only_their_group(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb = sandbox_factory(data=TWO)
    cx = cx_settings(sb, max_attempts=2)

    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.url.path.endswith("/dnc-groups/364/scrubbed-skills"):
            return httpx.Response(500, request=request)
        return None

    with pytest.raises(SourceError, match="group 364: .*skills") as raised:
        await sync(settings, cx, sleep, hook)
    assert [g.group_id for g in raised.value.report.groups] == ["365"]  # type: ignore[attr-defined]
    assert [i.name for i in ListStore(settings).all()] == ["cxone:365"]


def test_the_cli_syncs_the_other_groups_and_exits_2(
        sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    assert runner.invoke(app, ["sync"]).exit_code == 0
    sandbox.state.add_record(364, "12345")
    sandbox.state.add_record(365, NEW[2:])
    res = runner.invoke(app, ["sync", "--json"])
    assert res.exit_code == 2
    assert "group 364" in res.output and "synced: 365" in res.output
    doc = json.loads(res.stdout)  # what was synced is shown, not only the error line
    assert [g["id"] for g in doc["groups"]] == ["365"]
    assert [f["id"] for f in doc["failed"]] == ["364"] and doc["failed"][0]["error"]


@pytest.mark.parametrize(("flag", "value"), [
    ("isRemoved", "false"), ("isActive", "true"), ("isActive", None), ("isActive", 1)])
async def test_group_flags_that_are_not_booleans_refuse_the_list(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, flag: str,
        value: Any) -> None:
    sb = sandbox_factory(data=TWO)
    cx = cx_settings(sb)
    await sync(settings, cx, sleep)

    def hook(request: httpx.Request, response: httpx.Response) -> dict[str, Any] | None:
        path = request.url.path
        if request.method == "GET" and (path.endswith("/dnc-groups")
                                        or path.endswith("/dnc-groups/364")):
            body = response.json()
            for g in body["resultSet"]["dncGroups"]:
                g[flag] = value
            return body  # type: ignore[no-any-return]
        return None

    with pytest.raises(SourceError, match=f"malformed group list: DNC group 364 has {flag}"):
        await sync(settings, cx, sleep, hook)
    for gid in ("364", "365"):
        info = ListStore(settings).get(f"cxone:{gid}")
        assert info is not None and info.meta["active"] is True
    async with client(cx, sleep, hook) as c:
        with pytest.raises(SourceError, match="malformed group list"):
            await c.group("364")
    assert await judge(settings, cx, sleep, [US, OTHER]) == {
        US: Decision.BLOCK, OTHER: Decision.BLOCK}
