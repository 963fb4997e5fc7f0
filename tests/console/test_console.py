"""The web console in a real browser: sign-in, checks, opt-outs, scrubs, audit, CSRF,
accessibility and screenshots (see conftest.py for the server and the browser)."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import Console, Watched, axe_violations, screenshot, sign_in

AT = "2026-12-01T15:00:00Z"


def _ok(w: Watched, shots: Path | None = None, name: str | None = None) -> None:
    """No console errors, no serious or critical accessibility violation; a screenshot."""
    assert not w.errors, w.errors
    assert not (found := axe_violations(w.page)), found
    if shots is not None and name is not None:
        screenshot(w.page, shots, name)


def test_sign_in_and_out(page: Watched, console: Console, shots: Path) -> None:
    p = page.page
    p.goto("/console")
    assert p.url.endswith("/console/signin")
    _ok(page, shots, "signin")
    sign_in(p, console.keys["console"])
    assert p.url.endswith("/console")
    assert p.get_by_role("heading", level=1).inner_text() == "Overview"
    cookie = next(c for c in p.context.cookies() if c["name"] == "dncguard_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    assert console.keys["console"] not in str(p.context.cookies())
    assert "Ready" in p.get_by_test_id("readiness").inner_text()
    lists = p.get_by_role("table").inner_text()
    assert "us-ftc" in lists and "national" in lists and "internal" in lists
    _ok(page, shots, "overview")

    p.get_by_role("button", name="Sign out").click()
    p.wait_for_load_state()
    assert p.url.endswith("/console/signin")
    assert not [c for c in p.context.cookies() if c["name"] == "dncguard_console"]
    p.goto("/console/check")
    assert p.url.endswith("/console/signin")  # the session is gone
    assert not page.errors


def test_a_wrong_key_and_a_check_key_are_refused(page: Watched, console: Console) -> None:
    p = page.page
    for key, says in (("dgk_000000000000_nope", "not valid"),
                      (console.keys["check"], "needs the console or admin scope")):
        sign_in(p, key)
        assert p.url.endswith("/console/signin")
        assert says in p.get_by_role("alert").inner_text()
        assert not [c for c in p.context.cookies() if c["name"] == "dncguard_console"]
    p.goto("/console")
    assert p.url.endswith("/console/signin")
    # 401 and 403 are what the browser was told; the console logs nothing of it as an error
    assert all("401" in e or "403" in e for e in page.errors), page.errors


def test_a_form_post_without_its_csrf_token_is_refused(page: Watched, console: Console) -> None:
    p = page.page
    sign_in(p, console.keys["writer"])
    # page.request shares the browser's cookies: a signed-in post, without or with a wrong token
    for form in ({"phone": "+12025550143"}, {"phone": "+12025550143", "csrf": "forged"}):
        for path in ("/console/check", "/console/optouts/add", "/console/signout"):
            r = p.request.post(path, form=form, max_redirects=0)
            assert r.status == 403, (path, r.status)
    # still signed in (sign-out without a token did nothing), and nothing was added
    p.goto("/console/optouts")
    assert p.url.endswith("/console/optouts")
    assert "+12025550143" not in p.content()
    # the sign-in form has its own token too
    r = p.request.post("/console/signin", form={"key": console.keys["admin"]}, max_redirects=0)
    assert r.status == 403


def test_check_a_number_shows_its_verdict_and_history(page: Watched, console: Console,
                                                      shots: Path) -> None:
    p = page.page
    sign_in(p, console.keys["admin"])
    p.goto("/console/check")
    _ok(page, shots, "check-form")
    p.get_by_label("Phone number").fill("(415) 555-0100")
    p.get_by_label("Dial time (optional)").fill(AT)
    p.get_by_label("State (optional)").fill("California")
    p.get_by_role("button", name="Check", exact=True).click()
    p.wait_for_load_state()
    assert p.get_by_test_id("decision").inner_text() == "block"
    reasons = p.get_by_test_id("reasons").inner_text()
    assert "DNC_INTERNAL" in reasons and "internal" in reasons
    history = p.get_by_test_id("history").inner_text()
    assert "check" in history and "console:test-admin" in history and "block" in history
    assert "4155550100" not in p.url and "415" not in p.url  # numbers never in the URL
    _ok(page, shots, "check")

    # a value the API refuses is refused here the same way, naming the field
    p.get_by_label("State (optional)").fill("Atlantis")
    p.get_by_role("button", name="Check", exact=True).click()
    p.wait_for_load_state()
    assert "state" in p.get_by_role("alert").inner_text()

    # a console-only key checks too, and is told why it sees no history
    other = page.page.context.new_page()
    other.context.clear_cookies()
    sign_in(other, console.keys["console"])
    other.goto("/console/check")
    other.get_by_label("Phone number").fill("+12025550161")
    other.get_by_label("Dial time (optional)").fill(AT)
    other.get_by_role("button", name="Check", exact=True).click()
    other.wait_for_load_state()
    assert other.get_by_test_id("decision").inner_text() == "block"
    assert "DNC_NATIONAL" in other.get_by_test_id("reasons").inner_text()
    assert "admin scope" in other.get_by_test_id("history-note").inner_text()

    assert not page.errors or all("422" in e for e in page.errors), page.errors


def test_an_opt_out_added_in_the_console_blocks_api_checks(page: Watched, console: Console,
                                                           shots: Path) -> None:
    api = httpx.Client(base_url=console.server.url, timeout=30,
                       headers={"Authorization": f"Bearer {console.keys['check']}"})
    phone = "+13055550177"
    before = api.post("/v1/check", json={"phone": phone, "at": AT}).json()
    assert "DNC_INTERNAL" not in [r["code"] for r in before["reasons"]]

    p = page.page
    sign_in(p, console.keys["console"])  # without dnc:write: view only
    p.goto("/console/optouts")
    assert p.get_by_role("button", name="Add opt-out").is_disabled()
    r = p.request.post("/console/optouts/add", form={
        "phone": phone, "csrf": p.locator("input[name=csrf]").first.input_value()})
    assert r.status == 403

    p.context.clear_cookies()
    sign_in(p, console.keys["writer"])
    p.goto("/console/optouts")
    p.get_by_label("Phone number").first.fill("(305) 555-0177")
    p.get_by_label("Reason").fill("asked on call")
    p.get_by_label("Last day (optional").fill("2030-01-31")
    p.get_by_role("button", name="Add opt-out").click()
    p.wait_for_load_state()
    assert f"{phone} is on the list internal now" in p.get_by_role("status").inner_text()
    entries = p.get_by_test_id("entries").inner_text()
    # the last day given is 2030-01-31: it lapses once that day has ended everywhere
    assert phone in entries and "asked on call" in entries and "2030-02-01 12:00" in entries
    _ok(page, shots, "optouts")

    after = api.post("/v1/check", json={"phone": phone, "at": AT}).json()
    assert after["decision"] == "block"
    assert "DNC_INTERNAL" in [r["code"] for r in after["reasons"]]

    p.get_by_label("Phone number").nth(1).fill(phone)
    p.get_by_label("Why it is removed").fill("added by mistake")
    p.get_by_role("button", name="Remove").click()
    p.wait_for_load_state()
    assert "was removed from internal" in p.get_by_role("status").inner_text()
    again = api.post("/v1/check", json={"phone": phone, "at": AT}).json()
    assert "DNC_INTERNAL" not in [r["code"] for r in again["reasons"]]
    assert "5550177" not in console.server.log()  # numbers never in the log
    assert not page.errors, page.errors
    api.close()


def _contacts(path: Path, rows: int) -> None:
    areas = ["212", "202", "305", "415", "646"]
    states = ["NY", "DC", "FL", "CA", "", "fla.", "Texas"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "phone", "state"])
        for i in range(rows):
            phone = f"{areas[i % len(areas)]}555{(i * 7) % 10000:04d}"
            if i % 97 == 0:
                phone = "2025550161"  # on the national list
            if i % 101 == 0:
                phone = "not a number"
            w.writerow([f"c{i}", phone, states[i % len(states)]])


def test_scrub_a_file_shows_progress_and_downloads_what_the_cli_writes(
        page: Watched, console: Console, shots: Path, tmp_path: Path) -> None:
    src = tmp_path / "contacts.csv"
    _contacts(src, 10_000)
    cli_out = tmp_path / "cli.csv"
    cli = subprocess.run([sys.executable, "-m", "dncguard", "scrub", str(src), "-o",
                          str(cli_out), "--at", AT, "-q"], env=console.server.env,
                         capture_output=True, text=True, timeout=120)
    assert cli_out.is_file(), cli.stderr

    p = page.page
    sign_in(p, console.keys["jobs"])
    p.goto("/console/scrub")
    _ok(page, shots, "scrub")
    p.get_by_label("File").set_input_files(str(src))
    p.get_by_label("Dial time (optional)").fill(AT)
    polls: list[str] = []
    p.on("request", lambda r: polls.append(r.url) if r.url.endswith("/status") else None)
    p.get_by_role("button", name="Scrub").click()
    p.wait_for_url("**/console/scrub/*")
    assert p.locator("progress").is_visible()
    seen = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen.add(p.get_by_test_id("rows-done").inner_text())
        if p.get_by_test_id("job-state").inner_text() in ("done", "failed"):
            break
        time.sleep(0.05)
    assert p.get_by_test_id("job-state").inner_text() == "done", p.content()
    assert p.get_by_test_id("rows-done").inner_text() == "10,000"
    assert "of 10,000 rows" in p.locator("#job-text").inner_text()
    assert p.locator("progress").evaluate("e => [e.value, e.max]") == [10000, 10000]
    assert polls, "the page polled the job's progress"
    _ok(page, shots, "job")
    with p.expect_download() as got:
        p.get_by_role("link", name="Download the verdict file (CSV)").click()
    downloaded = Path(got.value.path())
    assert downloaded.read_bytes() == cli_out.read_bytes()


def test_audit_verify_and_accessibility_on_a_phone(page: Watched, console: Console,
                                                   shots: Path) -> None:
    p = page.page
    sign_in(p, console.keys["console"])
    p.goto("/console/audit")
    p.get_by_role("button", name="Verify now").click()
    p.wait_for_load_state()
    result = p.get_by_test_id("verify-result").inner_text()
    assert "Chain intact" in result, result
    _ok(page, shots, "audit")

    p.set_viewport_size({"width": 390, "height": 844})
    for path in ("/console", "/console/check", "/console/optouts", "/console/scrub"):
        p.goto(path)
        width = p.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, (path, width)  # nothing wider than the phone
        assert not (found := axe_violations(p)), (path, found)
        if path == "/console":
            screenshot(p, shots, "overview-phone")
    # keyboard: the skip link is the first stop and lands on main
    p.goto("/console")
    p.keyboard.press("Tab")
    assert p.evaluate("() => document.activeElement.textContent") == "Skip to main content"
    p.keyboard.press("Enter")
    assert p.evaluate("() => document.activeElement.id") == "main"
    assert not page.errors, page.errors
