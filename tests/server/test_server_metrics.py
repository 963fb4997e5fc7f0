"""``/metrics``: its request series stay bounded whatever methods arrive, and with
``metrics_public`` off it reads the key as every other route does.

In process (``httpx.ASGITransport``: the service's whole stack), as ``test_auth_header_twice``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import make_key
from .test_auth_header_twice import PHONE, _requests

_SERIES = re.compile(r'^dncguard_http_requests_total\{method="([^"]*)",route="([^"]*)"', re.M)


def test_methods_beyond_the_usual_share_one_label(tmp_path: Path) -> None:
    """The server passes any method token through (PROPFIND, M-SEARCH, made-up ones), and a
    public ``/metrics`` must not grow a series per method anyone sends: they count as OTHER."""
    odd = ["PROPFIND", "M-SEARCH", "TRACE", "XYZZY"]
    calls = [(m, p, None, []) for m in odd for p in ("/v1/check", "/nope")]
    calls += [("DELETE", "/v1/check", None, []), ("OPTIONS", "/v1/check", None, []),
              ("GET", "/metrics", None, [])]
    out, _ = _requests(tmp_path, calls)
    assert [r.status_code for r in out[:len(odd) * 2]] == [405, 404] * len(odd)
    series = set(_SERIES.findall(out[-1].text))
    assert ("OTHER", "/v1/check") in series and ("OTHER", "<unmatched>") in series, series
    assert {m for m, _ in series} == {"OTHER", "DELETE", "OPTIONS"}, series


def test_metrics_reads_the_key_as_the_other_routes(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``Bearer`` and the key with two spaces between: FastAPI's reading strips them, and
    ``/metrics`` answered 401 for a key every ``/v1/`` route accepts."""
    monkeypatch.setenv("DNCGUARD_SERVER_METRICS_PUBLIC", "false")
    admin = make_key(tmp_path / "home", "admin")
    calls = [
        ("GET", "/v1/lists", None, [("Authorization", f"Bearer  {admin}")]),
        ("GET", "/metrics", None, [("Authorization", f"Bearer  {admin}")]),
        ("GET", "/metrics", None, [("Authorization", f"bearer {admin} ")]),
        ("GET", "/metrics", None, [("Authorization", "Bearer  {check}")]),  # no admin scope
        ("GET", "/metrics", None, []),
        ("POST", "/v1/check", {"phone": PHONE}, [("Authorization", "Bearer  {check}")]),
    ]
    out, _ = _requests(tmp_path, calls)
    assert [r.status_code for r in out] == [200, 200, 200, 403, 401, 200], \
        [r.text for r in out]
    assert "dncguard_http_requests_total" in out[1].text
    assert "'admin' scope" in out[3].json()["error"]["message"]
