"""Every road a file can take gives the same verdicts: the CLI, the library (array and row
paths), a ``/v1/jobs`` job (also one killed mid-job and resumed) and ``/v1/check/batch``.

The file mixes what each road must treat alike: duplicates in the same and in another row
context, a state written three ways, a context value that is not understood, an invalid
number, numbers on the internal list and on the national registry, with the rules on.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from dncguard.cli import run
from dncguard.config import load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore

from .conftest import Server, make_key, server_env

AT = "2026-12-01T01:30:00Z"  # 20:30 in New York: Florida's window (20:00) is closed
KEEP = ("byDecision", "byReason", "duplicates", "uniqueValid", "uniqueSuppressed", "byState",
        "rowErrors", "byList", "totalRows")


def _rows() -> list[list[str]]:
    out = [["id", "phone", "state"]]
    phones = ["2125550190", "2125550191", "2025550161", "2025550162", "3055550100", "bad",
              "4155550100", "(212) 555-0190"]
    states = ["NY", "FL", "", "DC", "Florida", "", "CA", "fla."]
    for i in range(40):
        out.append([f"c{i + 1}", phones[i % len(phones)], states[(i * 3) % len(states)]])
    out.append(["c41", "2125550199", "XX"])
    return out


def _wait(client: httpx.Client, jid: str, pred: Callable[[dict[str, Any]], bool]
          ) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{jid}").json()
        if pred(job):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(client.get(f"/v1/jobs/{jid}").text)


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data.get(k) for k in KEEP}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("DNCGUARD_HOME", str(home))
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    store = ListStore(load_settings(home=home))
    ftc = tmp_path / "ftc.txt"
    ftc.write_text("202,5550161\n202,5550162\n", encoding="utf-8")
    store.import_file(ftc, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date(2026, 11, 25))
    internal = tmp_path / "internal.txt"
    internal.write_text("4155550100\n", encoding="utf-8")
    store.import_file(internal, kind="internal", name="internal")
    return home


def test_cli_library_and_jobs_write_the_same_file(
        home: Path, tmp_path: Path, start_server: Callable[..., Server],
        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "contacts.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(_rows())
    cli_out = tmp_path / "cli.csv"
    assert run(["scrub", str(src), "-o", str(cli_out), "--at", AT, "-q"]) == 3  # error rows
    capsys.readouterr()
    expected = cli_out.read_bytes()
    cli_summary = _summary(json.loads(cli_out.with_name("cli.summary.json").read_text("utf-8")))
    rows = list(csv.DictReader(io.StringIO(expected.decode())))
    decisions = {r["decision"] for r in rows}
    assert decisions == {"allow", "defer", "block", "error", "invalid"}
    assert any("DUPLICATE" in r["reason_codes"] for r in rows)
    assert rows[-1]["reason_codes"] == "CONTEXT_INVALID"

    settings = load_settings(home=home)
    for columnar in (True, False):
        out = tmp_path / f"lib-{columnar}.csv"
        Scrubber(settings, columnar=columnar).scrub_file(src, out,
                                                         at=datetime.fromisoformat(AT))
        assert out.read_bytes() == expected, f"library, columnar={columnar}"
        lib = json.loads(out.with_name(f"lib-{columnar}.summary.json").read_text("utf-8"))
        assert _summary(lib) == cli_summary

    key = make_key(home, "jobs")
    env = server_env(home, DNCGUARD_RULES_ENABLED="true",
                     DNCGUARD_RULES_REQUIRE_REGISTRIES="false", DNCGUARD_CHUNK_SIZE="4",
                     DNCGUARD_SERVER_JOB_CHUNK_DELAY="0.1",
                     DNCGUARD_SERVER_JOB_LEASE_SECONDS="1.5")
    first = start_server(env, name="first")
    with first.client(key) as c:
        whole = c.post("/v1/jobs", content=src.read_bytes(), params={"at": AT},
                       headers={"content-type": "text/csv"}).json()["id"]
        killed = c.post("/v1/jobs", content=src.read_bytes(), params={"at": AT},
                        headers={"content-type": "text/csv"}).json()["id"]
        _wait(c, killed, lambda j: j["rowsDone"] >= 8)
    first.kill()  # SIGKILL mid-job
    second = start_server(env, name="second")
    with second.client(key) as c:
        for jid in (whole, killed):
            done = _wait(c, jid, lambda j: j["state"] in ("done", "failed"))
            assert done["state"] == "done", done
            body = c.get(f"/v1/jobs/{jid}/results")
            assert body.status_code == 200
            assert body.content == expected, f"job {jid}"
            assert _summary(c.get(f"/v1/jobs/{jid}/summary").json()) == cli_summary


def test_batch_endpoint_agrees_with_the_cli(
        home: Path, tmp_path: Path, start_server: Callable[..., Server],
        capsys: pytest.CaptureFixture[str]) -> None:
    """``/v1/check/batch`` (one context for every number) and a CLI scrub of the same numbers
    with the same flag give each row the same decision, reasons and next moment."""
    phones = [r[1] for r in _rows()[1:41]]
    src = tmp_path / "phones.csv"
    src.write_text("phone\n" + "\n".join(phones) + "\n", encoding="utf-8")
    out = tmp_path / "cli.csv"
    run(["scrub", str(src), "-o", str(out), "--at", AT, "--state", "Florida", "-q"])
    capsys.readouterr()
    cli_rows = list(csv.DictReader(out.open(encoding="utf-8")))
    key = make_key(home, "check")
    server = start_server(server_env(home, DNCGUARD_RULES_ENABLED="true",
                                     DNCGUARD_RULES_REQUIRE_REGISTRIES="false"))
    with server.client(key) as c:
        resp = c.post("/v1/check/batch", json={"phones": phones, "at": AT, "state": "Florida"})
        assert resp.status_code == 200, resp.text
        verdicts = resp.json()["verdicts"]
    assert len(verdicts) == len(cli_rows)
    for row, v in zip(cli_rows, verdicts, strict=True):
        assert v["decision"] == row["decision"]
        assert ";".join(dict.fromkeys(r["code"] for r in v["reasons"])) == row["reason_codes"]
        assert "; ".join(r["detail"] for r in v["reasons"] if r["detail"]) == row["detail"]
        nxt = (v["next_allowed_at"] or "").replace("+00:00", "Z")
        assert nxt == row["next_allowed_at"]
