"""Consent records fail closed: only written consent (or a live EBR) lifts a registry hit; a
revocation dated before its consent or in the future is refused; ``consent revoke`` with
nothing on file still stores the revocation; a do-not-call request ends the EBR; an EBR
window in days ends N days after it began; import errors name the file's line and never
echo a phone number. Through the library, the CLI and ``POST /v1/consents``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from dncguard.cli import run
from dncguard.config import Settings
from dncguard.errors import InputError
from dncguard.models import Decision, Reason, merge_reasons
from dncguard.sources.rules import ConsentStore, RulesCheck
from dncguard.sources.rules.schema import EbrRule
from dncguard.sources.rules.stores import ConsentRecord, consent_table, rules_engine
from dncguard.store import utcnow

from ._api import post, refused_fields
from .conftest import run_check

AT = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # Wed 12:00 in New York
NY = "+12125550100"
DIGITS = "2125550100"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2 and out == "", (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], err


def codes(reasons: list[Reason]) -> list[str]:
    return [r.code for r in reasons]


def decided(reasons: list[Reason], *hits: str) -> Decision:
    """The verdict's decision with these list hits beside the rule reasons."""
    found = [Reason(code=c, decision=Decision.BLOCK, source="local") for c in hits]
    return merge_reasons([*found, *reasons])[0]


# -- 2: oral express consent lifts no registry hit ------------------------------------------------

@pytest.mark.parametrize(("kind", "lifts"), [("express", False), ("express_written", True)])
def test_only_written_consent_lifts_a_registry_hit(settings: Settings, check: RulesCheck,
                                                   kind: str, lifts: bool) -> None:
    """47 CFR 64.1200(c)(2)(ii) and 16 CFR 310.4(b)(1)(iii)(B)(1) need a signed written
    agreement: express consent gives no EXEMPT_CONSENT, so a registry hit still blocks."""
    ConsentStore(settings).add(NY, kind, date(2026, 1, 5))
    reasons = run_check(check, NY, AT, line_type="landline")
    assert ("EXEMPT_CONSENT" in codes(reasons)) is lifts
    assert decided(reasons, "DNC_NATIONAL") is (Decision.ALLOW if lifts else Decision.BLOCK)
    assert decided(reasons, "DNC_STATE") is (Decision.ALLOW if lifts else Decision.BLOCK)


def test_express_consent_still_relies_on_the_registry(settings: Settings,
                                                      make_check: Callable[..., RulesCheck]
                                                      ) -> None:
    """A number with only express consent is judged by the registry (REGISTRY_MISSING when it
    is not loaded); express consent still satisfies a rule that accepts it (non-marketing
    autodialed calls to a mobile, 47 CFR 64.1200(a)(1)(iii))."""
    check = make_check(require_registries=True)
    ConsentStore(settings).add(NY, "express", date(2026, 1, 5))
    assert "REGISTRY_MISSING" in codes(run_check(check, NY, AT, line_type="landline"))
    assert "CONSENT_REQUIRED" not in codes(run_check(
        check, NY, AT, purpose="informational", call_type="autodialed", line_type="mobile"))
    ConsentStore(settings).add(NY, "express_written", date(2026, 1, 6))
    assert codes(run_check(check, NY, AT, line_type="landline")) == ["EXEMPT_CONSENT"]


def test_cli_check_blocks_a_listed_number_with_express_consent(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The reported case end to end: on the national registry, express consent on file, the
    call was allowed; it is blocked (DNC_NATIONAL decides) until written consent is added."""
    registry = tmp_path / "reg.txt"
    registry.write_text(f"{DIGITS}\n", encoding="utf-8")
    code, _, err = cli(capsys, "lists", "import", str(registry), "--kind", "national",
                       "--jurisdiction", "US", "--snapshot-date", "2026-11-15",
                       "--name", "us-ftc")
    assert code == 0, err

    def verdict() -> dict[str, object]:
        code, out, err = cli(capsys, "check", DIGITS, "--at", "2026-11-18T17:00:00Z",
                             "--line-type", "landline", "--json")
        assert code in (0, 1), err
        got: dict[str, object] = json.loads(out)
        return got

    cli(capsys, "consent", "add", DIGITS, "--type", "express", "--date", "2026-01-05")
    got = verdict()
    assert got["decision"] == "block", got
    assert "EXEMPT_CONSENT" not in [r["code"] for r in got["reasons"]]  # type: ignore[attr-defined]
    cli(capsys, "consent", "add", DIGITS, "--type", "express_written", "--date", "2026-01-05")
    assert verdict()["decision"] == "allow"


# -- 3: a revocation before its consent, or in the future, is refused -----------------------------

def test_library_refuses_an_impossible_revocation(settings: Settings) -> None:
    store = ConsentStore(settings)
    with pytest.raises(InputError, match=r"^revoked: 2026-02-01 is before the consent date"):
        store.add(NY, "express_written", date(2026, 3, 1), revoked=date(2026, 2, 1))
    with pytest.raises(InputError, match=r"^revoked: .* is in the future"):
        store.add(NY, "express_written", date(2026, 3, 1),
                  revoked=utcnow().date() + timedelta(days=2))
    assert store.records(NY) == []
    # a clock of its own says what today is
    early = ConsentStore(settings, clock=lambda: datetime(2026, 3, 5, tzinfo=UTC))
    with pytest.raises(InputError, match="in the future"):
        early.add(NY, "express_written", date(2026, 3, 1), revoked=date(2026, 3, 6))
    assert early.add(NY, "express_written", date(2026, 3, 1), revoked=date(2026, 3, 1))


@pytest.mark.parametrize(("revoked", "why"), [
    ("2026-02-01", "is before the consent date 2026-03-01"),
    ((utcnow().date() + timedelta(days=3)).isoformat(), "is in the future"),
], ids=["before-the-consent", "future"])
def test_cli_consent_add_refuses_an_impossible_revocation(
        capsys: pytest.CaptureFixture[str], settings: Settings, revoked: str,
        why: str) -> None:
    code, out, err = cli(capsys, "consent", "add", DIGITS, "--type", "express_written",
                         "--date", "2026-03-01", "--revoked", revoked)
    one_line_error(code, out, err, "--revoked", why)
    assert ConsentStore(settings).records(NY) == []


def test_consent_import_rejects_an_impossible_revocation(settings: Settings,
                                                         tmp_path: Path) -> None:
    future = (utcnow().date() + timedelta(days=3)).isoformat()
    f = tmp_path / "c.csv"
    f.write_text("phone,type,date,revoked\n"
                 f"{DIGITS},express_written,2026-03-01,2026-02-01\n"
                 f"2125550101,express_written,2026-03-01,{future}\n"
                 "2125550102,express_written,2026-03-01,2026-03-01\n", encoding="utf-8")
    report = ConsentStore(settings).import_csv(f)
    assert report.added == 0  # all or nothing: the good row is not imported either
    assert [(e.line, e.field) for e in report.errors] == [(2, "revoked"), (3, "revoked")]
    assert "before the consent date" in report.errors[0].message
    assert "in the future" in report.errors[1].message


def test_api_refuses_an_impossible_revocation(settings: Settings) -> None:
    future = (utcnow().date() + timedelta(days=3)).isoformat()
    body = {"phone": NY, "type": "express_written", "date": "2026-03-01"}
    before, later, fine = post(settings, "/v1/consents", {**body, "revoked": "2026-02-01"},
                               {**body, "revoked": future}, {**body, "revoked": "2026-03-02"})
    assert refused_fields(before) == ["body.revoked"]
    assert "before the consent date" in before.json()["error"]["message"]
    assert refused_fields(later) == ["body.revoked"]
    assert fine.status_code == 201, fine.text
    assert [r.revoked for r in ConsentStore(settings).records(NY)] == [date(2026, 3, 2)]


def test_a_stored_record_revoked_before_its_grant_is_never_consent(
        settings: Settings, check: RulesCheck, capsys: pytest.CaptureFixture[str]) -> None:
    """A record stored before revocations were checked, revoked before it was granted, is a
    revocation: never current consent (``_valid`` and ``consent ls`` agree)."""
    with rules_engine(settings).begin() as conn:
        conn.execute(insert(consent_table).values(
            e164=NY, type="express_written", granted=date(2026, 3, 1),
            revoked=date(2026, 2, 1), created_at=utcnow()))
    assert run_check(check, NY, AT, line_type="landline") == []
    code, out, _ = cli(capsys, "consent", "ls", DIGITS, "--json")
    assert code == 0
    assert [r["status"] for r in json.loads(out)["records"]] == ["revoked"]


# -- 4: a revocation with nothing on file is stored --------------------------------------------

def test_revoke_with_nothing_on_file_revokes_a_consent_imported_later(
        capsys: pytest.CaptureFixture[str], settings: Settings, check: RulesCheck,
        tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "consent", "revoke", DIGITS, "--on", "2026-06-01")
    assert code == 0
    assert "holds no consent not yet revoked on 2026-06-01; the revocation is on file" in " ".join(
        out.split())
    assert DIGITS not in out
    code, out, _ = cli(capsys, "consent", "revoke", DIGITS, "--on", "2026-06-01", "--json")
    assert json.loads(out) == {"number": "+1212555****", "type": None, "on": "2026-06-01",
                               "revoked": 0}
    f = tmp_path / "late.csv"  # the consent, dated before the revocation, arrives later
    f.write_text(f"phone,type,date\n{DIGITS},express_written,2026-05-01\n", encoding="utf-8")
    code, out, err = cli(capsys, "consent", "import", str(f))
    assert code == 0, err
    assert run_check(check, NY, AT, line_type="landline") == []
    code, out, _ = cli(capsys, "consent", "ls", DIGITS, "--json")
    assert [(r["type"], r["date"], r["revoked"], r["status"])
            for r in json.loads(out)["records"]] == [
        ("express_written", "2026-05-01", None, "revoked"),
        ("revocation", "2026-06-01", "2026-06-01", "revocation")]
    ConsentStore(settings).add(NY, "express_written", date(2026, 6, 2))  # new consent counts
    assert codes(run_check(check, NY, AT, line_type="landline")) == ["EXEMPT_CONSENT"]


def test_revoke_of_one_type_not_held_is_stored_too(settings: Settings,
                                                   check: RulesCheck) -> None:
    store = ConsentStore(settings)
    assert store.revoke(NY, date(2026, 6, 1), type_="express_written") == 0
    marker = ConsentRecord("revocation", date(2026, 6, 1), None, date(2026, 6, 1))
    assert store.records(NY) == [marker]
    # revoking again, on that date or before it, adds nothing: the revocation covers it
    assert store.revoke(NY, date(2026, 6, 1)) == 0
    assert store.revoke(NY, date(2026, 5, 1)) == 0
    assert store.records(NY) == [marker]
    store.add(NY, "express_written", date(2026, 1, 5))
    assert run_check(check, NY, AT, line_type="landline") == []


# -- 7: a do-not-call request ends the EBR --------------------------------------------------------

def test_an_ebr_after_a_revocation_lifts_nothing(settings: Settings, check: RulesCheck) -> None:
    """47 CFR 64.1200(f)(5)(i): the seller honours the do-not-call request even if a
    relationship follows; only new written consent lifts the registry again."""
    store = ConsentStore(settings)
    store.add(NY, "ebr_purchase", date(2026, 9, 1))
    assert codes(run_check(check, NY, AT, line_type="landline")) == ["EXEMPT_EBR"]
    store.revoke(NY, date(2026, 6, 1))  # nothing held then: a revocation-only record
    assert run_check(check, NY, AT, line_type="landline") == []
    store.add(NY, "ebr_inquiry", date(2026, 10, 1))
    assert run_check(check, NY, AT, line_type="landline") == []
    store.add(NY, "express_written", date(2026, 10, 2))
    assert codes(run_check(check, NY, AT, line_type="landline")) == ["EXEMPT_CONSENT"]


# -- 9: an EBR window of N days ends N days after it began -----------------------------------------

@pytest.mark.parametrize(("day", "exempt"), [
    (date(2026, 10, 27), True),  # day 180 (1 May is day 1)
    (date(2026, 10, 28), False),  # 1 May + 180 days: no longer
])
def test_missouri_180_days(settings: Settings, check: RulesCheck, day: date,
                           exempt: bool) -> None:
    """Mo. Rev. Stat. 407.1095: 180 days, ending like a window in months does (the same day
    N later)."""
    ConsentStore(settings).add("+13145550100", "ebr_purchase", date(2026, 5, 1))
    at = datetime(day.year, day.month, day.day, 16, 0, tzinfo=UTC)
    found = codes(run_check(check, "+13145550100", at, line_type="landline"))
    assert ("EXEMPT_EBR" in found) is exempt


def test_days_and_months_end_alike() -> None:
    rule = EbrRule.model_validate({"id": "ebr", "kind": "ebr", "purchase_days": 1,
                                   "inquiry_months": 1, "citation": "test",
                                   "effective": "2000-01-01", "confidence": "high"})
    assert rule.ends("purchase", date(2026, 5, 1)) == date(2026, 5, 2)
    assert rule.ends("inquiry", date(2026, 5, 1)) == date(2026, 6, 1)


# -- 10, 11: import errors: the file's line, no phone number echoed --------------------------------

def test_consent_import_errors_mask_numbers_and_name_the_line(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> None:
    """Blank lines count, a row that spans lines is named by its first; a cell that may hold
    a phone number is quoted masked."""
    f = tmp_path / "c.csv"
    f.write_text("phone,type,date,expires,\n"
                 "\n"
                 "2125550101,2125550102,2026-01-05,,\n"  # line 3: a number as the type
                 "\n\n"
                 '2125550103,"express\nwritten",2026-01-05,,\n'  # lines 6-7
                 "2125550104,express,212-555-0105,,\n"  # line 8: a number as the date
                 "2125550106,express,2026-01-05,2125550107,\n"  # line 9
                 "2125550108,express,2026-01-05,,2125550109\n", encoding="utf-8")  # line 10
    code, out, err = cli(capsys, "consent", "import", str(f))
    assert code == 1
    shown = out + err
    assert [line.split(":")[0].strip() for line in err.splitlines()] == [
        "line 3, type", "line 6, type", "line 8, date", "line 9, expires", "line 10, column 5"]
    for n in range(2125550101, 2125550110):
        assert str(n)[3:] not in shown.replace("-", ""), shown
    assert "'212555****'" in err and "'212-555-****'" in err


def test_a_file_without_a_header_is_refused_without_its_numbers(settings: Settings,
                                                                tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text("+12125550101,express,2026-01-05\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        ConsentStore(settings).import_csv(f)
    assert "unknown column(s) '+121255*****'" in str(caught.value)
    assert "5550101" not in str(caught.value)


def test_cli_flags_are_quoted_masked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "consent", "add", DIGITS, "--type", "2125550109",
                         "--date", "2026-01-05")
    one_line_error(code, out, err, "--type", "'212555****'")
    code, out, err = cli(capsys, "consent", "add", DIGITS, "--type", "express",
                         "--date", "2125550109")
    one_line_error(code, out, err, "--date", "'212555****'")
    assert "5550109" not in err
