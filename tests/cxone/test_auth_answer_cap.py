"""The sign-in answer is read up to a bound (``TOKEN_ANSWER_BYTES``), as http-batch bounds its
batch answers: a token answer is a few kilobytes, so a larger one is refused with a clear
error instead of being read whole into memory (it had no bound). The body is streamed and
reading stops at the bound, whether or not the server declares a length."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator

import httpx
import pytest

from dncguard.errors import SourceError
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import CxoneClient
from dncguard.sources.cxone._client import TOKEN_ANSWER_BYTES

from .conftest import FakeSleep, cx_settings

PADDING = 4 * 1024 * 1024  # far more than any token answer


class Padded(httpx.AsyncBaseTransport):
    """The sandbox, whose token answers carry ``PADDING`` extra bytes: with a length, or sent
    in chunks without one (``streamed``). ``status`` replaces the answer's status."""

    def __init__(self, *, streamed: bool, status: int | None = None) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.streamed = streamed
        self.status = status
        self.sent = 0  # padding bytes handed to the client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not request.url.path.endswith("/auth/token"):
            return response
        body = json.loads(await response.aread())
        body["padding"] = "x" * PADDING
        raw = json.dumps(body).encode()
        status = self.status or response.status_code
        if not self.streamed:
            return httpx.Response(status, content=raw, request=request,
                                  headers={"Content-Type": "application/json"})

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(raw), 16_384):
                self.sent += 16_384
                yield raw[i:i + 16_384]

        return httpx.Response(status, content=chunks(), request=request,
                              headers={"Content-Type": "application/json"})

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("streamed", [False, True], ids=["with a length", "chunked"])
async def test_an_oversized_token_answer_is_refused(sandbox: SandboxServer, sleep: FakeSleep,
                                                    streamed: bool) -> None:
    transport = Padded(streamed=streamed)
    cx = cx_settings(sandbox)
    async with CxoneClient(cx, http=httpx.AsyncClient(transport=transport), sleep=sleep,
                           rng=random.Random(7)) as client:
        with pytest.raises(SourceError, match=f"more than {TOKEN_ANSWER_BYTES:,} bytes") as exc:
            await client.groups()
    assert "sign-in" in str(exc.value)
    assert sandbox.state.requests["GET /inContactAPI/services/v33.0/dnc-groups"] == 0
    assert client.tokens.token is None
    if streamed:  # reading stopped at the bound: the rest was never read
        assert transport.sent <= TOKEN_ANSWER_BYTES + 2 * 16_384


async def test_an_oversized_refusal_keeps_its_status(sandbox: SandboxServer,
                                                     sleep: FakeSleep) -> None:
    cx = cx_settings(sandbox)
    transport = Padded(streamed=True, status=400)
    async with CxoneClient(cx, http=httpx.AsyncClient(transport=transport), sleep=sleep,
                           rng=random.Random(7)) as client:
        with pytest.raises(SourceError, match="sign-in .* refused: HTTP 400"):
            await client.groups()


async def test_a_token_answer_within_the_bound_signs_in(sandbox: SandboxServer,
                                                        sleep: FakeSleep) -> None:
    async with CxoneClient(cx_settings(sandbox), sleep=sleep, rng=random.Random(7)) as client:
        assert len(await client.groups()) == 3
