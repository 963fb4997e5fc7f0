"""What the http-batch check could not verify, it never allows.

An answer it does not wholly understand (a result that is not an object, a key the contract
does not have, an ``allowed`` with a reason, a key given twice) fails closed; an attempt is
bounded as a whole, not per read; settings that would be ignored are refused; concurrent
checks and several event loops sharing one check do not break each other; an unreadable
token answer or an undecodable body is a failed attempt, not a raw exception.

Unit tests use ``httpx.MockTransport``; timing, gzip and concurrency tests a real loopback
socket (:class:`Loopback`). Backoff never really sleeps (:class:`FakeSleep`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from dncguard.config import load_settings
from dncguard.errors import ConfigError
from dncguard.models import Decision, Reason, ReasonCode
from dncguard.sandbox import run_sandbox
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.registry import default_checks
from dncguard.sources.remote import HttpBatchCheck, HttpBatchSettings

from ..fakes import FakeSleep

BASE = "https://dnc.example.test"
NUMBERS = ["+12025550123", "+12025550124"]
FULL: dict[str, Any] = {"base_url": BASE, "token_url": f"{BASE}/oauth/token",
                        "client_id": "id", "client_secret": "secret",
                        "list_ids": ["remote-dnc"], "max_attempts": 2}


# -- helpers ----------------------------------------------------------------------------------

def mock_check(batch: Callable[[list[str]], httpx.Response], *,
               token: Callable[[], httpx.Response] | None = None,
               **over: Any) -> HttpBatchCheck:
    """A check whose service is ``batch`` (given the numbers sent) behind ``token``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            if token is not None:
                return token()
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        return batch([c["phoneNumber"] for c in json.loads(request.content)["contacts"]])

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return HttpBatchCheck(HttpBatchSettings(**{**FULL, **over}), http=http, sleep=FakeSleep())


def raw(body: str) -> httpx.Response:
    """A 200 answer with exactly ``body`` (JSON with repeated keys cannot be built from a
    dict)."""
    return httpx.Response(200, content=body.encode(),
                          headers={"Content-Type": "application/json"})


def allowed(sent: list[str]) -> httpx.Response:
    return httpx.Response(200, json={"results": [{"phoneNumber": n, "status": "allowed"}
                                                 for n in sent]})


async def run(check: HttpBatchCheck, nums: list[str] = NUMBERS) -> list[list[Reason]]:
    batch = Batch.of(nums, ["US"] * len(nums), [None] * len(nums))
    return await check.check(batch, CheckContext(at=datetime.now(UTC)))


def errors(reasons: list[Reason]) -> bool:
    return bool(reasons) and all(r.code == ReasonCode.SOURCE_ERROR
                                 and r.decision is Decision.ERROR for r in reasons)


def details(out: list[list[Reason]]) -> str:
    return " | ".join(r.detail or "" for rs in out for r in rs)


@dataclass
class Reply:
    """What the loopback service sends for one batch request."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0  # seconds between the body's bytes (0: all at once)


def results_for(sent: list[str], status: str = "allowed") -> Reply:
    return Reply(json.dumps({"results": [{"phoneNumber": n, "status": status}
                                         for n in sent]}).encode())


BatchHandler = Callable[[str, list[str]], Awaitable[Reply]]  # (bearer token, numbers sent)


class Loopback:
    """A minimal HTTP/1.1 service on a real loopback socket in the test's event loop: a token
    endpoint issuing ``tok1``, ``tok2``... and a batch endpoint answered by ``batch``."""

    def __init__(self, batch: BatchHandler) -> None:
        self.batch = batch
        self.tokens = 0
        self.batches = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Loopback:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def settings(self, **over: Any) -> HttpBatchSettings:
        return HttpBatchSettings(**{**FULL, "base_url": self.url,
                                    "token_url": f"{self.url}/oauth/token", **over})

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            path = head[0].split(" ")[1]
            fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
            fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
            body = await reader.readexactly(int(fields.get("content-length", "0")))
            if path == "/oauth/token":
                self.tokens += 1
                reply = Reply(json.dumps({"access_token": f"tok{self.tokens}",
                                          "expires_in": 3600}).encode())
            else:
                self.batches += 1
                sent = [c["phoneNumber"] for c in json.loads(body)["contacts"]]
                reply = await self.batch(fields.get("authorization", "")[7:], sent)
            await self._send(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up (a timeout): nothing to answer
        finally:
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(reply.body)),
                   "Connection": "close", **reply.headers}
        writer.write(f"HTTP/1.1 {reply.status} X\r\n".encode()
                     + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
                     + b"\r\n")
        if not reply.drip:
            writer.write(reply.body)
        for i in range(len(reply.body) if reply.drip else 0):
            writer.write(reply.body[i:i + 1])
            await writer.drain()
            await asyncio.sleep(reply.drip)
        await writer.drain()


# -- 1. a result that is not an object ----------------------------------------------------------

@pytest.mark.parametrize("shape", ["nested", "null", "string", "number"])
async def test_a_result_that_is_not_an_object_fails_the_chunk(shape: str) -> None:
    """An entry of ``results`` that is not an object (a nested list holding a ``suppressed``,
    a null) fails every number of the chunk: dropped, its number would read as allowed."""

    def answer(sent: list[str]) -> httpx.Response:
        first = {"phoneNumber": sent[0], "status": "allowed"}
        other: Any = {"nested": [{"phoneNumber": sent[1], "status": "suppressed"}],
                      "null": None, "string": "suppressed", "number": 5}[shape]
        return httpx.Response(200, json={"results": [
            first, other, {"phoneNumber": sent[1], "status": "allowed"}]})

    out = await run(mock_check(answer))
    assert all(errors(r) for r in out), out
    assert "1 of 3 results that are not objects" in details(out)


# -- 2. keys outside the contract; allowed with a reason ---------------------------------------

@pytest.mark.parametrize("extra", [{"error": "list unavailable; not checked"},
                                   {"checked": False}, {"+12025550199": "suppressed"}])
async def test_a_result_key_outside_the_contract_fails_the_chunk(extra: dict[str, Any]) -> None:
    """A result key the contract does not define (``error``, ``checked``...) is not ignored:
    every number of the chunk is an error naming it (masked, if it looks like a number)."""

    def answer(sent: list[str]) -> httpx.Response:
        return httpx.Response(200, json={"results": [
            {"phoneNumber": sent[0], "status": "allowed", **extra},
            {"phoneNumber": sent[1], "status": "allowed"}]})

    out = await run(mock_check(answer))
    assert all(errors(r) for r in out), out
    key = next(iter(extra))
    said = details(out)
    assert "fields the contract does not have" in said
    assert (key if key[0] != "+" else "+120255*****") in said
    assert "+12025550199" not in said


@pytest.mark.parametrize(("reason", "allows"), [("list unavailable", False), ({"x": 1}, False),
                                                ("", True), (None, True)])
async def test_allowed_with_a_reason_is_not_verified(reason: Any, allows: bool) -> None:
    """``allowed`` that gives a reason contradicts itself: an error for its number (the other
    number of the chunk stays allowed); an empty or null reason is an ordinary allow."""

    def answer(sent: list[str]) -> httpx.Response:
        return httpx.Response(200, json={"results": [
            {"phoneNumber": sent[0], "status": "allowed", "reason": reason},
            {"phoneNumber": sent[1], "status": "allowed"}]})

    out = await run(mock_check(answer))
    assert out[1] == []
    if allows:
        assert out[0] == []
    else:
        assert errors(out[0]), out
        assert "allowed with a reason" in details(out)


# -- 3. a key given twice ------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "key"), [
    ('{"results": [{"phoneNumber": "%s", "status": "suppressed", "status": "allowed"}, '
     '{"phoneNumber": "%s", "status": "allowed"}]}', "status"),
    ('{"results": [{"phoneNumber": "%s", "status": "suppressed"}], '
     '"results": [{"phoneNumber": "%s", "status": "allowed"}]}', "results"),
])
async def test_a_repeated_key_fails_the_chunk(body: str, key: str) -> None:
    """A key given twice in one object is not read last-one-wins (``suppressed`` then
    ``allowed`` was an allow): the chunk is an error naming the key."""
    out = await run(mock_check(lambda sent: raw(body % tuple(sent))))
    assert all(errors(r) for r in out), out
    assert f"repeats the key '{key}'" in details(out)


# -- 4. a timeout bounds the attempt as a whole ---------------------------------------------------

async def test_a_dripping_answer_is_cut_at_the_timeout_per_attempt() -> None:
    """A service dripping its answer a byte at a time (each read well within the timeout)
    is cut off at ``timeout_seconds`` per attempt; every attempt timed out: an error."""

    async def drip(_token: str, sent: list[str]) -> Reply:
        reply = results_for(sent)
        reply.drip = 0.05  # about 5 s for the whole body
        return reply

    async with Loopback(drip) as svc:
        sleep = FakeSleep()
        check = HttpBatchCheck(svc.settings(timeout_seconds=0.3), sleep=sleep)
        started = time.monotonic()
        out = await run(check)
        took = time.monotonic() - started
    assert all(errors(r) for r in out), out
    assert "timed out" in details(out)
    assert svc.batches == 2  # retried once (max_attempts 2), backoff not really slept
    assert len([s for s in sleep.calls if s > 0]) <= 1
    assert took < 2.0, took


async def test_a_timed_out_attempt_is_retried() -> None:
    """A timeout is a failed attempt like any other: the next one's answer counts."""

    async def first_slow(_token: str, sent: list[str]) -> Reply:
        reply = results_for(sent, "suppressed")
        reply.drip = 0.05 if svc.batches == 1 else 0.0
        return reply

    async with Loopback(first_slow) as svc:
        check = HttpBatchCheck(svc.settings(timeout_seconds=0.3), sleep=FakeSleep())
        out = await run(check)
    assert [[r.code for r in rs] for rs in out] == [[ReasonCode.DNC_REMOTE]] * 2
    assert svc.batches == 2


# -- 5. and 6. settings that would be ignored are refused -----------------------------------------

@pytest.mark.parametrize("match_type", ["exact", "prefix"])
def test_a_salt_without_match_type_hash_is_refused(match_type: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``hash_salt`` with ``match_type`` exact or prefix would be ignored (the numbers sent in
    plain text): refused, naming both settings, and no command or service starts with it."""
    with pytest.raises(ValidationError, match="hash_salt.*match_type"):
        HttpBatchSettings(**FULL, match_type=match_type, hash_salt="pepper")
    assert HttpBatchSettings(**FULL, match_type="hash", hash_salt="pepper").hash_salt
    for key, value in {**FULL, "match_type": match_type, "hash_salt": "pepper"}.items():
        monkeypatch.setenv(f"DNCGUARD_HTTP_BATCH_{key.upper()}",
                           json.dumps(value) if isinstance(value, list) else str(value))
    with pytest.raises(ConfigError, match="HASH_SALT.*MATCH_TYPE"):
        default_checks(load_settings(home=tmp_path / "home"))


def test_a_concurrency_above_its_maximum_is_refused() -> None:
    """``concurrency`` above ``max_concurrency`` is refused naming both (it used to be
    clamped without a word)."""
    with pytest.raises(ValidationError, match="concurrency.*80.*max_concurrency.*64"):
        HttpBatchSettings(**FULL, concurrency=80)
    with pytest.raises(ValidationError, match="max_concurrency"):
        HttpBatchSettings(**FULL, concurrency=5, max_concurrency=4)
    assert HttpBatchSettings(**FULL, concurrency=4, max_concurrency=4).concurrency == 4


# -- 7. checks sharing one instance ---------------------------------------------------------------

async def test_concurrent_checks_on_one_instance_keep_their_own_clients() -> None:
    """Two checks at once on one instance: the one that finishes first closes only its own
    client; the other, told its token expired, fetches a new one through its own client
    (it used to get the finished check's closed client: "client has been closed")."""
    first, second = ["+12025550123"], ["+12025550124"]
    second_done = asyncio.Event()

    async def batch(token: str, sent: list[str]) -> Reply:
        if sent == first and token == "tok1":
            await second_done.wait()
            return Reply(b'{"error": "invalid_token"}', status=401)
        return results_for(sent)

    async with Loopback(batch) as svc:
        check = HttpBatchCheck(svc.settings(), sleep=FakeSleep())  # its own client per call

        async def run_second() -> list[list[Reason]]:
            try:
                return await run(check, second)
            finally:
                second_done.set()

        out = await asyncio.gather(run(check, first), run_second())
    assert out == [[[]], [[]]]
    assert svc.tokens == 2


def test_one_check_serves_several_event_loops() -> None:
    """One check used from two event loops (the service's threads each run their own) with
    contended limiter and token lock: each loop has its own, so neither raises "bound to a
    different event loop"."""
    now = {"t": 0.0}
    with run_sandbox() as sb:
        cfg = sb.state.config
        hb = HttpBatchSettings(base_url=sb.url, token_url=f"{sb.url}/oauth/token",
                               client_id=cfg.batch_client_id,
                               client_secret=cfg.batch_client_secret, list_ids=["remote-dnc"],
                               chunk_size=1, concurrency=1, max_concurrency=1, max_attempts=2)
        check = HttpBatchCheck(hb, sleep=FakeSleep(), clock=lambda: now["t"])
        nums = ["+12025550110", "+13125550001", "+13125550002"]
        first = asyncio.run(run(check, nums))
        now["t"] += 7200  # the token has expired: the second loop contends for its lock
        second = asyncio.run(run(check, nums))
    assert first == second
    assert [[r.code for r in rs] for rs in first] == [[ReasonCode.DNC_REMOTE], [], []]
    assert check.token_requests == 2


# -- 8. an unreadable token answer, an undecodable body -------------------------------------------

@pytest.mark.parametrize(("answer", "why"), [
    (["tok"], "not a JSON object"), ("tok", "not a JSON object"),
    ({"access_token": 5}, "no access_token"), ({"token": "tok"}, "no access_token"),
    ({"access_token": "tok", "expires_in": "soon"}, "expires_in"),
])
async def test_an_unreadable_token_answer_is_a_failed_attempt(answer: Any, why: str) -> None:
    """A token answer that is not an object with an access token is retried, then every
    number is an error saying why (it used to escape as a raw AttributeError, or send the
    token ``5``)."""
    tokens = {"n": 0}

    def token() -> httpx.Response:
        tokens["n"] += 1
        return httpx.Response(200, json=answer)

    out = await run(mock_check(allowed, token=token))
    assert all(errors(r) for r in out), out
    assert "unreadable response: the token answer" in details(out)
    assert why in details(out)
    assert tokens["n"] == 2  # retried (max_attempts 2)


async def test_an_undecodable_body_is_a_failed_attempt() -> None:
    """A body that claims gzip and is not (httpx.DecodingError) is retried, then an error;
    a good answer on the retry counts."""

    async def broken(_token: str, sent: list[str]) -> Reply:
        return Reply(b"this is not gzip", headers={"Content-Encoding": "gzip"})

    async with Loopback(broken) as svc:
        out = await run(HttpBatchCheck(svc.settings(), sleep=FakeSleep()))
    assert all(errors(r) for r in out), out
    assert "undecodable body" in details(out)
    assert svc.batches == 2

    async def broken_once(_token: str, sent: list[str]) -> Reply:
        if svc.batches == 1:
            return Reply(b"this is not gzip", headers={"Content-Encoding": "gzip"})
        return results_for(sent)

    async with Loopback(broken_once) as svc:
        out = await run(HttpBatchCheck(svc.settings(), sleep=FakeSleep()))
    assert out == [[], []]
