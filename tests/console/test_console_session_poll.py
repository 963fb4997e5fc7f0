"""The job page stops polling when its session ends, and says so: the progress poll of an
expired session was redirected to the sign-in page, which the script could not read as
progress, so it tried again every 2 s for as long as the page stayed open and showed the
last progress as if the job were still running.

In the browser, with the page's clock under the test's control (Playwright's fake timers):
the job's progress is answered "running" by the test until the session is deleted on the
server, then by the service itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from dncguard.config import load_settings
from dncguard.server.console.sessions import SessionStore
from dncguard.store import get_engine

from .conftest import Console, Watched, sign_in

RUNNING = json.dumps({"id": "-", "state": "running", "rowsDone": 7, "rows": 1000,
                      "counts": {}, "error": None, "results": None})


def test_the_job_page_stops_polling_when_the_session_expires(
        page: Watched, console: Console, tmp_path: Path) -> None:
    p = page.page
    sign_in(p, console.keys["jobs"])
    p.clock.install()  # setTimeout runs when the test moves the clock, not before
    polls: list[str] = []
    expired = [False]

    def progress(route: Any) -> None:
        polls.append(route.request.url)
        if expired[0]:
            route.continue_()  # the service answers
        else:
            route.fulfill(status=200, content_type="application/json", body=RUNNING)

    p.route("**/console/scrub/*/status", progress)
    src = tmp_path / "c.csv"
    src.write_text("phone\n+12025550161\n", encoding="utf-8")
    p.goto("/console/scrub")
    p.get_by_label("File").set_input_files(str(src))
    p.get_by_role("button", name="Scrub").click()
    p.wait_for_url("**/console/scrub/*")
    expect(p.get_by_test_id("rows-done")).to_have_text("7")  # polled; the next one waits
    p.clock.run_for(400)
    expect(p.get_by_test_id("rows-done")).to_have_text("7")
    assert len(polls) >= 1

    cookie = next(c for c in p.context.cookies() if c["name"] == "dncguard_console")
    SessionStore(get_engine(load_settings(home=console.home))).delete(cookie["value"])
    expired[0] = True
    p.clock.run_for(2_000)  # the next poll: the service says the session is gone
    stopped = p.get_by_test_id("job-stopped")
    expect(stopped).to_be_visible(timeout=5_000)
    assert "Your session has expired" in stopped.inner_text()
    expect(stopped.get_by_role("link", name="Sign in again")).to_have_attribute(
        "href", "/console/signin")
    assert p.locator("[data-job-status]").get_attribute("data-polling") == "stopped"

    after = len(polls)
    p.clock.run_for(600_000)  # ten minutes on the page: no poll is due any more
    assert p.evaluate("() => fetch('/console/static/favicon.svg').then(r => r.status)") == 200
    assert len(polls) == after, polls[after:]
