"""``GET /v1/audit/search`` through a real server: the records about one number, admin only.

The data is written beforehand through the library (an opt-out, a scrub job) and through the
service itself (a check), into the home the server runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dncguard.config import load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.store import dispose_engines

from .conftest import Server, make_key, server_env

PHONE = "+12025550123"


def _seed(home: Path, tmp_path: Path) -> str:
    """An opt-out of PHONE and a scrub job holding it in row 2; the job's id."""
    settings = load_settings(home=home)
    ListStore(settings).add_number(PHONE, reason="asked on call", who="cli:alice")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone\n2125550199\n2025550123\n", encoding="utf-8")
    summary = Scrubber(settings, who="cli:alice").scrub_file(contacts, tmp_path / "v.csv")
    dispose_engines()
    return summary.audit_jobs[""]


def test_search_by_number(start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    admin = make_key(home, "admin")
    checker = make_key(home, "check")
    job_id = _seed(home, tmp_path)
    server = start_server(server_env(home))
    with server.client(checker) as c:
        assert c.post("/v1/check", json={"phone": "(202) 555-0123"}).json()["decision"] == \
            "block"
        denied = c.get("/v1/audit/search", params={"phone": PHONE})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    with server.client() as anonymous:
        assert anonymous.get("/v1/audit/search", params={"phone": PHONE}).status_code == 401
    with server.client(admin) as c:
        res = c.get("/v1/audit/search", params={"phone": "202-555-0123"})
        assert res.status_code == 200, res.text
        body = res.json()
        assert PHONE not in res.text and "2025550123" not in res.text  # masked only
        assert body["number"] == "+1202555****" and body["truncated"] is False
        assert body["jobsSearched"] == 1 and body["jobsNotSearched"] == []
        assert [(r["kind"], r["action"]) for r in body["records"]] == [
            ("check", "check"), ("job", "scrub"), ("list", "add")]
        check, job, optout = body["records"]
        assert check["decision"] == "block" and check["reasons"] == ["DNC_INTERNAL"]
        assert check["who"].startswith("api:")
        assert job["subject"] == job_id and job["who"] == "cli:alice"
        assert job["rows"] == [{"row": 2, "decision": "block", "reasons": ["DNC_INTERNAL"],
                                "nextAllowedAt": None}]
        assert optout["subject"] == "internal" and optout["data"]["why"] == "asked on call"
        assert set(check) == {"seq", "at", "kind", "action", "who", "subject", "number",
                              "decision", "reasons", "versions", "data", "rows"}

        empty = c.get("/v1/audit/search", params={"phone": PHONE, "from": "2000-01-01",
                                                   "to": "2000-01-01"}).json()
        assert empty["records"] == [] and empty["from"] == "2000-01-01T00:00:00+00:00"
        assert empty["to"] == "2000-01-02T00:00:00+00:00"
        one = c.get("/v1/audit/search", params={"phone": PHONE, "limit": 1}).json()
        assert one["truncated"] is True and len(one["records"]) == 1
        no_jobs = c.get("/v1/audit/search", params={"phone": PHONE, "jobs": "false"}).json()
        assert [r["kind"] for r in no_jobs["records"]] == ["check", "list"]

        cases: list[tuple[dict[str, str | int], str]] = [
            ({"phone": "20255501"}, "query.phone"),
            ({"phone": PHONE, "from": "yesterday"}, "query.from"),
            ({"phone": PHONE, "to": "2026-11-19T10:00:00"}, "query.to"),
            ({"phone": PHONE, "limit": 0}, "query.limit"),
            ({"phone": PHONE, "number": PHONE}, "query.number")]
        for params, field in cases:
            bad = c.get("/v1/audit/search", params=params)
            assert bad.status_code == 422, (params, bad.text)
            assert bad.json()["error"]["fields"][0]["field"] == field
        assert "20255501" not in c.get("/v1/audit/search",
                                       params={"phone": "20255501"}).text
        empty_range = c.get("/v1/audit/search", params={"phone": PHONE, "from": "2026-11-20",
                                                         "to": "2026-11-19"})
        assert empty_range.status_code == 422
        assert "the range is empty" in empty_range.json()["error"]["message"]
    assert PHONE not in server.log() and "5550123" not in server.log()
