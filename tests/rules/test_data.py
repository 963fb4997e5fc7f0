"""The packaged rules data: complete, valid, and a malformed file is rejected."""

from __future__ import annotations

from datetime import date, timedelta
from importlib import resources
from pathlib import Path

import holidays as holidays_pkg
import pytest
import yaml

from dncguard.sources.rules import RulesDataError, load_ruleset, parse_texts
from dncguard.sources.rules._holidays import dates_in_year, easter
from dncguard.sources.rules.schema import RegistryRule

STATES = ("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE "
          "NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY").split()


def _texts() -> dict[str, str]:
    root = resources.files("dncguard.sources.rules").joinpath("data")
    return {p.name: p.read_text("utf-8") for p in root.iterdir() if p.name.endswith(".yaml")}


def test_every_jurisdiction_has_a_file() -> None:
    rs = load_ruleset()
    assert set(rs.jurisdictions()) == {"US", "CA", "GB", "AU", *(f"US-{s}" for s in STATES),
                                       *(f"US-{t}" for t in ("PR", "VI", "GU", "MP", "AS"))}
    assert len(STATES) == 51


def test_every_rule_is_cited_dated_and_rated() -> None:
    rs = load_ruleset()
    for j in rs.jurisdictions():
        for r in rs.rules(j):
            assert len(r.citation) >= 3 and r.effective <= date(2026, 11, 27), (j, r.id)
            assert r.confidence in ("high", "medium", "low")


def test_version_is_recorded() -> None:
    rs = load_ruleset()
    assert rs.version.startswith("2026.11.0+") and len(rs.version.split("+")[1]) == 8


def test_state_lists_match_the_reference() -> None:
    """The 11 states with their own DNC lists (CompliancePoint/Wipfli 2024-2026)."""
    rs = load_ruleset()
    own = {j[3:] for j in rs.jurisdictions() if j.startswith("US-")
           for r in rs.rules(j) if isinstance(r, RegistryRule)}
    assert own == {"CO", "FL", "IN", "LA", "MA", "MO", "OK", "PA", "TN", "TX", "WY"}


BAD = [
    ("window", "  weekday: 08:00-25:00", "not a window"),
    ("citation", "  citation: ''", "citation"),
    ("kind", "  kind: curfew", "kind"),
    ("confidence", "  confidence: certain", "confidence"),
    ("expiry", "  expires: '2000-01-01'", "expires before it is effective"),
    ("extra-field", "  colour: blue", "colour"),
]


@pytest.mark.parametrize(("name", "line", "message"), BAD, ids=[b[0] for b in BAD])
def test_malformed_rule_is_rejected(name: str, line: str, message: str) -> None:
    """Each kind of mistake in a rules file is rejected with the file and field named."""
    texts = _texts()
    key = line.split(":")[0]
    lines = list(texts["US-FL.yaml"].splitlines())
    idx = next(i for i, ln in enumerate(lines) if ln.startswith("- id: calling_window"))
    replaced = False
    for i in range(idx + 1, len(lines)):
        if lines[i].startswith(key + ":"):
            lines[i] = line
            replaced = True
            break
    if not replaced:
        lines.insert(idx + 1, line)
    texts["US-FL.yaml"] = "\n".join(lines) + "\n"
    with pytest.raises(RulesDataError, match="US-FL.yaml") as info:
        parse_texts(texts)
    assert message in str(info.value)


def test_other_data_errors() -> None:
    texts = _texts()
    fl = yaml.safe_load(texts["US-FL.yaml"])
    dup = dict(fl, rules=fl["rules"] + fl["rules"][:1])
    with pytest.raises(RulesDataError, match="duplicate rule ids"):
        parse_texts({**texts, "US-FL.yaml": yaml.safe_dump(dup)})
    with pytest.raises(RulesDataError, match="must be named US-FL.yaml"):
        parse_texts({**texts, "US-XX.yaml": texts["US-FL.yaml"]})
    al = yaml.safe_load(texts["US-AL.yaml"])
    al["holiday_sets"] = {}
    with pytest.raises(RulesDataError, match="unknown holiday set"):
        parse_texts({**texts, "US-AL.yaml": yaml.safe_dump(al)})
    ms = texts["US-MS.yaml"].replace("Etc/GMT+6", "Mars/Olympus")
    with pytest.raises(RulesDataError, match="unknown time zone"):
        parse_texts({**texts, "US-MS.yaml": ms})
    # the zone tables repeat names; an unknown one after many known ones is still found
    zones = texts["_zones.yaml"]
    last = zones.rindex("America/Chicago")
    bad = zones[:last] + "Mars/Olympus" + zones[last + len("America/Chicago"):]
    with pytest.raises(RulesDataError, match="_zones.yaml: unknown time zone 'Mars/Olympus'"):
        parse_texts({**texts, "_zones.yaml": bad})
    with pytest.raises(RulesDataError, match="not valid YAML"):
        parse_texts({**texts, "US-FL.yaml": "rules: [\n"})
    with pytest.raises(RulesDataError, match="_ruleset.yaml"):
        parse_texts({k: v for k, v in texts.items() if k != "_ruleset.yaml"})


def test_load_from_folder_and_rule_period(tmp_path: Path) -> None:
    """A rule applies only from its effective date and until its expiry."""
    for name, text in _texts().items():
        (tmp_path / name).write_text(text)
    ct = yaml.safe_load((tmp_path / "US-CT.yaml").read_text())
    ct["rules"][0]["expires"] = "2027-01-01"
    (tmp_path / "US-CT.yaml").write_text(yaml.safe_dump(ct))
    rs = load_ruleset(tmp_path)
    rule = rs.rules("US-CT")[0]
    assert rule.active(date(2026, 12, 31)) and not rule.active(date(2027, 1, 1))
    assert not rule.active(date(2023, 9, 30))
    assert rs.version != load_ruleset().version  # the data hash changes with the data


def _copy(folder: Path) -> Path:
    folder.mkdir()
    for name, text in _texts().items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize("leave_out", ["US.yaml", "US-FL.yaml", "CA.yaml", "AU.yaml"])
def test_a_folder_without_a_jurisdiction_is_refused(tmp_path: Path, leave_out: str) -> None:
    """Without its file, a jurisdiction's numbers would meet none of its rules (a New York
    number at 03:00 came back ``allow`` from a folder without US.yaml)."""
    folder = _copy(tmp_path / "rules")
    (folder / leave_out).unlink()
    with pytest.raises(RulesDataError, match=f"has no {leave_out}: .*copy the missing files"):
        load_ruleset(folder)


@pytest.mark.parametrize("spelt", ["US.yml", "US.YAML", "US.Yaml", "US-FL.yml"])
def test_a_rules_file_not_spelt_yaml_is_refused(tmp_path: Path, spelt: str) -> None:
    folder = _copy(tmp_path / "rules")
    (folder / spelt).write_text((folder / "US.yaml").read_text())
    with pytest.raises(RulesDataError, match=f"{spelt}: rules files end in .yaml"):
        load_ruleset(folder)


def test_other_files_in_a_rules_folder_are_left_alone(tmp_path: Path) -> None:
    folder = _copy(tmp_path / "rules")
    (folder / "README.md").write_text("our edits\n")
    assert load_ruleset(folder).version.startswith("2026.")
    with pytest.raises(RulesDataError, match="does not exist"):
        load_ruleset(tmp_path / "nowhere")


@pytest.mark.parametrize("year", range(2000, 2041))
def test_easter_matches_holidays_package(year: int) -> None:
    good_friday = [d for d, n in holidays_pkg.country_holidays("US", subdiv="TX",
                                                              years=year).items()
                   if "Good Friday" in n]
    assert good_friday == [easter(year) - timedelta(days=2)]


def test_nth_weekday_holidays_match_holidays_package() -> None:
    """Our MLK, Memorial, Labor, Thanksgiving dates equal the holidays package's."""
    rs = load_ruleset()
    for year in (2025, 2026, 2027, 2028):
        ours = dates_in_year(rs.holiday_sets["PA_LEGAL_HOLIDAYS"], year)
        theirs = holidays_pkg.country_holidays("US", years=year, observed=False)
        for d, name in theirs.items():
            if any(k in name for k in ("Martin Luther", "Memorial", "Labor", "Thanksgiving",
                                       "Columbus", "Washington")):
                assert d in ours, (year, name)


def test_observed_shifts() -> None:
    rs = load_ruleset()
    ut = dates_in_year(rs.holiday_sets["UT_LEGAL_HOLIDAYS"], 2026)
    assert ut[date(2026, 7, 4)] == "independence_day"
    assert ut[date(2026, 7, 3)] == "independence_day (observed)"
    ri = dates_in_year(rs.holiday_sets["RI_STATE_AND_FEDERAL_HOLIDAYS"], 2026)
    assert date(2026, 7, 3) not in ri  # RI shifts Sunday only
    al = dates_in_year(rs.holiday_sets["AL_STATE_HOLIDAYS"], 2022)
    assert al[date(2021, 12, 31)] == "new_years_day (observed)"  # spills into the prior year
