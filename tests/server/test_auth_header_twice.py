"""An ``Authorization`` header given more than once is refused, 400 naming the header, on
every route that takes an API key: the framework reads the first copy, and which key a
request is answered for must not depend on the order its copies came in. With ``--no-auth``
there is no key to choose, and nothing changes.

In process here (``httpx.ASGITransport``: the service's whole stack, the fast path of
``POST /v1/check`` in front); against a live server over a raw socket, in either order and
content type, in ``test_check_edges.py`` (a real HTTP parser is what production sees)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from dncguard.config import load_settings

from .conftest import make_key

PHONE = "+12025550123"
BAD = "Bearer dgk_000000000000_nope"
MESSAGE = "the Authorization header is given 2 times; send it once"


def _requests(
    tmp_path: Path, calls: list[tuple[str, str, Any, list[tuple[str, str]]]], *,
    no_auth: bool = False,
) -> tuple[list[httpx.Response], dict[str, str]]:
    """Run ``calls`` (method, path, JSON body, headers with repeats kept) in order against a
    fresh in-process service; the responses, and the keys (``check``, ``console``)."""
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    keys = {"check": make_key(home, "check"), "console": make_key(home, "console")}
    app = create_app(load_settings(home=home), run_jobs=False, no_auth=no_auth)

    async def scenario() -> list[httpx.Response]:
        out: list[httpx.Response] = []
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            for method, path, body, headers in calls:
                headers = [(n, v.format(**keys)) for n, v in headers]
                out.append(await client.request(method, path, json=body, headers=headers))
        return out

    return asyncio.run(scenario()), keys


def _refused(resp: httpx.Response, count: int = 2) -> None:
    assert resp.status_code == 400, (resp.status_code, resp.text)
    error = resp.json()["error"]
    assert error["status"] == 400 and error["code"] == "bad_request", error
    assert error["message"] == (f"the Authorization header is given {count} times; "
                                "send it once"), error


GOOD = ("Authorization", "Bearer {check}")
CONSOLE = ("Authorization", "Bearer {console}")


def test_check_refuses_the_header_twice_in_either_order(tmp_path: Path) -> None:
    body = {"phone": PHONE}
    calls = [
        ("POST", "/v1/check", body, [GOOD]),  # verified: the fast path knows the key
        ("POST", "/v1/check", body, [("Authorization", BAD), GOOD]),
        ("POST", "/v1/check", body, [GOOD, ("Authorization", BAD)]),
        ("POST", "/v1/check", body, [CONSOLE, GOOD]),  # a key without the check scope
        ("POST", "/v1/check", body, [GOOD, CONSOLE]),
        ("POST", "/v1/check", body, [GOOD, GOOD]),  # the same key twice is still ambiguous
        ("POST", "/v1/check", body, [GOOD, ("authorization", BAD)]),  # any case of the name
        ("POST", "/v1/check", body, [GOOD, GOOD, ("Authorization", BAD)]),
        ("POST", "/v1/check", body, [GOOD]),  # once: still answered
    ]
    out, _ = _requests(tmp_path, calls)
    assert out[0].status_code == 200, out[0].text
    for resp in out[1:7]:
        _refused(resp)
    _refused(out[7], 3)
    assert out[8].status_code == 200, out[8].text
    assert out[8].json()["e164"] == out[0].json()["e164"] == PHONE


def test_other_routes_refuse_the_header_twice(tmp_path: Path) -> None:
    batch = {"phones": [PHONE, "+12025550188"]}
    calls = [
        ("POST", "/v1/check/batch", batch, [GOOD]),
        ("POST", "/v1/check/batch", batch, [("Authorization", BAD), GOOD]),
        ("POST", "/v1/check/batch", batch, [GOOD, ("Authorization", BAD)]),
        ("GET", "/v1/lists", None, [GOOD]),
        ("GET", "/v1/lists", None, [("Authorization", BAD), GOOD]),
        ("GET", "/v1/lists", None, [GOOD, ("Authorization", BAD)]),
    ]
    out, _ = _requests(tmp_path, calls)
    assert out[0].status_code == 200 and out[0].json()["count"] == 2, out[0].text
    assert out[3].status_code == 200, out[3].text
    for resp in (out[1], out[2], out[4], out[5]):
        _refused(resp)


def test_a_missing_or_single_header_answers_as_before(tmp_path: Path) -> None:
    calls = [
        ("POST", "/v1/check", {"phone": PHONE}, []),
        ("POST", "/v1/check", {"phone": PHONE}, [("Authorization", BAD)]),
        ("POST", "/v1/check", {"phone": PHONE}, [CONSOLE]),
    ]
    out, _ = _requests(tmp_path, calls)
    assert [r.status_code for r in out] == [401, 401, 403], [r.text for r in out]


def test_no_auth_does_not_refuse(tmp_path: Path) -> None:
    """``--no-auth``: no key is read, so two copies choose nothing; answered as before."""
    calls = [
        ("POST", "/v1/check", {"phone": PHONE}, [("Authorization", BAD), GOOD]),
        ("POST", "/v1/check", {"phone": PHONE}, [GOOD, ("Authorization", BAD)]),
        ("GET", "/v1/lists", None, [GOOD, ("Authorization", BAD)]),
    ]
    out, _ = _requests(tmp_path, calls, no_auth=True)
    assert [r.status_code for r in out] == [200, 200, 200], [r.text for r in out]
