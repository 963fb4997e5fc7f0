"""``dncguard lists sync``: a host without a server fetches the lists' snapshots itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..server.conftest import server_env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dncguard", *args], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.postgres
def test_a_host_syncs_before_it_checks(tmp_path: Path, scaleout_db: str) -> None:
    a = server_env(tmp_path / "home-a", DNCGUARD_DATABASE_URL=scaleout_db,
                   DNCGUARD_RULES_ENABLED="false")
    b = server_env(tmp_path / "home-b", DNCGUARD_DATABASE_URL=scaleout_db,
                   DNCGUARD_RULES_ENABLED="false")
    (tmp_path / "optouts.txt").write_text("+12025550142\n+13055550100\n")
    done = _cli(a, "lists", "import", str(tmp_path / "optouts.txt"), "--kind", "internal",
                "--name", "optouts")
    assert done.returncode == 0, done.stderr
    before = json.loads(_cli(b, "check", "+12025550142", "--json").stdout)
    assert before["decision"] == "error"
    assert [r["code"] for r in before["reasons"]] == ["SOURCE_ERROR"]
    synced = _cli(b, "lists", "sync", "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout) == {"shared": True, "synced": ["optouts"], "problems": {}}
    after = json.loads(_cli(b, "check", "+12025550142", "--json").stdout)
    assert (after["decision"], [r["code"] for r in after["reasons"]]) == ("block",
                                                                          ["DNC_INTERNAL"])
    again = _cli(b, "lists", "sync")
    assert again.returncode == 0 and "1 list held" in again.stdout


def test_a_sqlite_home_has_nothing_to_sync(tmp_path: Path) -> None:
    env = server_env(tmp_path / "home")
    done = _cli(env, "lists", "sync", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"shared": False, "synced": [], "problems": {}}
