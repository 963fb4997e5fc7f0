"""Frequency caps, consent requirements, wireless restrictions and exemptions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dncguard.config import CampaignProfile, Settings
from dncguard.models import Decision, Reason, merge_reasons
from dncguard.sources.rules import AttemptStore, ConsentStore, RulesCheck, RulesSettings

from .conftest import run_check

AT = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # Wed 12:00 EST / 11:00 CST
FL, OK, MD, NY, TX, MA = ("+13055550100", "+14055550100", "+14105550100", "+12125550100",
                          "+12145550100", "+16175550100")


def _codes(reasons: list[Reason]) -> set[str]:
    return {r.code for r in reasons}


# -- frequency caps ------------------------------------------------------------------------------

@pytest.mark.parametrize(("phone", "rule"), [
    (FL, "US-FL:same_subject_cap"),  # Fla. Stat. 501.616(6)(b)
    (OK, "US-OK:same_subject_cap"),  # 15 O.S. 775C.4
    (MD, "US-MD:same_subject_cap"),  # Md. Com. Law 14-4503
])
def test_three_per_24h_same_subject(settings: Settings, check: RulesCheck, phone: str,
                                    rule: str) -> None:
    """A fourth call on the same subject within 24 h defers until the first one ages out."""
    settings.campaigns["spring"] = CampaignProfile()  # an attempt names a campaign profile
    log = AttemptStore(settings)
    for hours in (20, 10, 2):
        log.record(phone, AT - timedelta(hours=hours), campaign="spring")
    reasons = run_check(check, phone, AT, campaign="spring")
    assert [(r.code, r.rule) for r in reasons] == [("FREQUENCY_CAP", rule)]
    cap = reasons[0]
    assert cap.decision is Decision.DEFER
    # frees at the first attempt + 24 h = 21:00 UTC, which is within the state window
    assert cap.next_allowed_at == AT + timedelta(hours=4)
    # another subject, or another campaign, is not counted
    assert run_check(check, phone, AT, campaign="autumn") == []
    assert run_check(check, phone, AT, campaign="autumn", subject="spring") != []


def test_cap_frees_outside_window_moves_to_next_window(settings: Settings,
                                                       check: RulesCheck) -> None:
    """Fla. Stat. 501.616(6)(b) + (6)(a): a cap freeing at 22:00 EST waits until 08:00."""
    log = AttemptStore(settings)
    base = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)  # Tue 22:00 EST
    for minutes in (0, 600, 700):
        log.record(FL, base + timedelta(minutes=minutes))
    at = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # Wed 10:00 EST
    cap = [r for r in run_check(check, FL, at) if r.code == "FREQUENCY_CAP"][0]
    assert cap.next_allowed_at == datetime(2026, 11, 19, 13, 0, tzinfo=UTC)


def test_cap_does_not_apply_elsewhere(settings: Settings, check: RulesCheck) -> None:
    """No cap in New York (no state rule; federal telemarketing has no cap)."""
    log = AttemptStore(settings)
    for hours in (5, 4, 3, 2, 1):
        log.record(NY, AT - timedelta(hours=hours))
    assert run_check(check, NY, AT) == []


def test_reg_f_seven_in_seven_days(settings: Settings, check: RulesCheck) -> None:
    """12 CFR 1006.14(b)(2): an 8th attempt within 7 days on the same debt defers."""
    log = AttemptStore(settings)
    for day in range(7):
        log.record(NY, AT - timedelta(days=6, hours=1) + timedelta(days=day),
                   purpose="collections", subject="debt-1")
    reasons = run_check(check, NY, AT, purpose="collections", subject="debt-1")
    assert [(r.code, r.rule) for r in reasons] == [("FREQUENCY_CAP", "US:reg_f_call_frequency")]
    assert reasons[0].next_allowed_at == AT + timedelta(hours=23)
    assert run_check(check, NY, AT, purpose="collections", subject="debt-2") == []
    assert run_check(check, NY, AT, purpose="telemarketing", subject="debt-1") == []


def test_reg_f_conversation_cooldown(settings: Settings, check: RulesCheck) -> None:
    """12 CFR 1006.14(b)(2)(ii): no call within 7 days after a telephone conversation."""
    log = AttemptStore(settings)
    talk = AT - timedelta(days=2)
    log.record(NY, talk, purpose="collections", subject="debt-9", outcome="conversation")
    reasons = run_check(check, NY, AT, purpose="collections", subject="debt-9")
    assert [r.code for r in reasons] == ["FREQUENCY_CAP"]
    assert reasons[0].next_allowed_at == talk + timedelta(days=7)
    assert "conversation" in reasons[0].detail
    assert run_check(check, NY, AT + timedelta(days=5, hours=1), purpose="collections",
                     subject="debt-9") == []


def test_reg_f_counts_a_debts_calls_on_every_number(settings: Settings,
                                                    check: RulesCheck) -> None:
    """12 CFR 1006.14(b)(2) counts calls about a debt, on whatever number: a conversation on
    the home number pauses the mobile, and seven calls spread over two numbers cap both."""
    home, mobile, other = NY, "+19175557002", "+13125557003"
    log = AttemptStore(settings)
    log.record(home, AT - timedelta(days=1), purpose="collections", subject="DEBT-42",
               outcome="conversation")
    reasons = run_check(check, mobile, AT, purpose="collections", subject="DEBT-42")
    assert [r.code for r in reasons] == ["FREQUENCY_CAP"]
    assert "conversation" in reasons[0].detail
    assert run_check(check, mobile, AT, purpose="collections", subject="DEBT-43") == []
    for day in range(7):  # another debt: four calls to one number, three to the other
        log.record(home if day < 4 else other, AT - timedelta(days=6, hours=1) +
                   timedelta(days=day), purpose="collections", subject="DEBT-50")
    for phone in (home, other, mobile):
        found = run_check(check, phone, AT, purpose="collections", subject="DEBT-50")
        assert [r.rule for r in found] == ["US:reg_f_call_frequency"], phone
    # without a subject of its own a row's subject is its campaign: counted per number
    log.record(home, AT - timedelta(hours=2), purpose="collections", outcome="conversation")
    assert run_check(check, mobile, AT, purpose="collections") == []


def test_massachusetts_collections_cap(settings: Settings, check: RulesCheck) -> None:
    """940 CMR 7.04(1)(f): at most 2 collection calls per 7 days per debt."""
    log = AttemptStore(settings)
    log.record(MA, AT - timedelta(days=3), purpose="collections", subject="d")
    log.record(MA, AT - timedelta(days=1), purpose="collections", subject="d")
    reasons = run_check(check, MA, AT, purpose="collections", subject="d")
    assert [r.rule for r in reasons] == ["US-MA:collections_cap"]
    assert reasons[0].next_allowed_at == AT + timedelta(days=4)


def test_prerecorded_exempt_landline_cap(settings: Settings, check: RulesCheck) -> None:
    """47 CFR 64.1200(a)(3): consent-exempt prerecorded calls to a residential line, 3 / 30 days."""
    log = AttemptStore(settings)
    for days in (20, 10, 5):
        log.record(NY, AT - timedelta(days=days), purpose="informational", subject="default")
    reasons = run_check(check, NY, AT, purpose="informational", call_type="prerecorded",
                        line_type="landline")
    assert [r.rule for r in reasons] == ["US:prerecorded_exempt_residential_cap"]
    assert run_check(check, NY, AT, purpose="informational", call_type="manual",
                     line_type="landline") == []


# -- consent required, wireless ------------------------------------------------------------------

@pytest.mark.parametrize(("purpose", "call_type", "line", "consent", "blocked"), [
    # 47 CFR 64.1200(a)(2): telemarketing by autodialer/prerecorded to wireless: written consent
    ("telemarketing", "autodialed", "mobile", None, True),
    ("telemarketing", "autodialed", "mobile", "express", True),
    ("telemarketing", "autodialed", "mobile", "express_written", False),
    ("telemarketing", "prerecorded", "mobile", "ebr_purchase", True),
    ("telemarketing", "manual", "mobile", None, False),
    # 47 CFR 64.1200(a)(1)(iii): non-telemarketing: express consent suffices
    ("informational", "autodialed", "mobile", None, True),
    ("informational", "autodialed", "mobile", "express", False),
    ("collections", "prerecorded", "mobile", "express", False),
    ("collections", "prerecorded", "mobile", None, True),
    # 47 CFR 64.1200(a)(3): prerecorded telemarketing to a residential line: written consent
    ("telemarketing", "prerecorded", "landline", None, True),
    ("telemarketing", "prerecorded", "landline", "express_written", False),
    ("telemarketing", "autodialed", "landline", None, False),
    ("telemarketing", "autodialed", None, None, False),  # unknown_line_type = "ignore"
    # a VoIP line: both the residential (a)(3) and the wireless (a)(2) rules reach it
    ("telemarketing", "prerecorded", "voip", None, True),
    ("telemarketing", "autodialed", "voip", None, True),
    ("telemarketing", "autodialed", "voip", "express_written", False),
    ("telemarketing", "manual", "voip", None, False),
])
def test_consent_required(settings: Settings, check: RulesCheck, purpose: str, call_type: str,
                          line: str | None, consent: str | None, blocked: bool) -> None:
    """Consent requirements by purpose, call type and line type."""
    if consent:
        ConsentStore(settings).add(NY, consent, date(2026, 1, 5))
    extra = {"line_type": line} if line else {}
    reasons = run_check(check, NY, AT, purpose=purpose, call_type=call_type, **extra)
    got = [r for r in reasons if r.code == "CONSENT_REQUIRED"]
    assert bool(got) is blocked
    if got:
        assert got[0].decision is Decision.BLOCK and got[0].citation


def test_unknown_line_type_is_mobile_by_default(settings: Settings) -> None:
    """The strict reading is the default: an unknown line type is judged as mobile, and the
    verdict says so (LINE_TYPE_ASSUMED names the rules it brought in); a known landline is
    not."""
    check = RulesCheck(settings, rules_settings=RulesSettings(require_registries=False))
    reasons = run_check(check, NY, AT, call_type="autodialed")
    assert [r.code for r in reasons] == ["LINE_TYPE_ASSUMED", "CONSENT_REQUIRED"]
    assert reasons[0].decision is Decision.ALLOW and "US:" in reasons[0].detail
    # a wireless list marks the numbers it holds as mobile: it judges no number otherwise
    assert "only marks the numbers it holds" in reasons[0].detail
    assert run_check(check, NY, AT, call_type="autodialed", line_type="landline") == []
    # nothing assumed where no rule depends on the line type
    assert run_check(check, NY, AT, call_type="manual") == []


def test_unknown_line_type_as_mobile(make_check, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """Setting unknown_line_type = 'mobile' applies the wireless consent rule without a column."""
    check = make_check(unknown_line_type="mobile")
    reasons = run_check(check, NY, AT, call_type="autodialed")
    assert "CONSENT_REQUIRED" in _codes(reasons)


@pytest.mark.parametrize(("phone", "state_rule"), [
    (TX, "US-TX:wireless_restricted"),  # Tex. Bus. & Com. Code 305.001
    ("+13075550100", "US-WY:wireless_restricted"),  # Wyo. Stat. 40-12-302
    ("+12015550100", "US-NJ:wireless_restricted"),
    ("+15045550100", "US-LA:wireless_restricted"),
    ("+16025550100", "US-AZ:wireless_restricted"),
])
def test_wireless_restricted_states(settings: Settings, check: RulesCheck, phone: str,
                                    state_rule: str) -> None:
    """Solicitation calls to wireless numbers in the five states block without consent;
    express consent lifts the restriction (but no registry hit: no EXEMPT_CONSENT), express
    written consent lifts both."""
    at = datetime(2026, 11, 18, 19, 0, tzinfo=UTC)
    reasons = run_check(check, phone, at, line_type="mobile")
    assert [(r.code, r.rule) for r in reasons] == [("WIRELESS_RESTRICTED", state_rule)]
    assert run_check(check, phone, at, line_type="landline") == []
    assert run_check(check, phone, at, line_type="mobile", purpose="collections") == []
    ConsentStore(settings).add(phone, "express", date(2026, 3, 1))
    assert run_check(check, phone, at, line_type="mobile") == []
    ConsentStore(settings).add(phone, "express_written", date(2026, 3, 2))
    assert [r.code for r in run_check(check, phone, at, line_type="mobile")] == [
        "EXEMPT_CONSENT"]


# -- exemptions ----------------------------------------------------------------------------------

def _merged(reasons: list[Reason], *extra: str) -> Decision:
    hits = [Reason(code=c, decision=Decision.BLOCK, source="local") for c in extra]
    decision, _ = merge_reasons([*hits, *reasons])
    return decision


@pytest.mark.parametrize(("kind", "granted", "expires", "revoked", "exempt"), [
    ("express_written", date(2026, 1, 1), None, None, "EXEMPT_CONSENT"),
    ("express_written", date(2026, 1, 1), date(2026, 12, 1), None, "EXEMPT_CONSENT"),
    # 47 CFR 64.1200(c)(2)(ii): oral express consent lifts no registry hit
    ("express", date(2026, 1, 1), date(2026, 12, 1), None, None),
    ("express_written", date(2026, 1, 1), date(2026, 11, 18), None, None),  # expired that day
    ("express_written", date(2026, 1, 1), None, date(2026, 6, 1), None),  # revoked
    ("express_written", date(2026, 11, 1), None, None, "EXEMPT_CONSENT"),
    # 47 CFR 64.1200(f)(5): EBR 18 months after a purchase, 3 months after an inquiry
    ("ebr_purchase", date(2025, 6, 1), None, None, "EXEMPT_EBR"),
    ("ebr_purchase", date(2025, 5, 1), None, None, None),  # ended 1 November 2026
    ("ebr_inquiry", date(2026, 9, 1), None, None, "EXEMPT_EBR"),
    ("ebr_inquiry", date(2026, 8, 1), None, None, None),  # ended 1 November 2026
])
def test_exemptions_and_expiry(settings: Settings, check: RulesCheck, kind: str, granted: date,
                               expires: date | None, revoked: date | None,
                               exempt: str | None) -> None:
    """Consent / EBR lift national and state registry hits while valid; never internal. (The
    row gives its state: without an address every state's list applies, and an EBR lifts
    their hits only while live under each state's window: tests/rules/test_ebr_lists.py.)"""
    ConsentStore(settings).add(NY, kind, granted, expires=expires, revoked=revoked)
    reasons = run_check(check, NY, AT, state="NY")
    codes = [r.code for r in reasons]
    if exempt is None:
        assert codes == []
        assert _merged(reasons, "DNC_NATIONAL") is Decision.BLOCK
        return
    assert codes == [exempt]
    assert reasons[0].overrides == ["DNC_NATIONAL", "DNC_STATE"]
    assert _merged(reasons, "DNC_NATIONAL", "DNC_STATE") is Decision.ALLOW
    assert _merged(reasons, "DNC_NATIONAL", "DNC_INTERNAL") is Decision.BLOCK


@pytest.mark.parametrize(("phone", "kind", "granted", "revoked", "at", "exempt"), [
    # revoked on 10 March: at 10:30 on 10 March in Sydney (23:30 UTC on 9 March) it is gone
    ("+61290001234", "express_written", date(2026, 1, 5), date(2026, 3, 10),
     datetime(2026, 3, 9, 23, 30, tzinfo=UTC), False),
    ("+61290001234", "express_written", date(2026, 1, 5), date(2026, 3, 10),
     datetime(2026, 3, 9, 12, 30, tzinfo=UTC), True),  # 23:30 on 9 March there
    # granted on 10 March: at 23:00 on 9 March in New York (03:00 UTC on 10 March) not yet
    (NY, "express_written", date(2026, 3, 10), None,
     datetime(2026, 3, 10, 3, 0, tzinfo=UTC), False),
    (NY, "express_written", date(2026, 3, 10), None,
     datetime(2026, 3, 10, 13, 0, tzinfo=UTC), True),
])
def test_consent_dates_are_the_called_partys_dates(
        settings: Settings, check: RulesCheck, phone: str, kind: str, granted: date,
        revoked: date | None, at: datetime, exempt: bool) -> None:
    """A consent's dates are calendar dates: it counts from its grant on the called party's
    date, and a revocation takes effect on theirs, not on UTC's (whichever is stricter)."""
    ConsentStore(settings).add(phone, kind, granted, revoked=revoked)
    assert ("EXEMPT_CONSENT" in _codes(run_check(check, phone, at))) is exempt


def test_revocation_revokes_earlier_consents(settings: Settings, check: RulesCheck) -> None:
    """A revocation ends every consent given before it (FCC 24-24 revoke-all reading)."""
    store = ConsentStore(settings)
    store.add(NY, "express_written", date(2026, 1, 1))
    store.add(NY, "ebr_purchase", date(2026, 2, 1), revoked=date(2026, 3, 1))
    assert run_check(check, NY, AT) == []
    store.add(NY, "express_written", date(2026, 4, 1))  # new consent after it counts
    assert [r.code for r in run_check(check, NY, AT)] == ["EXEMPT_CONSENT"]


@pytest.mark.parametrize(("phone", "granted", "exempt"), [
    ("+12065550100", date(2025, 11, 1), False),  # RCW 80.36.390(1)(a): 12 months in WA
    ("+12065550100", date(2025, 12, 1), True),
    ("+13145550100", date(2026, 5, 1), False),  # Mo. Rev. Stat. 407.1095: 180 days
    ("+13145550100", date(2026, 6, 1), True),
    ("+17015550100", date(2025, 6, 1), True),  # ND 24 months, federal 18 months governs
    ("+17015550100", date(2025, 5, 1), False),
])
def test_state_ebr_overrides(settings: Settings, check: RulesCheck, phone: str, granted: date,
                             exempt: bool) -> None:
    """The shortest EBR window among the applicable jurisdictions governs."""
    ConsentStore(settings).add(phone, "ebr_purchase", granted)
    at = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)
    assert ("EXEMPT_EBR" in _codes(run_check(check, phone, at))) is exempt


@pytest.mark.parametrize(("kind", "granted", "day", "exempt"), [
    # 18 calendar months from 1 January 2025 end on 1 July 2026 (546 days, not 548)
    ("ebr_purchase", date(2025, 1, 1), date(2026, 6, 30), True),
    ("ebr_purchase", date(2025, 1, 1), date(2026, 7, 1), False),
    ("ebr_purchase", date(2025, 1, 1), date(2026, 7, 3), False),
    # 3 months from 1 February end on 1 May (89 days, not 91)
    ("ebr_inquiry", date(2026, 2, 1), date(2026, 4, 30), True),
    ("ebr_inquiry", date(2026, 2, 1), date(2026, 5, 1), False),
    ("ebr_inquiry", date(2026, 2, 1), date(2026, 5, 2), False),
    # from a month's last day: 30 November + 3 months ends on 28 February
    ("ebr_inquiry", date(2025, 11, 30), date(2026, 2, 27), True),
    ("ebr_inquiry", date(2025, 11, 30), date(2026, 2, 28), False),
])
def test_ebr_windows_are_calendar_months(settings: Settings, check: RulesCheck, kind: str,
                                         granted: date, day: date, exempt: bool) -> None:
    """47 CFR 64.1200(f)(5) counts months: the window ends on the same day N months later."""
    ConsentStore(settings).add(NY, kind, granted)
    at = datetime(day.year, day.month, day.day, 16, 0, tzinfo=UTC)
    assert ("EXEMPT_EBR" in _codes(run_check(check, NY, at))) is exempt


def test_an_ebr_rule_takes_months_or_days_not_both() -> None:
    from pydantic import ValidationError

    from dncguard.sources.rules.schema import EbrRule, add_months

    with pytest.raises(ValidationError, match="purchase_months or purchase_days"):
        EbrRule.model_validate({"id": "ebr", "kind": "ebr", "purchase_months": 18,
                                "purchase_days": 548, "citation": "47 CFR 64.1200(f)(5)",
                                "effective": "2003-10-01", "confidence": "high"})
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)
    assert add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)
    assert add_months(date(2025, 11, 15), 14) == date(2027, 1, 15)


def test_gb_has_no_ebr_exemption(settings: Settings, check: RulesCheck) -> None:
    """PECR reg. 21 has no EBR exemption: only consent lifts a TPS hit."""
    gb = "+442079460018"
    ConsentStore(settings).add(gb, "ebr_purchase", date(2026, 10, 1))
    at = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    assert run_check(check, gb, at) == []


def test_consent_import(settings: Settings, tmp_path: Path) -> None:
    """Bad rows are reported with row number and field, and then nothing is imported (all
    or nothing); the good rows alone are imported once."""
    f = tmp_path / "consent.csv"
    f.write_text("phone,type,date,expires,revoked\n"
                 "+12125550100,express,2026-01-01,,\n"
                 "not-a-number,express,2026-01-01,,\n"
                 "+12125550101,verbal,2026-01-01,,\n"
                 "+12125550102,express_written,01/02/2026,,\n"
                 "+12125550103,express,2026-01-01,2025-12-01,\n"
                 "2125550104,ebr_purchase,2026-02-01,,2026-03-01\n")
    store = ConsentStore(settings)
    report = store.import_csv(f)
    assert (report.rows, report.added) == (6, 0)
    assert [(e.line, e.field) for e in report.errors] == [  # the file's lines: header 1
        (3, "phone"), (4, "type"), (5, "date"), (6, "expires")]
    assert store.for_numbers(["+12125550100", "+12125550104"]) == {}
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0], lines[1], lines[6]]) + "\n")
    report = store.import_csv(f)
    assert (report.rows, report.added, report.errors) == (2, 2, [])
    again = store.import_csv(f)
    assert (again.added, again.duplicates) == (0, 2)
    recs = store.for_numbers(["+12125550104"])["+12125550104"]
    assert recs[0].revoked == date(2026, 3, 1)


def test_attempt_import(settings: Settings, tmp_path: Path) -> None:
    """Bad rows are reported and then nothing is imported; the good rows alone are."""
    settings.campaigns["c"] = CampaignProfile()  # an attempt names a campaign profile
    f = tmp_path / "attempts.csv"
    f.write_text("phone,at,campaign,purpose,subject,outcome\n"
                 "+13055550100,2026-11-18T10:00:00-05:00,c,telemarketing,,\n"
                 "+13055550100,2026-11-18T10:00:00,c,telemarketing,,\n"
                 "+13055550100,2026-11-18T11:00:00Z,c,sales,,\n"
                 "+13055550100,2026-11-18T11:30:00Z,c,collections,debt-1,conversation\n")
    report = AttemptStore(settings).import_csv(f)
    assert report.added == 0
    assert [(e.line, e.field) for e in report.errors] == [(3, "at"), (4, "purpose")]
    assert AttemptStore(settings).for_numbers(["+13055550100"], AT - timedelta(days=1)) == {}
    lines = f.read_text().splitlines()
    f.write_text("\n".join([lines[0], lines[1], lines[4]]) + "\n")
    report = AttemptStore(settings).import_csv(f)
    assert (report.added, report.errors) == (2, [])
    got = AttemptStore(settings).for_numbers(["+13055550100"], AT - timedelta(days=1))
    # ordered by time: 11:30Z comes before 10:00-05:00 (15:00Z)
    assert [(a.subject, a.outcome) for a in got["+13055550100"]] == [
        ("debt-1", "conversation"), ("c", None)]
