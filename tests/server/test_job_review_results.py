"""A done job's files are served only as they were recorded (from a review of the job path):
a results file that is not the one its audit record describes (truncated, altered) answers
500, as a missing one does, never a partial verdict file; a done job whose summary file is
gone answers 500, not a summary rebuilt from its chunks with ``complete: false``.

In process (the whole application) on a real SQLite file; the job runner is driven by the
test (PostgreSQL, shared job files: one test).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dncguard.config import Settings, load_settings
from dncguard.server._jobs import JobStore
from dncguard.store import dispose_engines, get_engine

from .conftest import job_runner, make_key

CSV = "phone,name\n" + "".join(f"+1202555{100 + i:04d},n{i}\n" for i in range(6))


class Ctx:
    def __init__(self, client: TestClient, key: str, settings: Settings) -> None:
        self.client, self.key, self.settings = client, key, settings
        self.store = JobStore(settings, get_engine(settings))

    def get(self, path: str) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.key}"})

    def done_job(self) -> str:
        made = self.client.post("/v1/jobs", content=CSV.encode(), headers={
            "Authorization": f"Bearer {self.key}", "content-type": "text/csv"})
        assert made.status_code == 202, made.text
        job_id = str(made.json()["id"])
        assert job_runner(self.settings, get_engine(self.settings)).run_one()
        assert self.store.get(job_id).state == "done"
        assert self.get(f"/v1/jobs/{job_id}/results").status_code == 200
        return job_id


def app_ctx(home: Path, database_url: str | None = None) -> Iterator[Ctx]:
    from dncguard.server.app import create_app

    extra = {"database_url": database_url} if database_url else {}
    settings = load_settings(home=home, chunk_size=2, **extra)
    key = make_key(home, "jobs", database_url=database_url)
    app = create_app(settings, run_jobs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Ctx(client, key, settings)
    dispose_engines()


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ctx]:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    yield from app_ctx(tmp_path / "home")


def server_error(resp: Any, *words: str) -> str:
    assert resp.status_code == 500, (resp.status_code, resp.text[:300])
    message = str(resp.json()["error"]["message"])
    for word in words:
        assert word in message, message
    return message


def test_a_truncated_results_file_is_not_served(ctx: Ctx,
                                                caplog: pytest.LogCaptureFixture) -> None:
    job_id = ctx.done_job()
    results = ctx.store.folder(job_id) / "results.csv"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(lines[:3]))  # the header and 2 of 6 rows
    with caplog.at_level(logging.ERROR, "dncguard.jobs"):
        server_error(ctx.get(f"/v1/jobs/{job_id}/results"), "results file differs",
                     "audit record", "an operator must restore it")
    assert f"job {job_id} is done but its results file differs" in caplog.text


def test_an_altered_results_file_of_the_same_size_is_not_served(ctx: Ctx) -> None:
    job_id = ctx.done_job()
    results = ctx.store.folder(job_id) / "results.csv"
    data = results.read_bytes()
    results.write_bytes(data.replace(b"allow", b"block", 1))
    assert len(results.read_bytes()) == len(data)
    server_error(ctx.get(f"/v1/jobs/{job_id}/results"), "results file differs")


def test_a_missing_results_file_is_still_named_missing(ctx: Ctx) -> None:
    job_id = ctx.done_job()
    (ctx.store.folder(job_id) / "results.csv").unlink()
    server_error(ctx.get(f"/v1/jobs/{job_id}/results"),
                 f"job {job_id} is done but its results file is missing on the server")


def test_a_done_job_without_its_summary_file_is_a_server_error(
        ctx: Ctx, caplog: pytest.LogCaptureFixture) -> None:
    job_id = ctx.done_job()
    assert ctx.get(f"/v1/jobs/{job_id}/summary").json()["complete"] is True
    (ctx.store.folder(job_id) / "summary.json").unlink()
    with caplog.at_level(logging.ERROR, "dncguard.jobs"):
        server_error(ctx.get(f"/v1/jobs/{job_id}/summary"), "summary file is missing",
                     "an operator must restore it")
    assert f"job {job_id}: no summary" in caplog.text


@pytest.mark.postgres
def test_on_postgres_a_damaged_local_copy_is_replaced_by_the_recorded_one(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    for pg in app_ctx(tmp_path / "home", postgres_url):
        job_id = pg.done_job()
        results = pg.store.folder(job_id) / "results.csv"
        whole = results.read_bytes()
        results.write_bytes(whole[: len(whole) // 2])
        served = pg.get(f"/v1/jobs/{job_id}/results")
        assert served.status_code == 200 and served.content == whole
