"""Group sync against the sandbox: large groups, incremental re-sync, token expiry mid-sync,
expired / future / inactive records, freshness and live search."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from dncguard.config import Settings
from dncguard.errors import SourceError
from dncguard.lists.store import ListStore
from dncguard.models import Decision, ReasonCode
from dncguard.sandbox import Fault, SandboxConfig, SandboxServer
from dncguard.sources.cxone import CxoneSync
from dncguard.store import list_entries_table

from .conftest import (
    FakeSleep,
    cx_settings,
    decisions,
    make_client,
    scrubber,
    us_numbers,
    verdicts,
)


def records_gets(sb: SandboxServer, gid: int) -> int:
    return sb.state.requests[f"GET /inContactAPI/services/v33.0/dnc-groups/{gid}/records"]


async def sync(settings: Settings, sb: SandboxServer, sleep: FakeSleep,
               group_ids: list[str] | None = None, **over: object):  # type: ignore[no-untyped-def]
    cx = cx_settings(sb, **over)
    async with make_client(cx, sleep) as client:
        return await CxoneSync(settings, cx, client).sync(group_ids)


@pytest.mark.slow
async def test_group_of_100k_records_across_many_pages(
        settings: Settings, sandbox_factory, sleep: FakeSleep) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(SandboxConfig(max_top=1000), data={})
    gid = sb.state.add_group("Big")
    numbers = us_numbers(100_000)
    sb.state.bulk_records(gid, numbers)
    # the requests are counted: no page may time out and be asked again (the sandbox takes
    # seconds for a page of a 100k group on a slow machine; the suite's 2 s would retry)
    report = await sync(settings, sb, sleep, [str(gid)], page_size=5000, timeout_seconds=60.0)
    (g,) = report.groups
    assert g.mode == "full" and g.records == 100_000 and g.fetched == 100_000
    # the server capped pages at 1000; the newest record is probed before and after the read
    assert records_gets(sb, gid) == 102
    store = ListStore(settings)
    assert store.get(f"cxone:{gid}").count == 100_000
    cx = cx_settings(sb)
    scr, _ = scrubber(settings, cx, sleep)
    sample = [f"+1{n}" for n in numbers[::997]] + ["+12025550199", "+13125550142"]
    out = await verdicts(scr, sample)
    d = decisions(out)
    assert all(d[f"+1{n}"] is Decision.BLOCK for n in numbers[::997])
    # a re-sync with nothing changed downloads one probe record, not 100 pages
    again = await sync(settings, sb, sleep, [str(gid)], page_size=5000, timeout_seconds=60.0)
    assert again.groups[0].mode == "unchanged"
    assert records_gets(sb, gid) == 103


async def test_incremental_resync_counts_requests_and_picks_up_changes(
        settings: Settings, sandbox_factory, sleep: FakeSleep) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(SandboxConfig(max_top=500), data={})
    gid = sb.state.add_group("Incremental")
    numbers = us_numbers(3000)
    sb.state.bulk_records(gid, numbers)
    first = await sync(settings, sb, sleep, [str(gid)])
    assert first.groups[0].mode == "full"
    assert records_gets(sb, gid) == 8  # 6 pages, and a probe before and after them

    before = records_gets(sb, gid)
    same = await sync(settings, sb, sleep, [str(gid)])
    assert same.groups[0].mode == "unchanged"
    assert records_gets(sb, gid) - before == 1  # one probe, no record pages
    assert same.requests <= 5  # sign-in, discovery, groups, skills, probe

    time.sleep(0.005)  # distinct lastUpdateTime (ms resolution)
    sb.state.add_record(gid, "2125550177")  # new on CXone
    sb.state.expire_record(gid, numbers[0])  # expired on CXone
    before = records_gets(sb, gid)
    inc = await sync(settings, sb, sleep, [str(gid)])
    assert inc.groups[0].mode == "incremental"
    # the 3,000 seeded records share the cursor's millisecond, and records of the cursor's
    # millisecond are read again (one may have changed after the last sync read it)
    assert inc.groups[0].fetched == 3001
    time.sleep(0.005)
    sb.state.add_record(gid, "2125550178")
    before = records_gets(sb, gid)
    inc = await sync(settings, sb, sleep, [str(gid)])
    assert inc.groups[0].mode == "incremental"
    assert inc.groups[0].fetched <= 3
    assert records_gets(sb, gid) - before == 2  # probe + one page newest-first

    cx = cx_settings(sb)
    scr, _ = scrubber(settings, cx, sleep)
    out = await verdicts(scr, ["+12125550177", f"+1{numbers[0]}", f"+1{numbers[1]}"])
    d = decisions(out)
    assert d["+12125550177"] is Decision.BLOCK
    assert d[f"+1{numbers[0]}"] is Decision.ALLOW  # expired on CXone
    assert d[f"+1{numbers[1]}"] is Decision.BLOCK

    sb.state.remove_record(gid, numbers[1])  # removed on CXone (clean-up)
    removed = await sync(settings, sb, sleep, [str(gid)])
    assert removed.groups[0].mode == "full"  # totals disagree: full re-download
    scr, _ = scrubber(settings, cx, sleep)
    out = await verdicts(scr, [f"+1{numbers[1]}", f"+1{numbers[2]}"])
    assert decisions(out) == {f"+1{numbers[1]}": Decision.ALLOW,
                              f"+1{numbers[2]}": Decision.BLOCK}


async def test_token_expiry_and_401_mid_sync(settings: Settings, sandbox_factory,
                                             sleep: FakeSleep) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(SandboxConfig(max_top=200, expire_tokens_every=5), data={})
    gid = sb.state.add_group("Expiring tokens")
    numbers = us_numbers(4000)
    sb.state.bulk_records(gid, numbers)
    # one request in flight, so each revocation hits one request, which signs in again once
    report = await sync(settings, sb, sleep, [str(gid)], page_size=200, concurrency=1,
                        max_concurrency=1)
    assert report.groups[0].fetched == 4000
    assert sb.state.grants["refresh_token"] >= 3  # re-authenticated after each revocation
    with ListStore(settings).engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(list_entries_table)).scalar_one()
    assert n == 4000
    scr, _ = scrubber(settings, cx_settings(sb), sleep)
    out = await verdicts(scr, [f"+1{numbers[-1]}", "+19995550100"])
    assert out[0].decision is Decision.BLOCK


async def test_expired_future_and_inactive_groups(settings: Settings, sandbox: SandboxServer,
                                                  sleep: FakeSleep) -> None:
    bare = await sync(settings, sandbox, sleep)  # bare sync: every active group
    assert {g.group_id for g in bare.groups} == {"364", "365"}
    await sync(settings, sandbox, sleep, ["366"])  # the inactive one, explicitly
    scr, _ = scrubber(settings, cx_settings(sandbox), sleep)
    numbers = ["+12025550101", "+13055550103", "+14155550104", "+16175550105",
               "+17025550106", "+15125550107"]
    now = datetime.now(UTC)
    out = await verdicts(scr, numbers, now)
    assert decisions(out) == {
        "+12025550101": Decision.BLOCK,  # no expiredDate
        "+13055550103": Decision.ALLOW,  # expired in 2020
        "+14155550104": Decision.BLOCK,  # expires in a year
        "+16175550105": Decision.BLOCK,  # another active group
        "+17025550106": Decision.ALLOW,  # inactive group
        "+15125550107": Decision.ALLOW,  # nowhere
    }
    assert out[0].reasons[0].code == ReasonCode.DNC_CXONE
    assert out[0].reasons[0].list == "cxone:364"
    later = await verdicts(scr, ["+14155550104"], now + timedelta(days=400))
    assert later[0].decision is Decision.ALLOW  # past its future expiry


async def test_sync_by_skill_selects_scrubbing_groups(settings: Settings,
                                                      sandbox: SandboxServer,
                                                      sleep: FakeSleep) -> None:
    cx = cx_settings(sandbox)
    async with make_client(cx, sleep) as client:
        report = await CxoneSync(settings, cx, client).sync(skill="218854")
        assert [g.group_id for g in report.groups] == ["365"]
        with pytest.raises(SourceError, match="no CXone DNC group scrubs skill"):
            await CxoneSync(settings, cx, client).sync(skill="1")


async def test_stale_group_fails_closed(settings: Settings, sandbox: SandboxServer,
                                        sleep: FakeSleep) -> None:
    await sync(settings, sandbox, sleep)
    cx = cx_settings(sandbox, max_sync_age_hours=1)
    scr, _ = scrubber(settings, cx, sleep, clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    numbers = ["+12025550101", "+15125550107"]
    out = await verdicts(scr, numbers)
    assert [v.decision for v in out] == [Decision.ERROR, Decision.ERROR]
    assert all(ReasonCode.SOURCE_ERROR in v.reason_codes for v in out)


async def test_never_synced_fails_closed(settings: Settings, sandbox: SandboxServer,
                                         sleep: FakeSleep) -> None:
    scr, _ = scrubber(settings, cx_settings(sandbox), sleep)
    out = await verdicts(scr, ["+12025550101", "+15125550107"])
    assert {v.decision for v in out} == {Decision.ERROR}


async def test_stale_group_falls_back_to_live_search(settings: Settings,
                                                     sandbox: SandboxServer,
                                                     sleep: FakeSleep) -> None:
    await sync(settings, sandbox, sleep)
    cx = cx_settings(sandbox, max_sync_age_hours=1, stale_policy="live_search")
    scr, check = scrubber(settings, cx, sleep,
                          clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    numbers = ["+12025550101", "+13055550103", "+15125550107", "+17025550106"]
    out = await verdicts(scr, numbers)
    assert decisions(out) == {"+12025550101": Decision.BLOCK, "+13055550103": Decision.ALLOW,
                              "+15125550107": Decision.ALLOW, "+17025550106": Decision.ALLOW}
    assert check.live_searches == 4
    assert "live search" in out[0].reasons[0].detail


async def test_live_search_failures_never_allow(settings: Settings, sandbox_factory,
                                                sleep: FakeSleep) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(SandboxConfig(fail_rate=1.0))
    cx = cx_settings(sb, stale_policy="live_search", max_attempts=3)
    scr, _ = scrubber(settings, cx, sleep)  # never synced, and every API call fails
    numbers = ["+12025550101", "+15125550107", "+16175550105"]
    out = await verdicts(scr, numbers)
    assert {v.decision for v in out} == {Decision.ERROR}
    # over the live-search limit: the rest fail closed as well
    cx2 = cx_settings(sb, stale_policy="live_search", live_search_max=1, max_attempts=2)
    scr2, _ = scrubber(settings, cx2, sleep)
    out2 = await verdicts(scr2, numbers)
    assert {v.decision for v in out2} == {Decision.ERROR}


async def test_storm_of_429_with_and_without_retry_after(settings: Settings, sandbox_factory,
                                                         sleep: FakeSleep) -> None:  # type: ignore[no-untyped-def]
    for retry_after in (True, False):
        sb = sandbox_factory(SandboxConfig(max_top=100, throttle_rate=0.4,
                                           retry_after=retry_after, seed=5), data={})
        gid = sb.state.add_group("Storm")
        numbers = us_numbers(1500)
        sb.state.bulk_records(gid, numbers)
        cx = cx_settings(sb, page_size=100, max_attempts=12)
        async with make_client(cx, sleep) as client:
            report = await CxoneSync(settings, cx, client).sync([str(gid)])
            backoffs = client.resilient.stats.sleeps
            assert client.resilient.limiter.decreases >= 1  # adaptive concurrency backed off
        assert report.groups[0].fetched == 1500
        assert sb.state.throttled > 0
        assert backoffs
        if retry_after:
            assert min(backoffs) >= 1.0  # Retry-After: 1 honoured
        else:
            assert min(backoffs) < 1.0  # own jittered backoff
        scr, _ = scrubber(settings, cx_settings(sb), sleep)
        out = await verdicts(scr, [f"+1{numbers[7]}", "+19995550100"])
        assert out[0].decision is Decision.BLOCK


async def test_persistent_429_fails_the_sync_and_checks_fail_closed(
        settings: Settings, sandbox_factory, sleep: FakeSleep) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(SandboxConfig(throttle_rate=1.0))
    with pytest.raises(SourceError, match="HTTP 429"):
        await sync(settings, sb, sleep, max_attempts=4)
    scr, _ = scrubber(settings, cx_settings(sb), sleep)
    out = await verdicts(scr, ["+12025550101", "+15125550107"])
    assert {v.decision for v in out} == {Decision.ERROR}


async def test_5xx_timeouts_and_malformed_bodies_are_survived(
        settings: Settings, sandbox_factory, sleep: FakeSleep) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(SandboxConfig(max_top=100, fail_rate=0.2, malformed_rate=0.1,
                                       seed=11, timeout_delay=3.0), data={})
    gid = sb.state.add_group("Flaky")
    numbers = us_numbers(1000)
    sb.state.bulk_records(gid, numbers)
    sb.state.script.extend([Fault(kind="timeout"), Fault(503, "0")])
    report = await sync(settings, sb, sleep, [str(gid)], page_size=100, max_attempts=12,
                        timeout_seconds=0.3)
    assert report.groups[0].fetched == 1000
    scr, _ = scrubber(settings, cx_settings(sb), sleep)
    out = await verdicts(scr, [f"+1{n}" for n in numbers[:50]] + ["+19995550100"])
    assert all(v.decision is Decision.BLOCK for v in out[:50])


async def test_group_deactivated_on_cxone_stops_blocking(settings: Settings,
                                                         sandbox: SandboxServer,
                                                         sleep: FakeSleep) -> None:
    await sync(settings, sandbox, sleep)
    sandbox.state.groups[365]["isActive"] = False  # deactivated on the CXone side
    report = await sync(settings, sandbox, sleep)
    assert [g.group_id for g in report.groups] == ["364"]
    info = ListStore(settings).get("cxone:365")
    assert info.meta["active"] is False
    scr, _ = scrubber(settings, cx_settings(sandbox, max_sync_age_hours=1), sleep,
                      clock=lambda: datetime.now(UTC) + timedelta(minutes=30))
    out = await verdicts(scr, ["+16175550105", "+12025550101"])
    assert decisions(out) == {"+16175550105": Decision.ALLOW, "+12025550101": Decision.BLOCK}
