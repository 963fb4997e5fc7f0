"""Registry presence and freshness, measured at the dial time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dncguard.config import CampaignProfile, Settings
from dncguard.lists.store import ListStore
from dncguard.sources.rules import ConsentStore, RulesCheck

from .conftest import run_check

AT = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)


@pytest.fixture
def importer(settings: Settings, tmp_path: Path) -> Callable[..., None]:
    store = ListStore(settings)
    samples = {"GB": "+442079460099", "AU": "+61298765499", "CA": "+14165550199"}

    def load(name: str, kind: str, jurisdiction: str, snapshot: date) -> None:
        f = tmp_path / f"{name}.txt"
        f.write_text(samples.get(jurisdiction, "+12125550199") + "\n")
        store.import_file(f, kind=kind, name=name, jurisdiction=jurisdiction,
                          snapshot_date=snapshot)

    return load


def _codes(reasons: list) -> list[tuple[str, str | None]]:  # type: ignore[type-arg]
    return [(r.code, r.rule) for r in reasons if r.code.startswith("REGISTRY")]


def test_missing_national_names_the_import(make_check: Callable[..., RulesCheck]) -> None:
    """By default a US number needs the national registry loaded (47 CFR 64.1200(c)(2))."""
    reasons = run_check(make_check(require_registries=True), "+12125550100", AT)
    assert _codes(reasons) == [("REGISTRY_MISSING", "US:national_dnc")]
    r = reasons[0]
    assert r.decision.value == "error"
    assert "dncguard lists import FILE --kind national --jurisdiction US" in r.detail


@pytest.mark.parametrize(("phone", "expected"), [
    ("+13055550100", [("REGISTRY_MISSING", "US:national_dnc"),
                      ("REGISTRY_MISSING", "US-FL:state_dnc")]),
    ("+14165550100", [("REGISTRY_MISSING", "CA:national_dncl")]),
    ("+442079460018", [("REGISTRY_MISSING", "GB:tps")]),
    ("+61298765432", [("REGISTRY_MISSING", "AU:dncr")]),
])
def test_missing_by_jurisdiction(make_check: Callable[..., RulesCheck], phone: str,
                                 expected: list[tuple[str, str]]) -> None:
    """National registry of the number's country, plus its state's own list."""
    at = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
    assert _codes(run_check(make_check(require_registries=True), phone, at)) == expected


def test_requirement_settings(make_check: Callable[..., RulesCheck]) -> None:
    """The requirement can be turned off entirely or per jurisdiction."""
    fl = "+13055550100"
    assert _codes(run_check(make_check(require_registries=False), fl, AT)) == []
    only_state = make_check(require_registries=True, registry_optional=["US-FL"])
    assert _codes(run_check(only_state, fl, AT)) == [("REGISTRY_MISSING", "US:national_dnc")]
    assert _codes(run_check(make_check(require_registries=True, registry_optional=["*"]),
                            fl, AT)) == []


def test_not_required_for_collections(make_check: Callable[..., RulesCheck]) -> None:
    """Registries bind telephone solicitation; collections calls do not rely on them."""
    check = make_check(require_registries=True)
    assert _codes(run_check(check, "+12125550100", AT, purpose="collections")) == []


@pytest.mark.parametrize(("phone", "jur", "kind", "snapshot", "stale"), [
    ("+12125550100", "US", "national", date(2026, 10, 18), False),  # 31 days: fresh
    ("+12125550100", "US", "national", date(2026, 10, 17), True),  # 32 days: stale
    ("+14165550100", "CA", "national", date(2026, 10, 18), False),  # CRTC 31 days
    ("+14165550100", "CA", "national", date(2026, 10, 17), True),
    ("+442079460018", "GB", "national", date(2026, 10, 21), False),  # PECR 28 days
    ("+442079460018", "GB", "national", date(2026, 10, 20), True),
    ("+61298765432", "AU", "national", date(2026, 10, 19), False),  # 30-day wash
    ("+61298765432", "AU", "national", date(2026, 10, 18), True),
    ("+17135550100", "US-TX", "state", date(2026, 6, 19), False),  # quarterly + 60 days
    ("+17135550100", "US-TX", "state", date(2026, 6, 18), True),
    ("+12155550100", "US-PA", "state", date(2026, 7, 19), False),  # quarterly + 30 days
    ("+12155550100", "US-PA", "state", date(2026, 7, 18), True),
    ("+15045550100", "US-LA", "state", date(2026, 10, 18), False),  # monthly
    ("+15045550100", "US-LA", "state", date(2026, 10, 17), True),
])
def test_freshness(make_check: Callable[..., RulesCheck], importer: Callable[..., None],
                   phone: str, jur: str, kind: str, snapshot: date, stale: bool) -> None:
    """A snapshot older than its jurisdiction allows at the dial time is error/REGISTRY_STALE."""
    importer(f"{jur.lower()}-{kind}", kind, jur, snapshot)
    at = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
    check = make_check(require_registries=True, registry_optional=["*"])
    got = [r for r in run_check(check, phone, at) if r.code == "REGISTRY_STALE"]
    assert bool(got) is stale
    if got:
        assert got[0].list == f"{jur.lower()}-{kind}" and "days old" in got[0].detail


@pytest.mark.parametrize(("phone", "jur", "snapshot"), [
    ("+61298765432", "AU", date(2026, 10, 18)),  # Sydney: already 18 Nov (30-day wash)
    ("+16715550100", "US", date(2026, 10, 17)),  # Guam: already 18 Nov (31 days)
])
def test_freshness_on_the_called_partys_date(
        make_check: Callable[..., RulesCheck], importer: Callable[..., None],
        phone: str, jur: str, snapshot: date) -> None:
    """A registry's age is counted on the latest of the call's dates: at 20:00 UTC on 17
    November the snapshot is within its days on the UTC date but past them on the party's
    own date (18 November east of UTC), so the number is error/REGISTRY_STALE."""
    importer(f"{jur.lower()}-national", "national", jur, snapshot)
    check = make_check(require_registries=True, registry_optional=["*"])
    at = datetime(2026, 11, 17, 20, 0, tzinfo=UTC)
    got = [r for r in run_check(check, phone, at) if r.code == "REGISTRY_STALE"]
    assert len(got) == 1 and got[0].list == f"{jur.lower()}-national", got
    # before the party's midnight it is still fresh
    assert not [r for r in run_check(check, phone, datetime(2026, 11, 17, 12, 0, tzinfo=UTC))
                if r.code == "REGISTRY_STALE"]


def test_freshness_override_and_switch(make_check: Callable[..., RulesCheck],
                                       importer: Callable[..., None]) -> None:
    importer("ftc", "national", "US", date(2026, 10, 1))
    ny = "+12125550100"
    assert [r.code for r in run_check(make_check(), ny, AT)] == ["REGISTRY_STALE"]
    assert run_check(make_check(check_freshness=False), ny, AT) == []
    # an override may only be stricter: 31 days is the rule's own; 10 makes a list of
    # 2026-11-01 stale
    importer("ftc", "national", "US", date(2026, 11, 1))
    assert run_check(make_check(max_age_days={"US": 31}), ny, AT) == []
    assert [r.code for r in run_check(make_check(max_age_days={"US": 10}), ny, AT)
            ] == ["REGISTRY_STALE"]
    # freshness is measured at the dial time, not today
    assert run_check(make_check(), ny, datetime(2026, 10, 20, 17, 0, tzinfo=UTC)) == []


def test_newest_snapshot_counts_and_profile_selection(
        make_check: Callable[..., RulesCheck], importer: Callable[..., None]) -> None:
    importer("ftc-old", "national", "US", date(2026, 1, 1))
    importer("ftc-new", "national", "US", date(2026, 11, 1))
    ny = "+12125550100"
    check = make_check(require_registries=True)
    assert run_check(check, ny, AT) == []
    only_old = CampaignProfile(lists=["ftc-old"])
    assert [r.code for r in run_check(check, ny, AT, profile=only_old)] == ["REGISTRY_STALE"]
    none = CampaignProfile(lists=["internal"])
    reasons = run_check(check, ny, AT, profile=none)
    assert [r.code for r in reasons] == ["REGISTRY_MISSING"]
    assert "does not select them" in reasons[0].detail


def test_exemption_skips_registry_reliance(settings: Settings,
                                           make_check: Callable[..., RulesCheck]) -> None:
    """With valid consent the verdict does not rely on the registry."""
    ConsentStore(settings).add("+12125550100", "express_written", date(2026, 1, 1))
    reasons = run_check(make_check(require_registries=True), "+12125550100", AT)
    assert [r.code for r in reasons] == ["EXEMPT_CONSENT"]


def test_a_new_snapshot_is_seen_by_the_next_batch(make_check: Callable[..., RulesCheck],
                                                  importer: Callable[..., None]) -> None:
    """The registry reasons a check keeps between batches (per day, call and campaign
    profile) are worked out again once the lists change, and on another day."""
    importer("ftc", "national", "US", date(2026, 10, 1))
    check = make_check(require_registries=True)
    profile = CampaignProfile()
    ny = "+12125550100"
    for _ in range(2):
        assert [r.code for r in run_check(check, ny, AT, profile=profile)] == ["REGISTRY_STALE"]
    assert run_check(check, ny, datetime(2026, 10, 20, 17, 0, tzinfo=UTC), profile=profile) == []
    importer("ftc", "national", "US", date(2026, 11, 10))
    assert run_check(check, ny, AT, profile=profile) == []
