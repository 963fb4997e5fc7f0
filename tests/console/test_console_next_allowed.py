"""The console's "Next legal moment" says what the decision means: a blocked number has none
while the block stands, an error verdict none known (the number could not be verified), an
invalid one none. Each showed "none within 14 days", which is what a deferral past the search
horizon means, and reads as if the number were merely waiting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dncguard.config import load_settings
from dncguard.lists.store import ListStore

from .conftest import csrf_token, signed_in_client

AT = "2026-11-25T16:00:00Z"  # a Wednesday afternoon in every US zone


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    home = tmp_path / "home"
    home.mkdir()
    return signed_in_client(home)


def _shown(client: TestClient, phone: str) -> tuple[str, str]:
    page = client.post("/console/check", data={
        "phone": phone, "at": AT, "campaign": "default",
        "csrf": csrf_token(client.get("/console/check"))})
    assert page.status_code == 200, page.text
    decision = re.search(r'data-testid="decision">([a-z]+)<', page.text)
    moment = re.search(r'data-testid="next-allowed">([^<]*)<', page.text)
    assert decision and moment, page.text
    return decision.group(1), moment.group(1)


def test_next_legal_moment_follows_the_decision(client: TestClient, tmp_path: Path) -> None:
    # no national registry imported: a US number cannot be verified
    assert _shown(client, "+12025550123") == (
        "error", "unknown: the number could not be verified (see the reasons)")
    assert _shown(client, "+1 000 000 0000")[1] == "none: not a number that can be dialed"
    store = ListStore(load_settings(home=tmp_path / "home"))
    store.add_number("+442079460018", reason="asked")  # GB: no registry rule stands in the way
    assert _shown(client, "+442079460018") == (
        "block", "none while the block stands (see the reasons)")
