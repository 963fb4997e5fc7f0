"""Write-back results are matched to their records by the number they name, not by position:
a reordered answer used to mark the refused record delivered and the delivered one refused."""

from __future__ import annotations

import json
import random

import httpx

from dncguard.config import Settings
from dncguard.outbox import DEAD, DELIVERED, Outbox
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import TOPIC, enqueue_optout, push
from dncguard.sources.cxone._client import CxoneClient
from dncguard.store import get_engine

from .conftest import FakeSleep, cx_settings


class Reversing(httpx.AsyncBaseTransport):
    """Sends to the sandbox; answers a records write with its results in reverse order,
    and ``strip`` removes the numbers the results name."""

    def __init__(self, strip: bool = False) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.strip = strip

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if request.method != "POST" or not request.url.path.endswith("/records"):
            return response
        body = response.json()
        rs = body["resultSet"]
        rs["recordResults"].reverse()
        if self.strip:
            for r in rs["recordResults"]:
                r.pop("phoneNumber", None)
                r.pop("formattedPhone", None)
        return httpx.Response(response.status_code, content=json.dumps(body).encode(),
                              headers={"content-type": "application/json"}, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def pushed(settings: Settings, sandbox: SandboxServer, strip: bool) -> Outbox:
    engine = get_engine(settings)
    assert enqueue_optout(engine, "+12025550161", group_id="364")
    assert enqueue_optout(engine, "+123", group_id="364")  # CXone refuses it
    box = Outbox(engine, rng=random.Random(0))
    http = httpx.AsyncClient(transport=Reversing(strip))
    async with CxoneClient(cx_settings(sandbox), http=http, sleep=FakeSleep(),
                           rng=random.Random(7)) as client:
        await push(client, box, "364")
    return box


async def test_a_reordered_answer_is_matched_by_number(settings: Settings,
                                                       sandbox: SandboxServer) -> None:
    box = await pushed(settings, sandbox, strip=False)
    assert [i.payload["e164"] for i in box.items(TOPIC, DELIVERED)] == ["+12025550161"]
    dead = box.items(TOPIC, DEAD)
    assert [i.payload["e164"] for i in dead] == ["+123"]
    assert dead[0].last_error == "Invalid phone number"
    assert "2025550161" in sandbox.state.records[364]


async def test_results_that_name_no_number_are_matched_by_position(
        settings: Settings, sandbox: SandboxServer) -> None:
    """(The only way to match them; a reordered answer of that kind cannot be told.)"""
    box = await pushed(settings, sandbox, strip=True)
    assert len(box.items(TOPIC, DELIVERED)) == 1 and len(box.items(TOPIC, DEAD)) == 1
