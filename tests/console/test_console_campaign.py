"""The console judges a check's campaign as ``POST /v1/check`` does: a profile naming a list
created after the checks were prepared is not refused (it was, by the console only, until some
API check prepared them again), and a blank campaign field is refused (422), never read as
``default``; a form without the field checks the ``default`` campaign, as the API does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dncguard.config import load_settings
from dncguard.lists.store import ListStore

from ..server.conftest import make_key
from .conftest import csrf_token, signed_in_client

PHONE = "+12025550199"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text('[campaigns.later]\nlists = ["other"]\n')
    ListStore(load_settings(home=home)).add_number("+12125550100", reason="asked")
    return home


def _check(client: TestClient, **data: str) -> tuple[int, str | None, str]:
    page = client.post("/console/check", data={
        "phone": PHONE, **data, "csrf": csrf_token(client.get("/console/check"))})
    decision = re.search(r'data-testid="decision">([a-z]+)<', page.text)
    return page.status_code, decision.group(1) if decision else None, page.text


def test_a_list_created_after_the_checks_were_prepared(home: Path) -> None:
    client = signed_in_client(home)
    api = TestClient(client.app, headers={"Authorization": f"Bearer {make_key(home, 'check')}"})
    assert _check(client)[:2] == (200, "allow")  # the checks are prepared now
    status, _, page = _check(client, campaign="later")
    assert status == 422 and "form.campaign" in page  # list "other" does not exist yet
    ListStore(load_settings(home=home)).add_number(PHONE, list_name="other", reason="asked",
                                                   create=True)
    assert _check(client, campaign="later")[:2] == (200, "block")
    answered = api.post("/v1/check", json={"phone": PHONE, "campaign": "later"})
    assert answered.status_code == 200 and answered.json()["decision"] == "block"


def test_a_blank_campaign_is_refused_and_an_absent_one_is_default(home: Path) -> None:
    client = signed_in_client(home)
    for blank in ("", "   "):
        status, decision, page = _check(client, campaign=blank)
        assert (status, decision) == (422, None), page
        assert "campaign" in page and "The check was not run" in page
    assert _check(client)[:2] == (200, "allow")
    assert _check(client, campaign="default")[:2] == (200, "allow")


def test_a_scrub_with_a_blank_campaign_is_refused(home: Path) -> None:
    client = signed_in_client(home)
    token = csrf_token(client.get("/console/scrub"))
    refused = client.post("/console/scrub", data={"campaign": "", "csrf": token},
                          files={"file": ("c.csv", b"phone\n+12025550161\n")},
                          follow_redirects=False)
    assert refused.status_code == 422, refused.text
    assert "campaign: enter a campaign profile name" in refused.text
    assert client.app.state.service.jobs.find(limit=10) == []
    made = client.post("/console/scrub", data={"csrf": token},
                       files={"file": ("c.csv", b"phone\n+12025550161\n")},
                       follow_redirects=False)
    assert made.status_code == 303, made.text
    (job,) = client.app.state.service.jobs.find(limit=10)
    assert job.params["campaign"] == "default"
