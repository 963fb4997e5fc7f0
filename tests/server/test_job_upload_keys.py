"""JSON job uploads take the per-row keys of ``POST /v1/check`` and nothing else: an unknown
key is refused (422 naming ``body.INDEX.KEY``, no job made, nothing stored), ``subject`` is
carried to the engine, and a value the engine does not understand makes that row an error,
as the same cell of a CSV upload does."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .conftest import Server, make_key, server_env, wait_for

AT = {"at": "2026-11-19T15:00:00Z"}
COLUMNS = ["phone", "region", "state", "zip", "timezone", "line_type", "subject"]


def _refused(resp: httpx.Response) -> dict[str, str]:
    """The 422's fields, field -> message, after checking the error shape."""
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["status"] == 422 and error["code"] == "validation_error"
    assert error["fields"] and error["message"].startswith(
        f"invalid request ({error['fields'][0]['field']}: ")
    return {f["field"]: f["message"] for f in error["fields"]}


def _results(c: httpx.Client, job_id: str) -> str:
    wait_for(c, job_id, lambda j: j["state"] in ("done", "failed"))
    resp = c.get(f"/v1/jobs/{job_id}/results")
    assert resp.status_code == 200, resp.text
    return resp.text


def _no_job_stored(c: httpx.Client, home: Path) -> None:
    assert c.get("/v1/jobs").json()["jobs"] == []
    jobs = home / "jobs"
    assert not jobs.exists() or list(jobs.iterdir()) == []


def test_an_unknown_key_is_refused_as_on_v1_check_and_no_job_is_made(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs", "check")
    server = start_server(server_env(home))
    row = {"phone": "+12025550123", "stat": "XX", "subject": "debt-1", "line-type": "bogus"}
    with server.client(key) as c:
        # /v1/check refuses the unknown key: so does a JSON job, at the same place
        assert "body.stat" in _refused(c.post("/v1/check", json=row))
        fields = _refused(c.post("/v1/jobs", json=[row], params=AT))
        assert set(fields) == {"body.0.stat", "body.0.line-type"}
        assert fields["body.0.stat"].startswith("Extra inputs are not permitted")
        assert "subject" in fields["body.0.stat"] and "line_type" in fields["body.0.stat"]
        _no_job_stored(c, home)

        # the index is the item's: good items before it do not make a job either
        fields = _refused(c.post("/v1/jobs", json=[
            "+12025550100", {"phone": "+12025550101", "State": "DC"}]))
        assert set(fields) == {"body.1.State"}
        # a field of the whole request is a query parameter of a job, not a row key
        fields = _refused(c.post("/v1/jobs", json=[{"phone": "+12025550101",
                                                    "campaign": "default"}]))
        assert "query parameter" in fields["body.0.campaign"]
        # not a string (as /v1/check: no coercion), and no phone
        assert "body.zip" in _refused(c.post("/v1/check", json={"phone": "+12025550101",
                                                                 "zip": 20001}))
        fields = _refused(c.post("/v1/jobs", json=[{"phone": "+12025550101", "zip": 20001},
                                                   {"number": "+12025550102"}]))
        assert fields == {"body.0.zip": "Input should be a valid string",
                          "body.1.phone": "Field required",
                          "body.1.number": fields["body.1.number"]}
        assert fields["body.1.number"].startswith("Extra inputs are not permitted")
        _no_job_stored(c, home)
        # a key given twice in one object: the first value would be lost
        fields = _refused(c.post(
            "/v1/jobs", params=AT, headers={"content-type": "application/json"},
            content=b'["+12025550100", {"phone": "+12025550188", "phone": "+12025550123"}]'))
        assert fields == {"body.1.phone": "given twice"}
        _no_job_stored(c, home)

        # every key /v1/check takes per number is a row key; null is "not given"
        ok = c.post("/v1/jobs", json=[{"phone": "+12025550123", "region": "US", "state": "DC",
                                       "zip": "20001", "timezone": "America/New_York",
                                       "line_type": "mobile", "subject": None}], params=AT)
        assert ok.status_code == 202, ok.text
        rows = list(csv.DictReader(io.StringIO(_results(c, ok.json()["id"]))))
        assert [(r["decision"], r["state"], r["line_type"]) for r in rows] == [
            ("allow", "DC", "mobile")]


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([r.get(k) or "" for k in COLUMNS])
    return out.getvalue().encode()


def test_subject_is_carried_and_values_are_judged_as_in_a_csv_upload(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    server = start_server(server_env(home))
    rows: list[dict[str, Any]] = [
        {"phone": "+12025550123", "subject": "debt-1", "state": "DC"},
        {"phone": "+12025550124", "subject": "x" * 201},  # too long: not understood
        {"phone": "+12025550125", "line_type": "bogus"},
        {"phone": "+12025550126"},
    ]
    with server.client(key) as c:
        as_json = c.post("/v1/jobs", json=rows, params=AT)
        assert as_json.status_code == 202, as_json.text
        as_csv = c.post("/v1/jobs", content=_csv(rows), params=AT,
                        headers={"content-type": "text/csv"})
        assert as_csv.status_code == 202, as_csv.text
        text = _results(c, as_json.json()["id"])
        # the same rows as a CSV file: the same results, byte for byte
        assert text == _results(c, as_csv.json()["id"])
        got = list(csv.DictReader(io.StringIO(text)))
        assert got[0]["subject"] == "debt-1" and got[0]["decision"] == "allow"
        assert (got[1]["decision"], got[1]["reason_codes"]) == ("error", "CONTEXT_INVALID")
        assert "row 2, column 'subject'" in got[1]["detail"]
        assert (got[2]["decision"], got[2]["reason_codes"]) == ("error", "CONTEXT_INVALID")
        assert "row 3, column 'line_type'" in got[2]["detail"]
        assert got[3]["decision"] == "allow"
