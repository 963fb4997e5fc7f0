"""The console's opt-out forms read their values with ``POST /v1/dnc``'s model: a reason the
API refuses (a control character, more than 500 characters) is refused on the page too (422,
the form's error), and nothing is stored or removed.

In process (``httpx.ASGITransport``: the service's whole stack), as ``test_auth_header_twice``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from dncguard.config import load_settings
from dncguard.lists.store import ListStore

from ..console.conftest import csrf_token
from .conftest import make_key

ADDED = "+12025550188"


def test_opt_out_forms_refuse_what_the_api_refuses(tmp_path: Path) -> None:
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    key = make_key(home, "console", "dnc:write")
    settings = load_settings(home=home)
    app = create_app(settings, run_jobs=False)
    bad = {"a control character": ("mistake\x00\x1b[31m", "U+0000"),
           "601 characters": ("x" * 601, "at most 500")}

    async def scenario() -> dict[str, httpx.Response]:
        out: dict[str, httpx.Response] = {}
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            signed = await c.post("/console/signin", data={
                "key": key, "csrf": csrf_token(await c.get("/console/signin"))})
            assert signed.status_code == 303, signed.text
            token = csrf_token(await c.get("/console/optouts"))
            for name, (reason, _) in bad.items():
                out[f"api {name}"] = await c.post("/v1/dnc", json={
                    "phone": ADDED, "reason": reason}, headers={"Authorization": f"Bearer {key}"})
                out[f"add {name}"] = await c.post("/console/optouts/add", data={
                    "phone": ADDED, "reason": reason, "csrf": token})
            out["added"] = await c.post("/console/optouts/add", data={
                "phone": ADDED, "reason": "asked on the phone", "csrf": token})
            for name, (reason, _) in bad.items():
                out[f"remove {name}"] = await c.post("/console/optouts/remove", data={
                    "phone": ADDED, "reason": reason, "csrf": token})
        return out

    out = asyncio.run(scenario())
    for name, (_, why) in bad.items():
        api, add, remove = out[f"api {name}"], out[f"add {name}"], out[f"remove {name}"]
        assert api.status_code == 422 and why in api.text, api.text
        [field] = api.json()["error"]["fields"]
        assert field["field"] == "body.reason"
        words = field["message"].removeprefix("Value error, ")
        for page in (add, remove):  # the API's words, as the form's error
            assert page.status_code == 422, (name, page.status_code)
            assert f'role="alert"><p>reason: {words}</p>' in page.text, (name, page.text)
    assert out["added"].status_code == 201, out["added"].text
    # what the refused forms gave was not stored; the number added stays listed
    [entry] = ListStore(settings).entries("internal")
    assert entry["reason"] == "asked on the phone"
