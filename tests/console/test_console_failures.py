"""Console paths answer with the console's headers whatever fails, and say it as the console
does: a refusal by the framework before the console's code ran (an unknown query parameter,
a multipart body that cannot be read, a second file part), a path or method no page takes,
and a failure under a page were answered the API's JSON without the Content-Security-Policy.

A database outage during a check was answered the API's 503 JSON, or (a console key) a 200
page: it is a 503 page, with ``Retry-After``, that shows the verdict ``error`` and says the
number must not be called; when the session itself cannot be read, the 503 page says no
verdict was given. The outage is an engine whose every new connection is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from starlette.requests import Request

from dncguard.config import load_settings
from dncguard.server.app import create_app

from ..server.conftest import make_key
from .conftest import csrf_token, signed_in_client

PHONE = "+12025550123"


def _console_headers(page: httpx.Response) -> None:
    assert "default-src 'none'" in page.headers.get("content-security-policy", ""), \
        (page.status_code, dict(page.headers), page.text[:300])
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


def _console_page(page: httpx.Response, status: int, *says: str) -> None:
    assert page.status_code == status, (page.status_code, page.text[:500])
    _console_headers(page)
    assert page.headers["content-type"].startswith("text/html")
    assert "· dncguard console</title>" in page.text and 'role="alert"' in page.text
    for text in says:
        assert text in page.text.replace("&#39;", "'"), (text, page.text)
    assert "Traceback" not in page.text


# -- the framework's refusals -----------------------------------------------------------------

def test_framework_refusals_are_console_pages(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")
    _console_page(client.get("/console/check?line_type=wireless"), 422,
                  "Unknown query parameter(s): line_type")
    _console_page(client.get("/console/check?%FF=1"), 422, "not valid UTF-8")
    token = csrf_token(client.get("/console/scrub"))
    broken = client.post("/console/scrub", content=b"--B\r\nno header\r\n--B--\r\n",
                         headers={"content-type": "multipart/form-data; boundary=B"})
    _console_page(broken, 422, "The form could not be read")
    no_boundary = client.post("/console/optouts/add", content=b"x",
                              headers={"content-type": "multipart/form-data"})
    _console_page(no_boundary, 422, "The form could not be read", "boundary")
    two_files = client.post("/console/scrub", data={"csrf": token},
                            files=[("file", ("a.csv", b"phone\n")), ("file", ("b.csv", b"x"))])
    _console_page(two_files, 422, "Too many files")
    assert client.app.state.service.jobs.find(limit=10) == []


def test_the_progress_poll_gets_json_with_the_console_headers(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")
    wants = {"accept": "application/json"}
    refused = client.get("/console/scrub/nope/status?x=1", headers=wants)
    assert refused.status_code == 422
    _console_headers(refused)
    assert refused.json()["error"]["message"].startswith("Unknown query parameter(s): x")
    gone = client.get("/console/scrub/nope/status", headers=wants)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    _console_headers(gone)


def test_paths_and_methods_no_page_takes(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")
    _console_page(client.get("/console/nope?x=1"), 404, "There is no console page here")
    _console_page(client.get("/console/static/a/b.css"), 404)
    _console_page(client.get("/console/static/nope.css"), 404, "There is no such console file")
    assert client.get("/console/static/console.css").status_code == 200
    wrong = client.get("/console/optouts/add")
    _console_page(wrong, 405, "GET is not taken here (only POST)")
    assert wrong.headers["allow"] == "POST"
    overview = client.post("/console")
    _console_page(overview, 405)
    assert overview.headers["allow"] == "GET"
    slash = client.get("/console/check/", follow_redirects=False)
    assert slash.status_code == 307 and slash.headers["location"] == "/console/check"
    _console_headers(slash)


def test_a_validation_error_is_a_console_page() -> None:
    """A validation error of the framework (none of today's console routes declares a
    parameter it could refuse) is answered as the console's 422."""
    from fastapi.exceptions import RequestValidationError

    from dncguard.server.console._failures import failure

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/console/x",
                             "headers": [], "query_string": b""}
    page = failure(Request(scope), RequestValidationError(
        [{"loc": ("query", "limit"), "msg": "Input should be a valid integer"}]))
    assert page.status_code == 422
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert b"query.limit: Input should be a valid integer" in bytes(page.body)


# -- a database outage during a check ---------------------------------------------------------

@contextmanager
def _outage(engine: sa.Engine, after_session: bool) -> Iterator[None]:
    """Every new connection of ``engine`` refused, from now (``after_session``: from the
    moment the console has read the request's session)."""
    from dncguard.server.console import sessions

    down = [not after_session]

    def refuse(*_: object) -> None:
        if down[0]:
            raise sqlite3.OperationalError("unable to open database file (the test's outage)")

    real_get = sessions.SessionStore.get

    def get(self: sessions.SessionStore, session_id: str | None) -> object:
        found = real_get(self, session_id)
        down[0] = True
        engine.dispose()
        return found

    sa.event.listen(engine, "do_connect", refuse)
    engine.dispose()
    mp = pytest.MonkeyPatch()
    if after_session:
        mp.setattr(sessions.SessionStore, "get", get)
    try:
        yield
    finally:
        mp.undo()
        sa.event.remove(engine, "do_connect", refuse)
        engine.dispose()


def _client(home: Path, *scopes: str) -> TestClient:
    key = make_key(home, *scopes)
    client = TestClient(create_app(load_settings(home=home), run_jobs=False))
    client.__enter__()  # lifespan: the audit writer runs
    signed = client.post("/console/signin", data={
        "key": key, "csrf": csrf_token(client.get("/console/signin"))},
        follow_redirects=False)
    assert signed.status_code == 303, signed.text
    return client


@pytest.mark.parametrize("scopes", [("admin",), ("console",)])
def test_an_outage_during_a_check_is_a_503_page_with_an_error_verdict(
        tmp_path: Path, scopes: tuple[str, ...]) -> None:
    client = _client(tmp_path / "home", *scopes)
    try:
        token = csrf_token(client.get("/console/check"))
        first = client.post("/console/check", data={"phone": PHONE, "csrf": token})
        assert first.status_code == 200, first.text  # the checks are prepared
        with _outage(client.app.state.service.engine, after_session=True):
            page = client.post("/console/check", data={"phone": PHONE, "csrf": token})
        _console_page(page, 503, 'data-testid="decision">error</span>',
                      "this number was not verified and must not be called",
                      "History was not searched")
        assert page.headers["retry-after"] == "5"
        assert "d-allow" not in page.text
        again = client.post("/console/check", data={"phone": PHONE, "csrf": token})
        assert again.status_code == 200  # the database is back
    finally:
        client.__exit__(None, None, None)


def test_an_outage_before_the_session_is_read_is_a_503_page(tmp_path: Path) -> None:
    client = _client(tmp_path / "home", "console")
    try:
        token = csrf_token(client.get("/console/check"))
        with _outage(client.app.state.service.engine, after_session=False):
            page = client.post("/console/check", data={"phone": PHONE, "csrf": token})
            overview = client.get("/console")
        _console_page(page, 503, "The database could not be reached (OperationalError)",
                      "No verdict was given: the number was not verified, so it must not be "
                      "called")
        assert page.headers["retry-after"] == "5"
        assert 'data-testid="decision"' not in page.text
        _console_page(overview, 503, "The database could not be reached")
        assert "No verdict was given" not in overview.text
    finally:
        client.__exit__(None, None, None)


def test_a_form_field_that_is_not_utf8_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """A URL-encoded form is read with each bad byte as U+FFFD: a removal's reason went into
    the audit trail altered. It is refused, naming the field; the number stays listed."""
    client = signed_in_client(tmp_path / "home")
    token = csrf_token(client.get("/console/optouts"))
    added = client.post("/console/optouts/add", data={"phone": "+12025550190", "csrf": token})
    assert added.status_code == 201, added.text[:300]
    form = {"content-type": "application/x-www-form-urlencoded"}
    for body, field in (("phone=%2B12025550190&list=internal&reason=caf%E9", "reason"),
                        ("phone=%2B12025550190&list=internal&reason=caf\xe9", "reason")):
        token = csrf_token(client.get("/console/optouts"))
        refused = client.post("/console/optouts/remove",
                              content=f"{body}&csrf={token}".encode("latin-1"), headers=form)
        _console_page(refused, 422, f"field '{field}' is not valid UTF-8")
    engine = client.app.state.service.engine
    with engine.connect() as conn:
        removed = conn.execute(sa.text("select count(*) from list_events "
                                       "where action = 'remove'")).scalar_one()
    assert removed == 0
    signin = client.post("/console/signin", content=b"key=%FF", headers=form)
    assert signin.status_code == 422 and "not valid UTF-8" in signin.text
