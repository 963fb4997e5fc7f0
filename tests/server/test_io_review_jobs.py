"""A service job writes the verdict file the CLI writes (the shared readers and writer):
added columns named apart from input columns in any case, a defused header, and the same
refusal of a requested column whose name repeats. In process, on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncguard.cli import run
from dncguard.config import Settings, load_settings
from dncguard.lists.store import ListStore
from dncguard.server._jobs import JobInfo, JobStore
from dncguard.store import dispose_engines, get_engine

from .conftest import job_runner

AT = datetime(2026, 11, 26, 15, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    return load_settings(home=tmp_path / "home")


def _job(settings: Settings, data: bytes, phone_column: str | None = None) -> JobInfo:
    engine = get_engine(settings)
    store = JobStore(settings, engine)
    job_id = store.new_id()
    store.folder(job_id).mkdir(parents=True)
    (store.folder(job_id) / "input.csv").write_bytes(data)
    store.create(job_id, input_name="c", input_format="csv", who="api:test", params={
        "at": AT.isoformat(), "campaign": "default", "defaults": {},
        "phone_column": phone_column})
    assert job_runner(settings, engine).run_one()
    return store.get(job_id)


def test_a_job_names_and_defuses_the_header_as_the_cli_does(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ListStore(settings).add_number("2025550123")
    data = (b'E164,Detail,"=HYPERLINK(""http://evil.invalid"",""x"")"\r\n'
            b"2025550123,a,=1+2\r\n3125550199,b,c\r\n")
    src = tmp_path / "in.csv"
    src.write_bytes(data)
    out = tmp_path / "cli.csv"
    assert run(["scrub", str(src), "-o", str(out), "--at", AT.isoformat(), "-q"]) == 0
    capsys.readouterr()
    expected = out.read_bytes()
    assert expected.startswith(
        b'E164,Detail,"\'=HYPERLINK(""http://evil.invalid"",""x"")",dncguard_e164,decision,'
        b"reason_codes,dncguard_detail,next_allowed_at\r\n")
    job = _job(settings, data)
    assert job.state == "done", job
    assert JobStore(settings, get_engine(settings)).results_path(job.id).read_bytes() == \
        expected
    dispose_engines()


def test_a_job_refuses_a_phone_column_named_twice(settings: Settings) -> None:
    job = _job(settings, b"phone,phone\n3125550199,2025550123\n", phone_column="phone")
    assert job.state == "failed", job
    assert job.error == ("several columns are named 'phone' (columns 1, 2): only one of them "
                         "would be checked; rename them so each has its own name")
    dispose_engines()
