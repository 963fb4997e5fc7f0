"""A campaign profile that could never call anyone is refused when the settings load
(settings review, finding 8): a margin at least as long as the profile's own calling hours,
or at least as long as the longest legal window of any jurisdiction, made every check of
the campaign defer with no next moment to call."""

from __future__ import annotations

from pathlib import Path

import pytest

from dncguard.config import CampaignProfile, load_settings
from dncguard.errors import ConfigError
from dncguard.sources.rules._loader import load_ruleset
from dncguard.sources.rules.schema import CallingWindowRule


def _settings_file(tmp_path: Path, text: str) -> None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dncguard.toml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("hours", "margin"), [
    ('["09:00", "10:00"]', 60),
    ('["09:00", "10:00"]', 61),
    ('["20:30", "24:00"]', 210),
])
def test_a_margin_as_long_as_the_calling_hours_is_refused(tmp_path: Path, hours: str,
                                                          margin: int) -> None:
    _settings_file(tmp_path, f"[campaigns.x]\ncalling_hours = {hours}\n"
                             f"margin_minutes = {margin}\n")
    with pytest.raises(ConfigError, match=r"campaigns\.x: margin_minutes .* is not shorter "
                                          r"than calling_hours"):
        load_settings()


def test_a_margin_shorter_than_the_calling_hours_is_kept(tmp_path: Path) -> None:
    _settings_file(tmp_path, '[campaigns.x]\ncalling_hours = ["09:00", "10:00"]\n'
                             "margin_minutes = 59\n")
    assert load_settings().campaign("x").margin_minutes == 59


#: 08:00-21:00, the longest legal window (held to the rules data below).
LONGEST = 13 * 60


@pytest.mark.parametrize("margin", [LONGEST, 1440])
def test_a_margin_as_long_as_every_legal_window_is_refused(tmp_path: Path,
                                                           margin: int) -> None:
    _settings_file(tmp_path, f"[campaigns.x]\nmargin_minutes = {margin}\n")
    with pytest.raises(ConfigError, match=r"campaigns\.x\.margin_minutes: .*less than or "
                                          r"equal to 779"):
        load_settings()
    assert CampaignProfile(margin_minutes=LONGEST - 1)


def test_the_bound_is_the_longest_window_of_the_rules() -> None:
    """The constant is the longest window the shipped rules give any jurisdiction, any day
    (a change of the rules data that lengthens one must move the bound)."""
    from dncguard.config import LONGEST_LEGAL_WINDOW_MINUTES

    ruleset = load_ruleset()
    longest = 0
    for _, rule in ruleset.of_kind(CallingWindowRule, ruleset.jurisdictions()):
        for window in (rule.weekday, rule.saturday, rule.sunday):
            if window is not None:
                start = window.start.hour * 60 + window.start.minute
                end = 24 * 60 if window.end is None else window.end.hour * 60 + window.end.minute
                longest = max(longest, end - start)
    assert longest == LONGEST_LEGAL_WINDOW_MINUTES == LONGEST
