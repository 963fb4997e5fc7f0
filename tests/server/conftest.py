"""Real uvicorn servers on loopback for the service tests (subprocesses, stopped by the test)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from dncguard.config import Settings, load_settings
from dncguard.server._checker import CheckerProvider
from dncguard.server._jobs import JobInfo, JobRunner, JobStore
from dncguard.server._metrics import DecisionCounter, Metrics
from dncguard.server.keys import KeyStore
from dncguard.store import get_engine, metadata

if TYPE_CHECKING:
    from sqlalchemy import Engine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One ``dncguard serve`` process."""

    env: dict[str, str]
    log_path: Path
    args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Server:
        _STARTED.append(self)
        self.port = free_port()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dncguard.server", "serve", "--port", str(self.port),
             *self.args], env=self.env, stdout=log, stderr=log,
            start_new_session=True)  # its own process group: kill() reaches the workers too
        log.close()
        if wait:
            self.wait_up()
        return self

    def wait_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._kill_group()

    def kill(self) -> None:
        """SIGKILL the server and its worker processes (a crash, as far as they know)."""
        if self.proc is not None and self.proc.poll() is None:
            self._kill_group()
            self.proc.wait(5)
        self._kill_group()

    def _kill_group(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


_STARTED: list[Server] = []


@pytest.fixture(scope="session", autouse=True)
def _kill_leftover_servers() -> Iterator[None]:
    """Whatever happens to a test, no server process outlives the session."""
    yield
    for server in _STARTED:
        server.kill()


def server_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGUARD_")
           or k in ("DNCGUARD_TEST_REQUIRE_POSTGRES", "DNCGUARD_TEST_DATABASE_URL")}
    # The calling-hours and registry rules judge "now", which these tests do not control:
    # they test the service, with list checks only (the rules have their own tests).
    env.update({"DNCGUARD_HOME": str(home), "DNCGUARD_SERVER_KEY_CACHE_SECONDS": "0",
                "DNCGUARD_SERVER_JOB_POLL_SECONDS": "0.2", "DNCGUARD_RULES_ENABLED": "false",
                **extra})
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_for(client: httpx.Client, job_id: str, pred: Callable[[dict[str, Any]], bool],
             timeout: float = 60.0) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{job_id}`` until ``pred`` holds for the job (its JSON)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = client.get(f"/v1/jobs/{job_id}")
        if resp.status_code == 200 and pred(resp.json()):
            return dict(resp.json())
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never got there: {client.get(f'/v1/jobs/{job_id}').text}")


def make_key(home: Path, *scopes: str, database_url: str | None = None) -> str:
    settings = load_settings(home=home, **({"database_url": database_url} if database_url
                                           else {}))
    engine = get_engine(settings)
    metadata.create_all(engine)
    return KeyStore(engine).create("test-" + "-".join(scopes), list(scopes))[1]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers for one test; every one is stopped at the end."""
    started: list[Server] = []

    def start(env: dict[str, str], *args: str, wait: bool = True, name: str = "server") -> Server:
        server = Server(env, tmp_path / f"{name}-{len(started)}.log", list(args))
        started.append(server)
        return server.start(wait)

    yield start
    for server in started:
        server.kill()


def job_runner(settings: Settings, engine: Engine) -> JobRunner:
    """A job runner of ``settings``' home, driven by the test (``run_one``)."""
    return JobRunner(settings, engine, CheckerProvider(settings, engine),
                     DecisionCounter(engine), Metrics(lambda: []), poll=0.1, lease=30)


def new_job(settings: Settings, engine: Engine, csv_text: str) -> JobInfo:
    """A queued job whose upload is ``csv_text`` (dial time 2026-11-26 15:00 UTC)."""
    store = JobStore(settings, engine)
    job_id = store.new_id()
    store.folder(job_id).mkdir(parents=True)
    (store.folder(job_id) / "input.csv").write_text(csv_text, encoding="utf-8")
    return store.create(job_id, input_name="c.csv", input_format="csv",
                        params={"at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(),
                                "campaign": "default", "defaults": {}}, who="api:test")

