"""A console check is counted once, as an API check is: by the real-time checker that
answers both (the Prometheus decision series and the hourly counts behind
``GET /v1/metrics/summary``)."""

from __future__ import annotations

from pathlib import Path

import httpx

from ..server.conftest import Server, make_key, server_env
from .conftest import csrf_token


def _decisions(c: httpx.Client, admin: str) -> float:
    """The sum of every ``dncguard_decisions_total`` series (one per verdict here: the
    verdicts are allow with no reason, so each counts in one series)."""
    resp = c.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
    assert resp.status_code == 200, resp.text
    return sum(float(line.rsplit(" ", 1)[1]) for line in resp.text.splitlines()
               if line.startswith("dncguard_decisions_total{"))


def _summary(c: httpx.Client, admin: str) -> int:
    resp = c.get("/v1/metrics/summary", headers={"Authorization": f"Bearer {admin}"})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["verdicts"])


def test_a_console_check_and_an_api_check_count_two(tmp_path: Path) -> None:
    home = tmp_path / "home"
    admin, check = make_key(home, "admin"), make_key(home, "check")
    server = Server(server_env(home), tmp_path / "server.log")
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as c:
            before = _decisions(c, admin)
            assert _summary(c, admin) == 0
            signed = c.post("/console/signin", data={
                "key": admin, "csrf": csrf_token(c.get("/console/signin"))})
            assert signed.status_code == 303, signed.text
            page = c.post("/console/check", data={
                "phone": "+12025550123", "csrf": csrf_token(c.get("/console/check"))})
            assert page.status_code == 200 and "+12025550123" in page.text
            api = c.post("/v1/check", json={"phone": "+12025550124"},
                         headers={"Authorization": f"Bearer {check}"})
            assert api.status_code == 200 and api.json()["decision"] == "allow"
            assert _summary(c, admin) == 2
            assert _decisions(c, admin) - before == 2
    finally:
        server.stop()
