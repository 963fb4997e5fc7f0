"""The export token and the service's export task: a token HTTP cannot carry is refused when
the settings load (naming the setting, never repeating the token), and the service's export
loop survives a worker that cannot be built (it says why, and tries again)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dncguard import audit
from dncguard.audit import ExportWorker
from dncguard.audit.export import EXPORT_TOPIC, outbox_for
from dncguard.audit.settings import load_audit_settings
from dncguard.cli import run
from dncguard.config import Settings, load_settings
from dncguard.errors import ConfigError

from ..conftest import LogLines, log_lines
from .conftest import Receiver, make_log

BAD_TOKENS = {
    "non-ASCII": "t\u00f6k\u00e9n",
    "a newline": "abc\ndef",
    "a control character": "abc\x7fdef",
    "an invisible space": "abc\u200bdef",
}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
def test_a_token_http_cannot_carry_is_refused_when_the_settings_load(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    token = BAD_TOKENS[name]
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_TOKEN", token)
    with pytest.raises(ConfigError) as caught:
        load_audit_settings(load_settings())
    message = str(caught.value)
    assert "DNCGUARD_AUDIT_EXPORT_TOKEN" in message and "export_token" in message
    assert "ASCII" in message
    assert token not in message and "abc" not in message and "\u00f6" not in message


def test_a_printable_ascii_token_is_sent_as_a_bearer_token(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "Ab0-._~+/= x!"
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_TOKEN", token)
    cfg = load_audit_settings(load_settings())
    assert cfg.export_token is not None and cfg.export_token.get_secret_value() == token
    log = make_log(settings, export_url="http://127.0.0.1:9/x", export_token=token)
    worker = ExportWorker(log)
    try:
        assert worker.client.headers["Authorization"] == f"Bearer {token}"
    finally:
        worker.close()


def test_outbox_deliver_refuses_a_non_ascii_token_in_one_line(
        settings: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "test-key")
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_URL", receiver.url)
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_TOKEN", "t\u00f6k\u00e9n")
    assert run(["audit", "outbox", "--deliver"]) == 2
    err = capsys.readouterr().err
    assert "DNCGUARD_AUDIT_EXPORT_TOKEN" in err and "Traceback" not in err
    assert "t\u00f6k\u00e9n" not in err and receiver.requests == []


def test_the_service_refuses_to_start_with_a_non_ascii_token(
        monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    from dncguard.server.app import create_app

    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_URL", receiver.url)
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_TOKEN", "t\u00f6k\u00e9n")
    with pytest.raises(ConfigError, match="DNCGUARD_AUDIT_EXPORT_TOKEN"):
        create_app(load_settings(), no_auth=True, run_jobs=False)


@pytest.fixture
def server_log() -> Iterator[LogLines]:
    with log_lines("dncguard.server") as lines:
        yield lines


def test_the_export_task_survives_a_worker_it_cannot_build(
        monkeypatch: pytest.MonkeyPatch, receiver: Receiver, server_log: LogLines) -> None:
    """The first two workers fail to build (with the token in the error, as a careless
    library might put it); the task says so each time, without the token, and the third
    delivers."""
    from dncguard.server.app import create_app

    secret = "sekret-token-123"
    monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "test-key")
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_URL", receiver.url)
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_TOKEN", secret)
    monkeypatch.setenv("DNCGUARD_SERVER_EXPORT_SECONDS", "0.01")
    built: list[int] = []
    delivered = threading.Event()

    class Flaky(ExportWorker):
        def __init__(self, *args: Any, **kw: Any) -> None:
            built.append(1)
            if len(built) <= 2:
                raise RuntimeError(f"cannot build a client (token {secret})")
            super().__init__(*args, **kw)

        def run_once(self) -> Any:
            delivered.set()
            return super().run_once()

    monkeypatch.setattr(audit, "ExportWorker", Flaky)
    app = create_app(load_settings(), no_auth=True, run_jobs=False)
    with TestClient(app):
        assert delivered.wait(30), server_log.lines
    failures = [line for line in server_log.lines if "export" in line]
    assert len(failures) >= 2, server_log.lines
    assert all("RuntimeError" in line and "cannot build a client" in line
               for line in failures[:2]), failures
    assert not any(secret in line for line in server_log.lines), server_log.lines


def test_a_receiver_quoting_the_token_never_gets_it_into_the_queue(
        settings: Settings, receiver: Receiver) -> None:
    """A failed delivery keeps the receiver's answer as its error (shown by ``audit
    outbox``): an answer quoting the request's Authorization header put the token there."""
    token = "s3cret-export-token"
    receiver.mode = "echo"
    log = make_log(settings, export_url=receiver.url, export_token=token)
    audit.enqueue_export(log, log.append("job", "scrub", subject="job-1"))
    worker = ExportWorker(log)
    try:
        assert worker.run_once().failed == 1
    finally:
        worker.close()
    errors = [item.last_error or "" for item in outbox_for(log).items(EXPORT_TOPIC)]
    assert errors and all("HTTP 401: refused: Bearer ***" in e for e in errors), errors
    assert not any(token in e for e in errors)
