"""A job's error is read by an API client: it names the upload, not its path on the server,
and the API's ``phone_column`` parameter, not the CLI's ``--phone-column`` flag. The shared
readers keep the CLI's wording."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dncguard.config import Settings, load_settings
from dncguard.errors import InputError
from dncguard.io.tables import find_phone_column
from dncguard.server import _jobs
from dncguard.server._jobs import JobInfo, JobStore
from dncguard.store import dispose_engines, get_engine

from .conftest import Server, job_runner, make_key, server_env, wait_for


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home")


def failed_job(settings: Settings, engine: Engine, data: bytes, fmt: str = "csv",
               phone_column: str | None = None) -> JobInfo:
    store = JobStore(settings, engine)
    job_id = store.new_id()
    store.folder(job_id).mkdir(parents=True)
    (store.folder(job_id) / f"input.{fmt}").write_bytes(data)
    store.create(job_id, input_name="c", input_format=fmt, who="api:test", params={
        "at": datetime(2026, 11, 26, 15, tzinfo=UTC).isoformat(), "campaign": "default",
        "defaults": {}, "phone_column": phone_column})
    r = job_runner(settings, engine)
    assert r.run_one()
    job = store.get(job_id)
    assert job.state == "failed", job
    return job


def assert_public(settings: Settings, error: str | None) -> str:
    assert error
    assert str(settings.home) not in error and "input." not in error, error
    assert "--" not in error, error
    return error


def test_csv_sent_as_parquet_names_the_upload(settings: Settings) -> None:
    engine = get_engine(settings)
    job = failed_job(settings, engine, b"phone\n+12025550101\n", fmt="parquet")
    error = assert_public(settings, job.error)
    assert error.startswith("cannot read the uploaded file as Parquet: "), error
    dispose_engines()


def test_phone_column_refusals_name_the_api_parameter(settings: Settings) -> None:
    engine = get_engine(settings)
    none = failed_job(settings, engine, b"name\nx\n")
    error = assert_public(settings, none.error)
    assert error.startswith("no phone column found") and error.endswith(
        "name it with the phone_column parameter"), error
    several = failed_job(settings, engine, b"phone,mobile\n2025550101,2025550102\n")
    error = assert_public(settings, several.error)
    assert error.endswith("name the one to check with the phone_column parameter"), error
    named = failed_job(settings, engine, b"phone\n2025550101\n", phone_column="tel")
    assert assert_public(settings, named.error) == "no column named 'tel'; columns: phone"
    dispose_engines()


def test_other_job_errors_show_no_server_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = home / "jobs" / "abc"
    message = (f"OSError: cannot read {folder / 'input.csv'}; cannot write "
               f"{folder / 'chunks' / '0000001.csv'} in {folder} or {home / 'audit' / 'x'}")
    assert _jobs.public_error(message, upload=folder / "input.csv", folder=folder,
                              home=home) == (
        "OSError: cannot read the uploaded file; cannot write chunks/0000001.csv in the "
        "job's folder or <home>/audit/x")


def test_the_cli_wording_is_unchanged() -> None:
    with pytest.raises(InputError, match="name it with --phone-column$"):
        find_phone_column(["name"], None)
    with pytest.raises(InputError, match=r"with --phone-column \(repeat it to check several\)"):
        find_phone_column(["phone", "mobile"], None)


def test_the_api_client_reads_the_public_error(start_server: Callable[..., Server],
                                               tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    server = start_server(server_env(home))
    with server.client(key) as c:
        jid = c.post("/v1/jobs", content=b"phone\n+12025550101\n", headers={
            "content-type": "application/vnd.apache.parquet"}).json()["id"]
        failed = wait_for(c, jid, lambda j: j["state"] in ("failed", "done"))
        assert failed["state"] == "failed"
        assert failed["error"].startswith("cannot read the uploaded file as Parquet: ")
        assert str(home) not in failed["error"]
        jid = c.post("/v1/jobs", content=b"name\nx\n",
                     headers={"content-type": "text/csv"}).json()["id"]
        failed = wait_for(c, jid, lambda j: j["state"] in ("failed", "done"))
        assert failed["error"].endswith("name it with the phone_column parameter")


def test_a_column_a_dialer_could_read_as_the_verdict_fails_the_job(settings: Settings) -> None:
    """As a scrub refuses it: an input column named decision beside the job's own verdict
    (the results would hold a stale 'allow' under the name a dialer reads)."""
    engine = get_engine(settings)
    job = failed_job(settings, engine, b"phone,decision\n+12025550101,allow\n")
    assert "a column named decision that is not a complete earlier verdict" in (job.error or "")

