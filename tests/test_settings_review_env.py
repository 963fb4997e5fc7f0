"""Every ``DNCGUARD_`` variable is read whatever the case of its name, and two spellings of
one variable are refused (settings review, finding 3).

The settings' check of unknown variables compared names in upper case and pydantic read the
settings' variables in any case (``dncguard_chunk_size=7`` set the chunk size), but the home,
the settings file and the acting user were read by their upper-case names only:
``dncguard_home=/x`` passed the check and then used the default home, another database.
Two spellings of one setting were resolved by the order of the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.errors import ConfigError
from dncguard.identity import acting_user

from .conftest import cli


def test_lower_case_home_is_the_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DNCGUARD_HOME")
    monkeypatch.setenv("dncguard_home", str(tmp_path / "elsewhere"))
    assert load_settings().home == tmp_path / "elsewhere"


def test_lower_case_config_is_the_settings_file(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("chunk_size = 1234\n", encoding="utf-8")
    monkeypatch.setenv("Dncguard_Config", str(path))
    settings = load_settings()
    assert (settings.config_file, settings.chunk_size) == (path, 1234)


def test_lower_case_user_is_the_acting_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DNCGUARD_USER")
    monkeypatch.setenv("dncguard_user", "alice")
    assert acting_user("cli") == "alice"


@pytest.mark.parametrize(("upper", "lower"), [
    ("DNCGUARD_CHUNK_SIZE", "dncguard_chunk_size"),
    ("DNCGUARD_SERVER_PORT", "dncguard_server_port"),
    ("DNCGUARD_USER", "dncguard_User"),
])
def test_two_spellings_of_one_variable_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                   upper: str, lower: str) -> None:
    monkeypatch.setenv(upper, "5")
    monkeypatch.setenv(lower, "7")
    with pytest.raises(ConfigError, match=f"{upper} and {lower} are both set"):
        load_settings()


def test_two_spellings_of_the_home_are_refused(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Before the settings file is looked for in either home."""
    monkeypatch.setenv("dncguard_home", str(tmp_path / "other"))
    with pytest.raises(ConfigError, match="DNCGUARD_HOME and dncguard_home are both set"):
        load_settings()
    code, out, err = cli(capsys, "config", "show")
    assert (code, out) == (2, "")
    assert "DNCGUARD_HOME and dncguard_home are both set" in err
    assert len(err.strip().splitlines()) == 1


def test_a_blank_lower_case_user_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a blank DNCGUARD_USER is: it would be recorded as nobody."""
    monkeypatch.delenv("DNCGUARD_USER")
    monkeypatch.setenv("dncguard_user", " ")
    with pytest.raises(ConfigError, match="^dncguard_user is empty"):
        acting_user("cli")
