"""The overview says what ``/readyz`` and ``GET /v1/lists`` mean: a list whose jurisdiction is
not understood (its checks answer error) carries ``scopeProblem`` in ``GET /v1/lists`` and is
shown as such, never with a green "fresh" tag; and "registries are fresh" is said only where
readiness requires it (``ready_requires_fresh``), else the stale lists are named."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from dncguard.config import load_settings
from dncguard.lists.store import ListStore, lists_table
from dncguard.store import get_engine

from ..server.conftest import make_key
from .conftest import signed_in_client


def _import(home: Path, name: str, kind: str, jurisdiction: str) -> None:
    numbers = home.parent / f"{name}.txt"
    numbers.write_text("2025550161\n", encoding="utf-8")
    ListStore(load_settings(home=home)).import_file(
        numbers, kind=kind, name=name, jurisdiction=jurisdiction,
        snapshot_date=date.today())


def _row(page: str, name: str) -> str:
    found = re.search(rf'<th scope="row">{name}</th>.*?</tr>', page, re.S)
    assert found, page
    return found.group(0)


def _readiness(page: str) -> str:
    found = re.search(r'data-testid="readiness">(.*?)</(p|div)>', page, re.S)
    assert found, page
    return " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split())


def test_a_list_whose_jurisdiction_is_not_understood(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _import(home, "us-ftc", "national", "US")
    _import(home, "fl-state", "state", "US-FL")
    with get_engine(load_settings(home=home)).begin() as conn:  # stored before it was refused
        conn.execute(update(lists_table).where(lists_table.c.name == "fl-state").values(
            jurisdiction="US-FA"))
    client = signed_in_client(home)
    api = TestClient(client.app, headers={"Authorization": f"Bearer {make_key(home, 'check')}"})
    listed = {x["name"]: x for x in api.get("/v1/lists").json()["lists"]}
    assert listed["us-ftc"]["scopeProblem"] is None
    problem = listed["fl-state"]["scopeProblem"]
    assert problem and "US-FA" in problem and "re-import it" in problem
    page = client.get("/console").text
    row = _row(page, "fl-state")
    assert "tag ok" not in row and "fresh" not in row
    assert "jurisdiction not understood" in row and "US-FA" in row
    assert 'tag ok">fresh' in _row(page, "us-ftc")


@pytest.mark.parametrize("required", [True, False])
def test_the_ready_banner_says_fresh_only_when_it_is_required(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, required: bool) -> None:
    monkeypatch.setenv("DNCGUARD_SERVER_READY_REQUIRES_FRESH", str(required).lower())
    home = tmp_path / "home"
    _import(home, "us-ftc", "national", "US")
    client = signed_in_client(home)
    banner = _readiness(client.get("/console").text)
    assert banner.startswith("Ready:"), banner
    assert ("registries are fresh" in banner) is required
    if not required:
        assert "every list is fresh" in banner
    old = (date.today() - timedelta(days=60)).isoformat()
    with get_engine(load_settings(home=home)).begin() as conn:
        conn.execute(update(lists_table).where(lists_table.c.name == "us-ftc").values(
            snapshot_date=old))
    banner = _readiness(client.get("/console").text)
    if required:
        assert banner.startswith("Not ready"), banner
    else:
        assert banner.startswith("Ready:") and "registries are fresh" not in banner, banner
        assert "ready_requires_fresh is off" in banner and "stale now: us-ftc" in banner
