"""A job upload is read as UTF-8: one that declares another character set
(``Content-Type: text/csv; charset=latin-1``) is refused at upload, 415, and no job is made
(read as UTF-8, its rows were flagged and their accented cells rewritten to U+FFFD). A file
that is not UTF-8 without saying so fails on its header with an error that names the upload
by its line, not the server's file for it (``input.csv``).

In process (the whole application; the job runner driven by the test).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dncguard.config import Settings, load_settings
from dncguard.server._jobs import JobStore
from dncguard.store import dispose_engines, get_engine

from .conftest import job_runner, make_key

LATIN1 = "phone,pr\u00e9nom\n2025550123,Ren\u00e9e\n".encode("latin-1")


@dataclass
class Ctx:
    client: TestClient
    key: str
    home: Path

    def upload(self, body: bytes, content_type: str) -> Any:
        return self.client.post("/v1/jobs", content=body, headers={
            "Authorization": f"Bearer {self.key}", "content-type": content_type})

    def jobs(self) -> list[str]:
        folder = self.home / "jobs"
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    from dncguard.server.app import create_app

    home = tmp_path_factory.mktemp("charset") / "home"
    key = make_key(home, "jobs")
    app = create_app(load_settings(home=home), run_jobs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Ctx(client, key, home)
    dispose_engines()


@pytest.mark.parametrize(("content_type", "shown"), [
    ("text/csv; charset=latin-1", "'latin-1'"),
    ("text/csv; charset=ISO-8859-1", "'ISO-8859-1'"),
    ('text/csv; charset="windows-1252"', "'windows-1252'"),
    ("text/csv; header=present; Charset=UTF-16", "'UTF-16'"),
    ("application/json; charset=utf-16", "'utf-16'"),
    ("application/vnd.apache.parquet; charset=latin1", "'latin1'"),
    ("text/csv; charset=", "''"),
])
def test_a_charset_other_than_utf8_is_refused_at_upload(ctx: Ctx, content_type: str,
                                                        shown: str) -> None:
    before = ctx.jobs()
    resp = ctx.upload(LATIN1, content_type)
    assert resp.status_code == 415, resp.text
    error = resp.json()["error"]
    assert error["status"] == 415 and error["code"] == "unsupported_media", error
    assert error["message"].startswith(f"unsupported charset {shown}: the upload must be "
                                       "UTF-8"), error
    assert ctx.jobs() == before  # no job made, nothing stored


@pytest.mark.parametrize("content_type", [
    "text/csv; charset=utf-8", 'text/csv; charset="UTF-8"', "text/csv;charset=US-ASCII",
    "text/csv; charset = utf-8 ", "application/json; charset=utf-8"])
def test_utf8_and_ascii_are_taken(ctx: Ctx, content_type: str) -> None:
    body = b'["+12025550123"]' if "json" in content_type else b"phone\n2025550123\n"
    resp = ctx.upload(body, content_type)
    assert resp.status_code == 202, resp.text


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home")


def test_a_header_that_is_not_utf8_names_no_server_file(settings: Settings) -> None:
    """Sent without a charset, the Latin-1 file fails on its header; the error named
    ``input.csv``, a file of the server's the client never sent."""
    engine = get_engine(settings)
    store = JobStore(settings, engine)
    job_id = store.new_id()
    store.folder(job_id).mkdir(parents=True)
    (store.folder(job_id) / "input.csv").write_bytes(LATIN1)
    store.create(job_id, input_name="contacts.csv", input_format="csv", who="api:test",
                 params={"at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(),
                         "campaign": "default", "defaults": {}})
    assert job_runner(settings, engine).run_one()
    job = store.get(job_id)
    assert job.state == "failed" and job.error, job
    assert job.error.startswith("the header (line 1) is not valid UTF-8"), job.error
    assert "input." not in job.error and str(settings.home) not in job.error, job.error
    dispose_engines()
