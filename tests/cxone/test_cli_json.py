"""``dncguard cxone groups|sync|search|push --json`` against the sandbox (issue 14)."""

from __future__ import annotations

import json

import pytest

from dncguard.cli import run
from dncguard.config import load_settings
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import enqueue_optout
from dncguard.store import get_engine


@pytest.fixture
def env(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    return sandbox


def cli_json(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> object:
    got = run([*args, "--json"])
    out, err = capsys.readouterr()
    assert got == code, err
    return json.loads(out)


def test_groups_sync_search_json(env: SandboxServer, capsys: pytest.CaptureFixture[str]
                                 ) -> None:
    groups = cli_json(capsys, "cxone", "groups")
    assert isinstance(groups, list)
    by_id = {g["id"]: g for g in groups}
    assert by_id["364"]["name"] == "Internal DNC" and by_id["364"]["active"] is True
    assert "218853" in by_id["364"]["skills"]
    assert set(by_id["364"]) == {"id", "name", "active", "validRecords", "skills", "updated"}

    synced = cli_json(capsys, "cxone", "sync")
    assert isinstance(synced, dict)
    assert {g["id"] for g in synced["groups"]} == {"364", "365"}
    first = synced["groups"][0]
    assert set(first) == {"id", "name", "mode", "records", "downloaded", "skipped", "active"}
    assert first["mode"] == "full" and synced["requests"] > 0

    found = cli_json(capsys, "cxone", "search", "202-555-0101")
    assert isinstance(found, dict)
    assert found["number"] == "+1202555****" and found["blocking"] is True
    assert any(g["groupName"] == "Internal DNC" and g["blocking"] for g in found["groups"])
    assert "2025550101" not in json.dumps(found)
    none = cli_json(capsys, "cxone", "search", "513-555-0100")
    assert none == {"number": "+1513555****", "groups": [], "blocking": False}


def test_push_json_reports_refusals_and_exits_3(env: SandboxServer,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    engine = get_engine(load_settings())
    enqueue_optout(engine, "+12025550188")
    enqueue_optout(engine, "+1234")
    got = cli_json(capsys, "cxone", "push", "--group", "364", code=3)
    assert isinstance(got, dict)
    assert got["group"] == "364" and got["sent"] == 2 and got["delivered"] == 1
    assert got["ok"] is False and len(got["refused"]) == 1
    assert "Invalid phone number" in got["refused"][0]["error"]
    assert "2025550188" not in json.dumps(got)
