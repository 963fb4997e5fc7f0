"""A console scrub's progress and results mean what the job runner did: its total counts the
rows the runner's reader reads (not blank lines, not a quoted field's line breaks; a file of
4 lines, 2 of them blank, showed "done: 2 of 4 rows"), and a done job whose verdict file is
gone is a server fault (500, logged for an operator), not "Not ready" (409) forever."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from ..conftest import log_lines
from .conftest import csrf_token, signed_in_client

AT = "2026-12-01T15:00:00Z"


def _scrub(client: TestClient, name: str, data: bytes) -> str:
    made = client.post("/console/scrub", data={
        "at": AT, "csrf": csrf_token(client.get("/console/scrub"))},
        files={"file": (name, data)}, follow_redirects=False)
    assert made.status_code == 303, made.text
    return str(made.headers["location"]).rsplit("/", 1)[-1]


def _done(client: TestClient, job_id: str) -> dict[str, Any]:
    for _ in range(300):
        status: dict[str, Any] = client.get(f"/console/scrub/{job_id}/status").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end: {status}")


def test_the_row_total_is_the_rows_the_runner_reads(tmp_path: Path) -> None:
    files = {"blank.csv": (b"phone\n+12025550161\n\n+12025550123\n\n", 2),
             "quoted.csv": (b'phone,note\n+12025550161,"a\nb"\n', 1),
             "latin1.csv": (b"phone,name\n+12025550161,Jos\xe9\n", 1)}
    client = signed_in_client(tmp_path / "home", run_jobs=True)
    with client:
        for name, (data, rows) in files.items():
            status = _done(client, _scrub(client, name, data))
            assert status["state"] == "done", (name, status)
            assert status["rows"] == status["rowsDone"] == rows, (name, status)
            page = client.get(f"/console/scrub/{status['id']}").text
            assert f'data-testid="rows-done">{rows}</span> of {rows} rows' in page, name


def test_a_job_not_done_has_no_results_yet(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home")  # no job runner: the job stays queued
    job_id = _scrub(client, "c.csv", b"phone\n+12025550161\n")
    page = client.get(f"/console/scrub/{job_id}/results")
    assert page.status_code == 409 and "Not ready" in page.text


def test_a_done_job_without_its_results_file_is_a_server_fault(tmp_path: Path) -> None:
    client = signed_in_client(tmp_path / "home", run_jobs=True)
    with client:
        job_id = _scrub(client, "c.csv", b"phone\n+12025550161\n+12025550123\n")
        assert _done(client, job_id)["state"] == "done"
        assert client.get(f"/console/scrub/{job_id}/results").status_code == 200
        client.app.state.service.jobs.results_path(job_id).unlink()
        with log_lines("dncguard") as logged:
            page = client.get(f"/console/scrub/{job_id}/results")
        assert page.status_code == 500, page.text
        assert "Not ready" not in page.text
        assert "results file is missing" in page.text and "an operator must restore it" in \
            page.text
        assert any(job_id in line and "results file is missing" in line
                   and "an operator must restore it" in line for line in logged.lines)


def test_a_done_job_whose_results_file_was_altered_is_a_server_fault(tmp_path: Path) -> None:
    """The console served any file at the results path; as GET /v1/jobs/{id}/results, it
    serves only the one the job's audit record describes."""
    client = signed_in_client(tmp_path / "home", run_jobs=True)
    with client:
        job_id = _scrub(client, "c.csv", b"phone\n+12025550161\n+12025550123\n")
        assert _done(client, job_id)["state"] == "done"
        path = client.app.state.service.jobs.results_path(job_id)
        path.write_bytes(path.read_bytes() + b"+12025550199,,,allow,,,\n")  # a row added
        page = client.get(f"/console/scrub/{job_id}/results")
        assert page.status_code == 500, page.text
        assert "differs from the one its audit record describes" in page.text


def test_an_upload_with_a_purpose_column_is_refused(tmp_path: Path) -> None:
    """A column named like the call's purpose or call type is refused at upload, as
    ``POST /v1/jobs`` refuses it, and no job is made."""
    client = signed_in_client(tmp_path / "home")
    made = client.post("/console/scrub", data={
        "at": AT, "csrf": csrf_token(client.get("/console/scrub"))},
        files={"file": ("c.csv", b"phone,Call Type\n+12025550161,prerecorded\n")},
        follow_redirects=False)
    assert made.status_code == 422, made.text
    assert "would give each row&#39;s call type" in made.text or \
        "would give each row's call type" in made.text
    assert not list((tmp_path / "home" / "jobs").glob("*/input.csv"))


def test_a_body_over_the_limit_has_the_consoles_headers(tmp_path: Path,
                                                          monkeypatch: Any) -> None:
    monkeypatch.setenv("DNCGUARD_SERVER_MAX_BODY_BYTES", "2000")
    client = signed_in_client(tmp_path / "home")
    made = client.post("/console/scrub", data={
        "at": AT, "csrf": csrf_token(client.get("/console/scrub"))},
        files={"file": ("c.csv", b"phone\n" + b"+12025550161\n" * 400)},
        follow_redirects=False)
    assert made.status_code == 413
    assert "default-src 'none'" in made.headers["content-security-policy"]
    api = client.post("/v1/check", content=b"x" * 3000,
                      headers={"content-type": "application/json"})
    assert api.status_code == 413 and "content-security-policy" not in api.headers
