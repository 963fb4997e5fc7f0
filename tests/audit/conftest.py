"""Audit test helpers: a controllable clock, a demo job, a loopback HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dncguard.audit import AuditLog
from dncguard.audit.settings import AuditSettings
from dncguard.config import Settings
from dncguard.demo import build_demo
from dncguard.engine.scrubber import Scrubber
from dncguard.engine.summary import ScrubSummary
from dncguard.lists.store import ListStore

T0 = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 0, **kw: float) -> datetime:
        self.now += timedelta(seconds=seconds, **kw)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_log(settings: Settings, clock: FakeClock | None = None, **audit: Any) -> AuditLog:
    cfg = AuditSettings(hmac_key="test-key", **audit)
    return AuditLog(settings, audit=cfg, clock=clock or FakeClock())


@pytest.fixture
def log(settings: Settings, clock: FakeClock) -> AuditLog:
    return make_log(settings, clock, checkpoint_interval=5)


@dataclass
class DemoJob:
    output: Path
    summary: ScrubSummary
    scrubber: Scrubber


@pytest.fixture
def demo_job(settings: Settings, tmp_path: Path) -> DemoJob:
    files = build_demo(ListStore(settings), tmp_path / "demo", date(2026, 11, 10))
    scrubber = Scrubber(settings, clock=lambda: T0, audit=False)  # the tests record it
    out = tmp_path / "verdicts.csv"
    summary = scrubber.scrub_file(files.contacts, out, at=T0)
    return DemoJob(out, summary, scrubber)


# -- a loopback receiver ---------------------------------------------------------------------


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that counts deliveries by idempotency key.

    ``mode``: ``ok``; ``flaky`` fails every other request, alternately before processing
    (503) and after (processed, then 500: the acknowledgement is lost, so the sender retries
    and the key deduplicates); ``hang`` records a request then holds the response until
    ``release`` is set; ``echo`` answers 401 quoting the request's Authorization header.
    """

    mode: str = "ok"
    port: int = 0
    requests: list[str] = field(default_factory=list)  # every key received, in order
    counted: Counter[str] = field(default_factory=Counter)  # processed once per key
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)
    got_request: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    n: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/summaries"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                key = self.headers.get("Idempotency-Key", "")
                status = receiver.handle(key, body)
                try:
                    if status == 0:  # hang until released, then drop the connection
                        receiver.release.wait(30)
                        return
                    answer = (f"refused: {self.headers.get('Authorization')}".encode()
                              if receiver.mode == "echo" else b"")
                    self.send_response(401 if receiver.mode == "echo" else status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def handle(self, key: str, body: dict[str, Any]) -> int:
        with self.lock:
            self.n += 1
            self.requests.append(key)
            self.got_request.set()
            if self.mode == "hang" and self.n == 1:
                self.counted[key] += 0
                return 0
            if self.mode == "flaky" and self.n % 2 == 1:
                if self.n % 4 == 1:
                    return 503  # failed before processing
                self._process(key, body)
                return 500  # processed, but the sender never learns it
            self._process(key, body)
            return 200

    def _process(self, key: str, body: dict[str, Any]) -> None:
        if key not in self.bodies:  # deduplicate by idempotency key
            self.bodies[key] = body
            self.counted[key] += 1


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.release.set()
    r.stop()
