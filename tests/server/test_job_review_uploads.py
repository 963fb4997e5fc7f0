"""``POST /v1/jobs`` refuses, before making a job, what it cannot take as given (from a review
of the job path):

* a control character in a free-text query parameter stored with the job (``phone_column``,
  ``subject``): on PostgreSQL a NUL there made every non-admin key's ``GET /v1/jobs`` 422;
* a dial time the rules cannot judge (year 1: every row ``error`` / OverflowError);
* a JSON body that is not UTF-8 (UTF-16, UTF-32) or starts with a byte order mark;
* ``phone_column`` with a JSON upload (``phone_column=zip`` checked the zip values).

And a large upload is parsed off the event loop: other requests are answered meanwhile.

In process (the whole application; no job runner), on a real SQLite file (PostgreSQL: one
test).
"""

from __future__ import annotations

import asyncio
import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dncguard.config import load_settings
from dncguard.store import dispose_engines

from .conftest import make_key

CSV = {"content-type": "text/csv"}
JSON = {"content-type": "application/json"}


@dataclass
class Ctx:
    client: TestClient
    key: str

    def post(self, body: bytes, headers: dict[str, str], **params: str) -> Any:
        return self.client.post("/v1/jobs", content=body, params=params,
                                headers={"Authorization": f"Bearer {self.key}", **headers})

    def jobs(self) -> Any:
        return self.client.get("/v1/jobs", headers={"Authorization": f"Bearer {self.key}"})


def app_ctx(home: Path, database_url: str | None = None) -> Iterator[Ctx]:
    from dncguard.server.app import create_app

    extra = {"database_url": database_url} if database_url else {}
    key = make_key(home, "jobs", database_url=database_url)
    app = create_app(load_settings(home=home, **extra), run_jobs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Ctx(client, key)
    dispose_engines()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    yield from app_ctx(tmp_path_factory.mktemp("uploads") / "home")


def refused(resp: Any, field: str, *words: str) -> str:
    assert resp.status_code == 422, (resp.status_code, resp.text)
    error = resp.json()["error"]
    assert [f["field"] for f in error["fields"]] == [field], error
    message = str(error["fields"][0]["message"])
    for word in words:
        assert word in message, message
    return message


def no_new_job(ctx: Ctx, before: list[dict[str, Any]]) -> None:
    assert ctx.jobs().json()["jobs"] == before


# --- control characters in stored text ---------------------------------------------------


@pytest.mark.parametrize(("param", "value"), [
    ("phone_column", "ph\x00one"), ("phone_column", "ph\x1bone"), ("subject", "debt\x00-1"),
])
def test_a_control_character_in_a_stored_parameter_is_refused(ctx: Ctx, param: str,
                                                              value: str) -> None:
    before = ctx.jobs().json()["jobs"]
    refused(ctx.post(b"phone\n+12025550102\n", CSV, **{param: value}), f"query.{param}",
            "control character")
    no_new_job(ctx, before)


@pytest.mark.postgres
def test_a_nul_phone_column_leaves_the_job_list_readable_on_postgres(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    for pg in app_ctx(tmp_path / "home", postgres_url):
        refused(pg.post(b"phone\n+12025550102\n", CSV, phone_column="ph\x00one"),
                "query.phone_column", "control character")
        made = pg.post(b"phone\n+12025550102\n", CSV, phone_column="phone")
        assert made.status_code == 202, made.text
        listed = pg.jobs()
        assert listed.status_code == 200, listed.text
        assert [j["id"] for j in listed.json()["jobs"]] == [made.json()["id"]]


# --- the dial time -----------------------------------------------------------------------


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z",
                                "1900-01-01T04:00:00+05:00", "9000-01-01T00:00:00Z",
                                "9999-12-30T00:00:00Z"])
def test_a_dial_time_the_rules_cannot_judge_is_refused(ctx: Ctx, at: str) -> None:
    before = ctx.jobs().json()["jobs"]
    refused(ctx.post(b"phone\n+12025550102\n", CSV, at=at), "query.at", "cannot judge",
            "1900-01-01", "9000-01-01")
    no_new_job(ctx, before)


@pytest.mark.parametrize("at", ["1900-01-01T00:00:00Z", "2026-11-26T15:00:00-05:00",
                                "8999-12-31T23:59:59Z"])
def test_a_dial_time_within_the_range_is_taken(ctx: Ctx, at: str) -> None:
    made = ctx.post(b"phone\n+12025550102\n", CSV, at=at)
    assert made.status_code == 202, made.text
    assert made.json()["params"]["at"].startswith(at[:10]), made.json()


# --- JSON uploads ------------------------------------------------------------------------

ROWS = json.dumps(["+12025550102", {"phone": "+12025550103", "zip": "20500"}])


@pytest.mark.parametrize(("body", "word"), [
    (codecs.BOM_UTF8 + ROWS.encode("utf-8"), "byte order mark"),
    (ROWS.encode("utf-16"), "not UTF-8"),  # with its BOM
    (ROWS.encode("utf-16-le"), "not valid JSON"),
    (ROWS.encode("utf-32"), "not UTF-8"),
    (ROWS.encode("utf-32-be"), "not valid JSON"),
], ids=["utf-8-bom", "utf-16", "utf-16-le", "utf-32", "utf-32-be"])
def test_a_json_body_not_in_utf8_is_refused(ctx: Ctx, body: bytes, word: str) -> None:
    before = ctx.jobs().json()["jobs"]
    resp = ctx.post(body, JSON)
    assert resp.status_code == 422, (resp.status_code, resp.text)
    error = resp.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["body"], error
    assert word in error["message"], error
    no_new_job(ctx, before)


def test_a_json_body_in_utf8_is_taken(ctx: Ctx) -> None:
    made = ctx.post(ROWS.encode("utf-8"), JSON)
    assert made.status_code == 202, made.text


@pytest.mark.parametrize("column", ["zip", "phone"])
def test_phone_column_is_refused_for_a_json_upload(ctx: Ctx, column: str) -> None:
    before = ctx.jobs().json()["jobs"]
    refused(ctx.post(ROWS.encode(), JSON, phone_column=column), "query.phone_column",
            "not for a JSON upload", "phone field")
    no_new_job(ctx, before)


# --- the event loop ----------------------------------------------------------------------


def test_a_json_upload_is_parsed_and_stored_off_the_event_loop(
        ctx: Ctx, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading, converting and storing an upload run in worker threads, never on the event
    loop (when the parsing held the loop, a 48 MB upload stalled /healthz 3.4 s): each is
    called where no event loop runs."""
    from dncguard.server._jobs import JobStore
    from dncguard.server.routes import jobs as routes

    on_loop: dict[str, bool] = {}

    def running_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    real_rows, real_create = routes._json_rows, JobStore.create

    def rows(*args: Any) -> None:
        on_loop["parse"] = running_loop()
        real_rows(*args)

    def create(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        on_loop["create"] = running_loop()
        return real_create(self, *args, **kwargs)

    monkeypatch.setattr(routes, "_json_rows", rows)
    monkeypatch.setattr(JobStore, "create", create)
    made = ctx.post(json.dumps(["+12025550100", "+12025550101"]).encode(), JSON)
    assert made.status_code == 202, made.text
    assert on_loop == {"parse": False, "create": False}
