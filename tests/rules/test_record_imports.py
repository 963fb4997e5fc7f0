"""Consent and attempt records fail closed: an import is all or nothing (a file with a bad row
writes none of its rows, so a grant is never stored while the same file's revocation of it is
rejected); an attempt must name a campaign profile (a misspelt campaign's attempts would count
for no check); a subject given as only spaces is refused, not read as none. Through the
library, the CLI and ``POST /v1/attempts``; every time is fixed (``--at``)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dncguard.cli import run
from dncguard.config import Settings, load_settings
from dncguard.errors import InputError
from dncguard.sources.rules import AttemptStore, ConsentStore

from ._api import post, refused_fields

#: The dial time of every check: Wed 2026-12-02 14:00 in Miami.
DIAL = "2026-12-02T19:00:00Z"
MIAMI, MIAMI_2 = "+13055550100", "+13055550112"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
#: Three attempts the morning of the dial day: Florida's same-subject cap (3 in 24 h) is full.
MORNING = ("2026-12-02T10:00:00Z", "2026-12-02T11:00:00Z", "2026-12-02T12:00:00Z")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``dncguard ARGS`` in process: (exit code, stdout, stderr)."""
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def verdict(capsys: pytest.CaptureFixture[str], phone: str, *args: str) -> dict[str, Any]:
    """``dncguard check PHONE --at DIAL --line-type landline --json ARGS``."""
    code, out, err = cli(capsys, "check", phone, "--at", DIAL, "--line-type", "landline",
                         "--json", *args)
    assert code == 0, err
    got: dict[str, Any] = json.loads(out)
    return got


def codes(v: dict[str, Any]) -> list[str]:
    return [r["code"] for r in v["reasons"]]


def stored_attempts(settings: Settings, *phones: str) -> dict[str, Any]:
    return AttemptStore(settings).for_numbers(list(phones), EPOCH)


@pytest.fixture
def registry(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
             tmp_path: Path) -> None:
    """The reviewer's home: a US registry holding both Miami numbers, fresh at the dial
    time; Florida's own list and the other state lists not required."""
    monkeypatch.setenv("DNCGUARD_RULES_REGISTRY_OPTIONAL", '["US-TX","US-FL","US-PA"]')
    nat = tmp_path / "nat.csv"
    nat.write_text(f"phone\n{MIAMI}\n+12025550100\n", encoding="utf-8")
    code, _, err = cli(capsys, "lists", "import", str(nat), "--kind", "national",
                       "--jurisdiction", "US", "--snapshot-date", "2026-12-01",
                       "--name", "us-ftc")
    assert code == 0, err


# -- 1: an import is all or nothing ---------------------------------------------------------------

@pytest.mark.usefixtures("registry")
def test_a_consent_file_with_a_rejected_revocation_imports_nothing(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> None:
    """A grant row and the same number's revocation row with an impossible date: the grant
    alone would lift the registry hit (EXEMPT_CONSENT, allow). Nothing is imported, the bad
    row is listed (line, field, why) and the import exits 1; the number stays blocked."""
    f = tmp_path / "c1.csv"
    f.write_text("phone,type,date,expires,revoked\n"
                 f"{MIAMI},express_written,2026-01-10,,\n"
                 f"{MIAMI},express_written,2026-01-10,,2026-11-31\n", encoding="utf-8")
    code, out, err = cli(capsys, "consent", "import", str(f))
    assert code == 1
    assert "nothing imported" in out and "1 rows rejected of 2" in out, out
    assert "line 3, revoked: '2026-**-**' is not a date" in err, err
    assert ConsentStore(settings).records(MIAMI) == []
    v = verdict(capsys, MIAMI)
    assert v["decision"] == "block" and "EXEMPT_CONSENT" not in codes(v), v
    f.write_text(f.read_text(encoding="utf-8").replace("2026-11-31", "2026-11-30"),
                 encoding="utf-8")  # corrected: the whole file goes in
    code, out, err = cli(capsys, "consent", "import", str(f), "--json")
    assert code == 0, err
    assert json.loads(out) == {"rows": 2, "added": 2, "updated": 0, "duplicates": 0,
                               "rejectedRows": 0, "errors": []}
    v = verdict(capsys, MIAMI)
    assert v["decision"] == "block" and "EXEMPT_CONSENT" not in codes(v), v


def test_the_library_consent_import_is_all_or_nothing(settings: Settings,
                                                      tmp_path: Path) -> None:
    """``ConsentStore.import_csv``: one bad row among many good ones (the last of the file)
    writes nothing; the report lists it and counts every row."""
    f = tmp_path / "c.csv"
    rows = [f"+1202555{i:04d},express_written,2025-01-05" for i in range(1000, 1500)]
    f.write_text("phone,type,date\n" + "\n".join(rows) + "\n+12025559999,verbal,2025-01-05\n",
                 encoding="utf-8")
    report = ConsentStore(settings).import_csv(f)
    assert (report.rows, report.added, report.duplicates) == (501, 0, 0)
    assert [(e.line, e.field) for e in report.errors] == [(502, "type")]
    assert ConsentStore(settings).for_numbers(["+12025551000", "+12025551499"]) == {}


@pytest.mark.usefixtures("registry")
def test_an_attempts_file_with_a_rejected_row_imports_nothing(
        capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path) -> None:
    """Three good attempts and one rejected (an unknown outcome): storing the three would
    leave the fourth uncounted. Nothing is imported (exit 1, the row named); the corrected
    file imports all four and the cap defers the call."""
    f = tmp_path / "a.csv"
    f.write_text("phone,at,purpose,outcome\n"
                 + "".join(f"{MIAMI_2},{at},telemarketing,no_answer\n" for at in MORNING)
                 + f"{MIAMI_2},2026-12-02T13:00:00Z,telemarketing,hung up\n", encoding="utf-8")
    code, out, err = cli(capsys, "attempts", "import", str(f), "--json")
    assert code == 1
    got = json.loads(out)
    assert (got["rows"], got["added"], got["rejectedRows"]) == (4, 0, 1)
    assert [(e["line"], e["field"]) for e in got["errors"]] == [(5, "outcome")]
    assert stored_attempts(settings, MIAMI_2) == {}
    f.write_text(f.read_text(encoding="utf-8").replace("hung up", "no_answer"),
                 encoding="utf-8")
    code, out, err = cli(capsys, "attempts", "import", str(f))
    assert code == 0 and "4 added" in out, out + err
    v = verdict(capsys, MIAMI_2)
    assert v["decision"] == "defer" and codes(v) == ["FREQUENCY_CAP"], v


def test_a_failed_write_leaves_nothing(settings: Settings, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows of a good file are written in one transaction: a database failure part way
    keeps none of them."""
    f = tmp_path / "a.csv"
    f.write_text("phone,at,purpose\n"
                 + "".join(f"{MIAMI_2},{at},telemarketing\n" for at in MORNING),
                 encoding="utf-8")
    store = AttemptStore(settings)
    real = store._insert
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> str:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "_insert", failing)
    with pytest.raises(RuntimeError):
        store.import_csv(f)
    assert stored_attempts(settings, MIAMI_2) == {}


# -- 2: an attempt names a campaign profile -------------------------------------------------------

@pytest.mark.usefixtures("registry")
def test_a_misspelt_campaign_is_refused_by_attempts_record(
        capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    """``--campaign defualt`` three times: the attempts would count for no check (``check``
    refuses that campaign; the default campaign's check does not see them), so the fourth
    call was allowed. Each is refused, naming ``--campaign``; the same attempts in the
    ``default`` campaign defer the call (US-FL same_subject_cap)."""
    for at in MORNING:
        code, out, err = cli(capsys, "attempts", "record", MIAMI_2, "--at", at, "--purpose",
                             "telemarketing", "--campaign", "defualt")
        assert code == 2 and out == "", out
        assert "--campaign" in err and "'defualt'" in err and "default" in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert stored_attempts(settings, MIAMI_2) == {}
    assert verdict(capsys, MIAMI_2)["decision"] == "allow"
    for at in MORNING:
        code, out, err = cli(capsys, "attempts", "record", MIAMI_2, "--at", at, "--purpose",
                             "telemarketing", "--campaign", "default")
        assert code == 0 and "recorded" in out, err
    v = verdict(capsys, MIAMI_2)
    assert v["decision"] == "defer" and codes(v) == ["FREQUENCY_CAP"], v


def test_a_misspelt_campaign_rejects_its_import_row(capsys: pytest.CaptureFixture[str],
                                                    settings: Settings,
                                                    tmp_path: Path) -> None:
    """An import's campaign cell naming no profile rejects its row (line, ``campaign``), and
    so the file; an empty cell is the default campaign."""
    f = tmp_path / "a.csv"
    f.write_text("phone,at,campaign,purpose\n"
                 f"{MIAMI_2},{MORNING[0]},,telemarketing\n"
                 f"{MIAMI_2},{MORNING[1]},default,telemarketing\n"
                 f"{MIAMI_2},{MORNING[2]},defualt,telemarketing\n", encoding="utf-8")
    code, out, err = cli(capsys, "attempts", "import", str(f), "--json")
    assert code == 1
    got = json.loads(out)
    assert [(e["line"], e["field"]) for e in got["errors"]] == [(4, "campaign")]
    assert "'defualt'" in got["errors"][0]["message"]
    assert "configured: default" in got["errors"][0]["message"]
    assert stored_attempts(settings, MIAMI_2) == {}
    f.write_text(f.read_text(encoding="utf-8").replace("defualt", "default"),
                 encoding="utf-8")
    report = AttemptStore(settings).import_csv(f)
    assert (report.added, report.errors) == (3, [])
    assert {a.campaign for a in stored_attempts(settings, MIAMI_2)[MIAMI_2]} == {"default"}


def test_the_library_records_only_a_configured_campaign(tmp_path: Path) -> None:
    """``AttemptStore.record``: a campaign is ``default`` or a configured ``[campaigns.NAME]``
    (spaces around it removed, as stored); any other name is refused, the message starting
    with the field."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dncguard.toml").write_text('[campaigns.spring]\npurpose = "telemarketing"\n',
                                        encoding="utf-8")
    settings = load_settings(home=home)
    log = AttemptStore(settings, clock=lambda: datetime(2026, 12, 2, 19, tzinfo=UTC))
    at = datetime(2026, 12, 2, 10, tzinfo=UTC)
    with pytest.raises(InputError, match=r"^campaign: 'sprng' names no campaign profile; "
                                         r"configured: default, spring"):
        log.record(MIAMI_2, at, campaign="sprng")
    with pytest.raises(InputError, match=r"^campaign: 'Spring' names no campaign profile"):
        log.record(MIAMI_2, at, campaign="Spring")
    assert stored_attempts(settings, MIAMI_2) == {}
    assert log.record(MIAMI_2, at, campaign=" spring ")
    assert log.record(MIAMI_2, at + timedelta(hours=1), campaign="default")
    assert [a.campaign for a in stored_attempts(settings, MIAMI_2)[MIAMI_2]] == [
        "spring", "default"]


def test_the_api_refuses_a_misspelt_campaign(settings: Settings) -> None:
    """``POST /v1/attempts`` with a campaign naming no profile: 422 naming
    ``body.campaign`` (not ``body.purpose``, even without a purpose); nothing stored."""
    body = {"phone": MIAMI_2, "at": MORNING[0], "purpose": "telemarketing",
            "campaign": "defualt"}
    with_purpose, without = post(settings, "/v1/attempts", body,
                                 {k: v for k, v in body.items() if k != "purpose"})
    assert refused_fields(with_purpose) == ["body.campaign"]
    assert "'defualt'" in with_purpose.json()["error"]["message"]
    assert refused_fields(without) == ["body.campaign"]
    assert stored_attempts(settings, MIAMI_2) == {}
    ok, = post(settings, "/v1/attempts", {**body, "campaign": "default"})
    assert ok.status_code == 201, ok.text


# -- 3: a subject given blank ---------------------------------------------------------------------

def test_a_subject_cell_of_only_spaces_rejects_its_row(capsys: pytest.CaptureFixture[str],
                                                       settings: Settings,
                                                       tmp_path: Path) -> None:
    """An import's ``subject`` cell of only spaces is refused (line, ``subject``), not read
    as no subject; an empty cell still counts by the campaign, as the docs say."""
    f = tmp_path / "a.csv"
    f.write_text("phone,at,purpose,subject\n"
                 f"{MIAMI_2},{MORNING[0]},collections,debt-1\n"
                 f"{MIAMI_2},{MORNING[1]},collections,\n"
                 f"{MIAMI_2},{MORNING[2]},collections,   \n", encoding="utf-8")
    report = AttemptStore(settings).import_csv(f)
    assert [(e.line, e.field) for e in report.errors] == [(4, "subject")]
    assert "only spaces" in report.errors[0].message
    assert report.added == 0 and stored_attempts(settings, MIAMI_2) == {}
    code, out, err = cli(capsys, "attempts", "import", str(f))
    assert code == 1 and "line 4, subject: is only spaces" in err, out + err
    f.write_text(f.read_text(encoding="utf-8").replace(",   \n", ",debt-2\n"),
                 encoding="utf-8")
    report = AttemptStore(settings).import_csv(f)
    assert (report.added, report.errors) == (3, [])
    assert sorted(a.subject for a in stored_attempts(settings, MIAMI_2)[MIAMI_2]) == [
        "debt-1", "debt-2", "default"]


def test_a_blank_subject_flag_is_refused(capsys: pytest.CaptureFixture[str],
                                         settings: Settings) -> None:
    """``attempts record --subject "  "``: refused in one line naming ``--subject``, nothing
    stored; the library refuses it too, naming the field."""
    code, out, err = cli(capsys, "attempts", "record", MIAMI_2, "--at", MORNING[0],
                         "--purpose", "collections", "--subject", "  ")
    assert code == 2 and out == "" and "--subject" in err and "blank" in err, err
    with pytest.raises(InputError, match=r"^subject: is blank"):
        AttemptStore(settings).record(MIAMI_2, datetime(2026, 12, 2, 10, tzinfo=UTC),
                                      purpose="collections", subject=" \t ")
    assert stored_attempts(settings, MIAMI_2) == {}


def test_consent_dates_of_only_spaces_stay_empty(settings: Settings, tmp_path: Path) -> None:
    """Only the subject distinguishes a cell of spaces: a consent's optional ``expires``
    of spaces is an empty cell, as before."""
    f = tmp_path / "c.csv"
    f.write_text(f"phone,type,date,expires\n{MIAMI},express_written,2025-01-05,  \n",
                 encoding="utf-8")
    report = ConsentStore(settings).import_csv(f)
    assert (report.added, report.errors) == (1, [])
    assert ConsentStore(settings).records(MIAMI)[0].expires is None
    assert ConsentStore(settings).records(MIAMI)[0].granted == date(2025, 1, 5)
