"""CXone's settings are whole or refused: some of the four credentials are refused when the
settings load (the check used to be left out of every scrub without a word, and the numbers of
its groups allowed); groups, a skill or a write-back group named without credentials
register the check, which answers error until the groups are synced, never allow."""

from __future__ import annotations

from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.errors import ConfigError
from dncguard.models import Decision, ReasonCode
from dncguard.sources.cxone.source import CxoneCheck
from dncguard.sources.registry import default_checks


def test_cxone_credentials_in_part_are_refused_and_groups_alone_fail_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    for key in ("CLIENT_ID", "CLIENT_SECRET", "ACCESS_KEY_ID"):
        monkeypatch.setenv(f"DNCGUARD_CXONE_{key}", "x")
    with pytest.raises(ConfigError, match="DNCGUARD_CXONE_ACCESS_KEY_SECRET"):
        default_checks(load_settings(home=tmp_path / "a"))
    for key in ("CLIENT_ID", "CLIENT_SECRET", "ACCESS_KEY_ID"):
        monkeypatch.delenv(f"DNCGUARD_CXONE_{key}")
    for name, value in (("GROUPS", '["364"]'), ("SKILL", "77"), ("PUSH_GROUP", "364")):
        monkeypatch.setenv(f"DNCGUARD_CXONE_{name}", value)
        settings = load_settings(home=tmp_path / name)
        assert any(isinstance(c, CxoneCheck) for c in default_checks(settings)), name
        verdict = Scrubber(settings).check("+12025550101")
        assert verdict.decision is Decision.ERROR, (name, verdict)
        assert [r.code for r in verdict.reasons] == [ReasonCode.SOURCE_ERROR]
        monkeypatch.delenv(f"DNCGUARD_CXONE_{name}")
