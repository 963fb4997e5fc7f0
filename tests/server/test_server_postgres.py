"""Several replicas on PostgreSQL, and failing closed when the database goes away."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import Server, free_port, make_key, server_env

pytestmark = pytest.mark.postgres


def test_two_replicas_share_opt_outs(postgres_url: str, start_server: Callable[..., Server],
                                     tmp_path: Path) -> None:
    key = make_key(tmp_path / "home-a", "check", "dnc:write", database_url=postgres_url)
    a = start_server(server_env(tmp_path / "home-a", DNCGUARD_DATABASE_URL=postgres_url),
                     name="a")
    b = start_server(server_env(tmp_path / "home-b", DNCGUARD_DATABASE_URL=postgres_url),
                     name="b")
    phone = "+12025550140"
    with a.client(key) as ca, b.client(key) as cb:
        # warm both replicas' caches first: the opt-out must still be seen at once
        assert ca.post("/v1/check", json={"phone": phone}).json()["decision"] == "allow"
        assert cb.post("/v1/check", json={"phone": phone}).json()["decision"] == "allow"
        assert ca.post("/v1/dnc", json={"phone": phone}).status_code == 201
        verdict = cb.post("/v1/check", json={"phone": phone}).json()
        assert verdict["decision"] == "block"
        assert [r["code"] for r in verdict["reasons"]] == ["DNC_INTERNAL"]
        batch = cb.post("/v1/check/batch", json={"phones": [phone, "+12025550141"]}).json()
        assert [v["decision"] for v in batch["verdicts"]] == ["block", "allow"]
        assert cb.delete(f"/v1/dnc/{phone}").json()["wasListed"] is True
        assert ca.post("/v1/check", json={"phone": phone}).json()["decision"] == "allow"


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or (
        [p] if (p := shutil.which(name)) else [])
    return found[-1] if found else None


class ThrowawayPostgres:
    """A PostgreSQL on its own port and data directory, started and stopped by the test."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("initdb/pg_ctl not found")
        self.pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="dncguard-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data = self.root / "data"
        self.port = free_port()
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
                   "-E", "UTF8"])

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        done = subprocess.run([*self.prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed: {done.stderr[-500:]}")

    def start(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                   "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off", "start"])

    def stop(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def close(self) -> None:
        subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    try:
        pg = ThrowawayPostgres()
        pg.start()
    except (RuntimeError, OSError, LookupError, subprocess.SubprocessError) as exc:
        if os.environ.get("DNCGUARD_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"cannot start a throwaway PostgreSQL: {exc}")
        pytest.skip(f"cannot start a throwaway PostgreSQL: {exc}")
    try:
        yield pg
    finally:
        pg.close()


def test_fails_closed_when_the_database_goes_away(
        throwaway_postgres: ThrowawayPostgres, start_server: Callable[..., Server],
        tmp_path: Path) -> None:
    pg = throwaway_postgres
    home = tmp_path / "home"
    key = make_key(home, "admin", database_url=pg.url)
    # the key verified before the outage stays trusted through it (key_cache_seconds): this
    # test is about what the checks answer; a key past it is a 503 (test_key_outage.py)
    server = start_server(server_env(home, DNCGUARD_DATABASE_URL=pg.url,
                                     DNCGUARD_SERVER_KEY_CACHE_SECONDS="300"))
    phone = "+12025550150"
    with server.client(key) as c:
        assert c.post("/v1/check", json={"phone": phone}).json()["decision"] == "allow"
        pg.stop()
        verdict = c.post("/v1/check", json={"phone": phone})
        assert verdict.status_code == 200
        body = verdict.json()
        assert body["decision"] == "error" and body["e164"] == phone
        # nothing could be read, nor recorded
        assert [r["code"] for r in body["reasons"]] == ["SOURCE_ERROR", "AUDIT_UNAVAILABLE"]
        batch = c.post("/v1/check/batch", json={"phones": [phone]})
        assert batch.status_code == 503 and batch.json()["error"]["code"] == "unavailable"
        job = c.post("/v1/jobs", json=[phone])
        assert job.status_code == 503
        assert c.get("/v1/jobs/0123456789abcdef0123456789abcdef").status_code == 503
        assert c.post("/v1/dnc", json={"phone": phone}).status_code == 503
        ready = c.get("/readyz")
        assert ready.status_code == 503 and "database unreachable" in ready.json()["reasons"][0]
        assert c.get("/healthz").status_code == 200
        assert c.get("/metrics").status_code == 200
        pg.start()  # and it recovers on its own
        assert c.post("/v1/check", json={"phone": phone}).json()["decision"] == "allow"
        assert c.get("/readyz").status_code == 200
