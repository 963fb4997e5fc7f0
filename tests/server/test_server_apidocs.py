"""The API docs work offline: every script, style sheet and icon ``/docs`` and ``/redoc``
load comes from the running app itself (issue 14)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Server, make_key, server_env


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_everything_from_the_app(start_server: Callable[..., Server],
                                               tmp_path: Path, page: str) -> None:
    home = tmp_path / "home"
    make_key(home, "check")
    server = start_server(server_env(home))
    with server.client() as c:
        resp = c.get(page)
        assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
        html = resp.text
        refs = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", html)
        refs += re.findall(r"""url\s*:\s*['"]([^'"]+)['"]""", html)
        assert refs, html
        assert not [r for r in refs if re.match(r"(?:https?:)?//", r)], refs  # no CDN, no fonts
        assets = [r for r in refs if r.startswith("/static/")]
        assert assets
        for ref in assets:
            asset = c.get(ref)
            assert asset.status_code == 200, ref
            assert asset.content and b"Not Found" not in asset.content[:50], ref
        assert c.get("/openapi.json").json()["info"]["title"] == "dncguard"
