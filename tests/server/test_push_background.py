"""The service drains the CXone write-back queue in the background while write-back is
configured (the credentials and a push group), and ``/metrics`` shows the queue's backlog
(``dncguard_cxone_outbox``). Before, nothing in the service sent the queue: an opt-out taken
by the API waited for someone to run ``dncguard cxone push``, and no gauge showed it waiting.

The loop's sleep is the test's (:class:`Ticks`): a pass runs when the test says so, never
after a real wait."""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dncguard.config import Settings, load_settings
from dncguard.errors import SourceError
from dncguard.outbox import DEAD, DELIVERED, PENDING, Outbox
from dncguard.sandbox import SandboxServer, run_sandbox
from dncguard.server.app import create_app
from dncguard.sources.cxone import TOPIC, CxoneClient, enqueue_optout, load_cxone
from dncguard.sources.cxone.push import BackgroundPush
from dncguard.store import get_engine

from ..conftest import LogLines, log_lines
from ..fakes import FakeSleep
from .conftest import free_port

#: the module (``dncguard.sources.cxone.push`` as an attribute is the function ``push``)
push_mod = importlib.import_module("dncguard.sources.cxone.push")

NUMBER, NATIONAL = "+12025550161", "2025550161"


class Ticks:
    """The loop's sleep: records each wait and returns only when the test calls
    :meth:`tick` (from its own thread), so each pass runs when the test says."""

    def __init__(self) -> None:
        self.events: list[asyncio.Event] = []
        self.delays: list[float] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, seconds: float) -> None:
        self.loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self.events.append(event)
        self.delays.append(seconds)
        await event.wait()

    def tick(self) -> None:
        """Wake the loop from its latest wait."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.events[-1].set)


def wait_until(pred: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


@pytest.fixture
def cxone_log() -> Iterator[LogLines]:
    with log_lines("dncguard.sources.cxone") as lines:
        yield lines


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with run_sandbox() as sb:
        yield sb


def point_at(sb: SandboxServer, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """CXone settings (only: not the sandbox's http-batch source) for ``sb``."""
    for k, v in sb.env().items():
        if k.startswith("DNCGUARD_CXONE_"):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("DNCGUARD_CXONE_MAX_ATTEMPTS", "1")
    for k, v in extra.items():
        monkeypatch.setenv(f"DNCGUARD_CXONE_{k}", v)


def gauge(client: TestClient) -> dict[str, float]:
    text = client.get("/metrics").text
    return {m[1]: float(m[2]) for m in
            re.finditer(r'^dncguard_cxone_outbox\{what="([a-z_]+)"\} (\S+)$', text, re.M)}


def test_an_optout_taken_by_the_api_reaches_cxone_through_the_background_push(
        sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The opt-out waits in the queue (the gauge shows it) until the next pass, which
    writes it to the push group; then the gauge shows no backlog. Leaving the app stops
    the loop."""
    point_at(sandbox, monkeypatch, PUSH_GROUP="364")
    ticks = Ticks()
    made: list[Any] = []

    class Driven(BackgroundPush):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **{**kw, "sleep": ticks})
            made.append(self)

    monkeypatch.setattr(push_mod, "BackgroundPush", Driven)
    app = create_app(load_settings(), no_auth=True, run_jobs=False)
    assert len(made) == 1 and made[0].group_id == "364"
    with TestClient(app) as client:
        wait_until(lambda: len(ticks.delays) == 1, "the first pass (nothing queued)")
        assert made[0].last is not None and made[0].last.sent == 0
        assert gauge(client)["pending"] == 0
        resp = client.post("/v1/dnc", json={"phone": NUMBER, "reason": "asked"})
        assert resp.status_code == 201, resp.text
        before = gauge(client)
        assert before["pending"] == 1 and before["delivered"] == 0
        assert before["oldest_pending_age_seconds"] >= 0
        assert NATIONAL not in sandbox.state.records[364]  # not before the next pass
        ticks.tick()
        wait_until(lambda: len(ticks.delays) == 2, "the second pass")
        assert NATIONAL in sandbox.state.records[364]
        report = made[0].last
        assert report is not None and report.delivered == 1 and report.ok
        after = gauge(client)
        assert after["pending"] == 0 and after["delivered"] == 1 and after["dead"] == 0
        assert ticks.delays == [push_mod.PUSH_SECONDS] * 2
    assert made[0]._stop.is_set()  # the lifespan stopped it
    assert Outbox(get_engine(load_settings())).stats(TOPIC) == {PENDING: 0, DELIVERED: 1,
                                                                 DEAD: 0}


def test_without_a_push_group_nothing_pushes_and_the_backlog_shows(
        sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Credentials without a push group queue opt-outs that the service cannot send: it
    says so at start-up, and the gauge shows them waiting."""
    point_at(sandbox, monkeypatch)
    caplog.set_level(logging.WARNING, "dncguard.sources.cxone")
    app = create_app(load_settings(), no_auth=True, run_jobs=False)
    assert any("DNCGUARD_CXONE_PUSH_GROUP is not set" in r.getMessage()
               for r in caplog.records)
    with TestClient(app) as client:
        assert client.post("/v1/dnc", json={"phone": NUMBER}).status_code == 201
        assert gauge(client)["pending"] == 1
    assert sandbox.state.records[364].get(NATIONAL) is None


def test_without_cxone_there_is_no_pusher_and_the_gauge_reads_zero(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials: no pusher is made; the gauge is there, every number 0."""
    made: list[Any] = []
    monkeypatch.setattr(push_mod, "BackgroundPush", lambda *a, **k: made.append(1))
    app = create_app(load_settings(), no_auth=True, run_jobs=False)
    with TestClient(app) as client:
        assert gauge(client) == {"pending": 0, "delivered": 0, "dead": 0, "failing": 0,
                                 "oldest_pending_age_seconds": 0,
                                 "max_attempts": 0}
    assert made == []


# -- the loop itself ------------------------------------------------------------------------

class Stopping:
    """A sleep that records each wait and stops ``pusher`` after ``rounds`` of them."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.delays: list[float] = []
        self.pusher: Any = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if len(self.delays) >= self.rounds:
            self.pusher.stop()
        await asyncio.sleep(0)


def driven(settings: Settings, rounds: int, **kw: Any) -> tuple[Any, Stopping]:
    sleep = Stopping(rounds)
    pusher = BackgroundPush(settings, "364", interval=10.0, max_interval=35.0, sleep=sleep,
                            **kw)
    sleep.pusher = pusher
    return pusher, sleep


async def test_failed_passes_are_logged_without_numbers_or_secrets_and_back_off(
        sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, cxone_log: LogLines) -> None:
    """A pass that raises is logged (the number in its text masked, a foreign error by its
    type only), the next waits twice as long up to the limit, and the first pass that goes
    through delivers and sets the wait back."""
    point_at(sandbox, monkeypatch, PUSH_GROUP="364")
    settings = load_settings()
    secret = load_cxone(settings).access_key_secret
    assert secret is not None
    assert enqueue_optout(get_engine(settings), NUMBER)
    built: list[int] = []

    def factory() -> CxoneClient:
        built.append(1)
        if len(built) == 1:
            raise SourceError(f"cannot reach CXone for {NUMBER}", source="cxone")
        if len(built) <= 3:
            raise RuntimeError(f"driver said {NUMBER} {secret.get_secret_value()}")
        return CxoneClient(load_cxone(settings), sleep=FakeSleep(), rng=random.Random(7))

    pusher, sleep = driven(settings, 5, client_factory=factory)
    await pusher.run_forever()
    assert sleep.delays == [20.0, 35.0, 35.0, 10.0, 10.0]
    assert NATIONAL in sandbox.state.records[364]
    failures = [line for line in cxone_log.lines if "pass failed" in line]
    assert len(failures) == 3
    assert "SourceError: cannot reach CXone for +1202" in failures[0]
    assert failures[1].endswith(": RuntimeError")
    joined = "\n".join(cxone_log.lines)
    assert NATIONAL not in joined and secret.get_secret_value() not in joined


async def test_cxone_not_answering_ends_the_pass_and_backs_off(
        sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, cxone_log: LogLines) -> None:
    """A write CXone does not answer at all ends the pass after that batch (the other items
    stay due, untouched), and the loop waits longer before the next."""
    point_at(sandbox, monkeypatch, PUSH_GROUP="364", WRITE_BATCH_SIZE="1",
             ISSUER=f"http://127.0.0.1:{free_port()}")  # nothing answers there
    settings = load_settings()
    engine = get_engine(settings)
    for n in ("+12025550161", "+12125550162", "+13055550163"):
        assert enqueue_optout(engine, n)
    pusher, sleep = driven(settings, 1, client_factory=lambda: CxoneClient(
        load_cxone(settings), sleep=FakeSleep(), rng=random.Random(7)))
    await pusher.run_forever()
    assert sleep.delays == [20.0]
    report = pusher.last
    assert report is not None and report.write_error and report.sent == 1
    items = Outbox(engine).items(TOPIC)
    assert [i.attempts for i in items] == [1, 0, 0]
    assert all(i.status == PENDING for i in items)
    assert any("CXone gave no usable answer" in line for line in cxone_log.lines)


def test_one_pusher_at_a_time_in_a_process(sandbox: SandboxServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """While a pass of this process runs, another pass (another app's) is skipped."""
    point_at(sandbox, monkeypatch, PUSH_GROUP="364")
    settings = load_settings()
    assert enqueue_optout(get_engine(settings), NUMBER)
    first, second = (BackgroundPush(settings, "364") for _ in range(2))
    with push_mod._ONE_PUSHER:  # as the first one's pass holds it
        assert second.run_once() is None
    assert Outbox(get_engine(settings)).items(TOPIC)[0].attempts == 0
    report = first.run_once()
    assert report is not None and report.delivered == 1


class StopAfter(threading.Event):
    """An event that sets itself when asked the ``n``-th time."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.asked = 0

    def is_set(self) -> bool:
        self.asked += 1
        if self.asked >= self.n:
            self.set()
        return super().is_set()


def test_a_stopped_pusher_starts_no_pass_and_a_running_one_ends_after_its_batch(
        sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped during a pass, the pusher sends the batch it holds and claims no other."""
    point_at(sandbox, monkeypatch, PUSH_GROUP="364", WRITE_BATCH_SIZE="1")
    settings = load_settings()
    engine = get_engine(settings)
    for n in ("+12025550161", "+12125550162"):
        assert enqueue_optout(engine, n)
    pusher = BackgroundPush(settings, "364")
    # asked when the pass starts, then before each batch is claimed: stopped before the second
    pusher._stop = StopAfter(3)
    report = pusher.run_once()
    assert report is not None and report.delivered == 1
    assert Outbox(engine).stats(TOPIC)[PENDING] == 1
    assert pusher.run_once() is None  # stopped: no pass at all


def test_the_gauge_reads_the_oldest_pending_age(settings: Settings) -> None:
    """The gauge's numbers come from the outbox's aggregates for the push topic."""
    engine = get_engine(settings)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    box = Outbox(engine, clock=lambda: now - timedelta(seconds=90))
    assert enqueue_optout(engine, NUMBER, outbox=box)
    numbers = push_mod.outbox_metrics(Outbox(engine), now=now)
    assert numbers["pending"] == 1 and numbers["oldest_pending_age_seconds"] == 90
