"""A US ZIP or Canadian postal code is read for a number of any country, as a ``state``
column is (cross-border, the strictest reading); a military post code reads as an unknown
ZIP (no state, no zone), so a number with no state known keeps every state's hours."""

from __future__ import annotations

from datetime import UTC, datetime

from dncguard.models import Reason
from dncguard.sources.rules import RulesCheck

from .conftest import run_check

LONDON = "+442071234567"


def _windows(reasons: list[Reason]) -> set[str]:
    return {r.rule or "" for r in reasons if r.code == "OUTSIDE_CALLING_WINDOW"}


def test_a_uk_number_with_a_miami_zip_gets_the_us_and_florida_hours(
        time_check: RulesCheck) -> None:
    """08:30 in London is 03:30 in Miami: the US and Florida windows are closed, by ZIP as by
    state; without either, only the UK's window counts, and it is open."""
    at = datetime(2026, 12, 8, 8, 30, tzinfo=UTC)
    by_state = _windows(run_check(time_check, LONDON, at, region="GB", state="FL",
                                  line_type="landline"))
    by_zip = _windows(run_check(time_check, LONDON, at, region="GB", zip="33101",
                                line_type="landline"))
    assert {"US:calling_window", "US-FL:calling_window"} <= by_state
    assert {"US:calling_window", "US-FL:calling_window"} <= by_zip
    assert _windows(run_check(time_check, LONDON, at, region="GB", line_type="landline")) == set()


def test_an_australian_number_with_a_toronto_postal_code_gets_canadas_hours(
        time_check: RulesCheck) -> None:
    at = datetime(2026, 12, 8, 4, 0, tzinfo=UTC)  # 23:00 in Toronto, 15:00 in Sydney
    reasons = run_check(time_check, "+61212345678", at, region="AU", zip="M5V 2T6",
                        line_type="landline")
    assert "CA:calling_window" in _windows(reasons)


def test_a_military_zip_keeps_every_states_hours(time_check: RulesCheck) -> None:
    """A toll-free number (no state known) at 14:00 Eastern on a Tuesday in December: a
    state's shorter window still closes it with a military post code as without a ZIP."""
    at = datetime(2026, 12, 8, 19, 0, tzinfo=UTC)
    none = _windows(run_check(time_check, "+18005550123", at, line_type="landline"))
    assert none  # the every-state reading defers it
    for zip_code in ("09001", "34001", "96201"):
        assert _windows(run_check(time_check, "+18005550123", at, zip=zip_code,
                                  line_type="landline")) == none
