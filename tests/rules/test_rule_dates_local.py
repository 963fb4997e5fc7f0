"""Dates read in the called party's calendar: rule effective and expiry dates, ZIP-limited
emergencies, observed holiday shifts and nth weekdays a year lacks.

A rule's ``effective`` and ``expires`` are calendar dates. At one instant the called party's
date may differ from UTC's (Texas is still on 30 November at 00:30 UTC on 1 December, Sydney
already on 1 December at 22:30 UTC on 30 November): a rule that restricts a call applies if it
is in force on any of the dates the call may fall on, one that permits it (an EBR window) only
if on all of them (the strictest reading).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dncguard.config import CampaignProfile, Settings
from dncguard.models import Reason
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.rules import AttemptStore, ConsentStore, RulesCheck
from dncguard.sources.rules._holidays import HolidayCalendar, dates_in_year, day_in_year
from dncguard.sources.rules.schema import HolidayDay, HolidaySet

from .conftest import copy_rules_data, run_check
from .reference import reference_reasons

DALLAS, EL_PASO, SYDNEY, NY, ST_LOUIS, NEW_ORLEANS = (
    "+12145550123", "+19155550123", "+61299998888", "+12125550100", "+13145550100",
    "+15045550123")
#: 00:30 UTC on 1 December: 18:30 on 30 November in Dallas, 19:30 in New York
DEC1_0030 = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def _codes(reasons: list[Reason]) -> set[str]:
    return {r.code for r in reasons}


def _rules(reasons: list[Reason], code: str) -> set[str | None]:
    return {r.rule for r in reasons if r.code == code}


def _folder(tmp_path: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the packaged rules data with lines inserted: for each file, (a line, the
    text put after the first ``effective:`` line at or after it, or after the line itself
    when it starts no rule)."""
    folder = copy_rules_data(tmp_path / "rules")
    for name, changes in edits.items():
        lines = (folder / name).read_text("utf-8").splitlines()
        for anchor, text in changes:
            i = lines.index(anchor)
            if anchor.startswith("- id: "):
                i = next(k for k in range(i, len(lines)) if lines[k].startswith("  effective:"))
            lines[i + 1:i + 1] = text.splitlines()
        (folder / name).write_text("\n".join(lines) + "\n", "utf-8")
    return folder


def _expires(rule: str, day: str) -> tuple[str, str]:
    return f"- id: {rule}", f"  expires: '{day}'"


def _effective(tmp_path: Path, file: str, rule: str, day: str) -> Path:
    """A rules folder in which ``rule`` of ``file`` takes effect on ``day``."""
    folder = _folder(tmp_path, {})
    path = folder / file
    lines = path.read_text("utf-8").splitlines()
    i = lines.index(f"- id: {rule}")
    k = next(k for k in range(i, len(lines)) if lines[k].startswith("  effective:"))
    lines[k] = f"  effective: '{day}'"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return folder


# -- defect 1: rule effective and expiry dates in the called party's dates -------------------------

class TestRestrictingRulesAnyCallingDate:
    def test_an_expired_wireless_rule_still_binds_where_it_is_the_day_before(
            self, make_check: Callable[..., RulesCheck], tmp_path: Path) -> None:
        folder = _folder(tmp_path, {"US-TX.yaml": [_expires("wireless_restricted",
                                                            "2026-12-01")]})
        check = make_check(data_dir=folder)
        # 18:30 on 30 November in Dallas: the rule is still in force there
        assert "US-TX:wireless_restricted" in _rules(
            run_check(check, DALLAS, DEC1_0030, line_type="mobile"), "WIRELESS_RESTRICTED")
        # 00:30 on 1 December in Dallas: expired on every calling date
        later = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
        assert "WIRELESS_RESTRICTED" not in _codes(
            run_check(check, DALLAS, later, line_type="mobile"))

    def test_a_registry_rule_binds_where_it_is_already_its_first_day(
            self, make_check: Callable[..., RulesCheck], tmp_path: Path) -> None:
        folder = _effective(tmp_path, "AU.yaml", "dncr", "2026-12-01")
        check = make_check(data_dir=folder, require_registries=True, registry_optional=["US"])
        # 09:30 on 1 December in Sydney
        reasons = run_check(check, SYDNEY, datetime(2026, 11, 30, 22, 30, tzinfo=UTC))
        assert _rules(reasons, "REGISTRY_MISSING") == {"AU:dncr"}
        # 23:00 on 30 November in Sydney: not yet in force on any calling date
        reasons = run_check(check, SYDNEY, datetime(2026, 11, 30, 12, 0, tzinfo=UTC))
        assert "REGISTRY_MISSING" not in _codes(reasons)

    def test_a_consent_rule_binds_until_its_expiry_in_the_called_partys_date(
            self, make_check: Callable[..., RulesCheck], tmp_path: Path) -> None:
        folder = _folder(tmp_path, {"US.yaml": [_expires("prerecorded_residential_consent",
                                                         "2026-12-01")]})
        check = make_check(data_dir=folder)
        reasons = run_check(check, NY, DEC1_0030, call_type="prerecorded", line_type="landline")
        assert "US:prerecorded_residential_consent" in _rules(reasons, "CONSENT_REQUIRED")

    def test_a_frequency_cap_binds_until_its_expiry_in_the_called_partys_date(
            self, settings: Settings, make_check: Callable[..., RulesCheck],
            tmp_path: Path) -> None:
        folder = _folder(tmp_path, {"US.yaml": [_expires("reg_f_call_frequency",
                                                         "2026-12-01")]})
        check = make_check(data_dir=folder)
        log = AttemptStore(settings)
        for day in range(7):
            log.record(NY, DEC1_0030 - timedelta(days=6, hours=1) + timedelta(days=day),
                       purpose="collections", subject="debt-1")
        reasons = run_check(check, NY, DEC1_0030, purpose="collections", subject="debt-1")
        assert _rules(reasons, "FREQUENCY_CAP") == {"US:reg_f_call_frequency"}

    def test_the_line_type_assumption_names_a_rule_in_force_on_a_calling_date(
            self, make_check: Callable[..., RulesCheck], tmp_path: Path) -> None:
        folder = _folder(tmp_path, {"US-TX.yaml": [_expires("wireless_restricted",
                                                            "2026-12-01")]})
        check = make_check(data_dir=folder, unknown_line_type="any")
        reasons = run_check(check, DALLAS, DEC1_0030)
        assert "WIRELESS_RESTRICTED" in _codes(reasons)
        assumed = [r for r in reasons if r.code == "LINE_TYPE_ASSUMED"]
        assert len(assumed) == 1 and "US-TX:wireless_restricted" in (assumed[0].detail or "")


class TestEbrWindows:
    def test_a_shorter_state_window_binds_until_its_expiry_in_the_called_partys_date(
            self, settings: Settings, make_check: Callable[..., RulesCheck],
            tmp_path: Path) -> None:
        """Missouri's 180 days, expiring on 1 December: at 21:00 on 30 November in St Louis
        (03:00 UTC on 1 December) a purchase 200 days old is past it."""
        folder = _folder(tmp_path, {"US-MO.yaml": [_expires("ebr", "2026-12-01")]})
        check = make_check(data_dir=folder)
        at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
        ConsentStore(settings).add(ST_LOUIS, "ebr_purchase", date(2026, 12, 1) - timedelta(200))
        assert "EXEMPT_EBR" not in _codes(run_check(check, ST_LOUIS, at))
        # 1 December in St Louis too: Missouri's window no longer applies, the federal one does
        assert "EXEMPT_EBR" in _codes(run_check(check, ST_LOUIS, at + timedelta(hours=6)))

    def test_a_window_that_exempts_counts_only_when_in_force_on_every_calling_date(
            self, settings: Settings, make_check: Callable[..., RulesCheck],
            tmp_path: Path) -> None:
        folder = _effective(tmp_path, "US.yaml", "ebr", "2026-12-01")
        check = make_check(data_dir=folder)
        ConsentStore(settings).add(NY, "ebr_purchase", date(2026, 10, 1))
        # 19:30 on 30 November in New York: the federal EBR is not yet in force there
        assert "EXEMPT_EBR" not in _codes(run_check(check, NY, DEC1_0030))
        assert "EXEMPT_EBR" in _codes(run_check(check, NY, DEC1_0030 + timedelta(hours=6)))


class TestCaching:
    def test_groups_of_one_batch_with_other_calling_dates_get_their_own_reasons(
            self, make_check: Callable[..., RulesCheck], tmp_path: Path) -> None:
        """At 06:30 UTC on 1 December it is 00:30 in Dallas (1 December only) and 23:30 on 30
        November in El Paso: Texas's wireless rule, expiring on 1 December, still binds the El
        Paso number. Both share jurisdictions and line type; the cached reasons must not."""
        folder = _folder(tmp_path, {"US-TX.yaml": [_expires("wireless_restricted",
                                                            "2026-12-01")]})
        check = make_check(data_dir=folder)
        at = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
        ctx = CheckContext(at=at, campaign="default", purpose="telemarketing",
                           call_type="manual", profile=CampaignProfile())
        for order in ([DALLAS, EL_PASO], [EL_PASO, DALLAS], [DALLAS, EL_PASO]):
            batch = Batch.of(order, ["US", "US"], ["TX", "TX"],
                             [{"line_type": "mobile"}, {"line_type": "mobile"}])
            got = check.evaluate(batch, ctx)
            blocked = {n for n, reasons in zip(order, got, strict=True)
                       if "WIRELESS_RESTRICTED" in _codes(reasons)}
            assert blocked == {EL_PASO}
            assert got == reference_reasons(check, batch, ctx)


def test_the_packaged_rules_give_the_same_reasons_at_every_hour_of_a_day(
        make_check: Callable[..., RulesCheck]) -> None:
    """No packaged rule starts or ends near now: the calling dates change nothing for them
    (the grouped and reference evaluations agree through a whole day)."""
    check = make_check(unknown_line_type="any")
    numbers = [DALLAS, EL_PASO, SYDNEY, NY, ST_LOUIS, "+447700900123", "+14165550123"]
    regions = ["US", "US", "AU", "US", "US", "GB", "CA"]
    batch = Batch.of(numbers, regions, [None] * len(numbers), [{} for _ in numbers])
    for hour in range(0, 24, 3):
        ctx = CheckContext(at=datetime(2026, 12, 1, hour, 30, tzinfo=UTC), campaign="default",
                           purpose="telemarketing", call_type="prerecorded",
                           profile=CampaignProfile())
        assert check.evaluate(batch, ctx) == reference_reasons(check, batch, ctx)


# -- defect 2: ZIP-limited emergencies -------------------------------------------------------------

@pytest.mark.parametrize(("zip_code", "covered"), [
    (None, True),  # no ZIP: the party may be anywhere in Louisiana
    ("70112", True),  # a New Orleans ZIP under the declared prefix
    ("71101", False),  # Shreveport: Louisiana, outside the declared area
    ("77001", True),  # a Houston ZIP: not Louisiana's, so it cannot place the party in LA
    ("09001", True),  # a military post code: in no state
    ("M5V 2T6", True),  # a Toronto postal code
    ("zz", True),  # unreadable
])
def test_a_zip_limited_emergency_applies_unless_the_zip_places_the_party_outside_it(
        make_check: Callable[..., RulesCheck], zip_code: str | None, covered: bool) -> None:
    check = make_check(emergencies=[{"jurisdiction": "US-LA", "start": "2026-11-20",
                                     "end": "2026-12-10", "zips": ["701"]}])
    at = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # Tue 10:00 in New Orleans
    extra = {"zip": zip_code} if zip_code else {}
    reasons = run_check(check, NEW_ORLEANS, at, line_type="landline", **extra)
    assert ("STATE_OF_EMERGENCY" in _codes(reasons)) is covered


# -- defect 3: every observed-day shift the schema accepts -----------------------------------------

def _set(shift: dict[str, str], *days: HolidayDay) -> HolidaySet:
    return HolidaySet.model_validate({
        "source": "test", "confidence": "medium", "observed_shift": shift,
        "days": [d.model_dump() for d in days] or [{"name": "anzac_day", "date": "04-25"}]})


@pytest.mark.parametrize(("weekend", "to", "year", "observed"), [
    ("saturday", "friday", 2026, date(2026, 4, 24)),  # Sat 25 April 2026
    ("saturday", "monday", 2026, date(2026, 4, 27)),
    ("sunday", "monday", 2027, date(2027, 4, 26)),  # Sun 25 April 2027
    ("sunday", "friday", 2027, date(2027, 4, 23)),
])
def test_each_observed_shift_bans_the_actual_and_the_observed_day(
        weekend: str, to: str, year: int, observed: date) -> None:
    found = dates_in_year(_set({weekend: to}), year)
    assert found == {date(year, 4, 25): "anzac_day", observed: "anzac_day (observed)"}
    # the other weekend day has no shift: only the actual day
    other = year + 1 if year == 2026 else year - 1
    assert list(dates_in_year(_set({weekend: to}), other)) == [date(other, 4, 25)]


def test_an_observed_day_on_another_holiday_moves_on_to_the_next_free_weekday() -> None:
    """Christmas 2021 was a Saturday and Boxing Day a Sunday: both observed on Monday would
    leave one substitute day out; they are Monday 27 and Tuesday 28 December."""
    hs = _set({"saturday": "monday", "sunday": "monday"},
              HolidayDay(name="christmas", date="12-25"),
              HolidayDay(name="boxing_day", date="12-26"))
    assert dates_in_year(hs, 2021) == {
        date(2021, 12, 25): "christmas", date(2021, 12, 26): "boxing_day",
        date(2021, 12, 27): "christmas (observed)", date(2021, 12, 28): "boxing_day (observed)"}
    backwards = _set({"saturday": "friday", "sunday": "friday"},
                     HolidayDay(name="christmas", date="12-25"),
                     HolidayDay(name="boxing_day", date="12-26"))
    assert set(dates_in_year(backwards, 2021)) == {
        date(2021, 12, 25), date(2021, 12, 26), date(2021, 12, 24), date(2021, 12, 23)}


def test_a_sunday_to_friday_shift_in_a_rules_folder_defers_calls(
        make_check: Callable[..., RulesCheck], tmp_path: Path) -> None:
    """Anzac Day 2027 is a Sunday; shifted to Friday 23 April, 09:00 that day in Sydney is a
    holiday."""
    folder = _folder(tmp_path, {"AU.yaml": [(
        "  AU_NATIONAL_PUBLIC_HOLIDAYS:",
        "    observed_shift:\n      saturday: monday\n      sunday: friday")]})
    check = make_check(data_dir=folder)
    reasons = run_check(check, SYDNEY, datetime(2027, 4, 22, 23, 0, tzinfo=UTC))
    assert _codes(reasons) == {"HOLIDAY"}
    assert "anzac day (observed)" in (reasons[0].detail or "")


# -- defect 4: an nth weekday a year lacks ---------------------------------------------------------

def test_a_fifth_weekday_a_month_lacks_gives_no_holiday_that_year() -> None:
    fifth = HolidayDay(name="fifth_monday", month=2, weekday="mon", nth=5)
    assert day_in_year(fifth, 2027) is None  # February 2027 has four Mondays
    assert day_in_year(fifth, 2016) == date(2016, 2, 29)  # 1 February 2016 was a Monday
    assert dates_in_year(_set({}, fifth), 2027) == {}
    calendar = HolidayCalendar({"S": _set({"saturday": "friday", "sunday": "monday"}, fifth)})
    assert calendar.holiday("S", date(2027, 3, 1)) is None  # not rolled into March
    assert calendar.holiday("S", date(2016, 2, 29)) == "fifth_monday"
    after = HolidayDay(name="day_after", month=2, weekday="mon", nth=5, after=1)
    assert day_in_year(after, 2027) is None
    assert day_in_year(after, 2016) == date(2016, 3, 1)
