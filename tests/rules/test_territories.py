"""US territories (issue 17): Puerto Rico, the US Virgin Islands, Guam, the Northern Mariana
Islands and American Samoa are judged as US numbers under the federal rules in their own time
zones, against the US national registry; a valid number of a region that is really unsupported
stays distinct from a malformed one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
import numpy as np
import phonenumbers
import pytest
import yaml
from holidays.countries.united_states import UnitedStates
from phonenumbers import timezone as pn_timezone
from typer.testing import CliRunner

from dncguard import nanp
from dncguard.cli._rules import rules_app
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import Decision, ReasonCode, Verdict
from dncguard.phones import (
    US_TERRITORIES,
    _npa_states,
    normalise,
    normalise_arrays,
    npa_state_index,
    npa_state_table,
    state_for,
)
from dncguard.sources.local import applies_to
from dncguard.sources.protocol import Batch
from dncguard.sources.rules import (
    RulesCheck,
    RulesDataError,
    load_ruleset,
    parse_texts,
    resolve_location,
)
from dncguard.sources.rules._zones import NANP_ZONES, PER_NUMBER

from .conftest import TIME_CODES, run_check

#: The zones the issue and the reference (section 4.2, single_zone_no_dst) give.
ZONES = {"PR": "America/Puerto_Rico", "VI": "America/St_Thomas", "GU": "Pacific/Guam",
         "MP": "Pacific/Saipan", "AS": "Pacific/Pago_Pago"}
#: phonenumbers' example number of each territory (valid, in its own area code).
NUMBERS = {t: phonenumbers.format_number(phonenumbers.example_number(t),
                                         phonenumbers.PhoneNumberFormat.E164)
           for t in ZONES}
DAY = date(2026, 11, 18)  # a Wednesday


def _area_codes(territory: str) -> set[int]:
    """The area codes phonenumbers gives to the territory (any valid NPA-NXX block)."""
    codes, regions = nanp.load_table()
    mine = np.flatnonzero(codes == regions.index(territory) + 1)
    return {int(p) // 1000 for p in mine.tolist()}


def _texts() -> dict[str, str]:
    root = resources.files("dncguard.sources.rules").joinpath("data")
    return {p.name: p.read_text("utf-8") for p in root.iterdir() if p.name.endswith(".yaml")}


def _local(territory: str, hh: int, mm: int, day: date = DAY) -> datetime:
    """The UTC instant of a local wall-clock time in the territory."""
    zone = ZoneInfo(ZONES[territory])
    return datetime.combine(day, time(hh, mm), tzinfo=zone).astimezone(UTC)


# -- where the data come from --------------------------------------------------------------
def test_territories_are_the_nanp_regions_the_holidays_package_puts_under_the_us() -> None:
    """The list is not ours: phonenumbers' NANP regions that the holidays package models as
    child entities of the United States (and lists as US subdivisions)."""
    under_us = {r for r in nanp.nanp_regions() if hasattr(holidays_pkg, r)
                and getattr(type(holidays_pkg.country_holidays(r)), "parent_entity", None)
                is UnitedStates}
    assert under_us == set(US_TERRITORIES) == set(ZONES)
    assert set(US_TERRITORIES) <= set(holidays_pkg.country_holidays("US").subdivisions)


@pytest.mark.parametrize("territory", sorted(ZONES))
def test_area_codes_zones_and_state_come_from_phonenumbers(territory: str) -> None:
    """Every valid exchange of the territory's area codes: phonenumbers' geographic zone is
    the reference's one zone, which the area-code table and the state zones give; the
    area-code state table names the territory."""
    rs = load_ruleset()
    npas = _area_codes(territory)
    assert npas and {n for n, (_, s) in _npa_states().items() if s == territory} == npas
    codes, regions = nanp.load_table()
    zone = (ZONES[territory],)
    for npa in sorted(npas):
        assert rs.zones.multi_timezone_npas[f"{npa}"] == list(zone)
        prefixes = np.arange(npa * 1000, npa * 1000 + 1000)
        valid = prefixes[codes[prefixes] == regions.index(territory) + 1]
        ids = NANP_ZONES.zone_ids(valid)
        assert PER_NUMBER not in ids.tolist()
        # phonenumbers gives no zone for the few it calls non-geographic (AS mobiles)
        assert {NANP_ZONES.tuples[i] for i in ids.tolist()} <= {zone, ()}
        for prefix in valid.tolist():
            e164 = f"+1{prefix}1234"
            number = phonenumbers.parse(e164)
            assert pn_timezone.time_zones_for_geographical_number(number) == zone, e164
            assert state_for(e164) == territory
            assert resolve_location(e164, "US", None, {}, rs).zones == zone, e164
    assert rs.zones.subdivision_zones[territory] == list(zone)


def test_american_samoa_mobiles_get_their_zone() -> None:
    """phonenumbers calls 684-248 non-geographic (every NANP zone); the area-code table keeps
    it in Pago Pago instead of the mainland fallback."""
    number = phonenumbers.parse("+16842481234")
    assert phonenumbers.is_valid_number(number)
    assert len(pn_timezone.time_zones_for_number(number)) > 10
    loc = resolve_location("+16842481234", "US", None, {})
    assert (loc.zones, loc.how, loc.known) == (("Pacific/Pago_Pago",), "npa-table", True)


# -- normalisation --------------------------------------------------------------------------
@pytest.mark.parametrize("territory", sorted(ZONES))
def test_territory_numbers_are_us_numbers_on_both_paths(territory: str) -> None:
    e164 = NUMBERS[territory]
    national = e164[2:]
    raws = [e164, national, f"1-{national[:3]}-{national[3:6]}-{national[6:]}",
            f"({national[:3]}) {national[3:6]}-{national[6:]}", national]
    hints: list[str | None] = ["US", "US", "CA", "US", territory]
    per_row = [normalise(r, h) for r, h in zip(raws, hints, strict=True)]
    assert {(n.e164, n.region, n.error) for n in per_row} == {(e164, "US", None)}
    arrays = normalise_arrays(raws * 20, hints * 20)  # enough rows for the table path
    assert arrays.parsed_per_row == 0
    assert arrays.to_list(raws * 20) == per_row * 20
    assert state_for(e164) == territory
    names, _ = npa_state_table()  # the states the engine counts and checks rows under
    assert [names[i] for i in npa_state_index(arrays.digits[:1]).tolist()] == [territory]


@pytest.mark.parametrize(("raw", "region"), [("+18765550100", "JM"), ("+33142685300", "FR"),
                                             ("+18095550100", "DO")])
def test_unsupported_region_is_valid_but_not_judged(raw: str, region: str) -> None:
    """Not malformed: the E.164 form and region are kept and the message says it is valid;
    the table path says the same."""
    n = normalise(raw, "US")
    assert (n.error, n.e164, n.region) == (ReasonCode.UNSUPPORTED_REGION, raw, region)
    assert "valid number of " + region in n.message and "not callable" in n.message
    assert normalise_arrays([raw] * 70, "US").to_list([raw] * 70) == [n] * 70
    bad = normalise("+11115550100", "US")
    assert (bad.error, bad.e164, bad.region) == (ReasonCode.INVALID_NUMBER, None, None)
    assert "valid number of" not in bad.message


# -- the rules data -------------------------------------------------------------------------
def test_every_territory_has_a_file_listing_the_federal_rules_that_apply() -> None:
    rs = load_ruleset()
    federal = {f"US:{r.id}" for r in rs.rules("US")}
    for territory in ZONES:
        rf = rs.files[f"US-{territory}"]
        assert rf.rules == [] and rf.holiday_sets == {}  # nothing territory-specific cited
        listed = [ref for group in rf.applies for ref in group.rules]
        assert sorted(listed) == sorted(federal)
        assert all(len(g.citation) > 20 for g in rf.applies)
        assert ZONES[territory] in rf.notes


def test_rules_show_prints_a_territory() -> None:
    app = CliRunner()
    result = app.invoke(rules_app, ["show", "us-pr"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "US-PR Puerto Rico" in flat and "15 U.S.C. 6106(3)" in flat
    result = app.invoke(rules_app, ["show", "US-GU", "--json"])
    assert result.exit_code == 0, result.output
    assert '"US:national_dnc"' in result.output and "1692a(8)" in result.output


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a[0]["rules"].pop(), "are not listed with the citation"),
    (lambda a: a[0]["rules"].append("US:no_such_rule"), "no such rule: US:no_such_rule"),
    (lambda a: a[0]["rules"].append("CA:calling_window"), "not CA:calling_window"),
    (lambda a: a[1]["rules"].append("US:calling_window"), "more than once: US:calling_window"),
    (lambda a: a[0].update(citation=""), "citation"),
])
def test_an_inconsistent_applies_list_is_rejected(change: Callable[[Any], object],
                                                  message: str) -> None:
    texts = _texts()
    data = yaml.safe_load(texts["US-PR.yaml"])
    change(data["applies"])
    with pytest.raises(RulesDataError, match="US-PR.yaml") as info:
        parse_texts({**texts, "US-PR.yaml": yaml.safe_dump(data)})
    assert message in str(info.value)


# -- where the called party is, and the rules ------------------------------------------------
@pytest.mark.parametrize("territory", sorted(ZONES))
def test_location_and_jurisdictions(check: RulesCheck, territory: str) -> None:
    loc = resolve_location(NUMBERS[territory], "US", None, {})
    assert (loc.zones, loc.states, loc.how, loc.known) == (
        (ZONES[territory],), (territory,), "npa-table+npa-nxx", True)
    assert check.jurisdictions("US", loc) == ("US", f"US-{territory}")
    # an address in the territory adds the territory's zone and rules to a mainland number
    loc = resolve_location("+12125550100", "US", None, {"state": territory})
    assert loc.zones == ("America/New_York", ZONES[territory]) and territory in loc.states


@pytest.mark.parametrize(("territory", "e164"), [
    *sorted(NUMBERS.items()), ("AS", "+16842481234"), ("PR", "+19392345678")])
def test_federal_window_edges_in_the_territorys_own_zone(check: RulesCheck, territory: str,
                                                         e164: str) -> None:

    def codes(at: datetime) -> list[tuple[str, str | None, datetime | None]]:
        return [(r.code, r.rule, r.next_allowed_at) for r in run_check(check, e164, at)
                if r.code in TIME_CODES]

    opens, closes = _local(territory, 8, 0), _local(territory, 21, 0)
    tomorrow = _local(territory, 8, 0, DAY + timedelta(days=1))
    assert codes(opens - timedelta(minutes=1)) == [
        ("OUTSIDE_CALLING_WINDOW", "US:calling_window", opens)]
    assert codes(opens) == []
    assert codes(closes - timedelta(minutes=1)) == []
    assert codes(closes) == [("OUTSIDE_CALLING_WINDOW", "US:calling_window", tomorrow)]
    # collections: Regulation F's hours, same zone
    reasons = run_check(check, e164, opens - timedelta(minutes=1), purpose="collections")
    assert [r.rule for r in reasons if r.code in TIME_CODES] == [
        "US:collections_calling_window"]
    # no daylight saving time: the window opens at the same UTC hour in January and July
    assert _local(territory, 8, 0, date(2026, 1, 14)).hour \
        == _local(territory, 8, 0, date(2026, 7, 15)).hour == opens.hour


def test_no_territory_holiday_ban_without_a_cited_rule(check: RulesCheck) -> None:
    """Territory public holidays (from the holidays package) are not calling bans: no rule
    cites one, so noon on each is callable."""
    for territory in ZONES:
        days = holidays_pkg.country_holidays(territory, years=2026)
        assert days
        for day in days:
            assert run_check(check, NUMBERS[territory], _local(territory, 12, 0, day)) == [], \
                (territory, day)


# -- the whole verdict: registry, lists, window --------------------------------------------
@pytest.fixture
def home(settings: Settings, tmp_path: Path) -> Settings:
    """A fresh US national registry holding the Puerto Rico number (and a number of each
    territory's area code: a US national list covers the area codes it holds), a Florida state
    list, an internal opt-out of the Guam number."""
    store = ListStore(settings)
    national = tmp_path / "us.txt"
    national.write_text(f"{NUMBERS['PR'][2:5]},{NUMBERS['PR'][5:]}\n2125550199\n"
                        + "".join(f"{e[2:5]},5550199\n" for e in NUMBERS.values()))
    store.import_file(national, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date(2026, 11, 10))
    state = tmp_path / "fl.txt"
    state.write_text(f"{NUMBERS['VI']}\n")
    store.import_file(state, kind="state", name="us-fl", jurisdiction="US-FL",
                      snapshot_date=date(2026, 11, 10))
    store.add_number(NUMBERS["GU"], reason="asked on call")
    return settings


def _verdict(settings: Settings, phone: str, at: datetime, **kw: str) -> Verdict:
    return Scrubber(settings, clock=lambda: at).check(phone, at=at, **kw)


def test_puerto_rico_verdicts_at_the_window_edges(home: Settings) -> None:
    """The issue's example: 07:59 in San Juan defers to 08:00, 08:00 allows, 21:00 defers."""
    pr = "+17875550100"
    v = _verdict(home, pr, _local("PR", 7, 59))
    assert (v.decision, v.region, v.state, v.timezone) == (
        Decision.DEFER, "US", "PR", "America/Puerto_Rico")
    assert v.next_allowed_at == _local("PR", 8, 0) == datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    assert _verdict(home, pr, _local("PR", 8, 0)).decision is Decision.ALLOW
    assert _verdict(home, pr, _local("PR", 20, 59)).decision is Decision.ALLOW
    late = _verdict(home, pr, _local("PR", 21, 0))
    assert late.decision is Decision.DEFER
    assert late.next_allowed_at == _local("PR", 8, 0, DAY + timedelta(days=1))


def test_us_registry_and_internal_lists_apply_to_territory_numbers(home: Settings) -> None:
    at = _local("PR", 12, 0)  # 12:00 in Puerto Rico and the Virgin Islands, 02:00 in Guam
    hit = _verdict(home, NUMBERS["PR"], at)
    assert hit.decision is Decision.BLOCK and hit.reason_codes == ["DNC_NATIONAL"]
    assert hit.reasons[0].list == "us-ftc"
    # a Florida list does not apply to a Virgin Islands address; without an address it
    # does (an area code does not show where the subscriber lives)
    assert _verdict(home, NUMBERS["VI"], at, state="VI").decision is Decision.ALLOW
    assert _verdict(home, NUMBERS["VI"], at).reason_codes == ["DNC_STATE"]
    guam = _verdict(home, NUMBERS["GU"], _local("GU", 12, 0))
    assert guam.decision is Decision.BLOCK and guam.reason_codes == ["DNC_INTERNAL"]
    # the national list applies by country: the territory numbers are US numbers
    batch = Batch.of(list(NUMBERS.values()) + ["+18765550100"], ["US"] * 5 + ["JM"],
                     list(ZONES) + [None])
    assert applies_to("US", batch).tolist() == [True] * 5 + [False]
    assert applies_to("US-FL", batch).tolist() == [True] * 5 + [False]  # no address
    placed = Batch.of(list(NUMBERS.values()), ["US"] * 5, list(ZONES),
                      [{"state": z} for z in ZONES])
    assert applies_to("US-FL", placed).tolist() == [False] * 5


def test_registry_is_required_as_for_any_us_number(settings: Settings,
                                                   make_check: Callable[..., RulesCheck]
                                                   ) -> None:
    check = make_check(require_registries=True)
    for territory, e164 in NUMBERS.items():
        reasons = run_check(check, e164, _local(territory, 12, 0))
        assert [(r.code, r.rule, r.decision) for r in reasons] == [
            ("REGISTRY_MISSING", "US:national_dnc", Decision.ERROR)], territory
        assert "--kind national --jurisdiction US " in reasons[0].detail
    v = _verdict(settings, NUMBERS["MP"], _local("MP", 12, 0))
    assert v.decision is Decision.ERROR and v.reason_codes == ["REGISTRY_MISSING"]


def test_unsupported_and_malformed_verdicts_differ(home: Settings) -> None:
    """Both are `invalid` (never callable), with different codes; only the unsupported one
    carries its E.164 form and region."""
    at = _local("PR", 12, 0)
    foreign = _verdict(home, "+18765550100", at)
    malformed = _verdict(home, "(111) 555-0123", at)
    assert foreign.decision is malformed.decision is Decision.INVALID
    assert (foreign.reason_codes, foreign.e164, foreign.region) == (
        ["UNSUPPORTED_REGION"], "+18765550100", "JM")
    assert (malformed.reason_codes, malformed.e164, malformed.region) == (
        ["INVALID_NUMBER"], None, None)
    assert "valid number of JM" in foreign.reasons[0].detail
