"""A CXone-compatible sandbox on loopback (reference section 3) plus the http-batch endpoint.

>>> with run_sandbox() as sb:          # doctest: +SKIP
...     print(sb.url)                   # http://127.0.0.1:54321
...     sb.state.revoke_tokens()        # faults can be driven from the test

Credentials of the default configuration: app ``sandbox-app`` / ``sandbox-app-secret``,
access key ``SANDBOXKEY`` / ``sandbox-secret``, http-batch client ``batch-client`` /
``batch-secret``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from ._app import create_app
from ._state import Fault, SandboxConfig, SandboxState, default_seed

__all__ = ["Fault", "SandboxConfig", "SandboxServer", "SandboxState", "create_app",
           "default_seed", "run_sandbox"]


class SandboxServer:
    """The sandbox served by uvicorn in a background thread."""

    def __init__(self, state: SandboxState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(create_app(state), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="cxone-sandbox", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> SandboxServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the CXone sandbox did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def env(self) -> dict[str, str]:
        """``DNCGUARD_CXONE_*`` / ``DNCGUARD_HTTP_BATCH_*`` variables pointing at this sandbox."""
        cfg = self.state.config
        key, secret = next(iter(cfg.access_keys.items()))
        return {
            "DNCGUARD_CXONE_ISSUER": self.url,
            "DNCGUARD_CXONE_CLIENT_ID": cfg.client_id,
            "DNCGUARD_CXONE_CLIENT_SECRET": cfg.client_secret,
            "DNCGUARD_CXONE_ACCESS_KEY_ID": key,
            "DNCGUARD_CXONE_ACCESS_KEY_SECRET": secret,
            "DNCGUARD_HTTP_BATCH_BASE_URL": self.url,
            "DNCGUARD_HTTP_BATCH_TOKEN_URL": f"{self.url}/oauth/token",
            "DNCGUARD_HTTP_BATCH_CLIENT_ID": cfg.batch_client_id,
            "DNCGUARD_HTTP_BATCH_CLIENT_SECRET": cfg.batch_client_secret,
            "DNCGUARD_HTTP_BATCH_LIST_IDS": '["' + '","'.join(self.state.batch_lists) + '"]',
        }


@contextmanager
def run_sandbox(config: SandboxConfig | None = None, *, data: Path | dict[str, Any] | None = None,
                seed_default: bool = True, port: int = 0) -> Iterator[SandboxServer]:
    """Start the sandbox on loopback (port 0: any free port); stop it on exit."""
    if isinstance(data, Path):
        state = SandboxState.from_file(data, config)
    else:
        state = SandboxState(config)
        if data is not None:
            state.seed(data)
        elif seed_default:
            state.seed(default_seed())
    server = SandboxServer(state, port=port).start()
    try:
        yield server
    finally:
        server.stop()
