"""POST /v1/check's fast path (server/_fastcheck.py) answers exactly what the FastAPI route
answers, and hands everything unusual to the route: the same refusals, word for word."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from .conftest import Server, make_key, server_env

T = TypeVar("T")

PHONE = "+12025550123"
AT = "2026-11-18T17:00:00Z"


@dataclass
class Ctx:
    server: Server
    home: Path
    check: str
    jobs: str


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    root = tmp_path_factory.mktemp("fast")
    home = root / "home"
    check, jobs = make_key(home, "check"), make_key(home, "jobs")
    server = Server(server_env(home, DNCGUARD_SERVER_MAX_BODY_BYTES="2000",
                               DNCGUARD_SERVER_RATE_PER_SECOND="0.001",
                               DNCGUARD_SERVER_RATE_BURST="40"), root / "server.log")
    server.start()
    yield Ctx(server, home, check, jobs)
    server.kill()


def _post(c: httpx.Client, body: bytes | str, ctype: str = "application/json",
          path: str = "/v1/check") -> httpx.Response:
    return c.post(path, content=body, headers={"Content-Type": ctype})


def _same(a: httpx.Response, b: httpx.Response) -> None:
    """Two answers alike but for the moment they were checked."""
    assert (a.status_code, a.headers["content-type"]) == (b.status_code, b.headers["content-type"])
    assert a.headers["content-length"] == b.headers["content-length"]
    strip = re.compile(rb'"checked_at":"[^"]*"')
    assert strip.sub(b"", a.content) == strip.sub(b"", b.content)


def _metric(c: httpx.Client, route: str, status: str) -> float:
    text = c.get("/metrics").text
    found = re.search(r'dncguard_http_requests_total\{method="POST",route="' + re.escape(route)
                      + r'",status="' + status + r'"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_fast_and_framework_answers_are_identical(ctx: Ctx) -> None:
    body = f'{{"phone": "{PHONE}", "state": "Fla.", "at": "{AT}", "campaign": "default"}}'
    with ctx.server.client(ctx.check) as c:
        # the first request with a key the process has not verified yet takes the route
        framework = _post(c, body)
        fast = _post(c, body)
        # another JSON media type always takes the route
        routed = _post(c, body, "application/vnd.dncguard+json")
    assert framework.status_code == 200, framework.text
    _same(framework, fast)
    _same(framework, routed)
    assert fast.json()["state"] == "FL"


def test_refusals_are_the_routes(ctx: Ctx) -> None:
    with ctx.server.client(ctx.check) as c:
        _post(c, f'{{"phone": "{PHONE}"}}')  # the key is verified and cached from here on
        cases = {
            "bad json": ('{"phone": ', 422, "body"),
            "unknown field": (f'{{"phone": "{PHONE}", "colour": "red"}}', 422, "body.colour"),
            "unknown state": (f'{{"phone": "{PHONE}", "state": "Atlantis"}}', 422, "body.state"),
            "unknown campaign": (f'{{"phone": "{PHONE}", "campaign": "nope"}}', 422,
                                 "body.campaign"),
            "empty body": ("", 422, "body"),
        }
        for name, (body, status, field) in cases.items():
            resp = _post(c, body)
            assert resp.status_code == status, (name, resp.text)
            fields = [f["field"] for f in resp.json()["error"].get("fields", [])]
            assert any(f.startswith(field) for f in fields), (name, resp.text)
        big = _post(c, '{"phone": "' + PHONE + '", "subject": "' + "x" * 3000 + '"}')
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"
        unknown_query = c.post("/v1/check", params={"colour": "red"}, json={"phone": PHONE})
        assert unknown_query.status_code == 422
    with ctx.server.client(ctx.jobs) as c:
        _post(c, f'{{"phone": "{PHONE}"}}')
        scope = _post(c, f'{{"phone": "{PHONE}"}}')
        assert scope.status_code == 403 and "'check' scope" in scope.json()["error"]["message"]
    with ctx.server.client("dgk_000000000000_nothing") as c:
        for _ in range(2):
            assert _post(c, f'{{"phone": "{PHONE}"}}').status_code == 401


def test_metrics_access_log_and_rate_limit(ctx: Ctx) -> None:
    with ctx.server.client(ctx.check) as c:
        before = _metric(c, "/v1/check", "200")
        unmatched = _metric(c, "<unmatched>", "200")
        statuses = [_post(c, f'{{"phone": "{PHONE}"}}').status_code for _ in range(60)]
        ok = statuses.count(200)
        # the bucket holds 40 and refills once in ~17 min: the rest are refused with 429
        assert 0 < ok <= 40 and statuses.count(429) == 60 - ok
        assert statuses.index(429) == ok  # refused only once the bucket is empty
        assert _metric(c, "/v1/check", "200") == before + ok
        assert _metric(c, "<unmatched>", "200") == unmatched
        assert _metric(c, "/v1/check", "429") >= 60 - ok
        decisions = c.get("/metrics").text
        assert re.search(r'dncguard_decisions_total\{decision="allow",reason=""\} [1-9]',
                         decisions)
    deadline = time.monotonic() + 10
    while "POST /v1/check\" 200" not in ctx.server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [ln for ln in ctx.server.log().splitlines() if "POST /v1/check\" 200" in ln]
    assert lines and all("key=" in ln and "key=-" not in ln for ln in lines)
    assert "5550123" not in ctx.server.log()


def _service(tmp_path: Path) -> tuple[Any, str]:
    """An in-process service (no jobs) on a fresh home, and a key with the check scope."""
    from dncguard.config import load_settings
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    key = make_key(home, "check")
    return create_app(load_settings(home=home), run_jobs=False).state.service, key


def _framework(status: int, behind: list[bytes]) -> Any:
    """Stands in for the application behind the fast path: reads the whole body (kept in
    ``behind``) and answers ``status``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        behind.append(body)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _asgi_post(fast: Any, body: bytes, token: str, *, ctype: bytes = b"application/json",
                query: bytes = b"", length: int | None = None) -> list[dict[str, Any]]:
    """``POST /v1/check`` through ``fast`` (the body in two parts); the messages sent."""
    sent: list[dict[str, Any]] = []
    parts = [body[:5], body[5:]]

    async def receive() -> dict[str, Any]:
        part = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/check", "query_string": query,
             "headers": [(b"authorization", f"Bearer {token}".encode()),
                         (b"content-type", ctype),
                         (b"content-length", str(length or len(body)).encode())]}
    await fast(scope, receive, send)
    return sent


def _run(svc: Any, scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a test's scenario against the service ``svc``, stopping its pre-dial checker
    and audit writer afterwards, whatever happens."""
    try:
        return asyncio.run(scenario())
    finally:
        svc.realtime.stop()
        svc.realtime.writer.stop()


def test_ordinary_requests_skip_the_framework(tmp_path: Path) -> None:
    """In process: an ordinary request is answered by the fast path itself; every unusual
    one reaches the application behind it, with its body intact."""
    from dncguard.server._fastcheck import FastCheck

    svc, key = _service(tmp_path)
    behind: list[bytes] = []
    fast = FastCheck(_framework(599, behind), svc)

    async def call(body: bytes, token: str = key, ctype: bytes = b"application/json",
                   query: bytes = b"", length: int | None = None) -> int:
        sent = await _asgi_post(fast, body, token, ctype=ctype, query=query, length=length)
        if sent[0]["status"] == 500:
            assert json.loads(sent[1]["body"])["error"]["status"] == 500
        return int(sent[0]["status"])

    async def scenario() -> list[int]:
        ok = f'{{"phone": "{PHONE}"}}'.encode()
        statuses = [await call(ok)]  # the key is verified on the way
        statuses += [await call(ok), await call(b'{"phone": 5}'), await call(ok, "other"),
                     await call(ok, ctype=b"text/plain"), await call(ok, query=b"x=1"),
                     await call(f'{{"phone": "{PHONE}", "campaign": "nope"}}'.encode()),
                     await call(ok, length=10**9)]
        svc.realtime.stop()  # a failure inside the check: the application's 500, as JSON
        statuses.append(await call(ok))
        return statuses

    statuses = _run(svc, scenario)
    assert statuses == [200, 200, 599, 599, 599, 599, 599, 599, 500]
    assert behind[0] == b'{"phone": 5}'  # replayed whole (it came in two parts)
    assert behind[1] == f'{{"phone": "{PHONE}"}}'.encode()
    assert len(behind) == 6


def test_keys_are_verified_again_before_they_expire(tmp_path: Path) -> None:
    """A busy key is verified again in the background once half of key_cache_seconds has
    passed, once however many requests carry it; a key revoked by another replica stops
    working once the cached answer expires (the route then answers 401)."""
    from sqlalchemy import update

    from dncguard.server._fastcheck import FastCheck
    from dncguard.server.tables import api_keys_table

    svc, key = _service(tmp_path)
    now = [1000.0]
    svc.keys.clock = lambda: now[0]
    svc.keys.cache_seconds = 2.0
    lookups: list[bool] = []
    verify = svc.keys.verify

    def counting(text: str, *, refresh: bool = False) -> object:
        lookups.append(refresh)
        return verify(text, refresh=refresh)

    svc.keys.verify = counting

    fast = FastCheck(_framework(401, []), svc)
    body = f'{{"phone": "{PHONE}"}}'.encode()

    async def call() -> int:
        return int((await _asgi_post(fast, body, key))[0]["status"])

    counts: list[int] = []

    async def scenario() -> list[list[int]]:
        rounds = [list(await asyncio.gather(*(call() for _ in range(8))))]
        counts.append(len(lookups))
        now[0] += 0.5  # fresh: no lookup
        rounds.append(list(await asyncio.gather(*(call() for _ in range(8)))))
        counts.append(len(lookups))
        now[0] += 0.7  # past half the cache time: answered from the cache, verified behind
        rounds.append(list(await asyncio.gather(*(call() for _ in range(8)))))
        while fast._verifying:  # the background verification
            await asyncio.sleep(0.01)
        counts.append(len(lookups))
        with svc.engine.begin() as conn:  # revoked on another replica
            conn.execute(update(api_keys_table).values(revoked_at=datetime.now(UTC)))
        now[0] += 1.9  # the refreshed answer (taken at +1.2 s) is still within its 2 s
        rounds.append([await call()])
        now[0] += 1.0  # expired, and due: verified again, refused
        rounds.append([await call()])
        return rounds

    rounds = _run(svc, scenario)
    assert rounds == [[200] * 8, [200] * 8, [200] * 8, [200], [401]]
    # one lookup for 8 concurrent first requests, none while fresh, one behind the cache
    assert counts == [1, 1, 2]


def test_an_unexpected_failure_is_handed_to_the_route(tmp_path: Path) -> None:
    """The database away while no checks are prepared yet (the warm-up failed): preparing
    the request's context fails inside the fast path, which sits outside the framework's
    error handling. The request is handed to the application, body replayed, so the route
    answers it (a JSON 503), never the server (a plain-text 500 and a traceback); and with
    nothing taken: once the database is back, the key's only token is still there."""
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from dncguard.server._deps import TokenBuckets
    from dncguard.server._fastcheck import FastCheck

    svc, key = _service(tmp_path)
    behind: list[bytes] = []
    fast = FastCheck(_framework(503, behind), svc)
    svc.buckets = TokenBuckets(rate=0.001, burst=1)

    def away() -> object:
        raise OperationalError("SELECT ...", {}, sqlite3.OperationalError("database is locked"))

    svc.provider._current = None
    svc.provider.refresh = away
    body = f'{{"phone": "{PHONE}"}}'.encode()

    async def scenario() -> list[int]:
        # the key is verified on the way (first), then taken from the cache (second)
        statuses = [int((await _asgi_post(fast, body, key))[0]["status"]) for _ in range(2)]
        del svc.provider.refresh  # the database is back
        statuses.append(int((await _asgi_post(fast, body, key))[0]["status"]))
        return statuses

    statuses = _run(svc, scenario)
    assert statuses == [503, 503, 200]
    assert behind == [body, body]  # replayed whole (it came in two parts)
