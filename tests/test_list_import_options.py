"""``lists import`` refuses options it would store but not understand: a state list of a
subdivision no number can match (``US-FA``, a typo for Florida, would never block a Florida
number), a national list of a state, ``--jurisdiction`` on kinds it does not scope and
``--salt`` on kinds that hold no hashes. A list stored with such a jurisdiction before it was
refused fails closed instead of missing silently."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import update

from dncguard.config import Settings
from dncguard.engine.context import clean_field
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import ListError
from dncguard.lists.store import ListStore, jurisdiction_problem
from dncguard.phones import npa_state_table
from dncguard.places import subdivision_codes
from dncguard.store import lists_table

from .conftest import AT, cli

D = date(2026, 11, 1)
MIAMI = "+13055550152"  # area code 305: Florida


# -- state lists: the subdivision must be one the state-list check can match ---------------

@pytest.mark.parametrize(("jurisdiction", "why"), [
    ("US-FA", "FA is not a US state or territory code"),
    ("US-XX", "XX is not a US state or territory code"),
    ("US-ON", "ON is not a US state or territory code; did you mean CA-ON?"),
    ("US-FLORIDA", "did you mean US-FL?"),
    ("US-", "not a US state or territory code"),
    ("CA-XX", "XX is not a Canadian province or territory code"),
    ("GB-ENG", "no GB subdivisions"),
    ("AU-NSW", "no AU subdivisions"),
    ("US", "names the state"),
    ("FR-75", "use US, CA, GB or AU"),
])
def test_state_list_of_unknown_subdivision_is_refused(
        store: ListStore, write_lines: Callable[..., Path], jurisdiction: str,
        why: str) -> None:
    with pytest.raises(ListError, match=f"--jurisdiction {jurisdiction}: .*{why}"):
        store.import_file(write_lines(["3055550152"]), kind="state", name="st",
                          jurisdiction=jurisdiction, snapshot_date=D)
    assert store.all() == []


@pytest.mark.parametrize("jurisdiction", [
    "US-FL", "us-fl", " US-TX ", "US-DC", "US-PR", "US-VI", "US-GU", "US-MP", "US-AS",
    "CA-ON", "CA-QC", "CA-PE"])
def test_state_list_of_a_state_territory_or_province_is_accepted(
        store: ListStore, write_lines: Callable[..., Path], jurisdiction: str) -> None:
    info = store.import_file(write_lines(["3055550152"]), kind="state", name="st",
                             jurisdiction=jurisdiction, snapshot_date=D).info
    assert info.jurisdiction == jurisdiction.strip().upper()
    assert info.scope_problem is None


def test_accepted_subdivisions_are_exactly_those_a_number_can_have() -> None:
    """Every state an area code gives a number, and every ``state`` a row may give, is
    accepted for a state list of its country; nothing else is."""
    row_states = {c: subdivision_codes(c) for c in ("US", "CA")}
    for country, codes in row_states.items():
        for code in codes:
            assert clean_field("state", code) == code  # a row can carry it
            assert jurisdiction_problem("state", f"{country}-{code}") is None
    area_code_states = set(npa_state_table()[0]) - {""}
    assert area_code_states <= set(row_states["US"]) | set(row_states["CA"])
    for country in ("GB", "AU"):
        assert subdivision_codes(country) == []
        assert jurisdiction_problem("state", f"{country}-XX") is not None


def test_florida_list_blocks_a_florida_number(settings: Settings, store: ListStore,
                                              write_lines: Callable[..., Path]) -> None:
    """The accepted spelling works end to end; the typo is refused rather than stored."""
    path = write_lines(["3055550152"])
    with pytest.raises(ListError, match="FA is not a US state"):
        store.import_file(path, kind="state", name="us-fa", jurisdiction="US-FA",
                          snapshot_date=D)
    store.import_file(path, kind="state", name="us-fl", jurisdiction="US-FL", snapshot_date=D)
    verdict = Scrubber(settings).check(MIAMI, at=AT)
    assert verdict.decision == "block"
    assert [r.code for r in verdict.reasons] == ["DNC_STATE"]


def test_national_list_of_a_state_is_refused(store: ListStore,
                                             write_lines: Callable[..., Path]) -> None:
    with pytest.raises(ListError, match="national list's jurisdiction is its country"):
        store.import_file(write_lines(["3055550152"]), kind="national", name="n",
                          jurisdiction="US-FL", snapshot_date=D)
    assert store.all() == []


def test_empty_jurisdiction_is_refused(store: ListStore,
                                       write_lines: Callable[..., Path]) -> None:
    with pytest.raises(ListError, match="--jurisdiction is empty"):
        store.import_file(write_lines(["3055550152"]), kind="state", name="s",
                          jurisdiction="  ", snapshot_date=D)
    assert store.all() == []


# -- options a kind does not use -----------------------------------------------------------

@pytest.mark.parametrize(("kind", "jurisdiction", "snapshot"), [
    ("internal", None, None), ("litigator", None, None), ("wireless", None, None),
    ("prefix", None, None), ("national", "US", D), ("state", "US-FL", D)])
def test_salt_is_refused_unless_hashed(store: ListStore, write_lines: Callable[..., Path],
                                       kind: str, jurisdiction: str | None,
                                       snapshot: date | None) -> None:
    with pytest.raises(ListError, match=f"--salt is for hashed lists only; an? {kind} list"):
        store.import_file(write_lines(["13055550152"]), kind=kind, name="x", salt="abc",
                          jurisdiction=jurisdiction, snapshot_date=snapshot)
    assert store.all() == []


def test_salt_is_kept_for_a_hashed_list(store: ListStore,
                                        write_lines: Callable[..., Path]) -> None:
    salted = hashlib.sha256(b"abc+13055550152").hexdigest()
    info = store.import_file(write_lines([salted]), kind="hashed", name="h", salt="abc").info
    assert info.salt == "abc"
    assert store.index(info).contains_numbers([MIAMI]).tolist() == [True]


@pytest.mark.parametrize(("kind", "jurisdiction", "why"), [
    ("hashed", "US", "a hashed list does not use a jurisdiction"),
    ("prefix", "US", "a prefix list does not use a jurisdiction"),
    ("internal", "US-FL", "an internal list applies to every number"),
    ("litigator", "US-FL", "a litigator list applies to every number"),
    ("wireless", "US-CA", "a wireless list applies to every number"),
    ("internal", "FR", "not a country a list can be of: use US, CA, GB or AU"),
])
def test_jurisdiction_is_refused_where_it_means_nothing(
        store: ListStore, write_lines: Callable[..., Path], kind: str, jurisdiction: str,
        why: str) -> None:
    line = hashlib.sha256(b"+13055550152").hexdigest() if kind == "hashed" else "13055550152"
    with pytest.raises(ListError, match=f"--jurisdiction {jurisdiction}: {why}"):
        store.import_file(write_lines([line]), kind=kind, name="x", jurisdiction=jurisdiction)
    assert store.all() == []


def test_number_list_jurisdiction_names_the_files_country(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """An internal list's jurisdiction is understood: the national format of its file."""
    info = store.import_file(write_lines(["020 7946 0123"]), kind="internal", name="uk-optouts",
                             jurisdiction="UK").info
    assert info.jurisdiction == "GB"
    assert store.index(info).contains_numbers(["+442079460123"]).tolist() == [True]


# -- lists stored with a jurisdiction from before the check --------------------------------

def test_stored_list_of_unknown_subdivision_fails_closed(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["3055550152"]), kind="state", name="us-fa",
                      jurisdiction="US-FL", snapshot_date=D)
    with store.engine.begin() as conn:  # as an import before the fix would have stored it
        conn.execute(update(lists_table).where(lists_table.c.name == "us-fa")
                     .values(jurisdiction="US-FA"))
    info = store.get("us-fa")
    assert info.scope_problem is not None
    assert "list us-fa: jurisdiction US-FA: FA is not a US state" in info.scope_problem
    with pytest.raises(ListError, match="list us-fa: jurisdiction US-FA"):
        store.index(info).contains_numbers([MIAMI])
    # a check (the Florida number would have been allowed: no number is in state FA)
    verdict = Scrubber(store.settings, audit=False).check(MIAMI, at=AT)
    assert verdict.decision == "error"
    assert [(r.code, r.list) for r in verdict.reasons] == [("SOURCE_ERROR", "us-fa")]
    assert "FA is not a US state" in (verdict.reasons[0].detail or "")


def test_readiness_names_a_stored_list_of_unknown_subdivision(
        settings: Settings, store: ListStore, write_lines: Callable[..., Path]) -> None:
    from fastapi.testclient import TestClient

    from dncguard.server.app import create_app

    store.import_file(write_lines(["3055550152"]), kind="state", name="us-fa",
                      jurisdiction="US-FL", snapshot_date=D)
    with store.engine.begin() as conn:
        conn.execute(update(lists_table).where(lists_table.c.name == "us-fa")
                     .values(jurisdiction="US-FA"))
    with TestClient(create_app(settings, no_auth=True)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert any("list us-fa: jurisdiction US-FA" in r for r in ready.json()["reasons"])


# -- the command line: one line naming the option, exit 2, nothing stored ------------------

@pytest.mark.parametrize(("args", "why"), [
    (["--kind", "state", "--jurisdiction", "US-FA", "--snapshot-date", "2026-11-01"],
     "--jurisdiction US-FA: FA is not a US state or territory code"),
    (["--kind", "national", "--jurisdiction", "US-FL", "--snapshot-date", "2026-11-01"],
     "--jurisdiction US-FL: a national list's jurisdiction is its country (US)"),
    (["--kind", "litigator", "--salt", "abc"],
     "--salt is for hashed lists only; a litigator list holds numbers"),
    (["--kind", "internal", "--jurisdiction", "US-FL"],
     "--jurisdiction US-FL: an internal list applies to every number"),
    (["--kind", "prefix", "--jurisdiction", "US"],
     "--jurisdiction US: a prefix list does not use a jurisdiction"),
])
def test_cli_refuses_options_not_understood(
        capsys: pytest.CaptureFixture[str], write_lines: Callable[..., Path],
        args: list[str], why: str) -> None:
    code, _, err = cli(capsys, "lists", "import", str(write_lines(["3055550152"])),
                       "--name", "x", *args)
    assert code == 2
    assert why in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = cli(capsys, "lists", "ls", "--json")
    assert code == 0 and out.strip() == "[]"


def test_cli_state_list_blocks_its_state(capsys: pytest.CaptureFixture[str],
                                         write_lines: Callable[..., Path]) -> None:
    code, _, err = cli(capsys, "lists", "import", str(write_lines(["3055550152"])),
                       "--kind", "state", "--jurisdiction", "us-fl", "--snapshot-date",
                       "2026-11-01", "--name", "us-fl")
    assert code == 0, err
    code, out, _ = cli(capsys, "check", "3055550152", "--json", "--at", AT.isoformat())
    assert code == 0 and '"decision": "block"' in out
