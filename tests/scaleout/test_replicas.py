"""Three replicas with separate homes and one PostgreSQL database (issue 16).

Real ``dncguard serve`` processes, a database of their own (created and dropped by the
``scaleout_db`` fixture), lists imported with the real CLI on replica A's home.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from ..server.conftest import Server, make_key, server_env, wait_for

pytestmark = pytest.mark.postgres

#: Area codes the generated lists use (real ones, so every number parses).
NPAS = np.array([201, 202, 212, 305, 312, 415, 617, 713, 818, 917])


def write_numbers(path: Path, n: int, seed: int = 1) -> np.ndarray:
    """n random +1 numbers (some repeat), one per line; returns them as integers."""
    rng = np.random.default_rng(seed)
    nums = (10_000_000_000 + NPAS[rng.integers(0, NPAS.size, n)] * 10_000_000
            + rng.integers(200, 1000, n) * 10_000 + rng.integers(0, 10_000, n))
    path.write_text("\n".join("+" + s for s in nums.astype(str).tolist()) + "\n")
    return nums


def unlisted(nums: np.ndarray) -> str:
    """A number of the same area codes that is not in ``nums``."""
    taken = set(nums.tolist())
    candidate = 12025550000
    while candidate in taken:
        candidate += 1
    return f"+{candidate}"


def import_list(env: dict[str, str], path: Path, name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dncguard", "lists", "import", str(path),
                           "--kind", "internal", "--name", name], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def decision(client: httpx.Client, phone: str) -> tuple[str, list[str]]:
    v = client.post("/v1/check", json={"phone": phone}).json()
    return v["decision"], [f"{r['code']}:{r.get('list')}" for r in v["reasons"]]


def wait_served(clients: list[httpx.Client], listed: str, free: str, name: str,
                timeout: float) -> float:
    """Poll until every client blocks ``listed`` on list ``name`` and allows ``free``;
    meanwhile nothing but ``block`` or ``error`` (SOURCE_ERROR naming the list) for
    ``listed``. Returns the seconds it took."""
    start = time.monotonic()
    pending = list(clients)
    while pending:
        for c in list(pending):
            got, reasons = decision(c, listed)
            assert got in ("block", "error"), (got, reasons)
            if got == "error":
                assert f"SOURCE_ERROR:{name}" in reasons, reasons
                continue
            if reasons != [f"DNC_INTERNAL:{name}"]:  # blocked, another list not held yet
                assert f"DNC_INTERNAL:{name}" in reasons, reasons
                assert all(r.startswith("SOURCE_ERROR:") for r in reasons
                           if r != f"DNC_INTERNAL:{name}"), reasons
                continue
            assert decision(c, free) == ("allow", [])
            pending.remove(c)
        if pending:
            assert time.monotonic() - start < timeout, f"not served within {timeout:g} s"
            time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def homes(tmp_path: Path, scaleout_db: str) -> dict[str, dict[str, str]]:
    """Server environments of replicas a, b and c (separate homes, one database)."""
    return {n: server_env(tmp_path / f"home-{n}", DNCGUARD_DATABASE_URL=scaleout_db)
            for n in "abc"}


def test_a_million_number_list_imported_on_a_is_served_by_b_and_c(
        homes: dict[str, dict[str, str]], start_server: Callable[..., Server], tmp_path: Path,
        scaleout_db: str) -> None:
    key = make_key(Path(homes["a"]["DNCGUARD_HOME"]), "check", database_url=scaleout_db)
    servers = {n: start_server(env, name=n) for n, env in homes.items()}
    nums = write_numbers(tmp_path / "big.txt", 1_000_000)
    listed, free = f"+{nums[0]}", unlisted(nums)
    clients = {n: s.client(key) for n, s in servers.items()}
    try:
        for c in clients.values():
            assert decision(c, listed) == ("allow", [])
        import_list(homes["a"], tmp_path / "big.txt", "big")
        took = wait_served([clients["b"], clients["c"]], listed, free, "big", timeout=10.0)
        assert took < 10.0
        assert decision(clients["a"], listed) == ("block", ["DNC_INTERNAL:big"])
        for c in clients.values():
            assert c.get("/readyz").status_code == 200
    finally:
        for c in clients.values():
            c.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_corrupted_cache_on_b_is_detected_and_fetched_again(
        homes: dict[str, dict[str, str]], start_server: Callable[..., Server], tmp_path: Path,
        scaleout_db: str) -> None:
    key = make_key(Path(homes["a"]["DNCGUARD_HOME"]), "check", database_url=scaleout_db)
    nums = write_numbers(tmp_path / "list.txt", 20_000, seed=2)
    import_list(homes["a"], tmp_path / "list.txt", "main")
    b = start_server(homes["b"], name="b")
    listed, free = f"+{nums[5]}", unlisted(nums)
    with b.client(key) as cb:
        wait_served([cb], listed, free, "main", timeout=30.0)
        [cached] = (Path(homes["b"]["DNCGUARD_HOME"]) / "lists" / "main").glob("*.npy")
        good = _sha(cached)
        raw = bytearray(cached.read_bytes())
        raw[-3] ^= 0xFF  # same length: only the checksum tells
        cached.write_bytes(bytes(raw))
        deadline = time.monotonic() + 30.0
        while not (cached.exists() and _sha(cached) == good):
            assert time.monotonic() < deadline, "the damaged copy was not fetched again"
            got, reasons = decision(cb, listed)
            assert got in ("block", "error"), (got, reasons)
            time.sleep(0.05)
        wait_served([cb], listed, free, "main", timeout=30.0)
        assert cb.get("/readyz").status_code == 200
    assert b.log().count("snapshot") >= 2 and "fetched from the database" in b.log()


def test_b_with_an_empty_home_answers_error_until_it_syncs(
        homes: dict[str, dict[str, str]], start_server: Callable[..., Server], tmp_path: Path,
        scaleout_db: str) -> None:
    key = make_key(Path(homes["a"]["DNCGUARD_HOME"]), "check", database_url=scaleout_db)
    lists: dict[str, tuple[str, str]] = {}
    for i, name in enumerate(["first", "second"]):
        nums = write_numbers(tmp_path / f"{name}.txt", 5_000, seed=10 + i)
        import_list(homes["a"], tmp_path / f"{name}.txt", name)
        lists[name] = (f"+{nums[0]}", unlisted(nums))
    home_b = Path(homes["b"]["DNCGUARD_HOME"])
    home_b.mkdir(parents=True)
    blocker = home_b / "lists"
    blocker.write_text("not a folder: B cannot store its snapshots yet\n")
    b = start_server(homes["b"], name="b")
    with b.client(key) as cb:
        for phone, _ in lists.values():  # every list fails: the number is checked by none
            assert decision(cb, phone) == ("error", [f"SOURCE_ERROR:{n}" for n in lists])
        ready = cb.get("/readyz")
        assert ready.status_code == 503
        assert all(any(f"list {name}" in r for r in ready.json()["reasons"]) for name in lists)
        # not fetched yet is not a damaged list: the remedy is a sync, not a re-import
        assert all("lists sync" in r and "re-import" not in r
                   for r in ready.json()["reasons"] if "does not hold" in r)
        assert any("does not hold" in r for r in ready.json()["reasons"])
        blocker.unlink()
        for name, (phone, free) in lists.items():
            wait_served([cb], phone, free, name, timeout=30.0)
        assert cb.get("/readyz").status_code == 200


def _job_input(nums: np.ndarray, rows: int) -> bytes:
    """A contacts file: listed and unlisted numbers, a duplicate every 25 rows, one invalid."""
    lines = ["id,phone"]
    for i in range(1, rows + 1):
        phone = ("bad" if i == 7 else lines[-1].split(",")[1] if i % 25 == 0
                 else f"+{nums[i]}" if i % 3 == 0 else f"+1415555{i % 10_000:04d}")
        lines.append(f"c{i},{phone}")
    return ("\n".join(lines) + "\n").encode()


JOB_ENV = {"DNCGUARD_CHUNK_SIZE": "20", "DNCGUARD_SERVER_JOB_CHUNK_DELAY": "0.1",
           "DNCGUARD_SERVER_JOB_LEASE_SECONDS": "1.5"}
AT = "2026-11-19T15:00:00Z"


def _run_job(client: httpx.Client, data: bytes) -> str:
    resp = client.post("/v1/jobs", params={"at": AT}, content=data,
                       headers={"content-type": "text/csv", "x-filename": "contacts.csv"})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


@pytest.mark.parametrize("files", ["database", "object store"])
def test_a_job_on_a_killed_mid_job_is_finished_by_b_and_downloaded_from_c(
        homes: dict[str, dict[str, str]], start_server: Callable[..., Server], tmp_path: Path,
        scaleout_db: str, files: str, request: pytest.FixtureRequest) -> None:
    """Job files in PostgreSQL, or (DNCGUARD_OBJECT_STORE_URL) in an S3-compatible store."""
    if files == "object store":
        s3: dict[str, str] = request.getfixturevalue("s3_env")
        homes = {n: {**env, **s3} for n, env in homes.items()}
    nums = write_numbers(tmp_path / "list.txt", 20_000, seed=3)
    data = _job_input(nums, 400)
    # the single-node scrub: one replica, a SQLite home, the same list and job
    single = server_env(tmp_path / "home-single", **JOB_ENV)
    import_list(single, tmp_path / "list.txt", "main")
    key = make_key(tmp_path / "home-single", "jobs")
    with start_server(single, name="single").client(key) as c:
        jid = _run_job(c, data)
        wait_for(c, jid, lambda j: j["state"] == "done")
        expected = c.get(f"/v1/jobs/{jid}/results").content
    assert expected.count(b"DNC_INTERNAL") > 100 and b"SOURCE_ERROR" not in expected

    key = make_key(Path(homes["a"]["DNCGUARD_HOME"]), "jobs", database_url=scaleout_db)
    import_list(homes["a"], tmp_path / "list.txt", "main")
    a = start_server({**homes["a"], **JOB_ENV}, name="a")
    with a.client(key) as ca:
        jid = _run_job(ca, data)
        before = wait_for(ca, jid, lambda j: int(str(j["rowsDone"])) >= 100)
    a.kill()  # SIGKILL mid-job: its home and lease are gone with it
    assert before["state"] == "running" and int(str(before["rowsDone"])) < 400
    b = start_server({**homes["b"], **JOB_ENV}, name="b")
    with b.client(key) as cb:
        done = wait_for(cb, jid, lambda j: j["state"] == "done")
    assert done["rowsDone"] == 400
    assert f"job {jid} done" in b.log()
    c = start_server(homes["c"], name="c")  # never ran the job, never saw its files
    with c.client(key) as cc:
        got = cc.get(f"/v1/jobs/{jid}/results")
        assert got.status_code == 200, got.text
        assert got.content == expected
        summary = cc.get(f"/v1/jobs/{jid}/summary").json()
        assert summary["complete"] is True and summary["totalRows"] == 400
    _job_bytes_where(scaleout_db, jid, files)


def _job_bytes_where(url: str, jid: str, files: str) -> None:
    """The job's chunks are in the database, or only in the object store (and there)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            counts = conn.execute(sa.text(
                "select count(c.sha256), count(o.sha256) from shared_file_chunks m "
                "left join shared_chunks c on c.sha256 = m.chunk "
                "left join shared_objects o on o.sha256 = m.chunk "
                "where m.name like :p"), {"p": f"jobs/{jid}/%"}).one()
    finally:
        engine.dispose()
    in_db, in_store = int(counts[0]), int(counts[1])
    assert (in_db > 0, in_store > 0) == ((True, False) if files == "database" else (False, True))
