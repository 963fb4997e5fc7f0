"""The pre-filter in front of the real sources: http-batch and CXone live search against the
sandbox on loopback (real sockets, fake clock and sleep, seeded sampling)."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import Decision, Reason, ReasonCode
from dncguard.sandbox import SandboxConfig, SandboxServer, run_sandbox
from dncguard.sources.cxone import CxoneCheck
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.remote import HttpBatchCheck, HttpBatchSettings
from dncguard.sources.remote.prefilter import Prefilter, PrefilterSettings, open_store

from .cxone.conftest import cx_settings, make_client
from .fakes import FakeSleep

LISTED = ["+12025550110", "+442079460123"]
BATCH_POSTS = "POST /api/v2/dnc/contacts/batch"
SEARCHES = "POST /inContactAPI/services/v33.0/dnc-groups/search"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    with run_sandbox(SandboxConfig()) as server:
        yield server


def gate(settings: Settings, source: str, *, namespace: str, per_call: int = 1,
         **over: Any) -> Prefilter:
    values: dict[str, Any] = {"flush_seconds": 0.0, "sample_rate": 0.0}
    values.update(over)
    store = open_store(settings, source, PrefilterSettings(**values), clock=Clock())
    return Prefilter(source, store, namespace=namespace, per_call=per_call,
                     rng=random.Random(5))


def hb_check(sb: SandboxServer, settings: Settings, **over: Any) -> HttpBatchCheck:
    cfg = sb.state.config
    hb = HttpBatchSettings(base_url=sb.url, token_url=f"{sb.url}/oauth/token",
                           client_id=cfg.batch_client_id, client_secret=cfg.batch_client_secret,
                           list_ids=["remote-dnc"], timeout_seconds=2.0, max_attempts=2)
    pf = gate(settings, "http-batch", namespace=sb.url, per_call=hb.chunk_size, **over)
    return HttpBatchCheck(hb, sleep=FakeSleep(), rng=random.Random(1), settings=settings,
                          prefilter=pf)


async def run(check: HttpBatchCheck, nums: list[str]) -> list[list[Reason]]:
    regions = ["GB" if n.startswith("+44") else "US" for n in nums]
    out = await check.check(Batch.of(nums, regions, [None] * len(nums)),
                            CheckContext(at=datetime.now(UTC)))
    assert len(out) == len(nums)
    return out


def from_prefilter(reasons: list[Reason]) -> bool:
    return any("pre-filter" in r.detail for r in reasons)


class TestHttpBatch:
    async def test_hits_are_answered_locally_and_misses_go_to_the_source(
            self, sb: SandboxServer, settings: Settings) -> None:
        check = hb_check(sb, settings)
        out = await run(check, [*LISTED, "+13125550001"])
        assert [r[0].code for r in out[:2]] == [ReasonCode.DNC_REMOTE] * 2 and out[2] == []
        assert sb.state.requests[BATCH_POSTS] == 1
        out = await run(check, LISTED)  # both recently reported: no call at all
        assert sb.state.requests[BATCH_POSTS] == 1
        for reasons in out:
            (r,) = reasons
            assert r.code == ReasonCode.DNC_REMOTE and r.decision is Decision.BLOCK
            assert r.source == "http-batch" and r.list == "http-batch:remote-dnc"
            assert "pre-filter" in r.detail and "expires" in r.detail
        out = await run(check, [LISTED[0], "+13125550002"])
        assert sb.state.requests[BATCH_POSTS] == 2
        assert sb.state.batch_seen == ["+13125550002"]  # the hit stayed off the wire
        stats = check.prefilter_stats()
        assert stats is not None
        assert stats["checked"] == 7 and stats["hits"] == 3 and stats["localSuppressions"] == 3
        assert stats["remoteCallsSaved"] == 1 and stats["entries"] == 2
        raw = (settings.home / "prefilter" / "http-batch.npz").read_bytes()
        assert b"2025550110" not in raw and b"2079460123" not in raw
        scr = Scrubber(settings, checks=[check])
        verdicts = await scr.ascrub(LISTED, ctx=scr.context(at=datetime.now(UTC)))
        assert {v.decision for v in verdicts} == {Decision.BLOCK}

    async def test_a_new_opt_out_reaches_the_next_check(self, sb: SandboxServer,
                                                        settings: Settings) -> None:
        check = hb_check(sb, settings)
        number = "+13125550042"
        assert (await run(check, [number])) == [[]]
        sb.state.batch_lists["remote-dnc"].add(number)  # opted out on the source just now
        (reasons,) = await run(check, [number])
        assert [r.code for r in reasons] == [ReasonCode.DNC_REMOTE]
        assert not from_prefilter(reasons) and sb.state.requests[BATCH_POSTS] == 2

    async def test_errors_are_never_cached(self, sb: SandboxServer, settings: Settings) -> None:
        check = hb_check(sb, settings)
        sb.state.config.fail_rate = 1.0
        out = await run(check, LISTED)
        assert all(r[0].code == ReasonCode.SOURCE_ERROR for r in out)
        stats = check.prefilter_stats()
        assert stats is not None and stats["entries"] == 0 and stats["hits"] == 0
        sb.state.config.fail_rate = 0.0
        sb.state.batch_lists["remote-dnc"].discard(LISTED[0])
        out = await run(check, LISTED)  # asked again, and the source's answer counts
        assert out[0] == [] and out[1][0].code == ReasonCode.DNC_REMOTE
        assert not from_prefilter(out[1])

    async def test_reverified_hits_the_source_dropped_are_false_positives(
            self, sb: SandboxServer, settings: Settings, caplog: pytest.LogCaptureFixture
            ) -> None:
        check = hb_check(sb, settings, sample_rate=1.0, min_sample=1, fp_threshold=0.1)
        await run(check, LISTED)
        sb.state.batch_lists["remote-dnc"].discard(LISTED[0])  # left the list
        caplog.set_level(logging.INFO, "dncguard.prefilter")
        out = await run(check, LISTED)  # every hit is re-verified (sample rate 1)
        assert out[0] == []  # the source's fresh answer: allowed
        assert out[1][0].code == ReasonCode.DNC_REMOTE and not from_prefilter(out[1])
        stats = check.prefilter_stats()
        assert stats is not None
        assert stats["reverified"] == 2 and stats["falsePositives"] == 1
        assert stats["falsePositiveRate"] == 0.5
        assert stats["ttlSeconds"] == 43_200.0  # 50 % > 10 %: the TTL was halved
        assert "TTL shortened 86400s -> 43200s" in caplog.text
        out = await run(check, LISTED)
        assert out[0] == []  # the dropped number is not blocked from the filter again
        assert sb.state.requests[BATCH_POSTS] == 3

    async def test_a_failed_reverification_keeps_the_recent_hit(
            self, sb: SandboxServer, settings: Settings) -> None:
        check = hb_check(sb, settings, sample_rate=1.0)
        await run(check, LISTED[:1])
        sb.state.config.fail_rate = 1.0
        (reasons,) = await run(check, LISTED[:1])
        assert [r.code for r in reasons] == [ReasonCode.DNC_REMOTE]
        assert reasons[0].decision is Decision.BLOCK and from_prefilter(reasons)
        stats = check.prefilter_stats()
        assert stats is not None and stats["reverified"] == 0

    async def test_without_settings_there_is_no_prefilter(self, sb: SandboxServer) -> None:
        cfg = sb.state.config
        check = HttpBatchCheck(HttpBatchSettings(
            base_url=sb.url, token_url=f"{sb.url}/oauth/token", client_id=cfg.batch_client_id,
            client_secret=cfg.batch_client_secret, list_ids=["remote-dnc"]))
        await run(check, LISTED)
        await run(check, LISTED)
        assert sb.state.requests[BATCH_POSTS] == 2 and check.prefilter_stats() is None


async def test_cxone_live_search_prefilter(settings: Settings, sb: SandboxServer) -> None:
    """Live searches (nothing synced): a number found on a group without an expiry date is
    answered locally next time; one whose record expires, or a miss, is searched again; a new
    opt-out on CXone reaches the next check."""
    sleep = FakeSleep()
    cx = cx_settings(sb, stale_policy="live_search")
    pf = gate(settings, "cxone", namespace=sb.url)
    check = CxoneCheck(settings, cx, store=ListStore(settings),
                       client_factory=lambda: make_client(cx, sleep), prefilter=pf)
    scr = Scrubber(settings, checks=[check])
    numbers = ["+12025550101", "+14155550104", "+16175550105", "+13125550000"]

    async def scrub() -> dict[str, Any]:
        out = await scr.ascrub(numbers, ctx=scr.context(at=datetime.now(UTC)))
        return {v.input: v for v in out}

    first = await scrub()
    assert [first[n].decision for n in numbers] == [Decision.BLOCK] * 3 + [Decision.ALLOW]
    assert sb.state.requests[SEARCHES] == 4
    second = await scrub()
    assert [second[n].decision for n in numbers] == [Decision.BLOCK] * 3 + [Decision.ALLOW]
    assert sb.state.requests[SEARCHES] == 6  # the expiring record and the miss only
    (r,) = second["+12025550101"].reasons
    assert r.code == ReasonCode.DNC_CXONE and r.list == "cxone:364"
    assert "Internal DNC" in r.detail and "pre-filter" in r.detail
    assert not from_prefilter(second["+14155550104"].reasons)
    sb.state.add_record(364, "3125550000")  # a new opt-out on CXone
    third = await scrub()
    assert third["+13125550000"].decision is Decision.BLOCK
    assert not from_prefilter(third["+13125550000"].reasons)
    stats = check.prefilter_stats()
    assert stats is not None and stats["remoteCallsSaved"] == 4
    assert stats["localSuppressions"] == 4 and stats["checked"] == 12


async def test_file_scrub_summary_and_export_carry_the_stats(
        sb: SandboxServer, settings: Settings, tmp_path: Any) -> None:
    """A file scrub's summary (either path) and the audit export payload show the
    pre-filter's work; the second run answers the listed numbers locally."""
    from types import SimpleNamespace

    from dncguard.audit.export import export_payload

    src = tmp_path / "in.csv"
    src.write_text("phone\n" + "\n".join([*LISTED, "+13125550077"]) + "\n", "utf-8")
    check = hb_check(sb, settings)
    for columnar in (True, False):
        scr = Scrubber(settings, checks=[check], columnar=columnar)
        ctx = scr.context(at=datetime.now(UTC))
        first = await scr.ascrub_file(src, tmp_path / "a.csv", ctx=ctx)
        again = await scr.ascrub_file(src, tmp_path / "b.csv", ctx=ctx)
        assert again.by_decision["block"] == first.by_decision["block"] == 2
        stats = again.prefilter["http-batch"]
        assert stats["checked"] == 3 and stats["hits"] == 2 and stats["localSuppressions"] == 2
        assert "falsePositiveRate" in stats
        assert '"prefilter"' in (tmp_path / "b.summary.json").read_text()
    rec = SimpleNamespace(
        subject="job-1", at=datetime.now(UTC), versions={}, seq=1, hash="h", who="t",
        data={"summary": {"prefilter": {"http-batch": {"reverified": 40, "falsePositives": 2},
                                        "cxone": {"reverified": 10, "falsePositives": 0}}}})
    payload = export_payload(rec)  # type: ignore[arg-type]
    assert payload["falsePositiveRate"] == 0.04
    assert payload["prefilter"]["http-batch"]["falsePositives"] == 2


async def test_cxone_record_that_now_expires_later_is_no_false_positive(
        settings: Settings, sb: SandboxServer) -> None:
    """A cached number whose CXone record now carries a future expiry date is still listed:
    re-verified, it stays blocked and is not counted as a false positive."""
    cx = cx_settings(sb, stale_policy="live_search")
    pf = gate(settings, "cxone", namespace=sb.url, sample_rate=1.0)
    check = CxoneCheck(settings, cx, store=ListStore(settings),
                       client_factory=lambda: make_client(cx, FakeSleep()), prefilter=pf)
    scr = Scrubber(settings, checks=[check])
    number = "+12025550101"  # on group 364 without an expiry date
    (first,) = await scr.ascrub([number], ctx=scr.context(at=datetime.now(UTC)))
    assert first.decision is Decision.BLOCK
    sb.state.add_record(364, "2025550101", expired="2099-01-01T00:00:00Z")
    (again,) = await scr.ascrub([number], ctx=scr.context(at=datetime.now(UTC)))
    assert again.decision is Decision.BLOCK
    stats = check.prefilter_stats()
    assert stats is not None and stats["reverified"] == 1 and stats["falsePositives"] == 0
