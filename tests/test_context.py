"""Fail closed at the edges: every context value is understood or refused, never dropped.

The rows of issue 11's table, each as a test: state spellings, unknown states, campaigns and
ZIP codes, a campaign's list selection and the wireless lists, duplicates in another
context, several phone columns. The place tables are checked against their sources.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import holidays
import pytest
import us
import zipcodes

from dncguard.config import Settings, load_settings
from dncguard.engine.context import clean_context, clean_field
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import ContextError, InputError
from dncguard.lists.store import ListStore
from dncguard.places import spelling_key, subdivision, unserved_subdivision, zip_state
from dncguard.sources.rules._zones import resolve_location

from .conftest import cli, read_csv

NIGHT = "2026-12-01T01:30:00Z"  # 20:30 in New York, the evening before
DAY = "2026-12-01T16:00:00Z"  # 11:00 in New York, a Tuesday


@pytest.fixture
def rules_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Rules on, registries not required (these tests are about context, not registries)."""
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    return home


# -- the place tables against their sources ----------------------------------------------------


def test_zip_table_matches_zipcodes() -> None:
    """Every ZIP code of the zipcodes package maps to its state; others map to nothing."""
    known = {z["zip_code"]: z["state"] for z in zipcodes.list_all()}
    assert len(known) > 40_000
    wrong = [(z, st, zip_state(z)) for z, st in known.items() if zip_state(z) != st]
    assert wrong == []
    unknown = [f"{n:05d}" for n in range(0, 100_000, 7) if f"{n:05d}" not in known]
    assert unknown and all(zip_state(z) is None for z in unknown)
    assert zip_state("73301") == "TX"  # Austin (IRS): the old ZIP3 ranges said Oklahoma


def test_subdivision_table_matches_its_sources() -> None:
    """Every state, DC, territory and province by code, by every name holidays knows, and by
    its AP abbreviation (us); no spelling means two places."""
    for region, cls in (("US", holidays.US), ("CA", holidays.CA)):
        for code in cls.subdivisions:
            # a subdivision without rules and zones (US-UM) is known, to be refused by name
            known = subdivision(code) or unserved_subdivision(code)
            assert known == (region, code)
        for name, code in cls.subdivisions_aliases.items():
            assert (subdivision(name) or unserved_subdivision(name)) == (region, code), name
            assert (subdivision(name.upper()) or unserved_subdivision(name.upper())) == \
                (region, code)
    for st in us.states.STATES_AND_TERRITORIES:
        if st.ap_abbr:
            assert subdivision(st.ap_abbr) == ("US", st.abbr)
    assert subdivision("fla") == ("US", "FL") and subdivision("W. Va.") == ("US", "WV")
    assert subdivision("Québec") == subdivision("quebec") == ("CA", "QC")
    assert subdivision("ZZ") is None and subdivision("Florid") is None
    assert spelling_key("N.Y.") == spelling_key("ny")


# -- one value at a time ------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "raw", "clean"), [
    pytest.param("state", "Florida", "FL", id="state-name"),
    pytest.param("state", " fla. ", "FL", id="state-ap"),
    pytest.param("state", "ny", "NY", id="state-code-lower"),
    pytest.param("state", "Ontario", "ON", id="province"),
    pytest.param("zip", "73301", "73301", id="zip5"),
    pytest.param("zip", "33101-1234", "33101", id="zip9-dash"),
    pytest.param("zip", "331011234", "33101", id="zip9"),
    pytest.param("zip", "k1a0b1", "K1A 0B1", id="ca-postal"),
    pytest.param("zip", "sw1a 1aa", "SW1A 1AA", id="uk-postcode"),
    pytest.param("timezone", "America/Chicago", "America/Chicago", id="zone"),
    pytest.param("line_type", "Wireless", "mobile", id="line-alias"),
    pytest.param("region", "uk", "GB", id="region-uk"),
    pytest.param("state", "  ", "", id="blank-is-missing"),
])
def test_understood(field: str, raw: str, clean: str) -> None:
    assert clean_field(field, raw) == clean


@pytest.mark.parametrize(("field", "raw"), [
    ("state", "ZZ"), ("state", "XX"), ("state", "Flori"), ("zip", "00000"), ("zip", "2134"),
    ("zip", "1234567"), ("timezone", "EST"), ("timezone", "Mars/Olympus"),
    ("line_type", "landlines"), ("region", "FR"), ("purpose", "sales"),
    ("call_type", "autodialled"), ("subject", "x" * 201),
])
def test_refused_naming_the_field(field: str, raw: str) -> None:
    with pytest.raises(ContextError) as caught:
        clean_field(field, raw)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_clean_context_refuses_the_first_bad_value() -> None:
    assert clean_context({"state": "Florida", "zip": None, "line_type": "cell"}) == {
        "state": "FL", "line_type": "mobile"}
    with pytest.raises(ContextError, match="zip"):
        clean_context({"state": "FL", "zip": "999"})


def test_zip_73301_is_texas() -> None:
    """512-555-0142 with ZIP 73301 (Austin) is in Texas only: no Oklahoma rules or lists."""
    loc = resolve_location("+15125550142", "US", None, {"zip": "73301"})
    assert loc.states == ("TX",)
    assert "America/Chicago" in loc.zones


# -- the CLI: flags -----------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["FL", "Florida", "fla.", "FLA"])
def test_state_spellings_defer_like_the_code(capsys: pytest.CaptureFixture[str],
                                             rules_home: Path, spelling: str) -> None:
    """20:30 in New York: a Florida address is past Florida's 20:00 limit, however written."""
    code, out, _ = cli(capsys, "check", "2125550187", "--state", spelling, "--at", NIGHT,
                       "--json")
    assert code == 0
    v = json.loads(out)
    assert v["decision"] == "defer"
    assert v["state"] == "FL"
    assert any(r["rule"] == "US-FL:calling_window" for r in v["reasons"])


@pytest.mark.parametrize(("flag", "value"), [("--state", "ZZ"), ("--state", "Florid"),
                                             ("--zip", "00000"), ("--timezone", "Eastern"),
                                             ("--line-type", "fax"), ("--call-type", "robo"),
                                             ("--purpose", " "), ("--call-type", "\t"),
                                             ("--purpose", "")])
def test_unknown_flag_value_exits_2(capsys: pytest.CaptureFixture[str], rules_home: Path,
                                    flag: str, value: str) -> None:
    code, out, err = cli(capsys, "check", "2125550187", flag, value, "--at", NIGHT)
    assert code == 2
    assert flag in err and "expected" in err and "Traceback" not in err
    assert out == ""


@pytest.mark.parametrize(("flag", "value"), [("--purpose", " "), ("--call-type", " ")])
def test_a_blank_purpose_or_call_type_is_refused_not_dropped(
        capsys: pytest.CaptureFixture[str], rules_home: Path, write_csv: Callable[..., Path],
        tmp_path: Path, flag: str, value: str) -> None:
    """A purpose or call type given blank was read as none and switched its rules off: an
    informational autodialed call to a mobile line needs consent, and ``--call-type " "``
    allowed it. Refused by ``check``, ``scrub`` and the library, naming the flag or field."""
    base = ["--at", DAY, "--purpose", "informational", "--line-type", "mobile",
            "--call-type", "autodialed"]
    code, out, _ = cli(capsys, "check", "5125550101", *base, "--json")
    assert code == 0 and json.loads(out)["decision"] == "block"
    given = [*base, flag, value]  # the later flag wins
    code, out, err = cli(capsys, "check", "5125550101", *given)
    assert code == 2 and out == "" and err.startswith(f"error: {flag}: ")
    path = write_csv([["phone"], ["5125550101"]])
    code, _, err = cli(capsys, "scrub", str(path), "-o", str(tmp_path / "o.csv"), *given)
    assert code == 2 and f"error: {flag}: " in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
    field = flag.removeprefix("--").replace("-", "_")
    given_to = {"purpose": "informational", "call_type": "autodialed", field: value}
    with pytest.raises(ContextError) as caught:
        Scrubber(load_settings(home=rules_home), audit=False).check(
            "5125550101", at=datetime.fromisoformat(DAY), line_type="mobile", **given_to)
    assert caught.value.field == field


def _home_with_lists(home: Path, write_lines: Callable[..., Path], wireless: list[str]) -> None:
    (home / "dncguard.toml").write_text(
        '[campaigns.winter-promo]\ncall_type = "autodialed"\nlists = ["us-ftc"]\n\n'
        '[campaigns.skipper]\ncall_type = "autodialed"\nlists = ["us-ftc"]\n'
        'skip_wireless = ["wireless"]\n', encoding="utf-8")
    store = ListStore(load_settings(home=home))
    store.import_file(write_lines(["2025550100"], "ftc.txt"), kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=date(2026, 11, 25))
    store.import_file(write_lines(wireless, "w.txt"), kind="wireless", name="wireless")


def test_unknown_campaign_is_refused(capsys: pytest.CaptureFixture[str], rules_home: Path,
                                     write_lines: Callable[..., Path]) -> None:
    _home_with_lists(rules_home, write_lines, ["2125550142"])
    code, _, err = cli(capsys, "check", "2125550142", "--campaign", "winter_promo", "--at", DAY)
    assert code == 2
    assert "--campaign" in err and "winter-promo" in err  # names the configured ones


def test_campaign_lists_do_not_drop_the_wireless_list(
        capsys: pytest.CaptureFixture[str], rules_home: Path,
        write_lines: Callable[..., Path]) -> None:
    """``lists`` narrows the DNC lists; the wireless list still marks the number mobile, so an
    autodialed call needs consent. Only ``skip_wireless`` turns it off, by name."""
    _home_with_lists(rules_home, write_lines, ["2125550142"])
    code, out, _ = cli(capsys, "check", "2125550142", "--campaign", "winter-promo",
                       "--at", DAY, "--json")
    v = json.loads(out)
    assert code == 0 and v["decision"] == "block"
    assert "CONSENT_REQUIRED" in [r["code"] for r in v["reasons"]]
    assert "wireless" in v["versions"]["lists"]
    code, out, _ = cli(capsys, "check", "2125550142", "--campaign", "skipper", "--at", DAY,
                       "--json")
    v = json.loads(out)  # the list skipped: the line type is unknown, judged as mobile
    assert code == 0 and "wireless" not in v["versions"]["lists"]
    assert "LINE_TYPE_ASSUMED" in [r["code"] for r in v["reasons"]]
    code, out, _ = cli(capsys, "check", "2125550142", "--campaign", "skipper", "--at", DAY,
                       "--line-type", "landline", "--json")
    assert code == 0 and json.loads(out)["decision"] == "allow"


def test_profile_naming_an_unknown_list_is_refused(
        capsys: pytest.CaptureFixture[str], rules_home: Path) -> None:
    (rules_home / "dncguard.toml").write_text(
        '[campaigns.typo]\nlists = ["us-ftcc"]\n', encoding="utf-8")
    code, _, err = cli(capsys, "check", "2125550142", "--campaign", "typo", "--at", DAY)
    assert code == 2 and "us-ftcc" in err


@pytest.mark.parametrize("named", ["local", "rules"])
def test_profile_naming_a_check_that_always_runs_is_refused(
        capsys: pytest.CaptureFixture[str], rules_home: Path, write_lines: Callable[..., Path],
        named: str) -> None:
    """``lists = ["local", "us-ftc"]`` selected no local list (the local lists check applies
    the selection to its own lists, and none is named ``local``): the internal opt-outs were
    dropped without a word. Refused, saying what to write instead."""
    _home_with_lists(rules_home, write_lines, ["3125550199"])
    ListStore(load_settings(home=rules_home)).import_file(
        write_lines(["2125550142"], "internal.txt"), kind="internal", name="internal")
    with (rules_home / "dncguard.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[campaigns.odd]\nlists = ["{named}", "us-ftc"]\n')
    code, out, err = cli(capsys, "check", "2125550142", "--campaign", "odd", "--at", DAY)
    assert code == 2 and out == ""
    assert err.startswith("error: --campaign: ") and repr(named) in err
    assert "names of the lists" in err and "leave lists out" in err
    code, out, _ = cli(capsys, "check", "2125550142", "--at", DAY, "--json")
    assert code == 0 and json.loads(out)["decision"] == "block"  # on internal
    code, out, _ = cli(capsys, "config", "show", "--json")
    assert code == 0 and repr(named) in json.loads(out)["campaign_checks"]["odd"]["error"]


def test_profile_with_an_unknown_key_is_refused(
        capsys: pytest.CaptureFixture[str], rules_home: Path) -> None:
    (rules_home / "dncguard.toml").write_text(
        '[campaigns.typo]\ncall-type = "autodialed"\n', encoding="utf-8")
    code, _, err = cli(capsys, "check", "2125550142", "--campaign", "typo", "--at", DAY)
    assert code == 2 and "call-type" in err


# -- scrub files: columns, duplicates -----------------------------------------------------------


def _scrub_both(settings: Settings, path: Path, tmp_path: Path, at: str
                ) -> tuple[list[dict[str, str]], dict[str, object]]:
    """Scrub on the array path and the row path; both must write the same bytes."""
    from datetime import datetime

    when = datetime.fromisoformat(at)
    outs = []
    for columnar in (True, False):
        out = tmp_path / f"out-{columnar}.csv"
        summary = Scrubber(settings, columnar=columnar).scrub_file(path, out, at=when)
        outs.append((out.read_bytes(), summary))
    (a, sa), (b, sb) = outs
    assert a == b
    keep = ("by_decision", "by_reason", "duplicates", "unique_valid", "unique_suppressed",
            "row_errors", "by_state")
    assert {k: getattr(sa, k) for k in keep} == {k: getattr(sb, k) for k in keep}
    return read_csv(tmp_path / "out-True.csv"), {k: getattr(sa, k) for k in keep}


def test_state_column_spellings_and_bad_values(
        rules_home: Path, write_csv: Callable[..., Path], tmp_path: Path) -> None:
    settings = load_settings(home=rules_home)
    path = write_csv([["phone", "state"], ["2125550190", "NY"], ["2125550191", "Florida"],
                      ["2125550192", "Fla."], ["2125550193", "XX"], ["2125550194", ""]])
    rows, summary = _scrub_both(settings, path, tmp_path, NIGHT)
    assert [r["decision"] for r in rows] == ["allow", "defer", "defer", "error", "allow"]
    bad = rows[3]
    assert bad["reason_codes"] == "CONTEXT_INVALID"
    assert "'state'" in bad["detail"] and "'XX'" in bad["detail"]
    errors = summary["row_errors"]
    assert isinstance(errors, list)
    assert [(e.row, e.field) for e in errors] == [(4, "state")]
    # counted under the row's own state (spelled any way), its area code's when it has none,
    # and "unknown" when its context was refused
    assert summary["by_state"] == {"NY": {"allow": 2}, "FL": {"defer": 2},
                                   "unknown": {"error": 1}}


def test_rows_are_counted_under_their_own_state_else_the_default_else_the_area_code(
        rules_home: Path, write_csv: Callable[..., Path], tmp_path: Path) -> None:
    """A row's own state other than its area code's, a default state and Canada's provinces:
    each row counted once, under the state it was checked under."""
    from datetime import datetime

    settings = load_settings(home=rules_home)
    path = write_csv([["phone", "state"], ["2125550190", "PR"], ["2125550191", ""],
                      ["4165550192", ""], ["2125550193", "ny"], ["4165550194", "QC"]])
    when = datetime.fromisoformat(NIGHT)
    plain = Scrubber(settings).scrub_file(path, tmp_path / "a.csv", at=when)
    assert plain.by_state == {"NY": {"allow": 2}, "ON": {"allow": 1}, "PR": {"defer": 1},
                              "QC": {"defer": 1}}
    given = Scrubber(settings).scrub_file(path, tmp_path / "b.csv", at=when,
                                          defaults={"state": "FL"})
    # the two rows without a state of their own are Florida's, and Florida's hours apply to
    # both, the Toronto number's too (the called party's location decides)
    assert given.by_state == {"FL": {"defer": 2}, "NY": {"allow": 1},
                              "PR": {"defer": 1}, "QC": {"defer": 1}}


def test_a_zip_names_the_state_a_row_is_counted_under(
        rules_home: Path, write_csv: Callable[..., Path], tmp_path: Path) -> None:
    """A ZIP or postal code stands in for a state the row does not give: the verdict names
    its state and the summary counts the row there (the rules already judge by it), on both
    paths. A row's own state comes first, then its ZIP, the default state, the default ZIP,
    the area code; a ZIP counts whatever the number's country (a London number with an
    Atlanta ZIP is Georgia's, as with a ``state`` of GA); a UK postcode on a US number is
    refused (the row is counted as ``unknown``)."""
    path = write_csv([["phone", "state", "zip"], ["2125550190", "", "30301"],
                      ["2125550191", "FL", "30301"], ["2125550192", "", "SW1A 1AA"],
                      ["2125550193", "", "H2X 1Y4"], ["+442071234567", "", "30301"],
                      ["2125550194", "", ""]])
    settings = load_settings(home=rules_home)
    _, summary = _scrub_both(settings, path, tmp_path, NIGHT)
    by_state = summary["by_state"]
    assert isinstance(by_state, dict)
    assert {k: sum(v.values()) for k, v in by_state.items()} == {
        "GA": 2, "FL": 1, "NY": 1, "QC": 1, "unknown": 1}
    when = datetime.fromisoformat(NIGHT)
    given = Scrubber(settings).scrub_file(path, tmp_path / "z.csv", at=when,
                                          defaults={"zip": "33101"})
    assert {k: sum(v.values()) for k, v in given.by_state.items()} == {
        "GA": 2, "FL": 2, "QC": 1, "unknown": 1}
    with_state = Scrubber(settings).scrub_file(path, tmp_path / "s.csv", at=when,
                                               defaults={"zip": "33101", "state": "TX"})
    # (a default state is every row's without one of its own, as before)
    assert {k: sum(v.values()) for k, v in with_state.by_state.items()} == {
        "GA": 2, "FL": 1, "TX": 1, "QC": 1, "unknown": 1}
    scrubber = Scrubber(settings)
    assert scrubber.check("+12125550195", at=when, zip="30301").state == "GA"
    assert scrubber.check("+12125550195", at=when, zip="30301", state="NY").state == "NY"
    assert scrubber.check("+12125550195", at=when).state == "NY"


@pytest.mark.parametrize("with_bad_row", [False, True], ids=["array-path", "row-path"])
def test_duplicate_in_another_context_is_judged_on_its_own(
        rules_home: Path, write_csv: Callable[..., Path], tmp_path: Path,
        with_bad_row: bool) -> None:
    """Same number, New York then Florida at 20:30 ET: the Florida row defers; a later
    Florida row (spelled otherwise) shares its verdict as a DUPLICATE."""
    settings = load_settings(home=rules_home)
    data = [["phone", "state"], ["2125550190", "NY"], ["2125550190", "FL"],
            ["(212) 555-0190", "florida"], ["2125550190", "NY"]]
    if with_bad_row:  # a value the array path leaves to the row path
        data.append(["2125550199", "Flor."])
    rows, summary = _scrub_both(settings, write_csv(data), tmp_path, NIGHT)
    assert [r["decision"] for r in rows[:4]] == ["allow", "defer", "defer", "allow"]
    assert "DUPLICATE" not in rows[1]["reason_codes"]
    assert rows[2]["reason_codes"].endswith("DUPLICATE")
    assert "duplicate of row 2" in rows[2]["detail"]
    assert "duplicate of row 1" in rows[3]["detail"]
    assert summary["duplicates"] == 3  # rows 2-4 repeat a number
    assert summary["unique_valid"] == 1
    by_reason = summary["by_reason"]
    assert isinstance(by_reason, dict) and by_reason["DUPLICATE"] == 2


def test_several_phone_columns_are_refused(write_csv: Callable[..., Path], settings: Settings,
                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    path = write_csv([["name", "home_phone", "mobile_phone"], ["a", "2025550100", "2025550101"]])
    with pytest.raises(InputError, match="home_phone, mobile_phone"):
        Scrubber(settings).scrub_file(path, tmp_path / "o.csv")
    code, _, err = cli(capsys, "scrub", str(path), "-o", str(tmp_path / "o.csv"))
    assert code == 2 and "--phone-column" in err
    code, _, _ = cli(capsys, "scrub", str(path), "-o", str(tmp_path / "o.csv"),
                     "--phone-column", "home_phone", "-q")
    assert code == 0
    assert read_csv(tmp_path / "o.csv")[0]["e164"] == "+12025550100"


def test_library_refuses_bad_defaults(settings: Settings) -> None:
    scrubber = Scrubber(settings)
    with pytest.raises(ContextError, match="state"):
        scrubber.check("2125550190", state="Atlantis")
    with pytest.raises(ContextError, match="campaign"):
        scrubber.check("2125550190", campaign="nope")


@pytest.mark.parametrize(("call", "message"), [
    pytest.param(lambda s: s.check(2025550101), "phone must be a string, not int", id="int"),
    pytest.param(lambda s: s.check(None), "phone must be a string, not NoneType", id="none"),
    pytest.param(lambda s: s.check("2025550101", state=12), "state must be a string, not int",
                 id="state"),
    pytest.param(lambda s: s.check("2025550101", campaign=None),
                 "campaign must be a string, not NoneType", id="campaign"),
    pytest.param(lambda s: s.check("2025550101", purpose=3), "purpose must be a string",
                 id="purpose"),
    pytest.param(lambda s: s.check("2025550101", at="2026-12-01T16:00:00Z"),
                 "at must be a datetime, not str", id="at"),
    pytest.param(lambda s: s.scrub("2025550101"), "phones must be an iterable of numbers, "
                 "not a str", id="scrub-str"),
    pytest.param(lambda s: s.scrub(["2025550101", 2025550102]),
                 r"phones\[1\] must be a string, not int", id="scrub-int"),
    pytest.param(lambda s: s.scrub(7), "phones must be an iterable", id="scrub-not-iterable"),
])
def test_library_refuses_arguments_of_the_wrong_type(
        settings: Settings, call: Callable[[Scrubber], object], message: str) -> None:
    """A number as an int, a state as 12, a campaign as None failed deep inside (a PyArrow
    or attribute error), and a string given to ``scrub`` was scrubbed one character at a
    time: each is refused by a TypeError naming the parameter."""
    with pytest.raises(TypeError, match=message):
        call(Scrubber(settings, audit=False))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_several_phone_columns_each_get_verdict_columns(
        write_csv: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        write_lines: Callable[..., Path], suffix: str) -> None:
    """``--phone-column`` repeated: each column is checked and gets its own verdict columns;
    the summary counts every column, keeps each column's own, and each is in the audit."""
    cfg = load_settings()
    ListStore(cfg).import_file(write_lines(["2025550101"]), kind="internal", name="internal")
    path = write_csv([["name", "home_phone", "mobile_phone"], ["a", "2025550100", "2025550101"],
                      ["b", "=HYPERLINK(1)", "2025550100"]])
    out = tmp_path / f"o{suffix}"
    code, stdout, _ = cli(capsys, "scrub", str(path), "-o", str(out), "--phone-column",
                          "home_phone", "--phone-column", "mobile_phone", "--at", DAY)
    assert code == 0
    if suffix == ".csv":
        rows = read_csv(out)
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    assert list(rows[0]) == ["name", "home_phone", "mobile_phone",
                             *(f"home_phone_{c}" for c in ("e164", "decision", "reason_codes",
                                                           "detail", "next_allowed_at")),
                             *(f"mobile_phone_{c}" for c in ("e164", "decision", "reason_codes",
                                                             "detail", "next_allowed_at"))]
    assert [r["home_phone_decision"] for r in rows] == ["allow", "invalid"]
    assert [r["mobile_phone_decision"] for r in rows] == ["block", "allow"]
    assert rows[0]["mobile_phone_reason_codes"] == "DNC_INTERNAL"
    if suffix == ".csv":
        assert rows[1]["home_phone"] == "'=HYPERLINK(1)"  # defused once, not twice
    summary = json.loads(out.with_name("o.summary.json").read_text("utf-8"))
    assert summary["totalRows"] == 2
    assert summary["byDecision"]["block"] == 1 and summary["byDecision"]["invalid"] == 1
    assert set(summary["columns"]) == {"home_phone", "mobile_phone"}
    assert summary["columns"]["mobile_phone"]["byDecision"]["block"] == 1
    assert stdout.count("audit job id (") == 2
    code, _, _ = cli(capsys, "audit", "verify")
    assert code == 0


def test_config_show_says_what_each_campaign_checks(
        capsys: pytest.CaptureFixture[str], rules_home: Path,
        write_lines: Callable[..., Path]) -> None:
    _home_with_lists(rules_home, write_lines, ["2125550142"])
    code, out, _ = cli(capsys, "config", "show", "--json")
    assert code == 0
    checks = json.loads(out)["campaign_checks"]
    assert checks["winter-promo"] == {"purpose": "telemarketing", "call_type": "autodialed",
                                      "dnc_lists": ["us-ftc"], "wireless_lists": ["wireless"],
                                      "consent": True, "attempts": True}
    assert checks["skipper"]["wireless_lists"] == []
    assert checks["default"]["dnc_lists"] == ["us-ftc"]
