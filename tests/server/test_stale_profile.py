"""A request's campaign profile is judged by the checks it runs with. A worker judged it by
the checks it had prepared last, without asking the database, and then checked the numbers
with checks rebuilt for the current list version: after the only list a profile named was
removed, the next check (fast path, route or batch) selected no list at all and answered
``allow`` with no list read. And a list created since the worker prepared its checks was
refused as unknown (422) until some other check made it prepare them again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from dncguard.config import load_settings
from dncguard.lists.store import ListStore

from .conftest import Server, make_key, server_env

PHONE = "+12025550199"
TOML = '[campaigns.nolists]\nlists = ["other"]\n'


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, str, ListStore]]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text(TOML)
    key = make_key(home, "check")
    store = ListStore(load_settings(home=home))
    store.add_number("+12125550100", reason="so that the internal list exists")
    server = Server(server_env(home, DNCGUARD_SERVER_WORKERS="1"), tmp_path / "server.log")
    server.start()
    yield server, key, store
    server.kill()


def _single(c: httpx.Client, ctype: str) -> httpx.Response:
    return c.post("/v1/check", content=f'{{"phone": "{PHONE}", "campaign": "nolists"}}',
                  headers={"Content-Type": ctype})


def _batch(c: httpx.Client, ctype: str) -> httpx.Response:
    return c.post("/v1/check/batch", json={"phones": [PHONE, "+12025550198"],
                                           "campaign": "nolists"})


SENDS: list[tuple[str, Callable[[httpx.Client, str], httpx.Response], str]] = [
    ("fast path", _single, "application/json"),
    ("route", _single, "application/vnd.dialer+json"),
    ("batch", _batch, "application/json"),
]


def _decisions(resp: httpx.Response) -> list[str]:
    body = resp.json()
    return [v["decision"] for v in body["verdicts"]] if "verdicts" in body else [body["decision"]]


def test_a_list_created_and_removed_under_a_running_worker(
        served: tuple[Server, str, ListStore]) -> None:
    server, key, store = served
    with server.client(key) as c:
        # the worker prepares its checks (no list 'other' yet): nolists is unknown
        assert c.post("/v1/check", json={"phone": PHONE}).status_code == 200
        assert _single(c, "application/json").status_code == 422
        for name, send, ctype in SENDS:
            store.add_number(PHONE, list_name="other", reason="asked", create=True)
            created = send(c, ctype)  # created after the checks were prepared: known now
            assert created.status_code == 200, (name, created.text)
            assert _decisions(created)[0] == "block", name
            store.remove_list("other")
            after = send(c, ctype)  # the first check after the removal
            assert '"decision":"allow"' not in after.text, (name, after.text)
            if after.status_code == 200:
                assert set(_decisions(after)) == {"error"}, (name, after.text)
                assert "names lists or sources that do not exist: other" in after.text, name
            else:
                assert after.status_code == 422, (name, after.text)
            again = send(c, ctype)
            assert again.status_code == 422, (name, again.text)
