"""Row hints never move a number out of its own place: a region hint that disagrees with an
E.164 number's own region, or a military post code (APO/FPO/DPO ZIP), leaves the number's
candidate zones and states as they were, so the hours and days they ban still hold. A
holiday's fixed date is a day every year has."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from dncguard.config import load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.models import Decision
from dncguard.sources.rules.schema import HolidayDay

MONDAY_7AM_NEW_YORK = datetime.fromisoformat("2026-11-23T12:00:00+00:00")
MONDAY_0430_ANCHORAGE = datetime.fromisoformat("2026-11-23T13:30:00+00:00")
SUNDAY_3PM_NEW_YORK = datetime.fromisoformat("2026-11-22T20:00:00+00:00")
TOLL_FREE, NEW_YORK = "+18005550100", "+12125550100"


@pytest.fixture
def scrubber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scrubber:
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    return Scrubber(load_settings(home=tmp_path / "home"), audit=False)


@pytest.mark.parametrize(("phone", "at", "given"), [
    (TOLL_FREE, MONDAY_7AM_NEW_YORK, {}),
    (NEW_YORK, MONDAY_0430_ANCHORAGE, {"zip": "99501"}),
    (TOLL_FREE, SUNDAY_3PM_NEW_YORK, {}),
])
@pytest.mark.parametrize("hint", [None, "GB", "AU", "CA"])
def test_a_region_hint_does_not_move_an_e164_number(
        scrubber: Scrubber, phone: str, at: datetime, given: dict[str, str],
        hint: str | None) -> None:
    extra = {**given, **({"region": hint} if hint else {})}
    verdict = scrubber.check(phone, at=at, **extra)
    assert verdict.decision is Decision.DEFER, verdict
    assert verdict.region == "US"
    assert "Europe/London" not in (verdict.timezone or "")


@pytest.mark.parametrize("zip_code", ["09001", "34001", "96201"])
def test_a_military_post_code_keeps_every_state_a_toll_free_number_may_be_in(
        scrubber: Scrubber, zip_code: str) -> None:
    without = scrubber.check(TOLL_FREE, at=SUNDAY_3PM_NEW_YORK)
    with_zip = scrubber.check(TOLL_FREE, at=SUNDAY_3PM_NEW_YORK, zip=zip_code)
    assert without.decision is with_zip.decision is Decision.DEFER
    assert {r.rule for r in with_zip.reasons} == {r.rule for r in without.reasons}


def test_a_military_post_code_leaves_a_geographic_number_where_its_area_code_is(
        scrubber: Scrubber) -> None:
    verdict = scrubber.check(NEW_YORK, at=MONDAY_7AM_NEW_YORK, zip="09001")
    assert verdict.decision is Decision.DEFER
    assert verdict.timezone == "America/New_York"


@pytest.mark.parametrize("day", ["02-30", "04-31", "02-29", "06-31"])
def test_a_fixed_holiday_date_is_a_day_of_every_year(day: str) -> None:
    with pytest.raises(ValidationError, match="not a day of every year"):
        HolidayDay(name="x", date=day)
    assert HolidayDay(name="x", date="02-28").date == "02-28"
