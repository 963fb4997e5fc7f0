"""The service and its own storage: verdicts wait for their audit records, and fail closed.

Real servers on a real SQLite file. The audit trail is made unwritable the way a database
refuses writes to everyone at once: a trigger that aborts every insert into
``audit_records`` (every process and connection sees it; dropping it is the recovery).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dncguard import audit
from dncguard.config import load_settings
from dncguard.store import dispose_engines

from .conftest import Server, make_key, server_env

READ_ONLY = ("CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_records "
             "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END")


def _sql(home: Path, statement: str) -> None:
    with sqlite3.connect(home / "dncguard.db", timeout=30) as db:
        db.execute(statement)


def _log(home: Path) -> audit.AuditLog:
    return audit.audit_log(load_settings(home=home))


def codes(verdict: dict[str, object]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]  # type: ignore[attr-defined, index]


def test_unwritable_audit_trail_fails_closed_then_recovers(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "check")
    server = start_server(server_env(home))
    phone = "+12025550170"
    with server.client(key) as c:
        assert c.post("/v1/check", json={"phone": phone}).json()["decision"] == "allow"
        assert c.get("/readyz").status_code == 200
        _sql(home, READ_ONLY)
        try:
            verdict = c.post("/v1/check", json={"phone": phone})
            assert verdict.status_code == 200
            body = verdict.json()
            assert body["decision"] == "error" and codes(body) == ["AUDIT_UNAVAILABLE"]
            assert body["e164"] == phone and body["next_allowed_at"] is None
            batch = c.post("/v1/check/batch", json={"phones": [phone, "+12025550171"]})
            assert batch.status_code == 200
            assert [v["decision"] for v in batch.json()["verdicts"]] == ["error", "error"]
            assert all(codes(v) == ["AUDIT_UNAVAILABLE"] for v in batch.json()["verdicts"])
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert any("audit trail" in r for r in ready.json()["reasons"])
        finally:
            _sql(home, "DROP TRIGGER IF EXISTS audit_read_only")
        # writable again: /readyz retries a (rolled back) append and recovers by itself
        assert c.get("/readyz").status_code == 200
        assert c.post("/v1/check", json={"phone": phone}).json()["decision"] == "allow"
    log = _log(home)
    result = log.verify()
    assert result.ok, result.message
    # the two answered checks; nothing of the refused ones (and no trial append) is kept
    assert log.count() == 2
    assert [r.decision for r in log.records()] == ["allow", "allow"]
    dispose_engines()


@pytest.mark.slow
def test_chain_after_10000_concurrent_checks(start_server: Callable[..., Server],
                                            tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "check")
    server = start_server(server_env(home, DNCGUARD_SERVER_RATE_PER_SECOND="1e9",
                                     DNCGUARD_SERVER_RATE_BURST="1000000000"),
                          "--workers", "2")
    total, concurrency = 10_000, 32

    async def run() -> list[str]:
        decisions: list[str] = []
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits,
                                     headers={"Authorization": f"Bearer {key}"}) as client:
            queue = list(range(total))

            async def worker() -> None:
                while queue:
                    i = queue.pop()
                    resp = await client.post("/v1/check",
                                             json={"phone": f"+1202555{i % 10_000:04d}"})
                    assert resp.status_code == 200, resp.text
                    decisions.append(resp.json()["decision"])

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return decisions

    lost: httpx.HTTPError | None = None
    try:
        decisions = asyncio.run(run())
    except httpx.HTTPError as exc:  # e.g. a connection reset: say what the server logged
        lost = exc
    finally:
        server.stop()  # SIGTERM: uvicorn stops its worker processes too (SIGKILL would not)
    if lost is not None:  # read once the server has stopped, so that its last lines are in
        told = "\n".join(ln for ln in server.log().splitlines() if "POST /v1/check" not in ln)
        pytest.fail(f"{lost!r}\nserver log, access lines left out:\n{told[-6000:]}")
    assert len(decisions) == total and set(decisions) == {"allow"}
    log = _log(home)
    result = log.verify()
    assert result.ok, result.message
    assert log.count() == total == result.checked
    dispose_engines()


@pytest.mark.parametrize("path", ["/v1/check", "/v1/check/batch", "/v1/jobs"])
def test_deeply_nested_json_answers_json_4xx(start_server: Callable[..., Server],
                                             tmp_path: Path, path: str) -> None:
    home = tmp_path / "home"
    key = make_key(home, "check", "jobs")
    server = start_server(server_env(home))
    body = b"[" * 200_000 + b"]" * 200_000
    with server.client(key) as c:
        resp = c.post(path, content=body, headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.json()["error"]["status"] == resp.status_code
        # and the server is fine
        assert c.get("/healthz").status_code == 200
    assert "Traceback" not in server.log()


@pytest.mark.postgres
def test_two_replicas_on_postgres_extend_one_chain(postgres_url: str,
                                                   start_server: Callable[..., Server],
                                                   tmp_path: Path) -> None:
    key = make_key(tmp_path / "home-a", "check", database_url=postgres_url)
    extra = {"DNCGUARD_DATABASE_URL": postgres_url, "DNCGUARD_AUDIT_HMAC_KEY": "shared",
             "DNCGUARD_SERVER_RATE_PER_SECOND": "1e9",
             "DNCGUARD_SERVER_RATE_BURST": "1000000000"}
    servers = [start_server(server_env(tmp_path / f"home-{n}", **extra), name=n)
               for n in ("a", "b")]
    total = 1000

    async def run() -> list[int]:
        clients = [httpx.AsyncClient(base_url=s.url, timeout=60,
                                     headers={"Authorization": f"Bearer {key}"})
                   for s in servers]
        try:
            async def one(i: int) -> int:
                resp = await clients[i % 2].post("/v1/check",
                                                 json={"phone": f"+1202555{i:04d}"})
                return resp.status_code

            sem = asyncio.Semaphore(16)

            async def bounded(i: int) -> int:
                async with sem:
                    return await one(i)

            return await asyncio.gather(*(bounded(i) for i in range(total)))
        finally:
            for c in clients:
                await c.aclose()

    assert set(asyncio.run(run())) == {200}
    log = audit.audit_log(load_settings(home=tmp_path / "home-a", database_url=postgres_url))
    result = log.verify()
    assert result.ok, result.message
    assert log.count() == total == result.checked
    dispose_engines()
