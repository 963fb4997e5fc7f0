"""Background jobs over HTTP: lifecycle, uploads, cancellation, a kill mid-job and a resume."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from .conftest import Server, make_key, server_env, wait_for


def contacts(n: int) -> tuple[bytes, list[str]]:
    """n rows, every 10th a duplicate of the row before, row 7 invalid."""
    phones: list[str] = []
    for i in range(1, n + 1):
        phones.append("bad" if i == 7 else phones[-1] if i % 10 == 0
                      else f"+1202555{1000 + i:04d}")
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "phone"])
    for i, p in enumerate(phones, 1):
        w.writerow([f"c{i}", p])
    return out.getvalue().encode(), phones


def result_rows(client: httpx.Client, job_id: str) -> list[dict[str, str]]:
    resp = client.get(f"/v1/jobs/{job_id}/results")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(resp.text)))


def test_job_lifecycle_csv_json_parquet(start_server: Callable[..., Server],
                                        tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs", "dnc:write")
    server = start_server(server_env(home, DNCGUARD_CHUNK_SIZE="7"))
    with server.client(key) as c:
        c.post("/v1/dnc", json={"phone": "+12025551003"})
        data, phones = contacts(30)
        job = c.post("/v1/jobs", content=data, params={"at": "2026-11-19T15:00:00Z"},
                     headers={"content-type": "text/csv", "x-filename": "c.csv"})
        assert job.status_code == 202, job.text
        jid = job.json()["id"]
        assert job.json()["state"] in ("queued", "running")
        done = wait_for(c, jid, lambda j: j["state"] == "done")
        assert done["rowsDone"] == 30 and done["chunksDone"] == 5
        assert sum(done["counts"].values()) == 30
        assert all(n > 0 for n in done["counts"].values())  # decisions that occurred only
        rows = result_rows(c, jid)
        assert [r["id"] for r in rows] == [f"c{i}" for i in range(1, 31)]
        assert [r["phone"] for r in rows] == phones
        by_id = {r["id"]: r for r in rows}
        assert by_id["c3"]["decision"] == "block" and by_id["c7"]["decision"] == "invalid"
        assert "DUPLICATE" in by_id["c10"]["reason_codes"]
        summary = c.get(f"/v1/jobs/{jid}/summary").json()
        assert summary["complete"] is True and summary["totalRows"] == 30
        assert summary["duplicates"] == 3 and summary["byDecision"]["block"] == 1

        job = c.post("/v1/jobs", json=["+12025551003", {"phone": "2025551004", "state": "DC"}])
        assert job.status_code == 202, job.text
        wait_for(c, job.json()["id"], lambda j: j["state"] == "done")
        rows = result_rows(c, job.json()["id"])
        assert [(r["e164"], r["decision"]) for r in rows] == [
            ("+12025551003", "block"), ("+12025551004", "allow")]

        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(pa.table({"mobile": ["+12025551003", "+12025551005"]}), buf)
        job = c.post("/v1/jobs", content=buf.getvalue(),
                     headers={"content-type": "application/vnd.apache.parquet"})
        assert job.status_code == 202, job.text
        wait_for(c, job.json()["id"], lambda j: j["state"] == "done")
        assert [r["decision"] for r in result_rows(c, job.json()["id"])] == ["block", "allow"]

        bad = c.post("/v1/jobs", content=b"name\nx\n", headers={"content-type": "text/csv"})
        failed = wait_for(c, bad.json()["id"], lambda j: j["state"] in ("failed", "done"))
        assert failed["state"] == "failed" and "no phone column" in failed["error"]
        assert c.get(f"/v1/jobs/{bad.json()['id']}/results").status_code == 409
        twice = c.post("/v1/jobs", content=b"phone,state,State\n2025551004,DC,TX\n",
                       headers={"content-type": "text/csv"})
        failed = wait_for(c, twice.json()["id"], lambda j: j["state"] in ("failed", "done"))
        assert failed["state"] == "failed"
        assert "columns 'state' and 'State' both give the rows' state" in failed["error"]
        assert c.post("/v1/jobs", json={"phone": "x"}).status_code == 422
        assert c.post("/v1/jobs", content=b"x", headers={
            "content-type": "image/png"}).status_code == 415


def test_cancel_stops_a_running_job(start_server: Callable[..., Server],
                                    tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    server = start_server(server_env(home, DNCGUARD_CHUNK_SIZE="2",
                                     DNCGUARD_SERVER_JOB_CHUNK_DELAY="0.2"))
    with server.client(key) as c:
        data, _ = contacts(200)
        jid = c.post("/v1/jobs", content=data, headers={"content-type": "text/csv"}).json()["id"]
        wait_for(c, jid, lambda j: j["rowsDone"] >= 4)
        cancelled = c.delete(f"/v1/jobs/{jid}").json()
        assert cancelled["state"] == "cancelled"
        time.sleep(1.0)
        after = c.get(f"/v1/jobs/{jid}").json()
        assert after["state"] == "cancelled" and after["rowsDone"] < 200
        time.sleep(0.6)
        assert c.get(f"/v1/jobs/{jid}").json()["rowsDone"] == after["rowsDone"]
        assert c.get(f"/v1/jobs/{jid}/results").status_code == 409
        partial = c.get(f"/v1/jobs/{jid}/summary").json()
        assert partial["complete"] is False and partial["totalRows"] == after["rowsDone"]
        other = c.post("/v1/jobs", json=["+12025550100"]).json()["id"]
        assert c.post(f"/v1/jobs/{other}/cancel").status_code == 200


@pytest.mark.slow
def test_killed_mid_job_resumes_without_loss_or_duplicates(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    env = server_env(home, DNCGUARD_CHUNK_SIZE="3", DNCGUARD_SERVER_JOB_CHUNK_DELAY="0.15",
                     DNCGUARD_SERVER_JOB_LEASE_SECONDS="1.5")
    first = start_server(env, name="first")
    data, phones = contacts(60)
    with first.client(key) as c:
        jid = c.post("/v1/jobs", content=data, headers={"content-type": "text/csv"}).json()["id"]
        before = wait_for(c, jid, lambda j: j["rowsDone"] >= 12)
    first.kill()  # SIGKILL: no chance to release the lease or finish the chunk
    assert before["state"] == "running" and before["rowsDone"] < 60
    second = start_server(env, name="second")
    with second.client(key) as c:
        resumed = c.get(f"/v1/jobs/{jid}").json()
        assert resumed["rowsDone"] < 60  # the kill landed mid-job
        done = wait_for(c, jid, lambda j: j["state"] == "done")
        assert done["rowsDone"] == 60 and sum(done["counts"].values()) == 60
        rows = result_rows(c, jid)
        assert [r["id"] for r in rows] == [f"c{i}" for i in range(1, 61)]
        assert [r["phone"] for r in rows] == phones
        dups = [r["id"] for r in rows if "DUPLICATE" in r["reason_codes"]]
        assert dups == [f"c{i}" for i in range(10, 61, 10)]
        summary = c.get(f"/v1/jobs/{jid}/summary").json()
        assert summary["totalRows"] == 60 and summary["duplicates"] == 6


def test_graceful_stop_hands_the_job_over_at_once(start_server: Callable[..., Server],
                                                  tmp_path: Path) -> None:
    """SIGTERM gives the lease back, so a restarted server resumes without waiting it out."""
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    env = server_env(home, DNCGUARD_CHUNK_SIZE="3", DNCGUARD_SERVER_JOB_CHUNK_DELAY="0.15",
                     DNCGUARD_SERVER_JOB_LEASE_SECONDS="300")
    first = start_server(env, name="first")
    data, phones = contacts(45)
    with first.client(key) as c:
        jid = c.post("/v1/jobs", content=data, headers={"content-type": "text/csv"}).json()["id"]
        wait_for(c, jid, lambda j: j["rowsDone"] >= 6)
    first.stop()
    second = start_server(env, name="second")
    with second.client(key) as c:
        assert c.get(f"/v1/jobs/{jid}").json()["rowsDone"] < 45
        wait_for(c, jid, lambda j: j["state"] == "done", timeout=60)
        assert [r["phone"] for r in result_rows(c, jid)] == phones


def test_only_a_failed_job_resumes(start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs")
    server = start_server(server_env(home))
    with server.client(key) as c:
        bad = c.post("/v1/jobs", content=b"name\nx\n", headers={"content-type": "text/csv"})
        failed = wait_for(c, bad.json()["id"], lambda j: j["state"] == "failed")
        resumed = c.post(f"/v1/jobs/{failed['id']}/resume")
        assert resumed.status_code == 200 and resumed.json()["state"] in ("queued", "running",
                                                                          "failed")
        again = wait_for(c, failed["id"], lambda j: j["state"] == "failed")  # same bad input
        assert "phone" in again["error"]
        good = c.post("/v1/jobs", json=["+12025550100"]).json()["id"]
        wait_for(c, good, lambda j: j["state"] == "done")
        assert c.post(f"/v1/jobs/{good}/resume").status_code == 409
        assert c.post("/v1/jobs/job-nope/resume").status_code == 404


def test_jobs_are_listed_by_page_and_owned_by_their_key(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    """``GET /v1/jobs`` pages newest first; a key sees and touches only its own jobs (404 for
    the others'), an admin key every job."""
    home = tmp_path / "home"
    alice, bob, admin = (make_key(home, *s) for s in (("jobs",), ("jobs",), ("admin",)))
    server = start_server(server_env(home))
    with server.client(alice) as a, server.client(bob) as b, server.client(admin) as root:
        mine = [a.post("/v1/jobs", json=[f"+1202555{100 + i:04d}"]).json()["id"]
                for i in range(3)]
        theirs = b.post("/v1/jobs", json=["+12025550999"]).json()["id"]
        page = a.get("/v1/jobs", params={"limit": 2}).json()
        assert [j["id"] for j in page["jobs"]] == mine[::-1][:2] and page["next"] == mine[1]
        rest = a.get("/v1/jobs", params={"limit": 2, "before": page["next"]}).json()
        assert [j["id"] for j in rest["jobs"]] == [mine[0]] and rest["next"] is None
        assert [j["id"] for j in b.get("/v1/jobs").json()["jobs"]] == [theirs]
        assert b.get(f"/v1/jobs/{mine[0]}").status_code == 404
        assert b.delete(f"/v1/jobs/{mine[0]}").status_code == 404
        assert b.get(f"/v1/jobs/{mine[0]}/summary").status_code == 404
        assert b.get("/v1/jobs", params={"before": mine[0]}).status_code == 404
        every = root.get("/v1/jobs").json()["jobs"]
        assert {j["id"] for j in every} == {*mine, theirs}
        assert root.get(f"/v1/jobs/{theirs}").status_code == 200
