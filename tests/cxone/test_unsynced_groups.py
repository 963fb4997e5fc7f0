"""A configured CXone group that has never been synced is checked (live search) or fails
closed, and keeps /readyz failing: it is never skipped because another group is synced."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dncguard.config import Settings, load_settings
from dncguard.models import Decision, ReasonCode
from dncguard.sandbox import SandboxServer
from dncguard.server.routes.ops import stale_sources

from ..fakes import FakeSleep
from .conftest import cx_settings, decisions, scrubber, verdicts
from .test_sync import sync

ON_364, ON_365, CLEAN = "+12025550101", "+16175550105", "+13125550199"


async def test_an_unsynced_configured_group_fails_closed(settings: Settings,
                                                         sandbox: SandboxServer,
                                                         sleep: FakeSleep) -> None:
    await sync(settings, sandbox, sleep, ["364"])
    cx = cx_settings(sandbox, groups=["364", "365"])
    scr, check = scrubber(settings, cx, sleep)
    out = await verdicts(scr, [ON_364, ON_365, CLEAN])
    assert decisions(out) == {ON_364: Decision.BLOCK, ON_365: Decision.ERROR,
                              CLEAN: Decision.ERROR}
    errors = [r for r in out[1].reasons if r.code == ReasonCode.SOURCE_ERROR]
    assert [r.list for r in errors] == ["cxone:365"]
    assert "never been synced" in (errors[0].detail or "")
    assert check.versions().lists["cxone:365"] is None  # the verdict names what it lacked
    assert out[2].versions.lists.get("cxone:365", "missing") is None
    # with every configured group synced, the same numbers are judged by the groups
    await sync(settings, sandbox, sleep, ["365"])
    out = await verdicts(scr, [ON_364, ON_365, CLEAN])
    assert decisions(out) == {ON_364: Decision.BLOCK, ON_365: Decision.BLOCK,
                              CLEAN: Decision.ALLOW}


async def test_an_unsynced_configured_group_is_searched_live(settings: Settings,
                                                             sandbox: SandboxServer,
                                                             sleep: FakeSleep) -> None:
    await sync(settings, sandbox, sleep, ["364"])
    cx = cx_settings(sandbox, groups=["364", "365"], stale_policy="live_search")
    scr, check = scrubber(settings, cx, sleep)
    out = await verdicts(scr, [ON_364, ON_365, CLEAN], datetime.now(UTC))
    assert decisions(out) == {ON_364: Decision.BLOCK, ON_365: Decision.BLOCK,
                              CLEAN: Decision.ALLOW}
    assert out[1].reasons[0].list == "cxone:365" and "live search" in out[1].reasons[0].detail
    assert check.live_searches == 3


async def test_readiness_names_the_unsynced_group(settings: Settings, sandbox: SandboxServer,
                                                  sleep: FakeSleep,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    await sync(settings, sandbox, sleep, ["364"])
    monkeypatch.setenv("DNCGUARD_CXONE_GROUPS", '["364", "365"]')
    problems = stale_sources(load_settings(home=settings.home))
    assert len(problems) == 1 and "365" in problems[0] and "never been synced" in problems[0]
    monkeypatch.setenv("DNCGUARD_CXONE_GROUPS", '["364"]')
    assert stale_sources(load_settings(home=settings.home)) == []
