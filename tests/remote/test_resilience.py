"""Unit tests of the shared resilience layer (MockTransport, fake sleep: no real waiting)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from dncguard.errors import SourceError
from dncguard.sources.remote.resilience import (
    AdaptiveLimiter,
    Resilient,
    RetryBudget,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
)

from ..fakes import FakeSleep


def make(handler, **kw):  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    sleep = FakeSleep()
    res = Resilient(http, kw.pop("policy", RetryPolicy(max_attempts=5)), sleep=sleep,
                    rng=random.Random(1), **kw)
    return res, sleep


async def get_json(res: Resilient) -> object:
    async def build() -> httpx.Request:
        return res.http.build_request("GET", "http://x/y")
    return await res.send(build, lambda r: r.json())


def test_parse_retry_after_seconds_date_and_garbage() -> None:
    now = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True),
                             now) == pytest.approx(30.0)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True),
                             now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("", now) is None


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    rng = random.Random(3)
    for attempt in range(10):
        cap = min(8.0, 0.5 * 2 ** attempt)
        delays = [backoff_delay(attempt, policy, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.7  # really jittered over the whole range


async def test_429_with_retry_after_is_honoured_then_succeeds() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "9"}), httpx.Response(200, json=[1])]
    res, sleep = make(lambda req: answers.pop(0))
    assert await get_json(res) == [1]
    assert res.stats.sleeps == [sleep.calls[-1]]  # backoff (pacing waits are separate)
    assert res.stats.sleeps[0] >= 9.0
    assert res.stats.throttled == 1


async def test_429_without_retry_after_backs_off_exponentially() -> None:
    calls = {"n": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(429) if calls["n"] < 4 else httpx.Response(200, json={})

    res, sleep = make(handler, policy=RetryPolicy(max_attempts=6, base_delay=1.0))
    assert await get_json(res) == {}
    assert len(res.stats.sleeps) == 3
    for i, d in enumerate(res.stats.sleeps):
        assert 0 <= d <= 2 ** i
    assert res.limiter.rate is not None  # throttled: requests are now paced


async def test_5xx_and_connection_errors_are_retried_and_exhaustion_raises() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    res, sleep = make(handler, policy=RetryPolicy(max_attempts=3))
    with pytest.raises(SourceError, match="after 3 attempts"):
        await get_json(res)
    assert len(sleep.calls) == 2
    answers = [httpx.Response(503), httpx.Response(500), httpx.Response(200, json=5)]
    res, _ = make(lambda req: answers.pop(0))
    assert await get_json(res) == 5
    assert res.stats.server_errors == 2


async def test_malformed_body_is_retried() -> None:
    answers = [httpx.Response(200, content=b"{oops"), httpx.Response(200, json={"ok": 1})]
    res, _ = make(lambda req: answers.pop(0))
    assert await get_json(res) == {"ok": 1}


async def test_timeouts_are_retried() -> None:
    n = {"i": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        n["i"] += 1
        if n["i"] == 1:
            raise httpx.ReadTimeout("slow", request=req)
        return httpx.Response(200, json=1)

    res, _ = make(handler)
    assert await get_json(res) == 1
    assert res.stats.transport_errors == 1


async def test_401_calls_reauth_once_then_gives_up() -> None:
    seen = []

    async def reauth(req: httpx.Request) -> None:
        seen.append(req.url.path)

    res, _ = make(lambda req: httpx.Response(401, json={"error": "invalid_token"}))

    async def build() -> httpx.Request:
        return res.http.build_request("GET", "http://x/z")

    def parse(r: httpx.Response) -> int:
        if r.status_code != 200:
            raise SourceError(f"HTTP {r.status_code}")
        return 1

    with pytest.raises(SourceError, match="401"):
        await res.send(build, parse, on_unauthorized=reauth)
    assert seen == ["/z"]


async def test_retry_budget_stops_a_retry_storm() -> None:
    budget = RetryBudget(ratio=0.0, floor=2)
    res, sleep = make(lambda req: httpx.Response(503), budget=budget,
                      policy=RetryPolicy(max_attempts=50))
    with pytest.raises(SourceError, match="budget"):
        await get_json(res)
    assert len(sleep.calls) == 2
    assert budget.denied == 1


async def test_adaptive_limiter_halves_on_429_once_per_burst_and_grows_back() -> None:
    lim = AdaptiveLimiter(initial=8, minimum=1, maximum=16)
    gens = [await lim.acquire() for _ in range(8)]
    assert lim.in_flight == 8
    for g in gens[:4]:
        await lim.release(g, throttled=True)  # one burst of 429s: halve once
    assert lim.limit == 4.0
    assert lim.decreases == 1
    for g in gens[4:]:
        await lim.release(g)
    grown = lim.limit
    assert grown > 4.0
    for _ in range(40):
        await lim.release(await lim.acquire())
    assert lim.limit > grown
    assert lim.limit <= 16


async def test_adaptive_limiter_bounds_concurrency() -> None:
    lim = AdaptiveLimiter(initial=2, maximum=2)
    peak = {"now": 0, "max": 0}

    async def job() -> None:
        g = await lim.acquire()
        peak["now"] += 1
        peak["max"] = max(peak["max"], peak["now"])
        await asyncio.sleep(0)
        peak["now"] -= 1
        await lim.release(g)

    await asyncio.gather(*(job() for _ in range(20)))
    assert peak["max"] == 2
