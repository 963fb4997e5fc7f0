"""``dncguard cxone ...`` against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dncguard.cli._cxone import app
from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import enqueue_optout
from dncguard.store import get_engine

runner = CliRunner()


@pytest.fixture
def env(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> SandboxServer:
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    return sandbox


def test_groups_sync_search(env: SandboxServer) -> None:
    res = runner.invoke(app, ["groups"])
    assert res.exit_code == 0, res.output
    assert "Internal DNC" in res.output and "218853" in res.output
    res = runner.invoke(app, ["sync"])
    assert res.exit_code == 0, res.output
    assert "2 group(s) synced" in res.output
    infos = {i.name: i for i in ListStore(load_settings()).all()}
    assert set(infos) == {"cxone:364", "cxone:365"}
    assert infos["cxone:364"].meta["group_name"] == "Internal DNC"
    res = runner.invoke(app, ["sync", "--group", "366"])
    assert res.exit_code == 0 and "no" in res.output
    res = runner.invoke(app, ["search", "202-555-0101"])
    assert res.exit_code == 0, res.output
    assert "Internal DNC" in res.output and "yes" in res.output
    assert "2025550101" not in res.output  # masked
    res = runner.invoke(app, ["search", "513-555-0100"])
    assert "in no CXone DNC group" in res.output


def test_push_drains_the_queue(env: SandboxServer) -> None:
    engine = get_engine(load_settings())
    enqueue_optout(engine, "+12025550188")
    enqueue_optout(engine, "+1234")
    res = runner.invoke(app, ["push", "--group", "364"])
    assert res.exit_code == 3  # one item refused, reported
    assert "1 delivered of 2 sent" in res.output
    assert "Invalid phone number" in res.output
    assert "2025550188" in env.state.records[364]


def test_errors_are_one_line_with_exit_2(monkeypatch: pytest.MonkeyPatch,
                                         sandbox: SandboxServer) -> None:
    res = runner.invoke(app, ["groups"])
    assert res.exit_code == 2
    assert "CXone is not configured" in res.output
    assert "Traceback" not in res.output
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("DNCGUARD_CXONE_ACCESS_KEY_SECRET", "nope-secret")
    res = runner.invoke(app, ["sync"])
    assert res.exit_code == 2
    assert "invalid_grant" in res.output and "nope-secret" not in res.output
    res = runner.invoke(app, ["push"])
    assert res.exit_code == 2 and "--group" in res.output
    res = runner.invoke(app, ["search", "12"])
    assert res.exit_code == 2


def test_sandbox_rejects_a_bad_seed_file(tmp_path: Path,
                                         write_lines: Callable[..., Path]) -> None:
    bad = tmp_path / "seed.json"
    bad.write_text(json.dumps({"groups": [{"records": [{"nope": 1}]}]}))
    res = runner.invoke(app, ["sandbox", "--data", str(bad), "--port", "0"])
    assert res.exit_code == 2
    assert "not a valid seed file" in res.output
    res = runner.invoke(app, ["sandbox", "--data", str(tmp_path / "missing.json")])
    assert res.exit_code == 2
