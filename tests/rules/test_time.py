"""next_allowed_at across DST, split zones, emergencies, campaign hours and legal windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from dncguard.config import CampaignProfile
from dncguard.sources.rules import EmergencyDeclaration, RulesCheck

from .conftest import run_check

NY = ZoneInfo("America/New_York")


def _next(reasons: list) -> datetime | None:  # type: ignore[type-arg]
    moments = {r.next_allowed_at for r in reasons if r.decision.value == "defer"}
    assert len(moments) == 1, "every time reason shares the same next_allowed_at"
    return moments.pop()


@pytest.mark.parametrize(("at", "expected"), [
    # 47 CFR 64.1200(c)(1): 01:00 EST on the spring-forward night -> 08:00 EDT = 12:00 UTC
    (datetime(2026, 3, 8, 6, 0, tzinfo=UTC), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
    # autumn: 01:30 EDT (first pass) -> 08:00 EST = 13:00 UTC
    (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    # 21:00 EDT on the eve of fall-back -> 08:00 EST next morning
    (datetime(2026, 11, 1, 1, 0, tzinfo=UTC), datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
], ids=["spring-forward", "fall-back-first-0130", "eve-of-fall-back"])
def test_next_allowed_across_dst(check: RulesCheck, at: datetime, expected: datetime) -> None:
    """next_allowed_at is the local window start, in the offset in force on that day."""
    assert _next(run_check(check, "+12125550100", at)) == expected


def test_next_allowed_split_zone_is_latest_start(check: RulesCheck) -> None:
    """Fla. Stat. 501.616(6)(a) in both zones of 850: 08:00 CST = 09:00 EST = 14:00 UTC."""
    at = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    assert _next(run_check(check, "+18505550100", at)) == datetime(2026, 11, 18, 14, 0,
                                                                     tzinfo=UTC)


def test_next_allowed_skips_sunday_and_holiday(check: RulesCheck) -> None:
    """Utah 13-25a-103(3): Saturday 21:30 -> Sunday banned -> Monday 08:00 MST."""
    at = datetime(2026, 11, 22, 4, 30, tzinfo=UTC)  # Sat 21:30 MST
    assert _next(run_check(check, "+18015550100", at)) == datetime(2026, 11, 23, 15, 0,
                                                                     tzinfo=UTC)
    # Alabama: Christmas Eve 2027 (observed, Fri), Christmas Sat, Sunday ban -> Mon 27th 08:00
    at = datetime(2027, 12, 24, 3, 0, tzinfo=UTC)
    assert _next(run_check(check, "+12055550100", at)) == datetime(2027, 12, 27, 14, 0,
                                                                     tzinfo=UTC)


def test_emergency_ban(make_check: Callable[..., RulesCheck]) -> None:
    """La. R.S. 45:844.31: no solicitation during a declared emergency; NY by ZIP prefix."""
    check = make_check(emergencies=[
        EmergencyDeclaration(jurisdiction="US-LA", start=date(2026, 8, 28),
                             end=date(2026, 9, 5)),
        EmergencyDeclaration(jurisdiction="US-NY", start=date(2026, 8, 28),
                             end=date(2026, 9, 5), zips=["117"]),
    ])
    during = datetime(2026, 9, 2, 16, 0, tzinfo=UTC)
    reasons = run_check(check, "+15045550100", during)
    assert [r.code for r in reasons] == ["STATE_OF_EMERGENCY"]
    assert reasons[0].rule == "US-LA:state_of_emergency"
    # the 5th is the last day; Sun 6th is banned in LA (Sunday)
    # and the 7th Labor Day (LPSC holiday), so the next legal moment is Tue 8th 08:00 CDT
    assert reasons[0].next_allowed_at == datetime(2026, 9, 8, 13, 0, tzinfo=UTC)
    assert run_check(check, "+15045550100", during, purpose="collections") == []
    assert run_check(check, "+15045550100", datetime(2026, 9, 8, 16, 0, tzinfo=UTC)) == []
    # NY: ZIP inside the declared prefixes, outside them, and unknown (conservative: covered)
    assert [r.code for r in run_check(check, "+12125550100", during, zip="11701")] == [
        "STATE_OF_EMERGENCY"]
    assert run_check(check, "+12125550100", during, zip="10001") == []
    assert [r.code for r in run_check(check, "+12125550100", during)] == ["STATE_OF_EMERGENCY"]
    # a declaration in a state whose rules have no emergency ban would change nothing: it
    # is refused, naming the state, rather than kept without effect
    with pytest.raises(ValidationError, match="US-FL, whose rules have no emergency ban"):
        make_check(emergencies=[EmergencyDeclaration(
            jurisdiction="US-FL", start=date(2026, 8, 28), end=date(2026, 9, 5))])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("jurisdiction", "US-LX", "not a US state or territory"),
    ("jurisdiction", "LA", "not a US state or territory"),
    ("zips", ["701xx"], "ZIP prefixes are 1 to 5 digits"),
    ("zips", ["70 1"], "ZIP prefixes are 1 to 5 digits"),
    ("zips", ["123456"], "ZIP prefixes are 1 to 5 digits"),
])
def test_an_emergency_that_could_match_nothing_is_refused(field: str, value: object,
                                                          message: str) -> None:
    given: dict[str, object] = {"jurisdiction": "US-LA", "start": date(2026, 8, 28),
                                field: value}
    with pytest.raises(ValidationError, match=message):
        EmergencyDeclaration(**given)  # type: ignore[arg-type]


def test_an_emergencies_file_for_a_state_without_a_ban_is_refused(
        make_check: Callable[..., RulesCheck], tmp_path) -> None:  # type: ignore[no-untyped-def]
    from dncguard.errors import ConfigError

    path = tmp_path / "em.csv"
    path.write_text("jurisdiction,start,end,zips\nUS-TX,2026-09-01,2026-09-03,\n")
    with pytest.raises(ConfigError, match="US-TX, whose rules have no emergency ban"):
        make_check(emergencies_file=path)


def test_emergencies_file(make_check: Callable[..., RulesCheck], tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Declarations can come from a CSV; a bad row names the row and the field."""
    from dncguard.errors import ConfigError

    good = tmp_path / "em.csv"
    good.write_text("jurisdiction,start,end,zips\nUS-LA,2026-09-01,2026-09-03,\n")
    check = make_check(emergencies_file=good)
    assert [r.code for r in run_check(check, "+15045550100",
                                      datetime(2026, 9, 2, 16, tzinfo=UTC))] == [
        "STATE_OF_EMERGENCY"]
    bad = tmp_path / "bad.csv"
    bad.write_text("jurisdiction,start\nUS-LA,2026-09-01\nLA,tomorrow\n")
    with pytest.raises(ConfigError, match="row 2"):
        make_check(emergencies_file=bad)


def test_campaign_hours_and_margin(check: RulesCheck) -> None:
    """A campaign profile narrows the hours and keeps a margin before each window closes."""
    profile = CampaignProfile(calling_hours=("10:00", "19:00"), margin_minutes=15)
    at = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)  # 09:30 EST
    reasons = run_check(check, "+12125550100", at, campaign="c1", profile=profile)
    assert {r.rule for r in reasons} == {"campaign:c1"}
    assert _next(reasons) == datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
    late = datetime(2026, 11, 18, 23, 50, tzinfo=UTC)  # 18:50 EST, within 15 min of 19:00
    reasons = run_check(check, "+12125550100", late, campaign="c1", profile=profile)
    assert {r.code for r in reasons} == {"OUTSIDE_CALLING_WINDOW"}
    ok = datetime(2026, 11, 18, 23, 44, tzinfo=UTC)
    assert run_check(check, "+12125550100", ok, campaign="c1", profile=profile) == []
    # the margin also applies to the statutory window: FL 20:00 less 15 minutes
    fl = datetime(2026, 11, 19, 0, 50, tzinfo=UTC)  # 19:50 EST
    reasons = run_check(check, "+13055550100", fl, profile=CampaignProfile(margin_minutes=15))
    assert "US-FL:calling_window" in {r.rule for r in reasons}


def test_legal_windows(check: RulesCheck) -> None:
    """`rules when`: 7 days of windows for a Utah number skip Sunday and Thanksgiving."""
    from dncguard.sources.protocol import CheckContext

    ctx = CheckContext(at=datetime(2026, 11, 21, 12, 0, tzinfo=UTC))  # Sat 05:00 MST
    result = check.when("+18015550100", "US", "UT", {}, ctx, days=7)
    local = [(a.astimezone(ZoneInfo("America/Denver")), b.astimezone(ZoneInfo("America/Denver")))
             for a, b in result.windows]
    days = [a.date().isoformat() for a, _ in local]
    assert days == ["2026-11-21", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]
    assert all((a.hour, b.hour) == (8, 21) for a, b in local)
    assert result.location.zones == ("America/Denver",)


def test_timezone_unknown_policy(make_check: Callable[..., RulesCheck]) -> None:
    """A toll-free number has no zone: region fallback (default) or TIMEZONE_UNKNOWN."""
    at = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # 12:00 ET = 07:00 HST
    default = run_check(make_check(), "+18005550100", at)
    assert {r.code for r in default} == {"OUTSIDE_CALLING_WINDOW"}
    assert any("Pacific/Honolulu" in r.detail for r in default)
    strict = run_check(make_check(unknown_timezone="error"), "+18005550100", at)
    assert [(r.code, r.decision.value) for r in strict] == [("TIMEZONE_UNKNOWN", "error")]
    # the region fallback keeps a window, legal in every zone under every state's rules:
    # Kentucky's 10:00 start in Hawaii (20:00 UTC) to the 20:00 ends in New York (01:00 UTC)
    before = run_check(make_check(), "+18005550100", datetime(2026, 11, 18, 19, 0, tzinfo=UTC))
    assert {r.rule for r in before} == {"US-KY:calling_window"}
    ok = datetime(2026, 11, 18, 21, 0, tzinfo=UTC)
    assert run_check(make_check(), "+18005550100", ok) == []


def test_unknown_location_gets_every_states_day_bans(
        make_check: Callable[..., RulesCheck]) -> None:
    """Nothing says where a toll-free number's holder is: a Sunday that some states ban is not
    callable (reference section 4.1: prohibited if any candidate state bans the day)."""
    sunday = datetime(2026, 3, 15, 19, 0, tzinfo=UTC)  # 15:00 EDT, 09:00 HST
    found = run_check(make_check(), "+18005551234", sunday)
    banned = {r.rule.split(":")[0] for r in found if r.code == "DAY_PROHIBITED"}
    assert banned >= {"US-AL", "US-UT"}, found
    # with the holder's state known, only that state's (and the federal) rules apply
    assert run_check(make_check(), "+18005551234", sunday, state="NY") == []
    # only the day and hour rules: no state's registry, consent or wireless rule is brought
    # in (they need the state the holder is in), so a weekday afternoon call is allowed
    weekday = datetime(2026, 3, 12, 21, 0, tzinfo=UTC)  # Thursday 17:00 EDT, 11:00 HST
    for line in ("mobile", "landline"):
        assert run_check(make_check(), "+18005551234", weekday, line_type=line) == []


def test_disabled_rules_return_nothing(make_check: Callable[..., RulesCheck]) -> None:
    """rules.enabled = false: no rule reasons at all (list scrubbing only)."""
    at = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)
    assert run_check(make_check(enabled=False, require_registries=True), "+12125550100",
                     at) == []


def test_settings_from_environment(settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """DNCGUARD_RULES_* variables configure the engine (how the coordinator's tests opt out)."""
    from dncguard.config import load_section
    from dncguard.sources.rules import RulesSettings

    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    monkeypatch.setenv("DNCGUARD_RULES_REGISTRY_OPTIONAL", '["US-FL"]')
    cfg = load_section(RulesSettings, settings)
    assert not cfg.registry_required("US") and cfg.registry_optional == ["US-FL"]
    check = RulesCheck(settings)
    assert run_check(check, "+13055550100", datetime(2026, 11, 18, 17, tzinfo=UTC)) == []


def test_settings_from_toml(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The [rules] table of the TOML file, including emergency declarations."""
    from dncguard.config import load_section, load_settings
    from dncguard.sources.rules import RulesSettings

    home = tmp_path / "h"
    home.mkdir()
    (home / "dncguard.toml").write_text(
        '[rules]\nrequire_registries = false\nunknown_timezone = "error"\n'
        '[[rules.emergencies]]\njurisdiction = "US-LA"\nstart = 2026-09-01\nend = 2026-09-03\n')
    cfg = load_section(RulesSettings, load_settings(home=home))
    assert cfg.unknown_timezone == "error" and not cfg.require_registries
    assert cfg.emergencies[0].jurisdiction == "US-LA"
