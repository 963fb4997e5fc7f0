"""A sync saves a group's entries and its state (``synced_at``, the cursor, the total) in one
transaction. They were two: a crash between them left new entries under the old state, and
a running service, whose index of the group is keyed on ``synced_at``, kept reading the old
index while a newly started one read the new entries, until the next sync. The crash is
injected as the last step of the save (the audit record), after the entries were written."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from dncguard import audit
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.sources.cxone import CxoneCheck, CxoneClient, CxoneSettings, CxoneSync
from dncguard.store import list_entries_table

from .conftest import FakeSleep, clocked_group, cx_settings, decisions, verdicts

A, B, C = "2025550181", "6175550182", "3125550183"


async def run_sync(settings: Settings, cx: CxoneSettings, sleep: FakeSleep, *,
                   full: bool = False) -> Any:
    async with CxoneClient(cx, sleep=sleep, rng=random.Random(7)) as c:
        return await CxoneSync(settings, cx, c).sync(full=full)


def stored(settings: Settings, name: str) -> set[str]:
    t = list_entries_table
    with ListStore(settings).engine.connect() as conn:
        return {r.value for r in conn.execute(select(t.c.value).where(t.c.list_name == name))}


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
async def test_a_crash_between_the_entries_and_the_state_saves_neither(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep,
        monkeypatch: pytest.MonkeyPatch, full: bool) -> None:
    sb, clock, gid = clocked_group(sandbox_factory, "Crash", [A, B])
    cx = cx_settings(sb)
    await run_sync(settings, cx, sleep)
    name = f"cxone:{gid}"
    store = ListStore(settings)
    before = store.get(name)
    running = Scrubber(settings, checks=[CxoneCheck(settings, cx, store=store)])
    assert decisions(await verdicts(running, ["+1" + C]))["+1" + C] is Decision.ALLOW
    clock.now += timedelta(seconds=5)
    sb.state.add_record(gid, C)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(audit, "record_list_change", crash)
    with pytest.raises(RuntimeError, match="died"):
        await run_sync(settings, cx, sleep, full=full)
    monkeypatch.undo()
    # neither step is saved: the entries and the state are those of the last sync
    assert stored(settings, name) == {"+1" + A, "+1" + B}
    after = ListStore(settings).get(name)
    assert (after.synced_at, after.meta, after.count) == (before.synced_at, before.meta,
                                                           before.count)
    # the running service and one started now read the same index
    started = Scrubber(settings, checks=[CxoneCheck(settings, cx, store=ListStore(settings))])
    for scr in (running, started):
        assert decisions(await verdicts(scr, ["+1" + C]))["+1" + C] is Decision.ALLOW
    # the next sync saves both, and the running service reads the new index
    (g,) = (await run_sync(settings, cx, sleep, full=full)).groups
    assert g.mode == ("full" if full else "incremental")
    assert stored(settings, name) == {"+1" + A, "+1" + B, "+1" + C}
    for scr in (running, started):
        assert decisions(await verdicts(scr, ["+1" + C]))["+1" + C] is Decision.BLOCK


async def test_a_list_removed_during_the_read_gets_nothing(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``lists rm`` of the group's list while CXone is read: the save refuses (the group's
    sync fails, naming why), no entries are left without their list and the trail has no
    "sync" after the "rm". They were saved, and the sync reported success."""
    from dncguard.sources.cxone import _sync

    sb, clock, gid = clocked_group(sandbox_factory, "Removed", [A, B])
    cx = cx_settings(sb)
    await run_sync(settings, cx, sleep)
    name = f"cxone:{gid}"
    save = _sync.save_group

    def removed_first(*args: Any, **kwargs: Any) -> None:
        ListStore(settings).remove_list(name, who="cli:alice")
        save(*args, **kwargs)

    monkeypatch.setattr(_sync, "save_group", removed_first)
    with pytest.raises(Exception, match="was removed while CXone was read"):
        await run_sync(settings, cx, sleep, full=True)
    assert stored(settings, name) == set()
    actions = [r.action for r in audit.audit_log(settings).records(kind="list")
               if r.subject == name]
    assert actions[-1] == "rm", actions
