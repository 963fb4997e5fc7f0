"""Settings precedence: arguments > environment > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.errors import ConfigError, ContextError


def test_defaults_and_home_from_environment(tmp_path: Path) -> None:
    s = load_settings()
    assert s.home == tmp_path / "home"
    assert s.default_region == "US"
    assert s.db_url == f"sqlite:///{tmp_path / 'home' / 'dncguard.db'}"


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The TOML file beats defaults, the environment beats the file, arguments beat both."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text(
        'default_region = "GB"\nchunk_size = 7\nconcurrency = 3\n'
        '[campaigns.spring]\npurpose = "informational"\nlists = ["internal"]\n')
    s = load_settings()
    assert (s.default_region, s.chunk_size, s.concurrency) == ("GB", 7, 3)
    assert s.config_file == home / "dncguard.toml"
    assert s.campaign("spring").purpose == "informational"
    assert s.campaign("default").purpose == "telemarketing"
    with pytest.raises(ContextError, match="spring"):  # names the configured ones
        s.campaign("unknown")
    monkeypatch.setenv("DNCGUARD_CHUNK_SIZE", "11")
    s = load_settings()
    assert (s.default_region, s.chunk_size) == ("GB", 11)
    assert load_settings(chunk_size=13).chunk_size == 13


def test_named_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('default_region = "AU"\n')
    monkeypatch.setenv("DNCGUARD_CONFIG", str(cfg))
    assert load_settings().default_region == "AU"
    monkeypatch.setenv("DNCGUARD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_bad_settings_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text("default_region = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()
    (home / "dncguard.toml").write_text('default_region = "FR"\n')
    with pytest.raises(ConfigError, match="default_region"):
        load_settings()


@pytest.mark.parametrize("hours", ['["25:00", "20:00"]', '["20:00", "09:00"]',
                                   '["9am", "5pm"]', '["09:00", "09:00"]'])
def test_unreadable_calling_hours_are_refused_when_the_settings_load(
        tmp_path: Path, hours: str) -> None:
    """Hours the rules cannot read were accepted, and every check of the campaign then failed
    (SOURCE_ERROR). Refused at load, by the rules' own parser, naming the setting."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text(f"[campaigns.late]\ncalling_hours = {hours}\n")
    with pytest.raises(ConfigError, match=r"campaigns\.late\.calling_hours: .*HH:MM"):
        load_settings()
    (home / "dncguard.toml").write_text('[campaigns.late]\ncalling_hours = ["09:00", "24:00"]\n')
    assert load_settings().campaign("late").calling_hours == ("09:00", "24:00")


def test_two_homes_never_share_state(tmp_path: Path) -> None:
    from dncguard.lists.store import ListStore

    a = ListStore(load_settings(home=tmp_path / "a"))
    b = ListStore(load_settings(home=tmp_path / "b"))
    a.add_number("+12025550123")
    assert [i.name for i in a.all()] == ["internal"]
    assert b.all() == []


def test_one_settings_object_holds_its_sections(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings are built once at the edge and handed down: every part of a scrub gets the
    sections as the file said when it was read, the file is read once, and an edit made
    meanwhile (a server running) changes nothing until settings are loaded again."""
    from dncguard import config
    from dncguard.config import load_section
    from dncguard.sources.cxone import load_cxone
    from dncguard.sources.registry import default_checks
    from dncguard.sources.rules import RulesCheck, RulesSettings

    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")  # the tests' default is off
    home = tmp_path / "home"
    home.mkdir()
    toml = home / "dncguard.toml"
    toml.write_text('[rules]\ndefault_max_age_days = 20\n[cxone]\npush_group = "7"\n')
    reads: list[Path] = []
    real = config._read_toml
    monkeypatch.setattr(config, "_read_toml", lambda p: reads.append(p) or real(p))
    s = load_settings()
    toml.write_text('[rules]\ndefault_max_age_days = 5\n')
    rules = s.section(RulesSettings)
    assert rules.default_max_age_days == 20 and load_section(RulesSettings, s) is rules
    assert load_cxone(s).push_group == "7" and load_cxone(s) is load_cxone(s)
    found = [c for c in default_checks(s) if isinstance(c, RulesCheck)]
    assert len(found) == 1 and found[0].config is rules
    assert reads == [toml]
    assert load_settings().section(RulesSettings).default_max_age_days == 5


def test_server_refuses_a_bad_section_at_start(tmp_path: Path) -> None:
    """An invalid section stops the service from starting, naming the section, instead of
    failing a later request that happens to read it."""
    from dncguard.server import create_app

    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text("[cxone]\ntimeout_seconds = -1\n")
    with pytest.raises(ConfigError, match=r"\[cxone\]"):
        create_app(load_settings(), no_auth=True, run_jobs=False)


def test_a_copy_equals_its_original_and_holds_the_same_sections(tmp_path: Path) -> None:
    from dncguard.sources.rules import RulesSettings

    s = load_settings()
    rules = s.section(RulesSettings)
    copy = s.model_copy()
    assert copy == s and copy.section(RulesSettings) is rules
    assert s.model_copy(update={"default_region": "GB"}) != s


def test_the_ruleset_is_read_once_per_settings(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks, the freshness policy (``/readyz``) and a later caller judge by the ruleset
    read when the settings were loaded; an edit to the rules folder waits for new settings."""
    import shutil
    from importlib import resources

    from dncguard.sources.rules import RulesCheck
    from dncguard.sources.rules.freshness import FreshnessPolicy

    folder = tmp_path / "rules"
    shutil.copytree(str(resources.files("dncguard.sources.rules").joinpath("data")), folder)
    monkeypatch.setenv("DNCGUARD_RULES_DATA_DIR", str(folder))
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    s = load_settings()
    before = FreshnessPolicy.of(s).ruleset
    assert before is not None and RulesCheck(s).ruleset is before
    with (folder / "_ruleset.yaml").open("a", encoding="utf-8") as fh:
        fh.write("# edited\n")
    assert FreshnessPolicy.of(s).ruleset is before
    after = FreshnessPolicy.of(load_settings()).ruleset
    assert after is not None and after.version != before.version


def test_unknown_keys_in_the_settings_file_are_refused(tmp_path: Path) -> None:
    """A misspelt key would leave its setting at the default without a word: refused, named,
    with the close match, at the top level, in a section's table and in a nested table."""
    from dncguard.server.settings import ServerSettings
    from dncguard.sources.rules.settings import RulesSettings

    home = tmp_path / "home"
    home.mkdir()
    cfg = home / "dncguard.toml"
    cfg.write_text('keep_snapshot = 10\n[sever]\nport = 1\n')
    with pytest.raises(ConfigError, match=r"top level.*'keep_snapshot', 'sever'.*"
                       r"'keep_snapshot' -> 'keep_snapshots', 'sever' -> 'server'"):
        load_settings()
    cfg.write_text('[rules]\nregistry_optionl = ["US-LA"]\n[server]\nport = 8081\n')
    s = load_settings()  # sections are checked when they are loaded
    assert s.section(ServerSettings).port == 8081
    with pytest.raises(ConfigError, match=r"\[rules\].*'registry_optionl' -> "
                       r"'registry_optional'"):
        s.section(RulesSettings)
    cfg.write_text('[[rules.emergencies]]\njurisdiction = "US-LA"\nstart = 2026-11-30\n'
                   'zip = ["701"]\n')
    with pytest.raises(ConfigError, match=r"emergencies\.0\.zip"):
        load_settings().section(RulesSettings)
    cfg.write_text('[[rules.emergencies]]\njurisdiction = "US-LA"\nstart = 2026-11-30\n'
                   'zips = ["701"]\n')
    assert load_settings().section(RulesSettings).emergencies[0].zips == ["701"]
    for key, variable in (("home", "DNCGUARD_HOME"), ("config_file", "DNCGUARD_CONFIG")):
        cfg.write_text(f'{key} = "/elsewhere"\n')
        with pytest.raises(ConfigError, match=f"{key} cannot be set.*{variable}"):
            load_settings()


def test_unknown_environment_variables_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt DNCGUARD_ variable is refused with the close name, as a misspelt key of the
    file is: ``DNCGUARD_SERVER_METRICS_PUBLC=false`` left /metrics public without a word. The
    core refuses its own (any section's prefix is the section's to check, when it is built);
    the variables that are not settings and the test suite's DNCGUARD_TEST_ pass."""
    from dncguard.cli import run
    from dncguard.server.settings import load_server_settings

    monkeypatch.setenv("DNCGUARD_USER", "alice")
    monkeypatch.setenv("DNCGUARD_TEST_ANYTHING", "1")
    settings = load_settings()
    monkeypatch.setenv("DNCGUARD_SERVER_METRICS_PUBLC", "false")
    load_settings()  # not the core's name to judge
    with pytest.raises(ConfigError, match=r"DNCGUARD_SERVER_METRICS_PUBLC \(did you mean "
                                          r"DNCGUARD_SERVER_METRICS_PUBLIC\?\)"):
        load_server_settings(settings)
    assert run(["config", "show"]) == 2
    err = capsys.readouterr().err
    assert "DNCGUARD_SERVER_METRICS_PUBLC" in err and len(err.strip().splitlines()) == 1
    monkeypatch.delenv("DNCGUARD_SERVER_METRICS_PUBLC")
    monkeypatch.setenv("DNCGUARD_SEVRER_PORT", "9000")
    monkeypatch.setenv("dncguard_chunk_sise", "9")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(
        "unknown environment variables DNCGUARD_SEVRER_PORT, dncguard_chunk_sise (did you "
        "mean DNCGUARD_SERVER_PORT for DNCGUARD_SEVRER_PORT, DNCGUARD_CHUNK_SIZE for "
        "dncguard_chunk_sise?)")
    assert run(["check", "+12025550123"]) == 2
