"""The http-batch check against the sandbox's batch endpoint (real sockets)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import ConfigError
from dncguard.models import Decision, ReasonCode
from dncguard.sandbox import Fault, SandboxConfig, SandboxServer, run_sandbox
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.remote import HttpBatchCheck, HttpBatchSettings

from ..fakes import FakeSleep

LISTED = ["+12025550110", "+442079460123"]




@pytest.fixture
def sb() -> Iterator[SandboxServer]:
    with run_sandbox(SandboxConfig(hash_salt="pepper")) as server:
        yield server


def hb_settings(sb: SandboxServer, **over: Any) -> HttpBatchSettings:
    cfg = sb.state.config
    values: dict[str, Any] = {
        "base_url": sb.url, "token_url": f"{sb.url}/oauth/token",
        "client_id": cfg.batch_client_id, "client_secret": cfg.batch_client_secret,
        "list_ids": ["remote-dnc"], "timeout_seconds": 2.0, "max_attempts": 6}
    values.update(over)
    return HttpBatchSettings(**values)


def numbers(n: int) -> list[str]:
    return [f"+1312555{i:04d}" for i in range(n)]


async def run(check: HttpBatchCheck, nums: list[str]) -> list[list[Any]]:
    regions = ["GB" if n.startswith("+44") else "US" for n in nums]
    batch = Batch.of(nums, regions, [None] * len(nums))
    out = await check.check(batch, CheckContext(at=datetime.now(UTC)))
    assert len(out) == len(nums)
    return out


def fail_closed(out: list[list[Any]]) -> None:
    for reasons in out:
        if any(r.code == ReasonCode.SOURCE_ERROR for r in reasons):
            assert any(r.decision is Decision.ERROR for r in reasons)


async def test_exact_match_gb_sent_as_uk_and_chunking(sb: SandboxServer) -> None:
    sleep = FakeSleep()
    check = HttpBatchCheck(hb_settings(sb), sleep=sleep, rng=random.Random(1))
    nums = [*LISTED, *numbers(2500)]
    out = await run(check, nums)
    assert out[0][0].code == ReasonCode.DNC_REMOTE and out[0][0].decision is Decision.BLOCK
    assert out[1][0].list == "http-batch:remote-dnc"  # the UK number matched (GB -> UK)
    assert all(r == [] for r in out[2:])
    assert sb.state.requests["POST /api/v2/dnc/contacts/batch"] == 3  # 1000 per request
    assert check.token_requests == 1


async def test_hash_match_never_sends_the_number(sb: SandboxServer) -> None:
    check = HttpBatchCheck(hb_settings(sb, match_type="hash", hash_salt="pepper"))
    out = await run(check, [LISTED[0], "+12025550111"])
    assert [r.code for r in out[0]] == [ReasonCode.DNC_REMOTE]
    assert out[1] == []
    assert sb.state.batch_seen == [hashlib.sha256(b"pepper+12025550110").hexdigest(),
                                   hashlib.sha256(b"pepper+12025550111").hexdigest()]
    with pytest.raises(ConfigError):
        HttpBatchCheck(hb_settings(sb, match_type="hash"))


async def test_429_storm_with_retry_after_then_expired_token(sb: SandboxServer) -> None:
    sleep = FakeSleep()
    check = HttpBatchCheck(hb_settings(sb), sleep=sleep, rng=random.Random(1))
    sb.state.script.extend([Fault(429, "2"), Fault(429, "2"), Fault(429)])
    out = await run(check, [*LISTED, *numbers(10)])
    assert out[0][0].code == ReasonCode.DNC_REMOTE
    assert sum(1 for s in sleep.calls if s >= 2.0) >= 2
    assert check.limiter.decreases >= 1  # adaptive concurrency backed off
    sb.state.revoke_tokens()  # token expires: 401, new token, retried once
    out = await run(check, LISTED)
    assert out[0][0].code == ReasonCode.DNC_REMOTE
    assert check.token_requests == 2


async def test_persistent_5xx_gives_source_error_never_allow(sb: SandboxServer,
                                                             settings: Settings) -> None:
    sb.state.config.fail_rate = 1.0
    check = HttpBatchCheck(hb_settings(sb, max_attempts=3), sleep=FakeSleep())
    nums = [*LISTED, *numbers(5)]
    out = await run(check, nums)
    assert all(r and r[0].code == ReasonCode.SOURCE_ERROR for r in out)
    fail_closed(out)
    scr = Scrubber(settings, checks=[check])
    verdicts = await scr.ascrub(nums, ctx=scr.context(at=datetime.now(UTC)))
    assert len(verdicts) == len(nums)
    assert {v.decision for v in verdicts} == {Decision.ERROR}


async def test_timeouts_and_malformed_bodies_are_retried(sb: SandboxServer) -> None:
    sb.state.config.timeout_delay = 3.0
    sb.state.script.extend([Fault(kind="timeout"), Fault(kind="malformed"), Fault(500)])
    check = HttpBatchCheck(hb_settings(sb, timeout_seconds=0.3), sleep=FakeSleep())
    out = await run(check, LISTED)
    assert [r[0].code for r in out] == [ReasonCode.DNC_REMOTE, ReasonCode.DNC_REMOTE]


async def test_missing_results_are_errors(sb: SandboxServer) -> None:
    check = HttpBatchCheck(hb_settings(sb, list_ids=["remote-dnc"]), sleep=FakeSleep())
    sb.state.config.batch_max_contacts = 1  # the server refuses the whole chunk (400)
    out = await run(check, LISTED)
    assert all(r[0].code == ReasonCode.SOURCE_ERROR for r in out)


def test_not_configured_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DNCGUARD_HTTP_BATCH_BASE_URL"):
        HttpBatchCheck(HttpBatchSettings())
