"""The console's opt-outs mean what the CLI's and the API's mean: an expiry date is the last day
the opt-out applies, a lapsed entry is shown as expired (it no longer blocks), and an add says
which campaigns do not read the list, as ``POST /v1/dnc``'s ``notReadBy`` does."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.optouts import expiry_after
from dncguard.store import get_engine, list_entries_table

from .conftest import csrf_token, signed_in_client


@pytest.fixture
def signed_in(tmp_path: Path) -> tuple[TestClient, Path, str]:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text('[campaigns.ftconly]\nlists = ["us-ftc"]\n')
    client = signed_in_client(home)
    return client, home, csrf_token(client.get("/console/optouts"))


def _expiry_of(home: Path, e164: str) -> datetime | None:
    store = ListStore(load_settings(home=home))
    (entry,) = [e for e in store.entries("internal") if e["value"] == e164]
    return entry["expires_at"]


def test_the_expiry_date_is_the_last_day_it_applies(
        signed_in: tuple[TestClient, Path, str]) -> None:
    """The console stored the midnight that starts the date, the CLI the one that ends it: the
    same date lapsed a day earlier from the console (``allow`` on the day itself), and today's
    date was refused as already passed."""
    client, home, token = signed_in
    today = datetime.now(UTC).date()
    for day in (today, today + timedelta(days=3)):
        phone = f"+1202555{(day - today).days:04d}"
        page = client.post("/console/optouts/add", data={
            "phone": phone, "expires": day.isoformat(), "csrf": token})
        assert page.status_code == 201, page.text
        assert _expiry_of(home, phone) == expiry_after(day)
        assert expiry_after(day) == datetime.combine(day + timedelta(days=1),
                                                     datetime.min.time(), tzinfo=UTC) \
            + timedelta(hours=12)
    assert expiry_after(date(2026, 12, 31)) == datetime(2027, 1, 1, 12, tzinfo=UTC)


def test_a_lapsed_opt_out_is_shown_as_expired(signed_in: tuple[TestClient, Path, str]) -> None:
    client, home, token = signed_in
    for phone in ("+12025550171", "+12025550172"):
        assert client.post("/console/optouts/add", data={
            "phone": phone, "csrf": token}).status_code == 201
    with get_engine(load_settings(home=home)).begin() as conn:  # lapsed an hour ago
        conn.execute(update(list_entries_table).where(
            list_entries_table.c.value == "+12025550171").values(
            expires_at=datetime.now(UTC) - timedelta(hours=1)))
    page = client.get("/console/optouts").text
    rows = {row.split("</th>")[0].rsplit(">", 1)[-1]: row
            for row in (line.strip() for line in page.splitlines())
            if row.startswith('<tr><th scope="row">')}
    assert "<td>expired</td>" in rows["+12025550171"]
    assert "<td>listed</td>" in rows["+12025550172"]


def test_an_add_names_the_campaigns_that_do_not_read_the_list(
        signed_in: tuple[TestClient, Path, str]) -> None:
    client, _, token = signed_in
    page = client.post("/console/optouts/add", data={"phone": "+12025550161", "csrf": token})
    assert page.status_code == 201
    assert "is on the list internal now" in page.text
    assert "do not read internal, so do not see it: ftconly." in page.text
