"""Resilience for every remote source.

* a timeout on every attempt as a whole (``RetryPolicy.timeout``: connecting, sending and
  reading the whole body), so a server dripping its answer cannot hold a check longer than
  that per attempt (httpx's own timeouts apply per read);
* with ``max_body`` given to :meth:`Resilient.send`, a bound on the answer: the body is
  streamed and its reading stopped past that many (decoded) bytes, so an answer far larger
  than the request can call for never fills memory; a 200/201 answer that large is a
  :class:`~dncguard.errors.SourceError` (not understood, not retried), an error status's
  body is dropped (its status still counts);
* retries with exponential backoff and full jitter on 429, 5xx, connection errors, timeouts
  and unreadable or undecodable bodies; ``Retry-After`` (seconds or HTTP date) is honoured
  when present and never relied on;
* a retry budget (retries of failures may add at most ``budget_ratio`` of the requests, plus a
  floor), so an outage does not multiply the load; 429s are not charged to it: they are slowed
  down by the limiter and bounded by ``max_attempts``;
* adaptive concurrency and rate (AIMD): requests in flight grow by one per window of
  successes and halve on a 429; after a 429 requests are also paced at a rate that grows
  additively and drops multiplicatively, so a large job runs close to the server's limit
  without a storm;
* an injectable clock, sleep and random source, so tests never wait through real backoff.

A request that cannot complete raises :class:`~dncguard.errors.SourceError`; callers turn that
into ``error`` / ``SOURCE_ERROR`` verdicts (fail closed).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..._lazy import lazy_import
from ...errors import SourceError
from ...phones import mask_numbers

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_import("httpx", globals(), "httpx")

log = logging.getLogger("dncguard.sources.remote")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


#: Retries made by every remote client of this process, by (source, cause): what the
#: service's ``dncguard_remote_retries_total`` metric reports.
RETRIES_TOTAL: collections.Counter[tuple[str, str]] = collections.Counter()


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Delays are in seconds."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    timeout: float = 30.0
    budget_ratio: float = 0.5
    budget_floor: float = 20.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date); None if absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max_delay, base * 2**attempt)] (attempt counts from 0)."""
    cap = min(policy.max_delay, policy.base_delay * (2 ** min(attempt, 30)))
    return rng.uniform(0.0, cap)


class RetryBudget:
    """A token bucket of retries: each first attempt deposits ``ratio`` tokens, each retry
    withdraws one. Starts (and never drops below being refilled to) ``floor`` tokens."""

    def __init__(self, ratio: float = 0.5, floor: float = 20.0) -> None:
        self.ratio = ratio
        self.floor = floor
        self.tokens = floor
        self.cap = max(floor, 1.0) * 10
        self.denied = 0

    def on_request(self) -> None:
        self.tokens = min(self.cap, self.tokens + self.ratio)

    def try_retry(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.denied += 1
        return False


class AdaptiveLimiter:
    """AIMD control of concurrency and, once the server has throttled, of the request rate.

    * concurrency: +1 after ``limit`` successes, halved on a 429;
    * rate: unlimited until the first 429; then paced at 70% of the rate observed over the
      last second, cut again by 30% on each further 429 burst and raised by
      ``max(rate_step, 10%)`` requests/second per second of successes.

    Simultaneous 429s of one burst (requests started in the same generation) count as one.
    """

    def __init__(self, initial: int = 4, minimum: int = 1, maximum: int = 64, *,
                 sleep: Sleep | None = None, clock: Clock | None = None,
                 min_rate: float = 0.2, rate_step: float = 1.0) -> None:
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.limit = float(min(max(initial, self.minimum), self.maximum))
        self.in_flight = 0
        self.generation = 0
        self.decreases = 0
        self.rate: float | None = None
        self.min_rate = min_rate
        self.rate_step = rate_step
        self.sleep: Sleep = sleep or _real_sleep
        self.clock: Clock = clock or time.monotonic
        self._next = 0.0
        self._window: deque[float] = deque()
        self._cond = asyncio.Condition()

    async def acquire(self) -> int:
        async with self._cond:
            while self.in_flight >= int(self.limit):
                await self._cond.wait()
            self.in_flight += 1
            generation = self.generation
            wait = 0.0
            if self.rate is not None:
                now = self.clock()
                start = max(now, self._next)
                self._next = start + 1.0 / self.rate
                wait = start - now
        if wait > 0:
            await self.sleep(wait)
        return generation

    def _observed(self, now: float) -> float:
        """Successes per second over the last second (or since the first, if more recent)."""
        while self._window and self._window[0] < now - 1.0:
            self._window.popleft()
        if not self._window:
            return 0.0
        return len(self._window) / min(1.0, max(0.25, now - self._window[0]))

    async def release(self, generation: int, *, throttled: bool = False) -> None:
        async with self._cond:
            self.in_flight -= 1
            now = self.clock()
            if throttled:
                if generation == self.generation:
                    self.limit = max(float(self.minimum), self.limit / 2)
                    observed = self._observed(now)
                    base = self.rate if self.rate is not None else observed
                    if observed > 0:
                        base = min(base, observed) if base > 0 else observed
                    self.rate = max(self.min_rate, 0.7 * base)
                    self.generation += 1
                    self.decreases += 1
            else:
                self._window.append(now)
                self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
                if self.rate is not None:  # about +max(step, 10%) per second
                    self.rate += max(self.rate_step, 0.1 * self.rate) / self.rate
            self._cond.notify_all()


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    sleeps: list[float] = field(default_factory=list)


class UnreadableResponse(ValueError):
    """Raised by a parser for an answer it cannot read (say, a token answer that is not a JSON
    object): retried like a 5xx, and its message (which must not quote the body) is the
    reason given."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):  # (the common case costs one length check)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise SourceError(f"the answer repeats the key {mask_numbers(key[:40])!r} in "
                                  "one object; which value counts is unknowable, so it is "
                                  "not used")
            seen.add(key)
    return found


def strict_json(response: httpx.Response) -> Any:
    """The body as JSON; an object that repeats a key is a :class:`SourceError` (read last
    one wins, ``{"status": "suppressed", "status": "allowed"}`` would be an allow). Invalid
    JSON raises ``ValueError`` (retried by :meth:`Resilient.send`)."""
    return response.json(object_pairs_hook=_unique_keys)


class _Retryable(Exception):
    def __init__(self, why: str, retry_after: float | None = None, throttled: bool = False):
        super().__init__(why)
        self.why = why
        self.retry_after = retry_after
        self.throttled = throttled


class Resilient:
    """Sends requests through an :class:`httpx.AsyncClient` with the policy above.

    ``send`` takes a factory (so every attempt gets a fresh token) and a parser (a body that
    cannot be parsed is retried like a 5xx). ``on_unauthorized`` is awaited once on a 401,
    then the request is repeated once; a second 401 is final.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        policy: RetryPolicy | None = None,
        *,
        limiter: AdaptiveLimiter | None = None,
        budget: RetryBudget | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        source: str = "remote",
    ) -> None:
        self.http = http
        self.policy = policy or RetryPolicy()
        self.limiter = limiter or AdaptiveLimiter(sleep=sleep, clock=clock)
        self.budget = budget or RetryBudget(self.policy.budget_ratio, self.policy.budget_floor)
        self.sleep: Sleep = sleep or _real_sleep
        self.rng = rng or random.Random()
        self.clock: Clock = clock or time.monotonic
        self.source = source
        self.stats = Stats()

    async def _capped(self, request: httpx.Request, max_body: int, what: str
                      ) -> httpx.Response:
        """The answer to ``request`` with its body read (decoded) up to ``max_body`` bytes:
        beyond that a 200/201 answer raises :class:`SourceError` (nothing in an answer that
        large is used), and another status comes back with its body dropped."""
        response = await self.http.send(request, stream=True)
        chunks: list[bytes] = []
        size = 0
        try:
            declared = response.headers.get("Content-Length", "")
            too_large = (declared.isdigit() and int(declared) > max_body
                         and "Content-Encoding" not in response.headers)
            if not too_large:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_body:
                        too_large = True
                        break
                    chunks.append(chunk)
        finally:
            await response.aclose()
        if too_large:
            if response.status_code in (200, 201):
                self.stats.server_errors += 1
                raise SourceError(f"{self.source} answered the {what} with more than "
                                  f"{max_body:,} bytes, more than the request can call for; "
                                  "not understood, so the numbers are not verified",
                                  source=self.source)
            chunks = []
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length",
                                        "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers,
                              content=b"".join(chunks), request=request)

    async def send(
        self,
        make: Callable[[], Awaitable[httpx.Request]],
        parse: Callable[[httpx.Response], T],
        *,
        on_unauthorized: Callable[[httpx.Request], Awaitable[None]] | None = None,
        what: str = "request",
        max_body: int | None = None,
    ) -> T:
        """Send the request ``make`` builds and ``parse`` its answer, with the policy's
        retries; ``max_body``: the most bytes of answer read (see :meth:`_capped`)."""
        policy = self.policy
        self.budget.on_request()
        reauthed = False
        attempt = 0
        while True:
            # The slot first, then the request: a token fetched by ``make`` is current when sent.
            # (``make`` must not send through this same instance: token grants use their own.)
            generation = await self.limiter.acquire()
            throttled = False
            try:
                request = await make()
                self.stats.requests += 1
                try:
                    async with asyncio.timeout(policy.timeout):  # the attempt as a whole
                        if max_body is None:
                            response = await self.http.send(request)
                        else:
                            response = await self._capped(request, max_body, what)
                except TimeoutError:
                    self.stats.transport_errors += 1
                    raise _Retryable(f"timed out (no whole answer in {policy.timeout:g}s)"
                                     ) from None
                except httpx.DecodingError:
                    self.stats.server_errors += 1
                    raise _Retryable("undecodable body (DecodingError)") from None
                except httpx.TimeoutException as exc:
                    self.stats.transport_errors += 1
                    raise _Retryable(f"timed out ({type(exc).__name__})") from None
                except httpx.TransportError as exc:
                    self.stats.transport_errors += 1
                    raise _Retryable(f"connection failed ({type(exc).__name__})") from None
                status = response.status_code
                if status == 401 and on_unauthorized is not None and not reauthed:
                    reauthed = True
                    await on_unauthorized(request)
                    continue
                if status in RETRY_STATUSES:
                    throttled = status == 429
                    if throttled:
                        self.stats.throttled += 1
                    else:
                        self.stats.server_errors += 1
                    raise _Retryable(f"HTTP {status}",
                                     parse_retry_after(response.headers.get("Retry-After")),
                                     throttled)
                try:
                    return parse(response)
                except SourceError:
                    raise
                except UnreadableResponse as exc:
                    self.stats.server_errors += 1
                    raise _Retryable(f"unreadable response: {exc}") from None
                except (ValueError, KeyError, TypeError) as exc:
                    self.stats.server_errors += 1
                    raise _Retryable(f"unreadable response ({type(exc).__name__})") from None
            except _Retryable as exc:
                attempt += 1
                if attempt >= policy.max_attempts:
                    raise SourceError(f"{self.source} {what} failed after {attempt} attempts: "
                                      f"{exc.why}", source=self.source) from None
                if not exc.throttled and not self.budget.try_retry():
                    raise SourceError(f"{self.source} {what} failed ({exc.why}); retry budget "
                                      "exhausted", source=self.source) from None
                delay = backoff_delay(attempt - 1, policy, self.rng)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, policy.max_retry_after))
                self.stats.retries += 1
                RETRIES_TOTAL[(self.source, "throttled" if exc.throttled else "failure")] += 1
                self.stats.sleeps.append(delay)
                log.info("%s %s: %s; retry %d in %.2fs", self.source, what, exc.why, attempt,
                         delay)
                await self.limiter.release(generation, throttled=throttled)
                generation = -1
                await self.sleep(delay)
            finally:
                if generation >= 0:
                    await self.limiter.release(generation, throttled=throttled)


def error_message(response: httpx.Response) -> str:
    """A short message from an error body: error_description, message, error, else the status
    (any phone number it quotes masked: the message goes into logs and verdicts)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error_description", "errorDescription", "message", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:  # it may quote a number: masked
                return f"HTTP {response.status_code}: {mask_numbers(value[:200])}"
    return f"HTTP {response.status_code}"
