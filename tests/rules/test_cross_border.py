"""The called party's location decides whose hours apply, across the US-Canada border too; and
`rules when` shows no window for a number whose time the check refuses to judge."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from dncguard.config import CampaignProfile
from dncguard.sources.protocol import CheckContext
from dncguard.sources.rules import RulesCheck

from .conftest import run_check


def _rules(reasons: list[object]) -> set[str]:
    return {r.rule for r in reasons if r.code == "OUTSIDE_CALLING_WINDOW"}  # type: ignore[attr-defined]


def test_a_canadian_number_at_a_us_address_gets_the_us_hours(time_check: RulesCheck) -> None:
    """A Toronto number with a Miami ZIP at 21:15 Eastern: past the federal 21:00 and
    Florida's 20:00 (Fla. Stat. 501.616(6)(a)), though Canada allows 21:30."""
    at = datetime(2026, 11, 19, 2, 15, tzinfo=UTC)
    reasons = run_check(time_check, "+14165550100", at, zip="33101", line_type="landline")
    assert {"US:calling_window", "US-FL:calling_window"} <= _rules(reasons)
    # the same number without the address: Canada's window, still open
    assert _rules(run_check(time_check, "+14165550100", at, line_type="landline")) == set()


def test_a_us_number_at_a_canadian_address_gets_canadas_hours(time_check: RulesCheck) -> None:
    """A New York number with a Toronto postal code on Saturday at 19:00 Eastern: past the
    CRTC's Saturday 18:00, though the US allows 21:00."""
    at = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    reasons = run_check(time_check, "+12125550100", at, zip="M5V 2T6", line_type="landline")
    assert "CA:calling_window" in _rules(reasons)
    assert _rules(run_check(time_check, "+12125550100", at, line_type="landline")) == set()


def test_when_shows_no_window_when_the_zone_is_unknown(
        make_check: Callable[..., RulesCheck]) -> None:
    """With rules.unknown_timezone = 'error' a toll-free number without a zone is an error in
    the check; `rules when` gave the region fallback's windows for it."""
    check = make_check(unknown_timezone="error")
    ctx = CheckContext(at=datetime(2026, 11, 18, 17, tzinfo=UTC), campaign="default",
                       purpose="telemarketing", call_type="manual", profile=CampaignProfile())
    when = check.when("+18005550100", "US", None, {}, ctx)
    assert any(r.code == "TIMEZONE_UNKNOWN" for r in when.reasons)
    assert when.windows == []
    placed = check.when("+12125550100", "US", "NY", {}, ctx)  # a known zone keeps its windows
    assert placed.windows
