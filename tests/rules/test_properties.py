"""Property tests: next_allowed_at is legal; no US call is allowed outside 08:00-21:00."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dncguard.config import CampaignProfile
from dncguard.sources.rules import RulesCheck

from .conftest import TIME_CODES, run_check

NUMBERS = ["+12055550100", "+18505550100", "+12085550100", "+12705550100", "+16055550100",
           "+17015550100", "+19075550100", "+18085550100", "+16025550100", "+19285550100",
           "+12145550100", "+18015550100", "+14015550100", "+16015550100", "+15045550100",
           "+12035550100", "+15025550100", "+18005550100", "+14165550100", "+13065550100",
           "+17095550100", "+442079460018", "+61298765432", "+61412345678", "+12155550100"]
STATES = [None, "UT", "TX", "AL", "FL", "RI", "CA", "HI", "MS"]
PURPOSES = ["telemarketing", "informational", "collections"]
CALL_TYPES = ["manual", "autodialed", "prerecorded"]

instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                        timezones=st.just(UTC))
common = settings(max_examples=250, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])


@common
@given(phone=st.sampled_from(NUMBERS), at=instants, state=st.sampled_from(STATES),
       purpose=st.sampled_from(PURPOSES), call_type=st.sampled_from(CALL_TYPES),
       margin=st.sampled_from([0, 10]))
def test_next_allowed_at_is_allowed(time_check: RulesCheck, phone: str, at: datetime,
                                    state: str | None, purpose: str, call_type: str,
                                    margin: int) -> None:
    """At next_allowed_at the same check returns no time reason."""
    profile = CampaignProfile(margin_minutes=margin)
    extra = {"state": state} if state and phone.startswith("+1") else {}
    reasons = run_check(time_check, phone, at, purpose=purpose, call_type=call_type,
                        profile=profile, **extra)
    timed = [r for r in reasons if r.code in TIME_CODES]
    if not timed:
        return
    nxt = timed[0].next_allowed_at
    assert all(r.next_allowed_at == nxt for r in timed)
    assert nxt is not None and at < nxt <= at + timedelta(days=14)
    again = run_check(time_check, phone, nxt, purpose=purpose, call_type=call_type,
                      profile=profile, **extra)
    assert not [r for r in again if r.code in TIME_CODES]


US_NUMBERS = [n for n in NUMBERS if n.startswith("+1") and not n.startswith(("+1416", "+1306",
                                                                               "+1709"))]


@common
@given(phone=st.sampled_from(US_NUMBERS), at=instants, state=st.sampled_from(STATES),
       purpose=st.sampled_from(PURPOSES), call_type=st.sampled_from(CALL_TYPES),
       tz=st.sampled_from([None, "America/Los_Angeles", "Pacific/Honolulu", "America/Adak"]))
def test_no_us_call_allowed_outside_8_to_21(time_check: RulesCheck, phone: str, at: datetime,
                                            state: str | None, purpose: str, call_type: str,
                                            tz: str | None) -> None:
    """Whenever no time reason is given, every candidate zone's local time is 08:00-21:00."""
    extra = {k: v for k, v in {"state": state, "timezone": tz}.items() if v}
    reasons = run_check(time_check, phone, at, purpose=purpose, call_type=call_type, **extra)
    if [r for r in reasons if r.code in TIME_CODES]:
        return
    zones = time_check.location(phone, "US", state, extra).zones
    for zone in zones:
        local = at.astimezone(ZoneInfo(zone))
        assert 8 <= local.hour < 21, (zone, local)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(phone=st.sampled_from(NUMBERS), at=instants, state=st.sampled_from(STATES),
       call_type=st.sampled_from(CALL_TYPES))
def test_legal_windows_are_exact(time_check: RulesCheck, phone: str, at: datetime,
                                 state: str | None, call_type: str) -> None:
    """`rules when`: allowed at each window's start and last second, not just outside it."""
    from dncguard.sources.protocol import CheckContext

    extra = {"state": state} if state and phone.startswith("+1") else {}
    region = "GB" if phone.startswith("+44") else "AU" if phone.startswith("+61") else "US"
    if phone.startswith(("+1416", "+1306", "+1709")):
        region = "CA"
    ctx = CheckContext(at=at, call_type=call_type)
    loc = time_check.location(phone, region, state, extra)
    plan = time_check.plan(loc, time_check.jurisdictions(region, loc), ctx, None)
    end = at + timedelta(days=3)
    windows = plan.legal_windows(at, end)
    second = timedelta(seconds=1)
    for a, b in windows:
        assert a < b and plan.allowed(a) and plan.allowed(b - second)
        if a > at:
            assert not plan.allowed(a - second)
        if b < end:
            assert not plan.allowed(b)
