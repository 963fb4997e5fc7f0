"""``POST /v1/check`` at the HTTP edge: the fast path (server/_fastcheck.py) and the FastAPI
route answer alike for a header given twice, a body over the limit however it is framed
(``Content-Length`` or chunked) and a JSON key given twice (refused: 422 naming it; the
parser would keep the last value and lose the first).

The live server's fast path takes ``application/json``; ``application/json ; charset=utf-8``
is JSON to the route but not a content type the fast path takes, so it forces the route.
Raw sockets: duplicate headers and chunked bodies are out of reach of httpx.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import Server, make_key, server_env

PHONE = "+12025550123"
OTHER = "+12025550188"
LIMIT = 1024
FAST = "application/json"
ROUTE = "application/json ; charset=utf-8"


@dataclass
class Ctx:
    server: Server
    check: str
    console: str


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    root = tmp_path_factory.mktemp("edges")
    home = root / "home"
    check, console = make_key(home, "check"), make_key(home, "console")
    server = Server(server_env(home, DNCGUARD_SERVER_MAX_BODY_BYTES=str(LIMIT),
                               DNCGUARD_SERVER_RATE_PER_SECOND="10000",
                               DNCGUARD_SERVER_RATE_BURST="10000"), root / "server.log")
    server.start()
    yield Ctx(server, check, console)
    server.kill()


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def fields(self) -> list[str]:
        return [f["field"] for f in self.json()["error"]["fields"]]

    def comparable(self) -> tuple[int, bytes]:
        return self.status, re.sub(rb'"(checked_at|dial_time)":"[^"]*"', b"", self.body)


def _send(server: Server, body: bytes, headers: list[tuple[str, str]], *,
          chunks: list[bytes] | None = None, together: bool = True,
          path: str = "/v1/check") -> Answer:
    """POST ``body`` with exactly ``headers`` (repeats kept) and a ``Content-Length``, or,
    with ``chunks``, chunked (no ``Content-Length``): in one write (``together``: the server
    reads it in one receive) or a write per chunk."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    if chunks is None:
        writes = [(head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body]
    else:
        assert b"".join(chunks) == body
        framed = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks] + [b"0\r\n\r\n"]
        first = (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
        writes = [first + b"".join(framed)] if together else [first, *framed]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        for i, data in enumerate(writes):
            if i:
                time.sleep(0.05)
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):  # answered before the end (413)
                break
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return Answer(resp.status, resp.read())


def _both(ctx: Ctx, body: bytes, *, path: str = "/v1/check", key: str | None = None,
          chunks: list[bytes] | None = None, together: bool = True) -> Answer:
    """The answer of the fast path's content type and of the route's, which must be equal."""
    auth = [("Authorization", f"Bearer {key or ctx.check}")]
    fast = _send(ctx.server, body, [*auth, ("Content-Type", FAST)], chunks=chunks,
                 together=together, path=path)
    route = _send(ctx.server, body, [*auth, ("Content-Type", ROUTE)], chunks=chunks,
                  together=together, path=path)
    assert fast.comparable() == route.comparable(), (fast, route)
    return fast


# --- a header given twice -------------------------------------------------------------------


def test_a_header_given_twice_is_answered_as_the_route_answers(ctx: Ctx) -> None:
    body = json.dumps({"phone": PHONE}).encode()
    bad = "Bearer dgk_000000000000_nope"
    good = f"Bearer {ctx.check}"
    console = f"Bearer {ctx.console}"
    _send(ctx.server, body, [("Authorization", good), ("Content-Type", FAST)])  # verified
    # two Authorization headers: refused (400 naming the header), whichever comes first and
    # whichever content type would have taken the fast path
    for twice in ([bad, good], [console, good], [good, bad], [good, good]):
        for ctype in (FAST, ROUTE):
            both = _send(ctx.server, body, [*(("Authorization", h) for h in twice),
                                            ("Content-Type", ctype)])
            assert both.status == 400, (twice, ctype, both)
            assert both.json()["error"]["message"] == (
                "the Authorization header is given 2 times; send it once"), both
    auth = [("Authorization", good)]
    for second in (FAST, ROUTE):
        both = _send(ctx.server, body, [*auth, ("Content-Type", "text/plain"),
                                        ("Content-Type", second)])
        single = _send(ctx.server, body, [*auth, ("Content-Type", "text/plain")])
        assert both.comparable() == single.comparable(), (second, both)
        assert both.status == 422, both


# --- a body over the limit, however it is framed ----------------------------------------------


def _padded(size: int, key: str = "phone", value: Any = PHONE) -> bytes:
    """A JSON body of exactly ``size`` bytes: ``{"phone":"..."<spaces>}``."""
    start = json.dumps({key: value}, separators=(",", ":"))[:-1].encode()
    return start + b" " * (size - len(start) - 1) + b"}"


@pytest.mark.parametrize("framing", ["content-length", "chunked at once", "chunked in parts"])
def test_a_body_over_the_limit_is_413_however_it_is_framed(ctx: Ctx, framing: str) -> None:
    def post(body: bytes, path: str = "/v1/check", value: Any = PHONE) -> Answer:
        if framing == "content-length":
            return _both(ctx, body, path=path)
        parts = [body[i:i + 700] for i in range(0, len(body), 700)]
        return _both(ctx, body, path=path, chunks=parts, together=framing == "chunked at once")

    over = post(_padded(5024))
    assert over.status == 413, over
    assert over.json()["error"]["code"] == "too_large"
    assert over.json()["error"]["message"] == f"the request body is larger than {LIMIT:,} bytes"
    assert post(_padded(LIMIT + 1)).status == 413
    assert post(_padded(LIMIT)).status == 200  # at the limit: checked
    assert post(_padded(200)).json()["e164"] == PHONE
    batch = post(_padded(5024, "phones", [PHONE]), "/v1/check/batch")
    assert batch.status == 413, batch
    assert post(_padded(LIMIT, "phones", [PHONE]), "/v1/check/batch").status == 200


# --- a key given twice ------------------------------------------------------------------------


def test_a_key_given_twice_is_refused_naming_it(ctx: Ctx) -> None:
    cases = {
        f'{{"phone":"{OTHER}","phone":"{PHONE}"}}': ["body.phone"],
        f'{{"phone":"{PHONE}","campaign":"nope","campaign":"default"}}': ["body.campaign"],
        f'{{ "phone" : "{OTHER}" , "phone" :"{PHONE}" }}': ["body.phone"],
        f'{{"phone":"{OTHER}","ph\\u006fne":"{PHONE}"}}': ["body.phone"],
        f'{{"phone":"{PHONE}","state":"NY","zip":"10001","state":"FL","zip":"33101"}}':
            ["body.state", "body.zip"],
    }
    for body, fields in cases.items():
        for chunks in (None, [body.encode()]):
            answer = _both(ctx, body.encode(), chunks=chunks)
            assert answer.status == 422, (body, answer)
            assert answer.fields() == fields, (body, answer)
            message = answer.json()["error"]["message"]
            assert message == f"invalid request ({fields[0]}: given twice)"
    batch = _both(ctx, f'{{"phones":["{OTHER}"],"phones":["{PHONE}"]}}'.encode(),
                  path="/v1/check/batch")
    assert (batch.status, batch.fields()) == (422, ["body.phones"]), batch
    batch = _both(ctx, f'{{"phones":["{PHONE}"],"state":"NY","state":"FL"}}'.encode(),
                  path="/v1/check/batch")
    assert (batch.status, batch.fields()) == (422, ["body.state"]), batch


def test_the_key_is_refused_first(ctx: Ctx) -> None:
    """A key given twice is refused after the key, as the body's other refusals are."""
    body = f'{{"phone":"{OTHER}","phone":"{PHONE}"}}'.encode()
    assert _both(ctx, body, key="dgk_000000000000_nope").status == 401
    assert _both(ctx, body, key=ctx.console).status == 403


def test_a_value_that_looks_like_a_key_is_checked(ctx: Ctx) -> None:
    """Bodies the fast path cannot clear at a glance (it hands them over): still checked."""
    for body in (f'{{"phone":"{PHONE}","subject":"phone"}}',
                 f'{{"phone":"{PHONE}","subject":"a \\"phone\\": b"}}',
                 f'{{"phone":"{PHONE}","subject":"x\\":\\"y"}}',
                 f'{{"ph\\u006fne":"{PHONE}"}}',
                 f'{{"phone":"{PHONE}","at":"2026-11-18T17:00:00+00:00"}}'):
        answer = _both(ctx, body.encode())
        assert answer.status == 200, (body, answer)
        assert answer.json()["e164"] == PHONE


def test_log_has_no_tracebacks(ctx: Ctx) -> None:
    assert "Traceback" not in ctx.server.log()


# --- in process: what the fast path answers itself and what it hands over ------------------


def _service(tmp_path: Path) -> tuple[Any, str]:
    from dncguard.config import load_settings
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    key = make_key(home, "check")
    return create_app(load_settings(home=home), run_jobs=False).state.service, key


def _behind(received: list[bytes]) -> Any:
    """The application behind the fast path: reads the whole body, answers 599."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        received.append(body)
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


async def _through(app: Any, headers: list[tuple[bytes, bytes]], parts: list[bytes],
                   path: str = "/v1/check") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    waiting = list(parts)

    async def receive() -> dict[str, Any]:
        part = waiting.pop(0) if waiting else b""
        return {"type": "http.request", "body": part, "more_body": bool(waiting)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": headers}
    await app(scope, receive, send)
    return sent


def test_the_fast_path_hands_over_what_it_cannot_clear(tmp_path: Path) -> None:
    from dncguard.server._fastcheck import FastCheck

    svc, key = _service(tmp_path)
    received: list[bytes] = []
    fast = FastCheck(_behind(received), svc)
    fast.limit = LIMIT
    auth = (b"authorization", f"Bearer {key}".encode())
    ctype = (b"content-type", b"application/json")

    async def status(body: bytes, headers: list[tuple[bytes, bytes]] | None = None,
                     length: bool = True) -> int:
        if headers is None:
            headers = [auth, ctype]
        if length:
            headers = [*headers, (b"content-length", str(len(body)).encode())]
        sent = await _through(fast, headers, [body])
        return int(sent[0]["status"])

    ok = f'{{"phone":"{PHONE}"}}'.encode()
    answered = [ok, f'{{ "phone" : "{PHONE}", "state": "Fla.", "at": "2026-11-18T17:00:00Z",'
                    f' "campaign": "default", "subject": "debt:1:2" }}'.encode(),
                _padded(LIMIT)]
    handed = [f'{{"phone":"{OTHER}","phone":"{PHONE}"}}'.encode(),
              f'{{"phone":"{PHONE}","campaign":"nope","campaign":"default"}}'.encode(),
              f'{{"phone" :"{OTHER}", "phone"\t: "{PHONE}"}}'.encode(),
              f'{{"phone":"{OTHER}","ph\\u006fne":"{PHONE}"}}'.encode(),
              f'{{"phone":"{PHONE}","subject":"phone"}}'.encode(),
              f'{{"phone":"{PHONE}","subject":"a\\/b"}}'.encode()]
    twice = [
        [auth, auth, ctype],
        [auth, (b"authorization", b"Bearer dgk_000000000000_nope"), ctype],
        [auth, ctype, ctype],
        [auth, (b"content-type", b"text/plain"), ctype],
        [auth, ctype, (b"content-length", str(len(ok)).encode())],
    ]

    async def scenario() -> list[list[int]]:
        return [[await status(b) for b in answered],
                [await status(b) for b in handed],
                [await status(ok, h) for h in twice],
                # chunked: no Content-Length, the whole body in one receive
                [await status(_padded(LIMIT + 1), length=False),
                 await status(_padded(5024), length=False),
                 await status(_padded(LIMIT), length=False)]]

    try:
        statuses = asyncio.run(scenario())
    finally:
        svc.realtime.stop()
        svc.realtime.writer.stop()
    assert statuses == [[200, 200, 200], [599] * len(handed), [599] * len(twice),
                        [599, 599, 200]]
    # every body handed over intact
    assert received == [*handed, *[ok] * len(twice), _padded(LIMIT + 1), _padded(5024)]


def test_the_route_takes_one_token_per_request(tmp_path: Path) -> None:
    """The key given twice is looked for after the key, which the route reuses: one verification
    and one rate-limit token per request, refused or not."""
    import httpx

    from dncguard.config import load_settings
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    key = make_key(home, "check")
    app = create_app(load_settings(home=home), run_jobs=False)
    svc = app.state.service
    taken: list[str] = []
    take = svc.buckets.take

    def counting(who: str) -> float:
        taken.append(who)
        return float(take(who))

    svc.buckets.take = counting
    headers = {"Authorization": f"Bearer {key}", "Content-Type": ROUTE}
    posts = [("/v1/check", f'{{"phone":"{PHONE}"}}'),
             ("/v1/check", f'{{"phone":"{PHONE}","phone":"{PHONE}"}}'),
             ("/v1/check/batch", f'{{"phones":["{PHONE}"]}}')]

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            return [(await c.post(path, content=body, headers=headers)).status_code
                    for path, body in posts]

    try:
        assert asyncio.run(scenario()) == [200, 422, 200]
    finally:
        svc.realtime.stop()
        svc.realtime.writer.stop()
    assert len(taken) == 3


# --- in process: the body limit and the keys given twice, on their own ---------------------


def test_the_body_limit_counts_before_the_application_runs() -> None:
    from dncguard.server.app import BodyLimit

    calls: list[list[dict[str, Any]]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen = [await receive()]
        while seen[-1]["type"] == "http.request" and seen[-1].get("more_body"):
            seen.append(await receive())
        calls.append(seen)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limit = BodyLimit(app, 10)

    async def run(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        waiting = list(messages)
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return waiting.pop(0) if waiting else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        await limit({"type": "http", "method": "POST", "path": "/v1/check", "headers": []},
                    receive, send)
        return sent

    def part(body: bytes, more: bool) -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": more}

    over = asyncio.run(run([part(b"12345", True), part(b"678901", False)]))
    assert over[0]["status"] == 413 and not calls
    assert json.loads(over[1]["body"])["error"]["code"] == "too_large"
    under = [part(b"12345", True), part(b"67890", False)]
    assert asyncio.run(run(under))[0]["status"] == 204
    assert calls.pop() == under  # replayed as received
    gone = [part(b"123", True), {"type": "http.disconnect"}]
    asyncio.run(run(gone))
    assert calls.pop() == gone  # the client went away: the application hears it


def test_keys_given_twice_names_each_in_document_order() -> None:
    from dncguard.server.routes.check import keys_given_twice

    assert keys_given_twice(b'{"a":1,"b":{"c":2}}') == []
    assert keys_given_twice(b'{"a":1,') == []  # not JSON: the framework answers it
    assert keys_given_twice(b'{"b":1,"a":1,"b":2,"a":3,"b":4}') == ["body.b", "body.a"]
    assert keys_given_twice(b'{"x":[{"k":1},{"k":1,"k":2}],"y":{"z":{"q":1,"q":1}}}') == [
        "body.x.1.k", "body.y.z.q"]
    assert keys_given_twice(b'{"a":{"b":1,"b":2},"a":{"c":1,"c":2}}') == [
        "body.a", "body.a.b", "body.a.c"]
    deep = b'{"a":' * 50 + b'{"k":1,"k":2}' + b"}" * 50
    assert keys_given_twice(deep) == ["body" + ".a" * 50 + ".k"]
    assert keys_given_twice(('{"' + "k" * 300 + '":1,"' + "k" * 300 + '":2}').encode()) == [
        "body." + "k" * 100 + "..."]


def test_the_writing_routes_refuse_a_key_given_twice(tmp_path: Path) -> None:
    """POST /v1/dnc, /v1/attempts and /v1/consents read JSON bodies too: a key given twice is
    refused there (nothing is written), as on the check routes."""
    import httpx

    from dncguard.config import load_settings
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    key = make_key(home, "dnc:write")
    app = create_app(load_settings(home=home), run_jobs=False)
    svc = app.state.service
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    posts = [
        ("/v1/dnc", f'{{"phone":"+12025550188","phone":"{PHONE}"}}'),
        ("/v1/attempts", f'{{"phone":"{PHONE}","at":"2026-11-19T15:00:00Z",'
                         f'"outcome":"conversation","outcome":"no_answer"}}'),
        ("/v1/consents", f'{{"phone":"{PHONE}","type":"express","type":"express_written",'
                         f'"date":"2026-01-05"}}'),
    ]

    async def scenario() -> list[tuple[int, list[str]]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            out = []
            for path, body in posts:
                resp = await c.post(path, content=body, headers=headers)
                out.append((resp.status_code,
                            [f["field"] for f in resp.json()["error"].get("fields", [])]))
            return out

    try:
        assert asyncio.run(scenario()) == [(422, ["body.phone"]), (422, ["body.outcome"]),
                                           (422, ["body.type"])]
    finally:
        svc.realtime.stop()
        svc.realtime.writer.stop()
