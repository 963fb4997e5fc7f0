"""A US national list covers the area codes it holds, never every US number.

The FTC registry is downloaded per area code (a seller downloads the area codes it subscribed
to, one file each, ``ftc-202.zip``). A list imported from some area codes' files cannot show
that a number of another area code is not registered: while the US registry is required, such
a number is ``error``/``REGISTRY_MISSING``, never ``allow``. A later import under the same name
replaces the list, so area codes are imported together (one zip or one file).
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dncguard.config import CampaignProfile, Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.snapshots import nanp_areas, open_snapshot, write_snapshot
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.phones import state_for
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.rules import ConsentStore, RulesCheck
from dncguard.sources.rules import source as rules_source

from .conftest import region_of, run_check
from .reference import reference_reasons

AT = "2026-12-02T17:00:00Z"  # 12:00 in New York, 09:00 in Los Angeles: inside every window
WHEN = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)
SNAPSHOT = date(2026, 12, 1)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from dncguard.cli import run

    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _ftc(tmp_path: Path, npa: str, lines: int = 3) -> Path:
    """An FTC full-list file of one area code, ``NPA,NXXXXXX`` per line."""
    path = tmp_path / f"ftc-{npa}.txt"
    path.write_text("".join(f"{npa},555{100 + k:04d}\n" for k in range(lines)))
    return path


def _import(capsys: pytest.CaptureFixture[str], path: Path, name: str = "us-ftc",
            snapshot: date = SNAPSHOT) -> None:
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "national",
                         "--jurisdiction", "US", "--snapshot-date", snapshot.isoformat(),
                         "--name", name)
    assert code == 0, (out, err)


def _check(capsys: pytest.CaptureFixture[str], phone: str) -> dict[str, Any]:
    _, out, err = cli(capsys, "check", phone, "--at", AT, "--line-type", "landline", "--json")
    found: dict[str, Any] = json.loads(out)
    return found


def _codes(verdict: dict[str, Any]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]


# -- the reviewer's reproduction ----------------------------------------------------------------
def test_an_area_code_never_downloaded_is_not_allowed(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``us-ftc`` from ``ftc-202.txt`` only: a 415 number was allowed with no reason."""
    _import(capsys, _ftc(tmp_path, "202"))
    other = _check(capsys, "4155550123")
    assert other["decision"] == "error" and _codes(other) == ["REGISTRY_MISSING"]
    reason = other["reasons"][0]
    assert (reason["source"], reason["list"], reason["rule"]) == (
        "rules", "us-ftc", "US:national_dnc")
    assert "area code 415 is not among the area codes of us-ftc (202)" in reason["detail"]
    assert "not downloaded for it" in reason["detail"]
    assert "a later import under the same name replaces the list" in reason["detail"]
    # the area code the list holds is judged by it, listed or not
    assert _check(capsys, "2025550199")["decision"] == "allow"
    listed = _check(capsys, "2025550100")
    assert listed["decision"] == "block" and _codes(listed) == ["DNC_NATIONAL"]


def test_a_later_import_under_the_same_name_replaces_the_area_codes(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Importing ``ftc-305.txt`` as ``us-ftc`` replaced the 202 file: its listed number then
    read allow. It is an error now, naming the area code the list holds instead."""
    _import(capsys, _ftc(tmp_path, "202"))
    _import(capsys, _ftc(tmp_path, "305"))
    was_listed = _check(capsys, "2025550100")
    assert was_listed["decision"] == "error" and _codes(was_listed) == ["REGISTRY_MISSING"]
    assert "area code 202 is not among the area codes of us-ftc (305)" in \
        was_listed["reasons"][0]["detail"]
    assert _check(capsys, "3055550100")["decision"] == "block"


def test_area_codes_imported_together_all_count(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """One zip of every area code's file (or one file): the list covers them all."""
    bundle = tmp_path / "ftc.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        for npa in ("202", "212"):
            zf.write(_ftc(tmp_path, npa), f"ftc-{npa}.txt")
    _import(capsys, bundle)
    assert _check(capsys, "2025550100")["decision"] == "block"
    assert _check(capsys, "2125550100")["decision"] == "block"
    assert _check(capsys, "2125550199")["decision"] == "allow"
    missing = _check(capsys, "4155550123")
    assert missing["decision"] == "error"
    assert "us-ftc (202, 212)" in missing["reasons"][0]["detail"]


# -- the rules' part ----------------------------------------------------------------------------
@pytest.fixture
def lists(settings: Settings, tmp_path: Path) -> Callable[..., None]:
    store = ListStore(settings)

    def load(name: str, *npas: str, snapshot: date = SNAPSHOT) -> None:
        path = tmp_path / f"{name}.txt"
        path.write_text("".join(f"{npa},5550100\n" for npa in npas))
        store.import_file(path, kind="national", name=name, jurisdiction="US",
                          snapshot_date=snapshot)

    return load


def _registry(reasons: list[Any]) -> list[tuple[str, str | None]]:
    return [(r.code, r.list) for r in reasons if r.code.startswith("REGISTRY")]


@pytest.mark.parametrize("config", [{"require_registries": False},
                                    {"registry_optional": ["US"]},
                                    {"registry_optional": ["*"]}])
def test_optional_registry_stays_list_only(make_check: Callable[..., RulesCheck],
                                           lists: Callable[..., None],
                                           config: dict[str, Any]) -> None:
    lists("us-ftc", "202")
    check = make_check(**config)
    assert _registry(run_check(check, "+14155550123", WHEN, line_type="landline")) == []


def test_a_state_registry_made_optional_leaves_the_us_one_required(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None]) -> None:
    lists("us-ftc", "202")
    check = make_check(require_registries=True, registry_optional=["US-CA"])
    assert _registry(run_check(check, "+14155550123", WHEN, line_type="landline")) == [
        ("REGISTRY_MISSING", "us-ftc")]


def test_rules_off_stay_list_only(settings: Settings, lists: Callable[..., None],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lists("us-ftc", "202")
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    from dncguard.config import load_settings

    off = load_settings(home=settings.home)
    v = Scrubber(off, clock=lambda: WHEN).check("4155550123", at=WHEN)
    assert v.decision is Decision.ALLOW and v.reasons == []


@pytest.mark.parametrize("phone", ["+18005550123", "+18885550123", "+18335550123"])
def test_toll_free_numbers_are_judged_by_area_code_too(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None], phone: str) -> None:
    """Whether the FTC's downloads cover toll-free numbers is not settled (reference notes):
    an 8XX number is vouched for only by a list holding numbers of its own 8XX code."""
    lists("us-ftc", "202")
    check = make_check(require_registries=True)
    assert _registry(run_check(check, phone, WHEN, line_type="landline")) == [
        ("REGISTRY_MISSING", "us-ftc")]
    lists("us-ftc", "202", phone[2:5])
    assert _registry(run_check(check, phone, WHEN, line_type="landline")) == []


def test_territory_numbers_need_their_own_area_code(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None]) -> None:
    lists("us-ftc", "202", "787")
    check = make_check(require_registries=True)
    assert _registry(run_check(check, "+17872345678", WHEN, line_type="landline")) == []
    assert _registry(run_check(check, "+13406421234", WHEN, line_type="landline")) == [
        ("REGISTRY_MISSING", "us-ftc")]


def test_other_countries_are_not_judged_by_us_area_codes(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None],
        settings: Settings, tmp_path: Path) -> None:
    """A Canadian number needs Canada's list, whatever the US list's area codes, and Canada's
    list covers its own area codes (the DNCL is downloaded per area code too)."""
    lists("us-ftc", "202")
    f = tmp_path / "ca.txt"
    f.write_text("+16135550100\n+14165550100\n")
    ListStore(settings).import_file(f, kind="national", name="ca-dncl", jurisdiction="CA",
                                    snapshot_date=SNAPSHOT)
    check = make_check(require_registries=True)
    assert _registry(run_check(check, "+14165550123", WHEN, line_type="landline")) == []
    assert _registry(run_check(check, "+16045550123", WHEN, line_type="landline")) == [
        ("REGISTRY_MISSING", "ca-dncl")]


def test_written_consent_lifts_it_as_any_registry_reason(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None],
        settings: Settings) -> None:
    """As when no registry is loaded at all: written consent (or an EBR) lifts the registry
    reasons; a collections call, which the registry rule does not reach, never gets one."""
    lists("us-ftc", "202")
    check = make_check(require_registries=True)
    assert _registry(run_check(check, "+14155550124", WHEN, line_type="landline")) == [
        ("REGISTRY_MISSING", "us-ftc")]
    ConsentStore(settings).add("+14155550124", "express_written", date(2026, 11, 1))
    assert _registry(run_check(check, "+14155550124", WHEN, line_type="landline")) == []
    assert _registry(run_check(check, "+14155550123", WHEN, line_type="landline",
                               purpose="collections")) == []


def test_lists_of_several_names_and_campaign_selection(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None],
        settings: Settings) -> None:
    """Lists of one registry under several names each cover their own area codes; a list
    the campaign does not select vouches for nothing, and the reason names it."""
    lists("us-ftc-east", "202", "212")
    lists("us-ftc-west", "415")
    east = settings.campaigns["east"] = CampaignProfile(lists=["us-ftc-east"])
    check = make_check(require_registries=True)
    for phone in ("+12025550123", "+12125550123", "+14155550123"):
        assert _registry(run_check(check, phone, WHEN, line_type="landline")) == [], phone
    reasons = run_check(check, "+14155550123", WHEN, line_type="landline", campaign="east",
                        profile=east)
    assert _registry(reasons) == [("REGISTRY_MISSING", "us-ftc-east")]
    assert "us-ftc-east (202, 212)" in reasons[0].detail
    assert "us-ftc-west cover it but campaign 'east' does not select them" in reasons[0].detail
    reasons = run_check(check, "+13125550123", WHEN, line_type="landline")
    assert _registry(reasons) == [("REGISTRY_MISSING", "us-ftc-east, us-ftc-west")]
    assert "us-ftc-east (202, 212) or us-ftc-west (415)" in reasons[0].detail


def test_freshness_is_that_of_the_lists_holding_the_area_code(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None]) -> None:
    """A fresh download of 202 does not make a year-old download of 212 fresh."""
    lists("us-ftc-202", "202")
    lists("us-ftc-212", "212", snapshot=date(2025, 12, 1))
    check = make_check(require_registries=True)
    assert _registry(run_check(check, "+12025550123", WHEN, line_type="landline")) == []
    assert _registry(run_check(check, "+12125550123", WHEN, line_type="landline")) == [
        ("REGISTRY_STALE", "us-ftc-212")]


def test_a_list_whose_snapshot_cannot_be_read_vouches_for_nothing(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None],
        settings: Settings) -> None:
    lists("us-ftc", "202")
    store = ListStore(settings)
    info = store.get("us-ftc")
    path = store.snapshot_path(info)
    assert path is not None
    path.write_bytes(b"damaged")
    reasons = run_check(make_check(require_registries=True), "+12025550123", WHEN,
                        line_type="landline")
    assert _registry(reasons) == [("REGISTRY_MISSING", "us-ftc")]
    assert "its area codes could not be read" in reasons[0].detail


# -- the area codes of a snapshot ---------------------------------------------------------------
@pytest.mark.parametrize("layout", ["sorted", "bitmap"])
def test_area_codes_of_either_layout(tmp_path: Path, layout: str) -> None:
    values = np.array(sorted({12025550100, 12025550199, 13055550100, 18005550100,
                              19999999999, 10000000000}), dtype=np.uint64)
    snap = open_snapshot(tmp_path / write_snapshot(tmp_path, values, layout=layout))  # type: ignore[arg-type]
    assert nanp_areas(snap).tolist() == [0, 202, 305, 800, 999]


def test_area_codes_of_a_sorted_list_with_other_countries(tmp_path: Path) -> None:
    values = np.array([442079460018, 12025550100, 12125550100, 61298765432, 9999999999],
                      dtype=np.uint64)
    snap = open_snapshot(tmp_path / write_snapshot(tmp_path, np.sort(values)))
    assert nanp_areas(snap).tolist() == [202, 212]
    empty = open_snapshot(tmp_path / write_snapshot(tmp_path, np.zeros(0, dtype=np.uint64)))
    assert nanp_areas(empty).tolist() == []


def test_area_codes_are_found_once_per_list_version(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once per version of a list per process, never per batch or per check object."""
    calls: list[int] = []
    def counted(snap: Any) -> Any:
        calls.append(1)
        return nanp_areas(snap)

    monkeypatch.setattr(rules_source, "nanp_areas", counted)
    lists("us-ftc", "202")
    for _ in range(3):
        check = make_check(require_registries=True)
        for minute in range(3):
            at = WHEN.replace(minute=minute)
            run_check(check, "+14155550123", at, line_type="landline")
            run_check(check, "+12025550123", at, line_type="landline")
    assert len(calls) == 1
    lists("us-ftc", "202", "415")  # a new version
    assert _registry(run_check(make_check(require_registries=True), "+14155550123", WHEN,
                               line_type="landline")) == []
    assert len(calls) == 2


# -- grouped and per number, and a scrub ----------------------------------------------------------
def test_grouped_equals_per_number_by_area_code(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None],
        settings: Settings) -> None:
    """Numbers of many area codes, a list covering some of them: the grouped evaluation (on
    strings and on coded arrays) gives each number the reasons the per-number reference finds
    for it alone."""
    rng = random.Random(11)
    npas = ["202", "212", "305", "415", "312", "787", "340", "800", "888", "907", "808", "503"]
    lists("us-ftc", *npas[::2])
    lists("us-ftc-old", "212", snapshot=date(2025, 1, 1))  # stale, of an area code of its own
    numbers = sorted({f"+1{rng.choice(npas)}555{rng.randrange(10_000):04d}" for _ in range(400)}
                     | {"+14165550100", "+442079460018"})
    for e164 in numbers[:20]:
        ConsentStore(settings).add(e164, rng.choice(["express", "express_written"]),
                                   date(2026, 11, 1))
    regions = [region_of(e) for e in numbers]
    states = [state_for(e) for e in numbers]
    extras = [{"line_type": rng.choice(["landline", "mobile", ""])} for _ in numbers]
    east = settings.campaigns["east"] = CampaignProfile(lists=["us-ftc"])
    seen: dict[bool, set[str]] = {True: set(), False: set()}
    for config in ({"require_registries": True}, {"registry_optional": ["US"]}):
        check = make_check(**config)
        required = check.config.registry_required("US")
        for campaign, purpose in (("default", "telemarketing"), ("east", "telemarketing"),
                                  ("default", "collections")):
            ctx = CheckContext(at=WHEN, campaign=campaign, purpose=purpose,
                               profile=east if campaign == "east" else CampaignProfile())
            want = [[r.model_dump() for r in rs] for rs in reference_reasons(
                check, Batch.of(numbers, regions, states, extras), ctx)]
            coded = Batch.coded(
                np.array([int(e[1:]) for e in numbers], dtype=np.uint64),
                _codes_of(regions), _codes_of(states), extras,
                np.arange(len(numbers), dtype=np.int64))
            for batch in (Batch.of(numbers, regions, states, extras), coded):
                got = [[r.model_dump() for r in rs]
                       for rs in check.evaluate_groups(batch, ctx).per_number()]
                assert got == want, (config, campaign, purpose)
            seen[required] |= {f"{r['code']}:{r['list']}" for rs in want for r in rs
                               if r["code"].startswith("REGISTRY")}
    assert {"REGISTRY_MISSING:us-ftc, us-ftc-old", "REGISTRY_MISSING:us-ftc",
            "REGISTRY_STALE:us-ftc-old"} <= seen[True]
    # optional: list-only, freshness as before (the newest of the lists)
    assert seen[False] == set()


def _codes_of(values: list[Any]) -> tuple[np.ndarray[Any, Any], list[Any]]:
    table = list(dict.fromkeys(values))
    return np.array([table.index(v) for v in values], dtype=np.int64), table


def test_a_scrub_errs_the_rows_of_other_area_codes(
        settings: Settings, lists: Callable[..., None], tmp_path: Path) -> None:
    lists("us-ftc", "202")
    rows = ["phone"] + [f"202555{k:04d}" for k in range(95, 105)] + \
        [f"415555{k:04d}" for k in range(10)] + ["+442079460018"]
    src = tmp_path / "in.csv"
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.csv"
    Scrubber(settings, audit=False).scrub_file(src, out, at=WHEN)
    import csv

    with out.open(encoding="utf-8") as fh:
        got = {r["phone"]: r for r in csv.DictReader(fh)}
    assert got["2025550100"]["decision"] == "block"
    assert got["2025550099"]["decision"] == "allow"
    assert {got[f"415555{k:04d}"]["decision"] for k in range(10)} == {"error"}
    assert "REGISTRY_MISSING" in got["4155550003"]["reason_codes"]


# -- Canada's National DNCL is downloaded per area code too -------------------------------------
def _dncl(tmp_path: Path, npa: str, lines: int = 3) -> Path:
    """A National DNCL download of one area code: ten digits per line."""
    path = tmp_path / f"dncl-{npa}.txt"
    path.write_text("".join(f"{npa}555{100 + k:04d}\n" for k in range(lines)))
    return path


def test_a_canadian_area_code_never_downloaded_is_not_allowed(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A telemarketer subscribes to the DNCL by area code: a 416-only download answered allow
    for a Vancouver (604) number it never held."""
    code, out, err = cli(capsys, "lists", "import", str(_dncl(tmp_path, "416")), "--kind",
                         "national", "--jurisdiction", "CA", "--snapshot-date",
                         SNAPSHOT.isoformat(), "--name", "ca-dncl")
    assert code == 0, (out, err)
    other = _check(capsys, "6045550123")
    assert other["decision"] == "error" and _codes(other) == ["REGISTRY_MISSING"]
    reason = other["reasons"][0]
    assert (reason["list"], reason["rule"].split(":")[0]) == ("ca-dncl", "CA")
    assert "area code 604 is not among the area codes of ca-dncl (416)" in reason["detail"]
    assert 'registry_optional = ["CA"]' in reason["detail"]
    assert _check(capsys, "4165550199")["decision"] == "allow"
    listed = _check(capsys, "4165550100")
    assert listed["decision"] == "block" and _codes(listed) == ["DNC_NATIONAL"]


def test_an_answer_given_while_area_codes_could_not_be_read_is_not_kept(
        make_check: Callable[..., RulesCheck], lists: Callable[..., None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A replica that had not fetched the snapshot yet answered REGISTRY_MISSING (right), and
    kept that answer for the rest of the UTC day after the file arrived (the day's reasons
    are keyed by the list's record, which the fetch does not change)."""
    lists("us-ftc", "202")
    check = make_check(require_registries=True)
    profile = CampaignProfile()  # one profile object, as a server keeps it: one day cache
    real = rules_source.list_area_codes

    def not_fetched_yet(store: ListStore, info: Any) -> frozenset[int]:
        raise FileNotFoundError("the snapshot is not fetched yet")

    monkeypatch.setattr(rules_source, "list_area_codes", not_fetched_yet)
    missing = run_check(check, "+12025550123", WHEN, line_type="landline", profile=profile)
    assert _registry(missing) == [("REGISTRY_MISSING", "us-ftc")]
    assert "could not be read" in missing[0].detail
    monkeypatch.setattr(rules_source, "list_area_codes", real)
    assert _registry(run_check(check, "+12025550123", WHEN, line_type="landline",
                               profile=profile)) == []


def test_by_list_counts_each_list_a_missing_registry_names(
        settings: Settings, lists: Callable[..., None], tmp_path: Path) -> None:
    """A REGISTRY_MISSING reason names every list that does not cover the number
    ("us-ftc-east, us-ftc-west"): ``byList`` counts the row under each list, not under the
    joined text."""
    lists("us-ftc-east", "202")
    lists("us-ftc-west", "415")
    src = tmp_path / "in.csv"
    src.write_text("phone\n3125550123\n3125550124\n2025550100\n")
    summary = Scrubber(settings, audit=False).scrub_file(src, tmp_path / "out.csv", at=WHEN)
    assert summary.by_reason.get("REGISTRY_MISSING") == 2
    assert summary.by_list == {"us-ftc-east": 3, "us-ftc-west": 2}
