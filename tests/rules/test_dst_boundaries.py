"""next_allowed and legal_windows agree with a minute-by-minute scan of ``allowed`` on the days
the clocks change, whatever local times the windows start and end at (01:00-03:00 included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dncguard.sources.rules import load_ruleset
from dncguard.sources.rules._engine import CampaignWindow, TimePlan
from dncguard.sources.rules.schema import CallingWindowRule, Window

MINUTE = timedelta(minutes=1)

#: (zones, the UTC instant of a clock change): spring forward and fall back in GB and the US
CHANGES = [
    pytest.param(("Europe/London",), datetime(2026, 3, 29, 1, 0, tzinfo=UTC), id="GB-spring"),
    pytest.param(("Europe/London",), datetime(2026, 10, 25, 1, 0, tzinfo=UTC), id="GB-autumn"),
    pytest.param(("America/New_York",), datetime(2026, 3, 8, 7, 0, tzinfo=UTC), id="NY-spring"),
    pytest.param(("America/New_York",), datetime(2026, 11, 1, 6, 0, tzinfo=UTC),
                 id="NY-autumn"),
    pytest.param(("America/New_York", "America/Chicago"), datetime(2026, 3, 8, 7, 0, tzinfo=UTC),
                 id="NY+Chicago-spring"),
    pytest.param(("America/Denver", "America/Phoenix"), datetime(2026, 11, 1, 8, 0, tzinfo=UTC),
                 id="Denver+Phoenix-autumn"),
]

#: campaign calling hours, several starting or ending inside the hour a change skips or repeats
HOURS = ["01:30-23:00", "00:00-01:30", "01:00-02:30", "02:00-03:00", "01:59-02:01",
         "02:30-24:00"]


def _plan(zones: tuple[str, ...], hours: str, margin: int, federal: bool) -> TimePlan:
    windows: list[tuple[str, CallingWindowRule]] = []
    if federal:
        rs = load_ruleset()
        windows = [(j, r) for j, r in rs.of_kind(CallingWindowRule, ["US"])
                   if r.id == "calling_window"][:1]
        assert windows
    return TimePlan(zones=zones, windows=windows, margin_minutes=margin,
                    campaign=CampaignWindow("dst", Window.parse(hours)))


def _scan(plan: TimePlan, start: datetime, end: datetime) -> list[bool]:
    return [plan.allowed(start + i * MINUTE) for i in range((end - start) // MINUTE)]


def _first(legal: list[bool], start: datetime, i: int, horizon: timedelta) -> datetime | None:
    """The first legal minute of the scan from minute ``i`` on, within ``horizon``."""
    last = min(len(legal), i + horizon // MINUTE + 1)
    first = next((j for j in range(i, last) if legal[j]), None)
    return None if first is None else start + first * MINUTE


@pytest.mark.parametrize(("zones", "change"), CHANGES)
@pytest.mark.parametrize("hours", HOURS)
@pytest.mark.parametrize(("margin", "federal"), [(0, False), (15, False), (10, True)])
def test_next_allowed_and_legal_windows_match_a_minute_scan(
        zones: tuple[str, ...], change: datetime, hours: str, margin: int,
        federal: bool) -> None:
    """Every moment the answer changes is found: the legal intervals of the 16 hours around
    the change, and the first legal minute at or after each of its minutes (within 2 hours of
    the change; every 13th elsewhere), are those of a scan. With ``federal``, the US federal
    window (08:00-21:00) applies as well as the campaign's hours."""
    plan = _plan(zones, hours, margin, federal=federal)
    start, end = change - timedelta(hours=8), change + timedelta(hours=8)
    legal = _scan(plan, start, end + timedelta(hours=20))
    expected_windows: list[tuple[datetime, datetime]] = []
    span = (end - start) // MINUTE
    for i, ok in enumerate(legal[:span]):
        if not ok:
            continue
        m = start + i * MINUTE
        if expected_windows and expected_windows[-1][1] == m:
            expected_windows[-1] = (expected_windows[-1][0], m + MINUTE)
        else:
            expected_windows.append((m, m + MINUTE))
    assert plan.legal_windows(start, end) == expected_windows
    for i in range(span):
        at = start + i * MINUTE
        if abs(at - change) > timedelta(hours=2) and i % 13:
            continue
        horizon = timedelta(hours=20)
        assert plan.next_allowed(at, horizon) == _first(legal, start, i, horizon), at


def test_the_reviewed_cases() -> None:
    """GB, calling hours 01:30-23:00: at 01:10 GMT after the clocks go back the next legal
    moment is 01:30 GMT that night (not a day later); at 00:10 GMT on the spring-forward night
    it is 02:00 BST (01:00 UTC), when the clock jumps past 01:30; and with 00:00-01:30 the
    legal window ends when the clocks go forward."""
    plan = _plan(("Europe/London",), "01:30-23:00", 0, federal=False)
    assert plan.next_allowed(datetime(2026, 10, 25, 1, 10, tzinfo=UTC)) \
        == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert plan.next_allowed(datetime(2026, 3, 29, 0, 10, tzinfo=UTC)) \
        == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    early = _plan(("Europe/London",), "00:00-01:30", 0, federal=False)
    assert early.legal_windows(datetime(2026, 3, 28, 23, 0, tzinfo=UTC),
                               datetime(2026, 3, 29, 3, 0, tzinfo=UTC)) \
        == [(datetime(2026, 3, 29, 0, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 0, tzinfo=UTC))]
