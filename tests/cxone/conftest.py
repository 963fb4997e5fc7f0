"""CXone fixtures: a sandbox on a real socket (port 0), settings and clients pointed at it,
fake sleep (backoff never waits), and verdict assertions."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from dncguard.config import Settings, load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import Decision, ReasonCode, Verdict
from dncguard.sandbox import SandboxConfig, SandboxServer, run_sandbox
from dncguard.sources.cxone import CxoneCheck, CxoneClient, CxoneSettings, CxoneSync
from dncguard.sources.local import LocalListsCheck
from dncguard.sources.protocol import Check

from ..fakes import FakeSleep


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., SandboxServer]]:
    started: list[Any] = []

    def start(config: SandboxConfig | None = None, data: dict[str, Any] | None = None
              ) -> SandboxServer:
        cm = run_sandbox(config, data=data)
        server = cm.__enter__()
        started.append(cm)
        return server

    yield start
    for cm in reversed(started):
        cm.__exit__(None, None, None)


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., SandboxServer]) -> SandboxServer:
    return sandbox_factory()


@pytest.fixture
def cxsettings(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> Iterator[Settings]:
    """The settings of a fresh home with CXone configured as ``sandbox`` (from the
    environment, as a deployment gives them): opt-outs are queued for push."""
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    yield load_settings(home=tmp_path / "home")


def cx_settings(sb: SandboxServer, **over: Any) -> CxoneSettings:
    cfg = sb.state.config
    key, secret = next(iter(cfg.access_keys.items()))
    values: dict[str, Any] = {
        "issuer": sb.url, "client_id": cfg.client_id, "client_secret": cfg.client_secret,
        "access_key_id": key, "access_key_secret": secret, "timeout_seconds": 2.0,
        "max_attempts": 8}
    values.update(over)
    return CxoneSettings(**values)


def make_client(cx: CxoneSettings, sleep: FakeSleep, clock: Callable[[], float] | None = None
                ) -> CxoneClient:
    return CxoneClient(cx, sleep=sleep, rng=random.Random(7), clock=clock)


def scrubber(settings: Settings, cx: CxoneSettings, sleep: FakeSleep, *,
             clock: Callable[[], datetime] | None = None,
             extra: list[Check] | None = None) -> tuple[Scrubber, CxoneCheck]:
    store = ListStore(settings)
    check = CxoneCheck(settings, cx, store=store, client_factory=lambda: make_client(cx, sleep),
                       **({"clock": clock} if clock else {}))
    checks: list[Check] = [LocalListsCheck(store), check, *(extra or [])]
    return Scrubber(settings, checks=checks), check


async def verdicts(scr: Scrubber, numbers: list[str], at: datetime | None = None
                   ) -> list[Verdict]:
    ctx = scr.context(at=at or datetime.now(UTC))
    out = await scr.ascrub(numbers, ctx=ctx)
    assert_fail_closed(out, numbers)
    return out


def assert_fail_closed(out: list[Verdict], numbers: list[str]) -> None:
    """Every input number has a verdict, and no failed check yields allow."""
    assert len(out) == len(numbers)
    for v, n in zip(out, numbers, strict=True):
        assert v.input == n
        assert isinstance(v.decision, Decision)
        if any(r.code == ReasonCode.SOURCE_ERROR for r in v.reasons):
            assert v.decision is not Decision.ALLOW, v


def decisions(out: list[Verdict]) -> dict[str, Decision]:
    return {v.input: v.decision for v in out}


def us_numbers(count: int, start_area: int = 201) -> list[str]:
    """Distinct valid-looking fictional US numbers: NXX 555, lines 0000-9999 per area."""
    areas = [a for a in range(start_area, 990) if a % 100 not in (11,) and str(a)[1] != "9"]
    out = []
    for a in areas:
        for line in range(10_000):
            out.append(f"{a}555{line:04d}")
            if len(out) == count:
                return out
    return out


class SandboxClock:
    """The sandbox's clock, set by the test (``sb.state.now``), starting at ``start``."""

    def __init__(self, start: datetime = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def clocked_group(sandbox_factory: Callable[..., SandboxServer], name: str,
                  phones: list[str]) -> tuple[SandboxServer, SandboxClock, int]:
    """A sandbox on a clock of the test's, with one group of ``phones``, each written a
    second after the other."""
    sb = sandbox_factory(data={})
    clock = SandboxClock()
    sb.state.now = clock
    gid = sb.state.add_group(name)
    for phone in phones:
        sb.state.add_record(gid, phone)
        clock.now += timedelta(seconds=1)
    return sb, clock, gid


#: (request, the sandbox's response) -> what to answer instead: a response, a JSON body (sent
#: with the sandbox's status), or None to pass the sandbox's answer on.
Hook = Callable[[httpx.Request, httpx.Response], Any]


class Rewriting(httpx.AsyncBaseTransport):
    """Sends to the sandbox over a real socket; ``hook`` may rewrite each answer."""

    def __init__(self, hook: Hook) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.hook = hook

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        out = self.hook(request, response)
        if out is None:
            return response
        if isinstance(out, httpx.Response):
            return out
        return httpx.Response(response.status_code, json=out, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def client(cx: CxoneSettings, sleep: FakeSleep, hook: Hook | None = None) -> CxoneClient:
    """A client of the sandbox, its answers rewritten by ``hook`` when given."""
    http = httpx.AsyncClient(transport=Rewriting(hook)) if hook else None
    return CxoneClient(cx, http=http, sleep=sleep, rng=random.Random(7))


async def sync(settings: Settings, cx: CxoneSettings, sleep: FakeSleep,
               hook: Hook | None = None) -> Any:
    """Sync the configured (or every active) group; the sync's report."""
    async with client(cx, sleep, hook) as c:
        return await CxoneSync(settings, cx, c).sync()


async def judge(settings: Settings, cx: CxoneSettings, sleep: FakeSleep, numbers: list[str],
                hook: Hook | None = None, at: datetime | None = None) -> dict[str, Decision]:
    """Each number's decision by the local lists and the CXone check (live searches, when
    made, rewritten by ``hook``)."""
    store = ListStore(settings)
    check = CxoneCheck(settings, cx, store=store, client_factory=lambda: client(cx, sleep, hook))
    return decisions(await verdicts(Scrubber(settings, checks=[LocalListsCheck(store), check]),
                                    numbers, at=at))


def records_hook(change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Hook:
    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith("/records"):
            body = response.json()
            rs = body["resultSet"]
            rs["dncRecords"] = change(rs["dncRecords"])
            return httpx.Response(200, json=body, request=request)
        return None
    return hook
