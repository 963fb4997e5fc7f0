"""An attempt's outcome is one of the known outcomes or refused: the caps compare it with the
rules' ``cooldown_after``, so an outcome they do not understand (``Conversation``,
``conversed``) would skip Reg F's 7-day pause after a conversation and allow the next call.

Through the library (``AttemptStore.record`` and ``import_csv``), the CLI (``attempts record``,
``attempts import``, ``check``) and the HTTP route (``POST /v1/attempts``); and the rules data
(every ``cooldown_after`` is a known outcome, a rules folder naming another is refused), and
attempts stored before outcomes were checked (compared in lower case; an unknown one starts
the pause). The new names are imported inside the tests that use them, so that every
behaviour test runs (and fails) on the code before the fix too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dncguard.config import Settings
from dncguard.errors import InputError
from dncguard.sources.rules import AttemptStore, RulesCheck, RulesSettings, load_ruleset
from dncguard.sources.rules.schema import FrequencyCapRule

from .conftest import copy_rules_data, run_check

AT = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)  # Wed 12:00 in New York
NY = "+12125550100"  # New York: only the federal caps (Reg F for collections)
TALK = AT - timedelta(days=2)  # within Reg F's 7-day pause at AT


def _cooldown(check: RulesCheck, phone: str = NY, subject: str = "debt-1") -> list[str]:
    """The FREQUENCY_CAP details of a collections call to ``phone`` on ``subject`` at AT."""
    reasons = run_check(check, phone, AT, purpose="collections", subject=subject)
    return [r.detail for r in reasons if r.code == "FREQUENCY_CAP"]


def _stored(settings: Settings, phone: str = NY) -> list[str | None]:
    got = AttemptStore(settings).for_numbers([phone], AT - timedelta(days=30))
    return [a.outcome for a in got.get(phone, [])]


# -- the library -------------------------------------------------------------------------------

@pytest.mark.parametrize("given", ["Conversation", " CONVERSATION ", "conversation"])
def test_record_normalises_case_and_spaces(settings: Settings, check: RulesCheck,
                                           given: str) -> None:
    """Any case, spaces around ignored: stored as the known outcome, and the pause starts."""
    AttemptStore(settings).record(NY, TALK, purpose="collections", subject="debt-1",
                                  outcome=given)
    assert _stored(settings) == ["conversation"]
    details = _cooldown(check)
    assert len(details) == 1 and details[0].startswith("a conversation at ")


@pytest.mark.parametrize("given", ["conversed", "talked", "no answer", "conversation!"])
def test_record_refuses_an_unknown_outcome(settings: Settings, given: str) -> None:
    """The error names the value and the accepted outcomes; nothing is stored."""
    with pytest.raises(InputError) as err:
        AttemptStore(settings).record(NY, TALK, purpose="collections", subject="debt-1",
                                      outcome=given)
    msg = str(err.value)
    assert msg.startswith("outcome: ") and repr(given) in msg
    for known in ("conversation", "voicemail", "no_answer"):
        assert known in msg
    assert _stored(settings) == []


@pytest.mark.parametrize("given", [None, "", "   "])
def test_record_without_an_outcome(settings: Settings, check: RulesCheck,
                                   given: str | None) -> None:
    """No outcome (or a blank one) is still allowed, stored as none, and starts no pause."""
    assert AttemptStore(settings).record(NY, TALK, purpose="collections", subject="debt-1",
                                         outcome=given)
    assert _stored(settings) == [None]
    assert _cooldown(check) == []


def test_import_rejects_the_row_and_keeps_the_others(settings: Settings, check: RulesCheck,
                                                     tmp_path: Path) -> None:
    """A row with an unknown outcome is reported (row, field ``outcome``, the value), and
    nothing is imported (all or nothing); the corrected file imports every row, outcomes
    normalised."""
    f = tmp_path / "attempts.csv"
    f.write_text("phone,at,purpose,subject,outcome\n"
                 f"{NY},{TALK:%Y-%m-%dT%H:%M:%SZ},collections,debt-1, Conversation \n"
                 f"{NY},2026-11-17T10:00:00Z,collections,debt-2,conversed\n"
                 f"{NY},2026-11-17T11:00:00Z,collections,debt-3,VOICEMAIL\n"
                 f"{NY},2026-11-17T12:00:00Z,collections,debt-4,\n", encoding="utf-8")
    report = AttemptStore(settings).import_csv(f)
    assert (report.rows, report.added) == (4, 0)
    assert [(e.line, e.field) for e in report.errors] == [(3, "outcome")]  # header: line 1
    assert "'conversed'" in report.errors[0].message
    assert "conversation" in report.errors[0].message
    assert _stored(settings) == []
    f.write_text(f.read_text(encoding="utf-8").replace("conversed", ""), encoding="utf-8")
    report = AttemptStore(settings).import_csv(f)
    assert (report.rows, report.added, report.errors) == (4, 4, [])
    assert sorted(_stored(settings), key=lambda o: o or "") == [
        None, None, "conversation", "voicemail"]
    assert len(_cooldown(check, subject="debt-1")) == 1
    assert _cooldown(check, subject="debt-3") == []  # a voicemail starts no pause


# -- attempts stored before outcomes were checked ------------------------------------------------

def _store_raw(settings: Settings, outcome: str, subject: str) -> None:
    """An attempt as an older version stored it: any text as its outcome."""
    from sqlalchemy import insert

    from dncguard.sources.rules.stores import attempts_table, rules_engine

    with rules_engine(settings).begin() as conn:
        conn.execute(insert(attempts_table).values(
            e164=NY, at=TALK, campaign="c", purpose="collections", subject=subject,
            outcome=outcome, created_at=AT))


def test_a_stored_outcome_is_compared_in_any_case(settings: Settings,
                                                  check: RulesCheck) -> None:
    _store_raw(settings, " Conversation", "debt-1")
    details = _cooldown(check)
    assert len(details) == 1 and details[0].startswith("a conversation at ")


def test_an_unknown_stored_outcome_starts_the_pause(settings: Settings,
                                                    check: RulesCheck) -> None:
    """It may have been a conversation: the pause starts (a skipped one is a violation, an
    extra one a delay), and the detail says why; a known outcome that is not a conversation
    starts none."""
    _store_raw(settings, "conversed", "debt-1")
    _store_raw(settings, "Voicemail", "debt-2")
    details = _cooldown(check, subject="debt-1")
    assert len(details) == 1
    assert "unknown outcome 'conversed'" in details[0] and "conversation" in details[0]
    reasons = run_check(check, NY, AT, purpose="collections", subject="debt-1")
    assert reasons[0].next_allowed_at == TALK + timedelta(days=7)
    assert _cooldown(check, subject="debt-2") == []


# -- the rules data --------------------------------------------------------------------------------

def test_every_packaged_cooldown_names_a_known_outcome() -> None:
    from dncguard.sources.rules.schema import OUTCOMES

    ruleset = load_ruleset()
    named = {o for j in ruleset.jurisdictions()
             for _, r in ruleset.of_kind(FrequencyCapRule, [j]) for o in r.cooldown_after}
    assert "conversation" in named  # Reg F's pause after a conversation
    assert named <= set(OUTCOMES)


def _rules_folder(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the packaged rules data with ``old`` replaced by ``new`` in US.yaml."""
    folder = copy_rules_data(tmp_path / "rules")
    us = folder / "US.yaml"
    text = us.read_text("utf-8")
    assert text.count(old) == 1
    us.write_text(text.replace(old, new), "utf-8")
    return folder


def test_a_rules_file_naming_an_unknown_outcome_is_refused(settings: Settings,
                                                           tmp_path: Path) -> None:
    from dncguard.errors import ConfigError

    folder = _rules_folder(tmp_path, "cooldown_after:\n  - conversation\n",
                           "cooldown_after:\n  - conversed\n")
    with pytest.raises(ConfigError) as err:
        RulesCheck(settings, rules_settings=RulesSettings(data_dir=folder,
                                                          require_registries=False))
    msg = str(err.value)
    assert "US.yaml" in msg and "reg_f_call_frequency" in msg and "'conversed'" in msg
    assert "conversation" in msg.replace("'conversed'", "")


def test_a_rules_file_outcome_in_another_case_still_pauses(settings: Settings,
                                                           tmp_path: Path) -> None:
    folder = _rules_folder(tmp_path, "cooldown_after:\n  - conversation\n",
                           "cooldown_after:\n  - Conversation\n")
    check = RulesCheck(settings, rules_settings=RulesSettings(
        data_dir=folder, require_registries=False, unknown_line_type="ignore"))
    AttemptStore(settings).record(NY, TALK, purpose="collections", subject="debt-1",
                                  outcome="conversation")
    assert len(_cooldown(check)) == 1


# -- the CLI ---------------------------------------------------------------------------------------

def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from dncguard.cli import run

    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_record_and_check(capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The reported case: ``--outcome Conversation`` pauses the next call like
    ``conversation``; ``--outcome conversed`` is refused in one line (exit 2)."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    talk = "2026-12-01T16:00:00Z"
    for number, outcome in (("2025550104", "Conversation"), ("2025550105", "conversation")):
        code, out, err = _cli(capsys, "attempts", "record", number, "--at", talk,
                              "--purpose", "collections", "--subject", "debt-1",
                              "--outcome", outcome)
        assert code == 0, err
    code, out, err = _cli(capsys, "attempts", "record", "2025550106", "--at", talk,
                          "--purpose", "collections", "--subject", "debt-1",
                          "--outcome", "conversed")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err
    assert "outcome" in err and "'conversed'" in err and "conversation" in err
    for number in ("2025550104", "2025550105"):
        code, out, err = _cli(capsys, "check", number, "--purpose", "collections",
                              "--subject", "debt-1", "--at", "2026-12-02T17:00:00Z",
                              "--line-type", "landline", "--json")
        verdict = json.loads(out)
        assert verdict["decision"] == "defer", (number, verdict)
        assert [r["code"] for r in verdict["reasons"]] == ["FREQUENCY_CAP"]


def test_cli_import_reports_the_row(capsys: pytest.CaptureFixture[str], settings: Settings,
                                    tmp_path: Path) -> None:
    f = tmp_path / "attempts.csv"
    f.write_text("phone,at,outcome\n"
                 "2125550100,2026-11-17T10:00:00Z,No_Answer\n"
                 "2125550100,2026-11-17T11:00:00Z,conversed\n", encoding="utf-8")
    code, out, err = _cli(capsys, "attempts", "import", str(f), "--purpose", "telemarketing",
                          "--json")
    assert code == 1
    got = json.loads(out)
    assert (got["rows"], got["added"], got["rejectedRows"]) == (2, 0, 1)
    assert got["errors"][0]["line"] == 3 and got["errors"][0]["field"] == "outcome"
    assert "'conversed'" in got["errors"][0]["message"]
    assert _stored(settings) == []  # all or nothing


# -- the HTTP route --------------------------------------------------------------------------------

def test_http_attempts_outcome(settings: Settings, check: RulesCheck) -> None:
    """``POST /v1/attempts``: an unknown outcome is a 422 naming ``body.outcome``; a known one
    in another case is stored (and answered) as the known outcome."""
    import asyncio

    import httpx

    from dncguard.server.app import create_app
    from dncguard.server.keys import KeyStore
    from dncguard.store import get_engine, metadata

    engine = get_engine(settings)
    metadata.create_all(engine)
    key = KeyStore(engine).create("test-write", ["dnc:write"])[1]
    app = create_app(settings, run_jobs=False)
    body = {"phone": NY, "at": TALK.isoformat(), "campaign": "default",
            "purpose": "collections", "subject": "debt-1"}

    async def post(*payloads: dict[str, str]) -> list[httpx.Response]:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://test",
                headers={"Authorization": f"Bearer {key}"}) as client:
            return [await client.post("/v1/attempts", json=p) for p in payloads]

    bad, ok, none = asyncio.run(post({**body, "outcome": "conversed"},
                                     {**body, "outcome": " Conversation"},
                                     {**body, "subject": "debt-2"}))
    assert bad.status_code == 422, bad.text
    error = bad.json()["error"]
    assert [f["field"] for f in error["fields"]] == ["body.outcome"]
    assert "'conversed'" in error["fields"][0]["message"]
    assert "conversation" in error["fields"][0]["message"]
    assert ok.status_code == 201, ok.text
    assert ok.json()["outcome"] == "conversation"
    assert none.status_code == 201 and none.json()["outcome"] is None
    assert sorted(_stored(settings), key=lambda o: o or "") == [None, "conversation"]
    assert len(_cooldown(check)) == 1


def test_the_cli_help_names_every_outcome() -> None:
    """The `attempts record --outcome` help is written out (the CLI module does not import
    the stores); it names exactly the known outcomes."""
    import inspect

    from dncguard.cli import _rules
    from dncguard.sources.rules.schema import OUTCOMES

    option = inspect.signature(_rules.attempts_record).parameters["outcome"].default
    assert option.help.split(" (")[0].split(" | ") == list(OUTCOMES)
