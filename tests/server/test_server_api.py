"""The service over HTTP on a real uvicorn server: auth, scopes, checks, limits, errors."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .conftest import Server, make_key, server_env

CLEAN = "+12025550123"
OTHER = "+12025550188"


@dataclass
class Ctx:
    server: Server
    home: Path
    admin: str
    check: str
    jobs: str
    dnc: str


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    root = tmp_path_factory.mktemp("api")
    home = root / "home"
    keys = {s: make_key(home, s) for s in ("admin", "check", "jobs", "dnc:write")}
    server = Server(server_env(home, DNCGUARD_SERVER_BATCH_LIMIT="50",
                               DNCGUARD_SERVER_MAX_BODY_BYTES="20000"), root / "server.log")
    server.start()
    yield Ctx(server, home, keys["admin"], keys["check"], keys["jobs"], keys["dnc:write"])
    server.kill()


def error_of(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()["error"]
    assert body["status"] == status
    return dict(body)


def test_health_ready_and_docs(ctx: Ctx) -> None:
    with ctx.server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok", "reasons": []}
        assert c.get("/readyz").status_code == 200
        assert c.get("/docs").status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
    for path in ("/v1/check", "/v1/check/batch", "/v1/dnc", "/v1/dnc/{phone}", "/v1/lists",
                 "/v1/jobs", "/v1/jobs/{job_id}", "/v1/metrics/summary"):
        assert path in paths


def test_auth_and_scopes(ctx: Ctx) -> None:
    with ctx.server.client() as anon:
        e = error_of(anon.post("/v1/check", json={"phone": CLEAN}), 401)
        assert e["code"] == "unauthorized"
    with ctx.server.client("dgk_000000000000_nope") as bad:
        error_of(bad.post("/v1/check", json={"phone": CLEAN}), 401)
    with ctx.server.client(ctx.check) as c:
        assert c.post("/v1/check", json={"phone": CLEAN}).status_code == 200
        error_of(c.post("/v1/dnc", json={"phone": CLEAN}), 403)
        error_of(c.post("/v1/jobs", content=b"phone\n1\n",
                        headers={"content-type": "text/csv"}), 403)
        error_of(c.get("/v1/metrics/summary"), 403)
    with ctx.server.client(ctx.dnc) as c:
        error_of(c.post("/v1/check", json={"phone": CLEAN}), 403)
    with ctx.server.client(ctx.admin) as c:  # admin may do everything
        assert c.post("/v1/check", json={"phone": CLEAN}).status_code == 200
        assert c.get("/v1/metrics/summary").status_code == 200


def test_revoked_key_is_refused(ctx: Ctx) -> None:
    from dncguard.config import load_settings
    from dncguard.server.keys import KeyStore
    from dncguard.store import get_engine

    text = make_key(ctx.home, "check")
    with ctx.server.client(text) as c:
        assert c.post("/v1/check", json={"phone": CLEAN}).status_code == 200
        KeyStore(get_engine(load_settings(home=ctx.home))).revoke(text.split("_")[1])
        error_of(c.post("/v1/check", json={"phone": CLEAN}), 401)


def test_check_matches_cli_schema_and_opt_outs_apply_at_once(ctx: Ctx) -> None:
    from dncguard.models import Verdict

    with ctx.server.client(ctx.admin) as c:
        v = c.post("/v1/check", json={"phone": "(202) 555-0177", "state": "DC",
                                      "at": "2026-11-19T15:00:00Z"}).json()
        assert set(v) == set(Verdict.model_fields)
        assert v["decision"] == "allow" and v["e164"] == "+12025550177" and v["row"] is None
        assert v["dial_time"].startswith("2026-11-19T15:00:00")
        added = c.post("/v1/dnc", json={"phone": "+12025550177", "reason": "asked"})
        assert added.status_code == 201 and added.json()["e164"] == "+12025550177"
        v = c.post("/v1/check", json={"phone": "+12025550177"}).json()
        assert v["decision"] == "block"
        assert [r["code"] for r in v["reasons"]] == ["DNC_INTERNAL"]
        assert list(v["versions"]["lists"]) == ["internal"]
        assert v["versions"]["lists"]["internal"].endswith("Z")  # its last change
        gone = c.delete("/v1/dnc/+12025550177")
        assert gone.status_code == 200 and gone.json()["wasListed"] is True
        assert c.post("/v1/check", json={"phone": "+12025550177"}).json()["decision"] == "allow"
        error_of(c.delete("/v1/dnc/+12025550177", params={"list": "nope"}), 404)


def test_invalid_numbers_and_validation_errors(ctx: Ctx) -> None:
    with ctx.server.client(ctx.admin) as c:
        assert c.post("/v1/check", json={"phone": "12"}).json()["decision"] == "invalid"
        e = error_of(c.post("/v1/check", json={}), 422)
        assert e["fields"] == [{"field": "body.phone", "message": "Field required"}]
        e = error_of(c.post("/v1/check", json={"phone": CLEAN, "at": "2026-11-19T15:00:00"}),
                     422)
        assert e["fields"][0]["field"] == "body.at"  # type: ignore[index]
        e = error_of(c.post("/v1/check", json={"phone": CLEAN, "purpose": "spam"}), 422)
        assert e["fields"][0]["field"] == "body.purpose"  # type: ignore[index]
        error_of(c.post("/v1/check", json={"phone": CLEAN, "bogus": 1}), 422)
        error_of(c.post("/v1/check", content=b"{not json", headers={
            "content-type": "application/json"}), 422)
        e = error_of(c.post("/v1/dnc", json={"phone": "12"}), 422)
        assert e["fields"][0]["field"] == "body.phone"  # type: ignore[index]
        error_of(c.get("/v1/jobs/doesnotexist"), 404)
        error_of(c.get("/nowhere"), 404)


def test_control_characters_in_stored_text_are_refused_naming_the_field(ctx: Ctx) -> None:
    """A NUL in a reason or subject: PostgreSQL cannot store it, and the write failed as a
    retryable 503 'database unavailable' (so the opt-out was never stored while a client
    retried forever); SQLite stored it. Refused on every database: 422 naming the field."""
    with ctx.server.client(ctx.admin) as c:
        e = error_of(c.post("/v1/dnc", json={"phone": OTHER, "reason": "a\u0000b"}), 422)
        assert e["fields"][0]["field"] == "body.reason"  # type: ignore[index]
        assert "U+0000" in str(e["fields"][0]["message"])  # type: ignore[index]
        e = error_of(c.delete(f"/v1/dnc/{OTHER}", params={"reason": "x\x07"}), 422)
        assert e["fields"][0]["field"] == "query.reason"  # type: ignore[index]
        e = error_of(c.post("/v1/attempts", json={"phone": OTHER, "subject": "D\u0000"}), 422)
        assert e["fields"][0]["field"] == "body.subject"  # type: ignore[index]
        assert c.post("/v1/dnc", json={"phone": OTHER, "reason": "line one\nline two\tok"}
                      ).status_code == 201
        assert c.delete(f"/v1/dnc/{OTHER}").status_code == 200


def test_a_value_the_database_refuses_is_the_clients_to_fix(tmp_path: Path) -> None:
    """The database refusing a value (DataError) is a 422, not a retryable 503 'database
    unavailable': the database is up, retrying the same request cannot succeed."""
    import asyncio

    from sqlalchemy.exc import DataError

    from dncguard.config import load_settings
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    make_key(home, "admin")
    app = create_app(load_settings(home=home), run_jobs=False)

    async def boom() -> None:
        raise DataError("INSERT ...", {}, ValueError("NUL"))

    app.add_api_route("/boom", boom)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            return await client.get("/boom")

    resp = asyncio.run(call())
    assert resp.status_code == 422 and "Retry-After" not in resp.headers
    assert "refused by the database (ValueError)" in resp.json()["error"]["message"]


def test_an_opt_out_says_which_campaigns_do_not_read_its_list(tmp_path: Path) -> None:
    """A campaign whose profile narrows its lists does not read an opt-out list it leaves
    out (one made with ``create`` is new to every such profile): the answer names those
    campaigns instead of a bare ``listed: true``."""
    import asyncio

    from dncguard.config import load_settings
    from dncguard.server.app import create_app

    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text(
        '[campaigns.winter-promo]\nlists = ["us-ftc", "internal"]\n'
        '[campaigns.spring]\npurpose = "informational"\n')
    key = make_key(home, "dnc:write")
    app = create_app(load_settings(home=home), run_jobs=False)

    async def post(body: dict[str, object]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t",
                                     headers={"Authorization": f"Bearer {key}"}) as client:
            return await client.post("/v1/dnc", json=body)

    made = asyncio.run(post({"phone": CLEAN, "list": "opt-outs-east", "create": True}))
    assert made.status_code == 201, made.text
    assert made.json()["listed"] is True and made.json()["notReadBy"] == ["winter-promo"]
    plain = asyncio.run(post({"phone": OTHER}))
    assert plain.status_code == 201 and plain.json()["notReadBy"] == []


def test_batch_order_duplicates_and_limits(ctx: Ctx) -> None:
    with ctx.server.client(ctx.admin) as c:
        c.post("/v1/dnc", json={"phone": OTHER})
        phones = [CLEAN, OTHER, "bad", "(202) 555-0123"]
        body = c.post("/v1/check/batch", json={"phones": phones}).json()
        assert body["count"] == 4 and body["duplicates"] == 1
        got = [(v["row"], v["input"], v["decision"]) for v in body["verdicts"]]
        assert got == [(1, CLEAN, "allow"), (2, OTHER, "block"), (3, "bad", "invalid"),
                       (4, "(202) 555-0123", "allow")]
        assert "DUPLICATE" in [r["code"] for r in body["verdicts"][3]["reasons"]]
        e = error_of(c.post("/v1/check/batch", json={"phones": [CLEAN] * 51}), 413)
        assert "limit is 50" in str(e["message"])
        error_of(c.post("/v1/check/batch", json={"phones": ["1" * 30] * 2000}), 413)  # bytes
        error_of(c.post("/v1/check/batch", json={"phones": "nope"}), 422)


def test_lists_metrics_and_summary(ctx: Ctx) -> None:
    with ctx.server.client(ctx.admin) as c:
        c.post("/v1/dnc", json={"phone": "+12025550166"})
        c.post("/v1/check", json={"phone": "+12025550166"})
        lists = c.get("/v1/lists").json()
        internal = next(x for x in lists["lists"] if x["name"] == "internal")
        assert internal["kind"] == "internal" and internal["manual"]["added"] >= 1
        assert internal["fresh"] is True and lists["stale"] == []
        text = c.get("/metrics").text
        assert 'dncguard_decisions_total{decision="block",reason="DNC_INTERNAL"}' in text
        assert "dncguard_http_request_duration_seconds_bucket" in text
        assert 'dncguard_list_age_seconds{list="internal"}' in text
        summary = c.get("/v1/metrics/summary").json()
        assert summary["byDecision"]["block"] >= 1
        assert summary["byReason"]["DNC_INTERNAL"]["block"] >= 1
        assert summary["bySource"]["internal"]["block"] >= 1
        assert summary["byState"]["DC"]["block"] >= 1
        error_of(c.get("/v1/metrics/summary", params={"from": "yesterday"}), 422)


def test_access_log_has_no_numbers_or_keys(ctx: Ctx) -> None:
    with ctx.server.client(ctx.admin) as c:
        c.post("/v1/dnc", json={"phone": "+12025550199"})
        c.delete("/v1/dnc/+12025550199")
        c.delete("/v1/dnc/%2B12025550199")
        c.get("/nowhere/12025550199")
    deadline = time.monotonic() + 10  # the line is written once the response has gone
    while "/nowhere/" not in ctx.server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = ctx.server.log()
    assert "DELETE /v1/dnc/{phone}" in log
    assert "5550199" not in log
    assert not re.search(r"dgk_[0-9a-f]{12}_", log)
    assert "/nowhere/###########" in log


def test_summary_range_and_stale_lists_fail_readiness(ctx: Ctx, tmp_path: Path) -> None:
    """Runs last in this module: it leaves a stale national list behind."""
    from datetime import date

    from dncguard.config import load_settings
    from dncguard.lists.store import ListStore

    with ctx.server.client(ctx.admin) as c:
        later = c.get("/v1/metrics/summary", params={"from": "2099-01-01T00:00:00Z",
                                                     "to": "2099-01-02T00:00:00Z"}).json()
        assert later["verdicts"] == 0 and later["byDecision"] == {}
        error_of(c.get("/v1/metrics/summary", params={"from": "2026-11-20T00:00:00Z",
                                                      "to": "2026-11-19T00:00:00Z"}), 422)
        error_of(c.get("/v1/lists", params={"lsit": "x"}), 422)  # unknown parameters refused
        source = tmp_path / "ftc.txt"
        source.write_text("202,5550111\n", encoding="utf-8")
        ListStore(load_settings(home=ctx.home)).import_file(
            source, kind="national", name="us-ftc", jurisdiction="US",
            snapshot_date=date(2020, 1, 1))
        ready = c.get("/readyz")
        assert ready.status_code == 503
        assert "list us-ftc is stale" in ready.json()["reasons"][0]
        assert c.get("/v1/lists").json()["stale"] == ["us-ftc"]
        v = c.post("/v1/check", json={"phone": "+12025550111"}).json()
        assert v["decision"] == "block" and v["versions"]["lists"]["us-ftc"] == "2020-01-01"
