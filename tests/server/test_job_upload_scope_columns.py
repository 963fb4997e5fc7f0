"""``POST /v1/jobs`` refuses an upload with a column named like the job's purpose or call type.

Such a column (``call_type``, ``Call Type``, ``calltype``, ``purpose``, ``call_purpose``, any
case) would give each row a kind of call that dncguard does not read per row: ``dncguard
scrub`` refuses it (``dncguard.engine.context.scope_columns``), and a job used to be made and
fail when it ran. It is refused with 422 naming the column, no job is made and nothing of the
upload is kept. In process (the whole application; no job runner), on a real SQLite file
(PostgreSQL: one test).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from dncguard.config import load_settings
from dncguard.engine.context import scope_column_refusal
from dncguard.server._jobs import public_error
from dncguard.sharedfiles import shared_files_table
from dncguard.store import dispose_engines, get_engine

from .conftest import job_runner, new_job
from .test_job_review_uploads import CSV, Ctx, app_ctx, no_new_job, refused

PARQUET = {"content-type": "application/vnd.apache.parquet"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scope") / "home"


@pytest.fixture(scope="module")
def ctx(home: Path) -> Iterator[Ctx]:
    yield from app_ctx(home)


def no_upload_left(home: Path, ctx: Ctx | None = None) -> None:
    """No folder under the home's jobs folder but those of jobs that were made."""
    jobs = home / "jobs"
    made = {j["id"] for j in ctx.jobs().json()["jobs"]} if ctx is not None else set()
    left = {p.name for p in jobs.iterdir()} if jobs.exists() else set()
    assert left <= made, list(jobs.rglob("*"))


@pytest.mark.parametrize("column", ["call_type", "Call Type", "CALLTYPE", "purpose",
                                    "Call_Purpose", "call-type"])
def test_a_csv_scope_column_is_refused_naming_it(ctx: Ctx, home: Path, column: str) -> None:
    before = ctx.jobs().json()["jobs"]
    body = f"phone,{column}\n+12025550101,prerecorded\n".encode()
    message = refused(ctx.post(body, CSV), "body", f"column {column!r}",
                      "does not read per row", "rename or remove the column")
    assert ("call type" if "type" in column.lower() else "purpose") in message
    assert "--" not in message  # the API's parameters, not the CLI's flags
    # one wording: the scrub's refusal, with the API's names for the CLI's flags (as a job
    # that meets the column when it runs says it)
    assert message == public_error(scope_column_refusal(column), upload=home / "x",
                                   folder=home / "y", home=home)
    no_new_job(ctx, before)
    no_upload_left(home, ctx)


def test_a_parquet_scope_column_is_refused(ctx: Ctx, home: Path) -> None:
    before = ctx.jobs().json()["jobs"]
    out = io.BytesIO()
    pq.write_table(pa.table({"phone": ["+12025550101"], "CallType": ["manual"]}), out)
    refused(ctx.post(out.getvalue(), PARQUET), "body", "column 'CallType'")
    no_new_job(ctx, before)
    no_upload_left(home, ctx)


def test_other_columns_still_make_a_job(ctx: Ctx) -> None:
    made = ctx.post(b"phone,type,purposes\n+12025550101,a,b\n", CSV)
    assert made.status_code == 202, made.text
    # a header the job will refuse when it runs is left to it (it fails with the reason)
    made = ctx.post(b"name\nx\n", CSV)
    assert made.status_code == 202, made.text


@pytest.mark.postgres
def test_postgres_nothing_of_a_refused_upload_is_stored(postgres_url: str,
                                                        tmp_path: Path) -> None:
    home = tmp_path / "home"
    with contextmanager(app_ctx)(home, postgres_url) as ctx:
        refused(ctx.post(b"phone,purpose\n+12025550101,telemarketing\n", CSV), "body",
                "column 'purpose'")
        assert ctx.jobs().json()["jobs"] == []
    no_upload_left(home)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(shared_files_table).where(
            shared_files_table.c.name.like("jobs/%"))).scalar() == 0
    engine.dispose()


def test_a_job_made_with_a_scope_column_fails_naming_the_apis_parameters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upload the API did not refuse (the console's, an earlier version's) still fails when
    it runs, its reason in the API's terms, not the CLI's flags."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    job = new_job(settings, engine, "phone,Call Type\n+12025550101,prerecorded\n")
    r = job_runner(settings, engine)
    assert r.run_one()
    failed = r.store.get(job.id)
    assert failed.state == "failed" and failed.error is not None
    assert "column 'Call Type'" in failed.error, failed.error
    assert "the job's purpose and call_type parameters" in failed.error, failed.error
    assert "--" not in failed.error, failed.error
    dispose_engines()
