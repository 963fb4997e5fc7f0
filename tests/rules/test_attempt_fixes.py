"""The attempt log fails closed: an attempt sent again with its final outcome or another
purpose is counted, not dropped as a duplicate; every attempt has a purpose the user gave;
subjects are compared as they are stored (spaces around removed, any case); an attempt in
the future is refused, and one stamped just after the dial time counts; import errors name
the file's line and never echo a phone number. Through the library, the CLI and
``POST /v1/attempts``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dncguard.audit import audit_log
from dncguard.cli import run
from dncguard.config import CampaignProfile, Settings
from dncguard.errors import InputError
from dncguard.sources.rules import AttemptStore, RulesCheck
from dncguard.store import utcnow

from ._api import post, refused_fields
from .conftest import run_check

AT = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # Wed 12:00 in New York and Miami
TALK = AT - timedelta(days=2)
NY, FL, MA = "+12125550100", "+13055550100", "+16175550100"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def stored(settings: Settings, phone: str = NY) -> list[tuple[str, str, str | None]]:
    """(purpose, subject, outcome) of the number's attempts, oldest first."""
    got = AttemptStore(settings).for_numbers([phone], EPOCH)
    return [(a.purpose, a.subject, a.outcome) for a in got.get(phone, [])]


def caps(check: RulesCheck, phone: str = NY, **kw: Any) -> list[str]:
    """The FREQUENCY_CAP details of a call at AT (collections on debt-1 unless told)."""
    kw.setdefault("purpose", "collections")
    kw.setdefault("subject", "debt-1")
    return [r.detail for r in run_check(check, phone, AT, **kw) if r.code == "FREQUENCY_CAP"]


# -- 1: the same attempt sent again with more, or other, facts ------------------------------------

def test_a_final_outcome_sent_again_starts_the_pause(settings: Settings,
                                                     check: RulesCheck) -> None:
    """Reg F's 7-day pause after a conversation (12 CFR 1006.14(b)(2)(ii)) starts when the
    outcome arrives after the attempt: it is written on the stored attempt (one attempt,
    not two), and the audit trail says so."""
    log = AttemptStore(settings)
    assert log.record(NY, TALK, purpose="collections", subject="debt-1")
    assert caps(check) == []
    assert log.record(NY, TALK, purpose="collections", subject="debt-1", outcome="conversation")
    assert stored(settings) == [("collections", "debt-1", "conversation")]
    assert len(caps(check)) == 1 and "conversation" in caps(check)[0]
    changes = [r.to_dict()["data"] for r in audit_log(settings).records(kind="list")
               if r.action == "attempt"]
    assert [(c["outcome"], c.get("updated")) for c in changes] == [
        (None, None), ("conversation", True)]
    # the identical attempt, or one without the outcome it now holds, is a duplicate
    assert not log.record(NY, TALK, purpose="collections", subject="debt-1",
                          outcome="Conversation")
    assert not log.record(NY, TALK, purpose="collections", subject="debt-1")
    assert stored(settings) == [("collections", "debt-1", "conversation")]


def test_a_conflicting_outcome_is_kept(settings: Settings, check: RulesCheck) -> None:
    """``no_answer`` then ``conversation`` for one attempt: both are kept (the pause starts),
    never one dropped."""
    log = AttemptStore(settings)
    log.record(NY, TALK, purpose="collections", subject="debt-1", outcome="no_answer")
    assert log.record(NY, TALK, purpose="collections", subject="debt-1",
                      outcome="conversation")
    assert sorted(o or "" for _, _, o in stored(settings)) == ["conversation", "no_answer"]
    assert len(caps(check)) == 1


def test_a_corrected_purpose_is_counted(settings: Settings, check: RulesCheck) -> None:
    """940 CMR 7.04(1)(f), 2 collection calls per 7 days: an attempt first sent as
    telemarketing and again as collections counts as a collection call."""
    log = AttemptStore(settings)
    log.record(MA, AT - timedelta(days=3), purpose="collections", subject="d")
    log.record(MA, AT - timedelta(days=1), purpose="telemarketing", subject="d")
    assert caps(check, MA, subject="d") == []
    assert log.record(MA, AT - timedelta(days=1), purpose="collections", subject="d")
    assert len(caps(check, MA, subject="d")) == 1


def test_cli_import_of_the_outcome_later(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """The reported case: the dialer's export sent again with the outcome filled in was
    "already stored" (exit 0) and the next call was allowed."""
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    first, again = tmp_path / "a1.csv", tmp_path / "a2.csv"
    head = "phone,at,purpose,subject,outcome\n"
    first.write_text(head + "2125550100,2026-11-30T16:00:00Z,collections,debt-1,\n")
    again.write_text(head + "2125550100,2026-11-30T16:00:00Z,collections,debt-1,conversation\n")
    code, out, err = cli(capsys, "attempts", "import", str(first))
    assert code == 0, err
    code, out, err = cli(capsys, "attempts", "import", str(again), "--json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["added"], got["updated"], got["duplicates"]) == (0, 1, 0)
    code, out, err = cli(capsys, "check", "2125550100", "--purpose", "collections",
                         "--subject", "debt-1", "--at", "2026-12-01T17:00:00Z",
                         "--line-type", "landline", "--json")
    verdict = json.loads(out)
    assert verdict["decision"] == "defer", verdict
    code, out, _ = cli(capsys, "attempts", "import", str(again))
    assert code == 0 and "0 added, 1 already stored" in out


# -- 5: every attempt has a purpose the user gave -------------------------------------------------

def test_cli_record_needs_a_purpose(capsys: pytest.CaptureFixture[str],
                                    settings: Settings) -> None:
    code, out, err = cli(capsys, "attempts", "record", "2125550100",
                         "--at", "2026-11-18T15:00:00Z", "--subject", "debt-1")
    assert code == 2 and out == "" and "--purpose" in err and "Traceback" not in err
    assert stored(settings) == []
    code, out, err = cli(capsys, "attempts", "record", "2125550100",
                         "--at", "2026-11-18T15:00:00Z", "--subject", "debt-1",
                         "--purpose", "Collections", "--json")
    assert code == 0, err
    assert json.loads(out)["purpose"] == "collections"
    assert stored(settings) == [("collections", "debt-1", None)]


def test_api_needs_a_purpose_unless_the_campaign_is_configured(settings: Settings) -> None:
    """The built-in default campaign was read as telemarketing, so a collections attempt
    posted without its purpose escaped the collections caps: refused, naming the field."""
    body = {"phone": NY, "at": TALK.isoformat(), "subject": "debt-1"}
    bare, given = post(settings, "/v1/attempts", body, {**body, "purpose": "collections"})
    assert refused_fields(bare) == ["body.purpose"]
    assert given.status_code == 201, given.text
    assert stored(settings) == [("collections", "debt-1", None)]


def test_import_needs_every_rows_purpose(capsys: pytest.CaptureFixture[str],
                                         settings: Settings, tmp_path: Path) -> None:
    """An empty purpose cell rejects its row (naming its line), and then nothing is imported;
    without a purpose column the file is refused, unless ``--purpose`` gives the file's
    purpose."""
    f = tmp_path / "a.csv"
    f.write_text("phone,at,purpose,subject\n"
                 "2125550100,2026-11-17T10:00:00Z,,debt-1\n"
                 "2125550100,2026-11-17T11:00:00Z,collections,debt-2\n", encoding="utf-8")
    code, out, err = cli(capsys, "attempts", "import", str(f), "--json")
    assert code == 1
    got = json.loads(out)
    assert got["added"] == 0 and [(e["line"], e["field"]) for e in got["errors"]] == [
        (2, "purpose")]
    assert "--purpose" in got["errors"][0]["message"]
    assert stored(settings) == []  # all or nothing
    code, out, err = cli(capsys, "attempts", "import", str(f), "--purpose", "collections")
    assert code == 0 and "2 added, 0 already stored" in out, out + err
    assert sorted(stored(settings)) == [("collections", "debt-1", None),
                                        ("collections", "debt-2", None)]
    bare = tmp_path / "b.csv"
    bare.write_text("phone,at\n2125550100,2026-11-17T12:00:00Z\n", encoding="utf-8")
    code, out, err = cli(capsys, "attempts", "import", str(bare))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no purpose column" in err and "--purpose" in err
    code, out, err = cli(capsys, "attempts", "import", str(bare), "--purpose", "informational")
    assert code == 0, err
    assert ("informational", "default", None) in stored(settings)


# -- 6: subjects compared as stored ---------------------------------------------------------------

def test_subjects_are_stripped_and_any_case(settings: Settings, check: RulesCheck) -> None:
    """A debt id recorded with spaces around or in another case is the same debt, on this
    number and on the holder's others (12 CFR 1006.14(b)(2))."""
    log = AttemptStore(settings)
    log.record(NY, TALK, purpose="collections", subject=" DEBT-42 ", outcome="conversation")
    assert stored(settings) == [("collections", "debt-42", "conversation")]
    assert len(caps(check, subject="Debt-42")) == 1
    assert len(caps(check, "+19175550100", subject=" debt-42")) == 1  # another number
    assert caps(check, subject="debt-43") == []


def test_without_a_subject_the_campaign_is_the_subject(settings: Settings,
                                                       check: RulesCheck) -> None:
    """Attempts recorded without a subject count for checks of their campaign (spaces
    around and case aside). A check that names no subject counts them, and this number's
    attempts on any debt id too: it may be about that debt (a conversation about debt-9
    let a collections check without a subject through Reg F's pause)."""
    settings.campaigns["Spring"] = CampaignProfile()  # an attempt names a campaign profile
    log = AttemptStore(settings)
    for hours in (20, 10, 2):  # Fla. Stat. 501.616(6)(b): 3 per 24 h on one subject
        log.record(FL, AT - timedelta(hours=hours), campaign=" Spring ")
    assert stored(settings, FL)[0][1] == "spring"
    assert len(caps(check, FL, purpose="telemarketing", subject="", campaign="spring")) == 1
    log.record(NY, TALK, purpose="collections", subject="debt-9", outcome="conversation")
    (paused,) = caps(check, subject="")
    assert "or any subject of this number: the check names none" in paused
    assert len(caps(check, subject="debt-9")) == 1
    assert caps(check, subject="debt-10") == []  # another named debt keeps its own count
    assert caps(check, "+19175550100", subject="") == []  # another number, no debt named


def test_api_stores_the_subject_as_compared(settings: Settings, check: RulesCheck) -> None:
    body = {"phone": NY, "at": TALK.isoformat(), "purpose": "collections",
            "outcome": "conversation"}
    ok, blank = post(settings, "/v1/attempts", {**body, "subject": " Debt-1 "},
                     {**body, "subject": "   "})
    assert ok.status_code == 201, ok.text
    assert ok.json()["subject"] == "debt-1"
    assert refused_fields(blank) == ["body.subject"]
    assert len(caps(check)) == 1


def test_a_subject_longer_as_stored_is_refused(settings: Settings, tmp_path: Path) -> None:
    """Lower case can lengthen a subject ('İ' is two characters): one that fits as given but
    not as stored is refused, naming the field, not left to the database (a 500 on
    PostgreSQL)."""
    long = "İ" * 150  # 150 characters given, 300 stored
    body = {"phone": NY, "at": TALK.isoformat(), "purpose": "collections"}
    resp, = post(settings, "/v1/attempts", {**body, "subject": long})
    assert refused_fields(resp) == ["body.subject"]
    with pytest.raises(InputError, match=r"^subject: is 300 characters long"):
        AttemptStore(settings).record(NY, TALK, purpose="collections", subject=long)
    path = tmp_path / "attempts.csv"
    path.write_text(f"phone,at,purpose,subject\n{NY},{TALK.isoformat()},collections,{long}\n"
                    f"{NY},{TALK.isoformat()},collections,{'c' * 201}\n", encoding="utf-8")
    report = AttemptStore(settings).import_csv(path)
    assert [(e.line, e.field) for e in report.errors] == [(2, "subject"), (3, "subject")]
    assert stored(settings) == []


# -- 8: attempts in the future -----------------------------------------------------------------

def test_an_attempt_in_the_future_is_refused(settings: Settings) -> None:
    """An attempt not made yet would count against the caps only from its time on: refused,
    with 5 minutes' leeway for a dialer's clock."""
    log = AttemptStore(settings, clock=lambda: AT)
    assert log.record(NY, AT + timedelta(minutes=4), purpose="collections", subject="d")
    with pytest.raises(InputError, match=r"^at: 2026-11-18T17:06:00Z is in the future"):
        log.record(NY, AT + timedelta(minutes=6), purpose="collections", subject="d")
    assert len(stored(settings)) == 1


def test_future_attempts_are_refused_by_every_path(capsys: pytest.CaptureFixture[str],
                                                   settings: Settings,
                                                   tmp_path: Path) -> None:
    later = (utcnow() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = cli(capsys, "attempts", "record", "2125550100", "--at", later,
                         "--purpose", "collections")
    assert code == 2 and "at: " in err and "in the future" in err, err
    f = tmp_path / "a.csv"
    f.write_text(f"phone,at,purpose\n2125550100,{later},collections\n"
                 "2125550100,2026-11-17T10:00:00Z,collections\n", encoding="utf-8")
    code, out, err = cli(capsys, "attempts", "import", str(f), "--json")
    assert code == 1
    assert [(e["line"], e["field"]) for e in json.loads(out)["errors"]] == [(2, "at")]
    (resp,) = post(settings, "/v1/attempts", {"phone": NY, "at": later,
                                               "purpose": "collections"})
    assert refused_fields(resp) == ["body.at"]
    assert stored(settings) == []  # an import is all or nothing


def test_an_attempt_just_after_the_dial_time_counts(settings: Settings,
                                                    check: RulesCheck) -> None:
    """A dialer whose clock runs ahead stamps an attempt a little after the check's time:
    it counts (the fourth call on the subject in 24 h is deferred)."""
    settings.campaigns["spring"] = CampaignProfile()  # an attempt names a campaign profile
    log = AttemptStore(settings)
    for when in (AT - timedelta(hours=20), AT - timedelta(hours=10),
                 AT + timedelta(minutes=2)):
        log.record(FL, when, campaign="spring")
    assert len(caps(check, FL, purpose="telemarketing", subject="", campaign="spring")) == 1


# -- 10, 11: import errors ------------------------------------------------------------------------

def test_attempt_import_errors_mask_numbers_and_name_the_line(settings: Settings,
                                                              tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("phone,at,purpose,outcome\n\n"
                 "2125550100,2125550101,collections,\n"  # line 3: a number as the time
                 "\n"
                 "2125550100,2026-11-17T10:00:00Z,2125550102,\n"  # line 5
                 "2125550100,2026-11-17T11:00:00Z,collections,2125550103\n", encoding="utf-8")
    report = AttemptStore(settings).import_csv(f)
    assert [(e.line, e.field) for e in report.errors] == [(3, "at"), (5, "purpose"),
                                                          (6, "outcome")]
    text = "\n".join(str(e) for e in report.errors)
    assert text.count("'212555****'") == 3, text
    for n in ("5550101", "5550102", "5550103"):
        assert n not in text
