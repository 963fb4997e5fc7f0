"""Post to the rules routes in process (the app on the test's home, a ``dnc:write`` key)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from dncguard.config import Settings


def post(settings: Settings, path: str, *bodies: dict[str, Any]) -> list[httpx.Response]:
    """``POST path`` once per body, in order, on one app built for ``settings``."""
    from dncguard.server.app import create_app
    from dncguard.server.keys import KeyStore
    from dncguard.store import get_engine, metadata

    engine = get_engine(settings)
    metadata.create_all(engine)
    key = KeyStore(engine).create("test-write", ["dnc:write"])[1]
    app = create_app(settings, run_jobs=False)

    async def send() -> list[httpx.Response]:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test",
                headers={"Authorization": f"Bearer {key}"}) as client:
            return [await client.post(path, json=body) for body in bodies]

    return asyncio.run(send())


def refused_fields(resp: httpx.Response) -> list[str]:
    """The fields a 422 names."""
    assert resp.status_code == 422, resp.text
    return [f["field"] for f in resp.json()["error"]["fields"]]
