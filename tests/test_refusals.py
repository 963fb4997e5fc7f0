"""Inputs that would fail open later are refused when they arrive, with a one-line reason
(issue 14): unknown list names, past expiries, impossible snapshot and consent dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dncguard.config import Settings
from dncguard.errors import InputError, ListError
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout
from dncguard.sources.rules import ConsentStore


def test_opt_out_to_an_unknown_list_is_refused(store: ListStore) -> None:
    """An opt-out on ``Internal`` (a new list no campaign reads) is refused; ``internal`` is
    made on first use; ``create`` makes another list on purpose."""
    add_optout(store, "2025550100")
    with pytest.raises(ListError, match="did you mean 'internal'"):
        add_optout(store, "2025550101", list_name="Internal")
    assert [i.name for i in store.all()] == ["internal"]
    add_optout(store, "2025550101", list_name="call-center-b", create=True)
    assert {i.name for i in store.all()} == {"internal", "call-center-b"}


def test_past_expiry_is_refused(store: ListStore) -> None:
    with pytest.raises(ListError, match="already passed"):
        add_optout(store, "2025550100", expires=datetime.now(UTC) - timedelta(minutes=1))


@pytest.mark.parametrize(("kind", "jurisdiction", "snapshot", "why"), [
    ("national", "US", date(2027, 6, 1), "in the future"),
    ("national", "US", date(2003, 6, 1), "before the list could exist"),
    ("national", "CA", date(2008, 1, 1), "before the list could exist"),
    ("state", "US-FL", date(1990, 1, 1), "before the list could exist"),
])
def test_impossible_snapshot_dates_are_refused(
        store: ListStore, write_lines: Callable[..., Path], kind: str, jurisdiction: str,
        snapshot: date, why: str) -> None:
    """A snapshot dated in the future would count as fresh until then."""
    with pytest.raises(ListError, match=why):
        store.import_file(write_lines(["2025550100"]), kind=kind, name="x",
                          jurisdiction=jurisdiction, snapshot_date=snapshot)
    assert store.all() == []


@pytest.mark.parametrize(("granted", "why"), [
    (date(1, 1, 1), "before the TCPA"), (date(1991, 12, 19), "before the TCPA"),
    (date.today() + timedelta(days=2), "in the future"),
])
def test_impossible_consent_dates_are_refused(settings: Settings, granted: date,
                                              why: str) -> None:
    """A consent dated 0001-01-01 would lift a registry hit; it is refused."""
    with pytest.raises(InputError, match=why):
        ConsentStore(settings).add("2025550100", "express_written", granted)


def test_consent_import_reports_impossible_dates(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "consents.csv"
    path.write_text("phone,type,date\n2025550100,express,0001-01-01\n"
                    "2025550101,express,2026-01-05\n", encoding="utf-8")
    report = ConsentStore(settings).import_csv(path, who="tester")
    assert report.added == 0  # all or nothing
    assert [(e.line, e.field) for e in report.errors] == [(2, "date")]


def test_consents_listed_and_revoked(settings: Settings) -> None:
    consents = ConsentStore(settings)
    consents.add("2025550100", "express_written", date(2026, 1, 5), who="tester")
    consents.add("2025550100", "ebr_purchase", date(2026, 3, 1), who="tester")
    assert [r.type for r in consents.records("(202) 555-0100")] == [
        "express_written", "ebr_purchase"]
    assert consents.revoke("2025550100", date(2026, 11, 1), type_="express_written",
                           who="tester", why="asked") == 1
    held = consents.records("2025550100")
    revoked = [r for r in held if r.revoked == date(2026, 11, 1)]
    assert [r.type for r in revoked] == ["express_written"]
    with pytest.raises(InputError, match="future"):
        consents.revoke("2025550100", date.today() + timedelta(days=3))
