"""An incremental sync counts as new only the records no earlier sync read. A number CXone
holds twice (its national digits and its digits with the country code: two records, one
E.164 number) is stored as one row, the record that blocks longest. A change to the other
record was counted as a new record, since the number's row held another record id: the
totals then disagreed by one and every such sync became a full read (safe, but a full
download of the group each time). The row now remembers the number's other records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dncguard.config import Settings
from dncguard.models import Decision
from dncguard.sandbox import SandboxServer

from .conftest import FakeSleep, clocked_group, cx_settings, judge, sync

NATIONAL, WITH_CODE, OTHER = "2025550171", "12025550171", "3125550172"
FUTURE = "2027-06-01T00:00:00.000Z"


def records_read(sb: SandboxServer, gid: int) -> int:
    return sum(n for k, n in sb.state.requests.items()
               if k == f"GET /inContactAPI/services/v33.0/dnc-groups/{gid}/records")


async def test_a_change_to_a_numbers_other_record_stays_incremental(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb, clock, gid = clocked_group(sandbox_factory, "Twice", [WITH_CODE, NATIONAL, OTHER])
    cx = cx_settings(sb, page_size=1)
    (g,) = (await sync(settings, cx, sleep)).groups
    assert (g.mode, g.records) == ("full", 3)
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, WITH_CODE, FUTURE)  # the number's second record changes
    before = records_read(sb, gid)
    (g,) = (await sync(settings, cx, sleep)).groups
    # read: the changed record, the newest before it (its update time is the cursor), and
    # the next one, older: the probe and three pages of one record, no full read (three
    # pages, the group probed before and after)
    assert (g.mode, g.fetched, g.records) == ("incremental", 2, 3)
    assert records_read(sb, gid) - before == 4
    # the record without an expiry still blocks the number
    assert (await judge(settings, cx, sleep, ["+1" + NATIONAL]))["+1" + NATIONAL] \
        is Decision.BLOCK
    clock.now += timedelta(seconds=5)
    sb.state.expire_record(gid, NATIONAL)  # now the number's blocking record expires
    (g,) = (await sync(settings, cx, sleep)).groups
    assert g.mode == "full"  # it may not be the number's only record: read in full
    decision = (await judge(settings, cx, sleep, ["+1" + NATIONAL]))["+1" + NATIONAL]
    assert decision is Decision.BLOCK  # the other record blocks until June 2027


async def test_a_truly_new_record_of_a_known_number_is_counted(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    """A record added for a number the group already holds (in its other form) is new: the
    totals agree only with it counted, so the sync stays incremental and blocks it."""
    sb, clock, gid = clocked_group(sandbox_factory, "Again", [NATIONAL, OTHER])
    sb.state.expire_record(gid, NATIONAL)
    cx = cx_settings(sb)
    (g,) = (await sync(settings, cx, sleep)).groups
    assert g.mode == "full"
    assert (await judge(settings, cx, sleep, ["+1" + NATIONAL]))["+1" + NATIONAL] \
        is Decision.ALLOW
    clock.now += timedelta(seconds=5)
    sb.state.add_record(gid, WITH_CODE)  # a second record of the same number
    (g,) = (await sync(settings, cx, sleep)).groups
    # read: the new record, and the expired one (updated in the cursor's own millisecond)
    assert (g.mode, g.fetched, g.records) == ("incremental", 2, 3)
    assert (await judge(settings, cx, sleep, ["+1" + NATIONAL]))["+1" + NATIONAL] \
        is Decision.BLOCK
