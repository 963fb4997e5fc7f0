"""The rules over HTTP on a real uvicorn server: attempts, consents, legal windows, scopes, 422s.

The server runs with the rules on (registries not required), so ``/v1/check`` applies the
calling windows, the frequency caps and the consent exemptions to what the API stored. Every
dial time is explicit: nothing depends on the clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest

from .conftest import Server, make_key, server_env

MIAMI = "+13055550142"           # Florida: 3 calls per 24 h on one subject
NATIONAL = "(202) 555-0161"      # on the national registry below
INTERNAL = "+12025550162"        # on the national registry and the internal list
SF = "+14155550123"              # Pacific time
#: Wednesday 2026-11-18, 10:00 in Miami, 07:00 in San Francisco: inside Florida's window.
DIAL = "2026-11-18T15:00:00Z"


@dataclass
class Ctx:
    server: Server
    home: Path
    check: str
    write: str
    admin: str


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    from dncguard.config import load_settings
    from dncguard.lists.store import ListStore

    root = tmp_path_factory.mktemp("rules")
    home = root / "home"
    keys = {s: make_key(home, s) for s in ("check", "dnc:write", "admin")}
    # campaigns need a profile: an unknown name is refused (issue 11)
    (home / "dncguard.toml").write_text("[campaigns.winter]\n[campaigns.spring]\n",
                                        encoding="utf-8")
    source = root / "ftc.txt"
    source.write_text("202,5550161\n202,5550162\n", encoding="utf-8")
    ListStore(load_settings(home=home)).import_file(
        source, kind="national", name="us-ftc", jurisdiction="US",
        snapshot_date=date(2026, 11, 15))
    server = Server(server_env(home, DNCGUARD_RULES_ENABLED="true",
                               DNCGUARD_RULES_REQUIRE_REGISTRIES="false"), root / "server.log")
    server.start()
    yield Ctx(server, home, keys["check"], keys["dnc:write"], keys["admin"])
    server.kill()


def error_of(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body = resp.json()["error"]
    assert body["status"] == status
    return dict(body)


def fields(resp: httpx.Response) -> list[str]:
    return [f["field"] for f in error_of(resp, 422)["fields"]]  # type: ignore[attr-defined]


def codes(verdict: dict[str, object]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]  # type: ignore[attr-defined, index]


def test_attempts_make_the_next_check_defer(ctx: Ctx) -> None:
    check = {"phone": MIAMI, "campaign": "winter", "at": DIAL}
    with ctx.server.client(ctx.write) as w, ctx.server.client(ctx.check) as c:
        assert c.post("/v1/check", json=check).json()["decision"] == "allow"
        for at in ("2026-11-18T13:00:00Z", "2026-11-18T09:00:00-05:00", "2026-11-18T14:30:00Z"):
            resp = w.post("/v1/attempts", json={"phone": "305-555-0142", "at": at,
                                                "campaign": "winter", "region": "US",
                                                "outcome": "no_answer"})
            assert resp.status_code == 201, resp.text
            stored = resp.json()
            assert stored["e164"] == MIAMI and stored["added"] is True
            assert stored["subject"] == "winter" and stored["purpose"] == "telemarketing"
        again = w.post("/v1/attempts", json={"phone": MIAMI, "at": "2026-11-18T13:00:00Z",
                                             "campaign": "winter"})
        assert again.status_code == 201 and again.json()["added"] is False
        v = c.post("/v1/check", json=check).json()
        assert v["decision"] == "defer" and "FREQUENCY_CAP" in codes(v)
        cap = next(r for r in v["reasons"] if r["code"] == "FREQUENCY_CAP")
        assert cap["rule"] == "US-FL:same_subject_cap"
        assert cap["next_allowed_at"].startswith("2026-11-19T13:00:00")  # first one + 24 h
        # another campaign (subject) is not capped by these attempts
        other = c.post("/v1/check", json={**check, "campaign": "spring"}).json()
        assert other["decision"] == "allow"


def test_consent_lifts_the_registry_but_not_the_internal_list(ctx: Ctx) -> None:
    with ctx.server.client(ctx.write) as w, ctx.server.client(ctx.check) as c:
        for phone in (NATIONAL, INTERNAL):
            v = c.post("/v1/check", json={"phone": phone, "at": DIAL}).json()
            assert v["decision"] == "block" and "DNC_NATIONAL" in codes(v), v
        assert w.post("/v1/dnc", json={"phone": INTERNAL}).status_code == 201
        for phone in (NATIONAL, INTERNAL):
            resp = w.post("/v1/consents", json={"phone": phone, "type": "express_written",
                                                "date": "2026-06-01", "expires": "2027-06-01"})
            assert resp.status_code == 201, resp.text
            assert resp.json()["added"] is True and resp.json()["type"] == "express_written"
        assert w.post("/v1/consents", json={"phone": NATIONAL, "type": "express_written",
                                            "date": "2026-06-01",
                                            "expires": "2027-06-01"}).json()["added"] is False
        v = c.post("/v1/check", json={"phone": NATIONAL, "at": DIAL}).json()
        assert v["e164"] == "+12025550161"
        assert v["decision"] == "allow" and "EXEMPT_CONSENT" in codes(v), v
        v = c.post("/v1/check", json={"phone": INTERNAL, "at": DIAL}).json()
        assert v["decision"] == "block" and "DNC_INTERNAL" in codes(v), v
        # a revocation posted later takes the exemption away again
        assert w.post("/v1/consents", json={"phone": NATIONAL, "type": "express",
                                            "date": "2026-01-01",
                                            "revoked": "2026-11-01"}).status_code == 201
        v = c.post("/v1/check", json={"phone": NATIONAL, "at": DIAL}).json()
        assert v["decision"] == "block" and "EXEMPT_CONSENT" not in codes(v), v


def test_when_starts_at_the_first_legal_moment(ctx: Ctx) -> None:
    with ctx.server.client(ctx.check) as c:
        resp = c.get("/v1/rules/when", params={"phone": SF, "at": "2026-11-18T06:00:00-08:00",
                                                "days": 2})
        assert resp.status_code == 200, resp.text
        body = resp.json()
    assert body["e164"] == SF and body["zones"] == ["America/Los_Angeles"]
    assert body["timezone"] == "America/Los_Angeles" and body["how"]
    assert body["states"] == ["CA"] and body["jurisdictions"][:1] == ["US"]
    assert "US-CA" in body["jurisdictions"] and body["ruleset"]
    assert body["rulesEnabled"] is True and body["days"] == 2
    first = body["windows"][0]
    assert first["start"].startswith("2026-11-18T16:00:00")  # 08:00 PT
    local = first["local"][0]
    assert local["zone"] == "America/Los_Angeles"
    assert local["start"] == "2026-11-18T08:00:00-08:00"
    assert 2 <= len(body["windows"]) <= 3
    assert all(w["start"] < w["end"] for w in body["windows"])
    assert "OUTSIDE_CALLING_WINDOW" in [r["code"] for r in body["reasons"]], body


def test_scopes(ctx: Ctx) -> None:
    with ctx.server.client(ctx.check) as c:
        assert error_of(c.post("/v1/attempts", json={"phone": MIAMI}), 403)["code"] == "forbidden"
        error_of(c.post("/v1/consents", json={"phone": MIAMI, "type": "express",
                                              "date": "2026-01-01"}), 403)
    with ctx.server.client(ctx.write) as w:
        error_of(w.get("/v1/rules/when", params={"phone": SF}), 403)
    with ctx.server.client() as anon:
        error_of(anon.get("/v1/rules/when", params={"phone": SF}), 401)
    with ctx.server.client(ctx.admin) as a:
        assert a.get("/v1/rules/when", params={"phone": SF}).status_code == 200


def test_validation_errors(ctx: Ctx) -> None:
    with ctx.server.client(ctx.admin) as a:
        assert fields(a.post("/v1/attempts", json={"phone": "12"})) == ["body.phone"]
        assert fields(a.post("/v1/attempts", json={"phone": MIAMI,
                                                   "at": "2026-11-18T15:00:00"})) == ["body.at"]
        assert fields(a.post("/v1/attempts", json={"phone": MIAMI, "at": 1763478000})) == [
            "body.at"]
        assert fields(a.post("/v1/attempts", json={"phone": MIAMI, "purpose": "spam"})) == [
            "body.purpose"]
        assert fields(a.post("/v1/attempts", json={"phone": MIAMI, "bogus": 1})) == [
            "body.bogus"]
        assert fields(a.post("/v1/consents", json={"phone": MIAMI, "type": "maybe",
                                                   "date": "2026-01-01"})) == ["body.type"]
        assert fields(a.post("/v1/consents", json={"phone": "nope", "type": "express",
                                                   "date": "2026-01-01"})) == ["body.phone"]
        assert fields(a.post("/v1/consents", json={"phone": MIAMI, "type": "express",
                                                   "date": "01/02/2026"})) == ["body.date"]
        assert fields(a.post("/v1/consents", json={"phone": MIAMI, "type": "express",
                                                   "date": "2026-01-01",
                                                   "expires": "2025-01-01"})) == ["body.expires"]
        assert fields(a.get("/v1/rules/when", params={"phone": "12"})) == ["query.phone"]
        assert fields(a.get("/v1/rules/when", params={"phone": SF,
                                                      "at": "2026-11-18T06:00:00"})) == [
            "query.at"]
        assert fields(a.get("/v1/rules/when", params={"phone": SF, "days": 15})) == [
            "query.days"]
        assert fields(a.get("/v1/rules/when", params={"phone": SF, "line_type": "fax"})) == [
            "query.line_type"]
        assert fields(a.get("/v1/rules/when", params={"phone": SF, "dayz": 3})) == [
            "query.dayz"]
        assert fields(a.get("/v1/rules/when")) == ["query.phone"]
        # a place the scrub refuses for the number's country is refused here too
        assert fields(a.get("/v1/rules/when", params={"phone": SF, "zip": "SW1A 1AA"})) == [
            "query.zip"]
        assert fields(a.get("/v1/rules/when", params={"phone": "+61892345678",
                                                      "state": "WA"})) == ["query.state"]


def test_log_has_no_numbers_or_tracebacks(ctx: Ctx) -> None:
    log = ctx.server.log()
    assert "Traceback" not in log
    for digits in ("5550142", "5550161", "5550162", "5550123"):
        assert digits not in log
    assert "GET /v1/rules/when" in log and "POST /v1/attempts" in log


def test_unknown_campaign_is_refused_where_it_would_be_guessed(ctx: Ctx) -> None:
    """A check in an unknown campaign answers 422 naming it, and so does an attempt in one
    (its attempts would count for no check); an attempt in the built-in default campaign
    must send its purpose, not have it guessed."""
    with ctx.server.client(ctx.write) as w, ctx.server.client(ctx.check) as c:
        resp = c.post("/v1/check", json={"phone": MIAMI, "campaign": "wintr", "at": DIAL})
        assert fields(resp) == ["body.campaign"]
        assert "winter" in resp.json()["error"]["message"]
        resp = c.post("/v1/check", json={"phone": MIAMI, "state": "ZZ", "at": DIAL})
        assert fields(resp) == ["body.state"]
        v = c.post("/v1/check", json={"phone": MIAMI, "state": "florida", "at": DIAL}).json()
        assert v["state"] == "FL"
        body = {"phone": MIAMI, "at": "2026-11-17T13:00:00Z", "campaign": "legacy"}
        assert fields(w.post("/v1/attempts", json={**body, "purpose": "collections"})) == [
            "body.campaign"]
        body["campaign"] = "default"
        assert fields(w.post("/v1/attempts", json=body)) == ["body.purpose"]
        resp = w.post("/v1/attempts", json={**body, "purpose": "collections"})
        assert resp.status_code == 201 and resp.json()["purpose"] == "collections"
        resp = c.get("/v1/rules/when", params={"phone": MIAMI, "state": "Atlantis"})
        assert fields(resp) == ["query.state"]


def test_opt_outs_refuse_what_would_lift_nothing(ctx: Ctx) -> None:
    with ctx.server.client(ctx.write) as w:
        resp = w.post("/v1/dnc", json={"phone": MIAMI, "list": "Internal"})
        assert fields(resp) == ["body.list"]
        resp = w.post("/v1/dnc", json={"phone": MIAMI, "expires": "2026-01-01T00:00:00Z"})
        assert fields(resp) == ["body.expires"]
        resp = w.post("/v1/dnc", json={"phone": MIAMI, "list": "team-b", "create": True})
        assert resp.status_code == 201, resp.text


def test_consent_and_attempt_records_say_who(ctx: Ctx) -> None:
    """Every audit record of a consent or an attempt names the key that sent it; a consent
    dated before the TCPA is refused naming the date."""
    from dncguard import audit
    from dncguard.config import load_settings

    with ctx.server.client(ctx.write) as w:
        resp = w.post("/v1/consents", json={"phone": SF, "type": "express",
                                            "date": "0001-01-01"})
        assert fields(resp) == ["body.date"]
        assert w.post("/v1/consents", json={"phone": SF, "type": "express",
                                            "date": "2026-02-01"}).status_code == 201
        assert w.post("/v1/attempts", json={"phone": SF, "at": "2026-11-16T18:00:00Z",
                                            "campaign": "winter"}).status_code == 201
    records = [r for r in audit.audit_log(load_settings(home=ctx.home)).records()
               if r.action in ("consent", "attempt")]
    assert {r.action for r in records} == {"consent", "attempt"}
    assert all(r.who and r.who.startswith("api:") for r in records), [r.who for r in records]
