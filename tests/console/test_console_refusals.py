"""What the console refuses before acting: a text field sent as a file part (it was read as
absent: a dial time given as a file checked "now"), an upload whose name holds a control
character (it was stored as the job's input name; PostgreSQL refused a NUL with an API error),
and a sign-in key that is not of a key's form (the key store was asked about it, and a NUL in
it answered 503 "key store unavailable" on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from dncguard.config import load_settings
from dncguard.server.app import create_app

from ..server.conftest import make_key
from .conftest import csrf_token, signed_in_client

CSV = b"phone\n+12025550161\n"


def test_a_text_field_sent_as_a_file_is_refused(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")
    token = csrf_token(client.get("/console/check"))
    posts: list[tuple[str, dict[str, str], list[tuple[str, tuple[str, bytes]]], str]] = [
        ("/console/check", {"phone": "+12025550161"},
         [("at", ("at.txt", b"2020-01-01T00:00:00Z"))], "at"),
        ("/console/check", {"phone": "+12025550161"}, [("campaign", ("c.txt", b"x"))],
         "campaign"),
        ("/console/optouts/add", {"phone": "+12025550161"}, [("reason", ("r.txt", b"x"))],
         "reason"),
        # (with the file too, the framework refuses a second file part: 422 as well)
        ("/console/scrub", {}, [("campaign", ("c.txt", b"default"))], "campaign"),
    ]
    for path, data, files, field in posts:
        page = client.post(path, data={**data, "csrf": token}, files=files,
                           follow_redirects=False)
        assert page.status_code == 422, (path, field, page.status_code)
        assert "Form not understood" in page.text
        assert f"&#39;{field}&#39; sent as a file" in page.text.replace("&#x27;", "&#39;")
    assert client.app.state.service.jobs.find(limit=10) == []
    assert "data-testid=\"decision\"" not in page.text


def _upload(client: TestClient, token: str, filename: bytes) -> httpx.Response:
    boundary = b"BOUNDARY"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n'
            + token.encode() + b"\r\n--" + boundary
            + b'\r\nContent-Disposition: form-data; name="file"; filename="' + filename
            + b'"\r\nContent-Type: text/csv\r\n\r\n' + CSV + b"\r\n--" + boundary + b"--\r\n")
    return client.post("/console/scrub", content=body, follow_redirects=False,
                       headers={"content-type": "multipart/form-data; boundary=BOUNDARY"})


def test_an_upload_name_with_a_control_character_is_refused(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")
    token = csrf_token(client.get("/console/scrub"))
    for name, code in ((b"a\x00b.csv", "U+0000"), (b"a\x01\x1b[31mred.csv", "U+0001"),
                       (b"a\tb.csv", "U+0009")):
        page = _upload(client, token, name)
        assert page.status_code == 422, (name, page.status_code)
        assert "The file was not scrubbed" in page.text
        assert f"control character {code}" in page.text
        assert "\x00" not in page.text and "\x1b" not in page.text
    assert client.app.state.service.jobs.find(limit=10) == []
    made = _upload(client, token, "café.csv".encode())
    assert made.status_code == 303


def _signin(client: TestClient, key: str) -> int:
    page = client.post("/console/signin", data={
        "key": key, "csrf": csrf_token(client.get("/console/signin"))},
        follow_redirects=False)
    return page.status_code


NOT_KEYS = ("dgk_ab\x00defghijkl_xyz", "dgk_0123456789ab_se\x00cret", "dgk_0123456789ab_",
            "dgk_0123456789a_secret", "dgk_0123456789AB_secret", "hello",
            "dgk_0123456789ab_s\u00e9cret")


def test_a_key_not_of_a_keys_form_is_refused_unasked(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    admin = make_key(home, "admin")
    client = TestClient(create_app(load_settings(home=home), run_jobs=False))
    keys = client.app.state.service.keys
    asked: list[str] = []
    verify = keys.verify

    def counted(text: str, **kw: bool) -> object:
        asked.append(text)
        return verify(text, **kw)

    monkeypatch.setattr(keys, "verify", counted)
    for text in NOT_KEYS:
        assert _signin(client, text) == 401, repr(text)
    assert asked == []
    assert _signin(client, "dgk_0123456789ab_" + "x" * 43) == 401  # of the form, but wrong
    assert _signin(client, admin) == 303
    assert len(asked) == 2


def test_a_key_holding_a_nul_is_401_on_postgresql(tmp_path: Path, postgres_url: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_DATABASE_URL", postgres_url)
    home = tmp_path / "home"
    admin = make_key(home, "admin")
    client = TestClient(create_app(load_settings(home=home), run_jobs=False))
    assert _signin(client, "dgk_ab\x00defghijkl_xyz") == 401
    assert _signin(client, admin) == 303
    token = csrf_token(client.get("/console/scrub"))
    page = _upload(client, token, b"a\x00b.csv")
    assert page.status_code == 422
    assert "control character U+0000" in page.text
