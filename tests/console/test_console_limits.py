"""Every console write takes from its key's rate limit, as the check did and as the key's API
requests do: opt-out adds and removals, uploads and audit verifications were not limited at
all. Past the limit the post is answered 429 on the console's error page, with its headers
and ``Retry-After``, and nothing is done; signing out is never refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from dncguard.lists.store import ListStore
from dncguard.server._deps import TokenBuckets

from .conftest import csrf_token, signed_in_client

AT = "2026-12-01T15:00:00Z"
CSV = b"phone\n+12025550161\n"


def _one_token_left(client: TestClient) -> None:
    """The key's bucket holds one token, and refills in about 17 minutes (no test waits)."""
    client.app.state.service.buckets = TokenBuckets(rate=0.001, burst=1)


def _refused(page: httpx.Response) -> None:
    assert page.status_code == 429, page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-type"].startswith("text/html")
    assert int(page.headers["retry-after"]) >= 1
    assert "Too many requests" in page.text and "Nothing was checked or changed" in page.text


def _post(client: TestClient, path: str, token: str, data: dict[str, str],
          **kw: Any) -> httpx.Response:
    return client.post(path, data={**data, "csrf": token}, follow_redirects=False, **kw)


def test_opt_out_writes_are_rate_limited(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")
    token = csrf_token(client.get("/console/optouts"))
    svc = client.app.state.service

    _one_token_left(client)
    add = {"phone": "+12025550171", "reason": "asked"}
    assert _post(client, "/console/optouts/add", token, add).status_code == 201
    _refused(_post(client, "/console/optouts/add", token, {**add, "phone": "+12025550172"}))

    _one_token_left(client)
    remove = {"phone": "+12025550171", "reason": "by mistake"}
    _post(client, "/console/optouts/add", token, {**add, "phone": "+12025550173"})
    _refused(_post(client, "/console/optouts/remove", token, remove))

    listed = {e["value"]: e["removed"] for e in
              ListStore(svc.settings, svc.engine).entries("internal")}
    assert listed == {"+12025550171": False, "+12025550173": False}  # 172 not added, 171 kept


def test_uploads_checks_and_verifications_are_rate_limited(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")
    token = csrf_token(client.get("/console/scrub"))
    jobs = client.app.state.service.jobs

    _one_token_left(client)
    made = _post(client, "/console/scrub", token, {"at": AT}, files={"file": ("c.csv", CSV)})
    assert made.status_code == 303, made.text
    _refused(_post(client, "/console/scrub", token, {"at": AT}, files={"file": ("d.csv", CSV)}))
    assert len(jobs.find(limit=10)) == 1

    _one_token_left(client)
    assert _post(client, "/console/audit/verify", token, {}).status_code == 200
    _refused(_post(client, "/console/audit/verify", token, {}))

    _one_token_left(client)
    assert _post(client, "/console/check", token, {"phone": "+12025550161"}).status_code == 200
    refused = _post(client, "/console/check", token, {"phone": "+12025550161"})
    _refused(refused)
    assert 'data-testid="decision"' not in refused.text

    assert _post(client, "/console/signout", token, {}).status_code == 303  # never refused
