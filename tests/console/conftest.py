"""The console's browser tests: one real ``dncguard serve`` and one headless Chromium for the
whole run (started and stopped here), driven with Playwright.

Chromium is the system's (``/usr/bin/chromium``; CI installs Debian's); the tests skip, saying
why, only when it is missing outside CI. Under ``CI`` they run, and fail if it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from dncguard.config import load_settings
from dncguard.lists.store import ListStore

from ..server.conftest import Server, make_key, server_env

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_token(resp: httpx.Response) -> str:
    """The CSRF token of a console page fetched over plain HTTP (no browser)."""
    assert resp.status_code == 200, resp.text
    found = _CSRF.search(resp.text)
    assert found, resp.text
    return found.group(1)


def signed_in_client(home: Path, *, run_jobs: bool = False) -> Any:
    """A FastAPI test client of the service on ``home`` (``run_jobs``: with the job runner,
    which runs while the client is entered, ``with client:``), signed in to the console with
    a new admin key."""
    from fastapi.testclient import TestClient

    from dncguard.server.app import create_app

    key = make_key(home, "admin")
    client = TestClient(create_app(load_settings(home=home), run_jobs=run_jobs))
    signed = client.post("/console/signin", data={
        "key": key, "csrf": csrf_token(client.get("/console/signin"))},
        follow_redirects=False)
    assert signed.status_code == 303, signed.text
    return client


CHROMIUM = Path(os.environ.get("DNCGUARD_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
WIDTH = 1280
#: Read at import: the root conftest hides DNCGUARD_* variables from the tests themselves.
SAVE_SHOTS = os.environ.get("DNCGUARD_TEST_SCREENSHOTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium); "
                                   "these browser tests run whenever CI is set")
    here = Path(__file__).resolve().parent
    for item in items:
        if (here in Path(str(item.fspath)).resolve().parents
                and "browser" in getattr(item, "fixturenames", ())):
            item.add_marker(skip)


@dataclass
class Console:
    """The running service and the keys the tests sign in with."""

    server: Server
    home: Path
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url + "/console"


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    home = root / "home"
    store = ListStore(load_settings(home=home))
    ftc = root / "ftc.txt"
    ftc.write_text("202,5550161\n202,5550162\n", encoding="utf-8")
    store.import_file(ftc, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date.today())
    internal = root / "internal.txt"
    internal.write_text("4155550100\n", encoding="utf-8")
    store.import_file(internal, kind="internal", name="internal")
    keys = {
        "admin": make_key(home, "admin"),
        "console": make_key(home, "console"),
        "writer": make_key(home, "console", "dnc:write"),
        "jobs": make_key(home, "console", "jobs"),
        "check": make_key(home, "check"),
    }
    env = server_env(home, DNCGUARD_CHUNK_SIZE="1000", DNCGUARD_SERVER_RATE_PER_SECOND="1000",
                     DNCGUARD_SERVER_RATE_BURST="2000")
    server = Server(env, root / "server.log")
    try:
        server.start()
        yield Console(server, home, keys)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Playwright's sync API runs an event loop in this thread while it is open: it is
    closed with the module, so later modules' asyncio tests get the thread back."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                              args=["--disable-gpu", "--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watched:
    """A page and the errors its console and scripts reported."""

    page: Any
    errors: list[str]


@pytest.fixture
def page(browser: Any, console: Console) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": WIDTH, "height": 900},
                                  base_url=console.server.url, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    try:
        yield Watched(page, errors)
    finally:
        context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def screenshot(page: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot under the test's folder; also in docs/console/ when
    ``DNCGUARD_TEST_SCREENSHOTS=1`` (to refresh the committed ones)."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if SAVE_SHOTS:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / path.name)
    return path


def axe_violations(page: Any) -> list[str]:
    """Serious and critical accessibility violations on the page (axe-core, WCAG 2.1 A/AA
    and best practices)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text("utf-8"))
    result = page.evaluate("""async () => {
        const r = await window.axe.run(document, {runOnly: {type: 'tag', values:
            ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in result
            if v["impact"] in ("serious", "critical")]


def sign_in(page: Any, key: str) -> None:
    page.goto("/console/signin")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
