"""Rules-engine fixtures: a RulesCheck on an isolated home, and a helper to check one number."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from dncguard.config import CampaignProfile, Settings
from dncguard.models import Reason
from dncguard.phones import state_for
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.rules import RulesCheck, RulesSettings

TIME_CODES = {"OUTSIDE_CALLING_WINDOW", "DAY_PROHIBITED", "HOLIDAY", "STATE_OF_EMERGENCY"}


def copy_rules_data(folder: Path) -> Path:
    """A copy of the packaged rules data (every jurisdiction's YAML file) in a new ``folder``,
    to be edited by a test and named by ``rules.data_dir``."""
    folder.mkdir()
    root = resources.files("dncguard.sources.rules").joinpath("data")
    for p in root.iterdir():
        if p.name.endswith(".yaml"):
            with resources.as_file(p) as path:
                shutil.copyfile(path, folder / p.name)
    return folder


@pytest.fixture(autouse=True)
def _rules_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests own the rules settings, whatever the suite-wide environment says."""
    import os

    for key in list(os.environ):
        if key.startswith("DNCGUARD_RULES_"):
            monkeypatch.delenv(key)


def region_of(e164: str) -> str:
    if e164.startswith("+44"):
        return "GB"
    if e164.startswith("+61"):
        return "AU"
    if e164.startswith("+1") and (state_for(e164) or "") in {
            "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}:
        return "CA"
    return "US"


def run_check(check: RulesCheck, e164: str, at: datetime, *, purpose: str = "telemarketing",
              call_type: str = "manual", campaign: str = "default",
              profile: CampaignProfile | None = None, region: str | None = None,
              state: str | None = None, **extra: str) -> list[Reason]:
    """The rule reasons for one number, as the pipeline builds them: a given ``state`` is the
    row's state column (batch state and ``extra``), else the batch state is the NPA's."""
    region = region or region_of(e164)
    row = {k: v for k, v in extra.items() if v}
    if state:
        row["state"] = state
    batch = Batch.of([e164], [region], [state or state_for(e164)], [row])
    ctx = CheckContext(at=at, campaign=campaign, purpose=purpose, call_type=call_type,
                       profile=profile or CampaignProfile())
    return asyncio.run(check.check(batch, ctx))[0]


@pytest.fixture
def make_check(settings: Settings) -> Callable[..., RulesCheck]:
    """A RulesCheck whose registry requirement is off unless asked for, and whose unknown
    line type is judged as a landline unless asked for (``ignore``: these tests give the line
    type they mean; the strict default, unknown as either kind, has its own tests)."""

    def make(**overrides: Any) -> RulesCheck:
        overrides.setdefault("require_registries", False)
        overrides.setdefault("unknown_line_type", "ignore")
        return RulesCheck(settings, rules_settings=RulesSettings(**overrides))

    return make


@pytest.fixture
def check(make_check: Callable[..., RulesCheck]) -> RulesCheck:
    return make_check()


class _NoDatabase:
    def connect(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()


class _NoRecords:
    """Stands in for the consent and attempt stores and the list store (no database)."""

    engine = reads = _NoDatabase()

    def has_records(self, conn: object, e164s: list[str] | None = None) -> bool:
        return False

    def with_attempts(self, conn: object, e164s: list[str]) -> tuple[bool, bool]:
        return False, False

    def for_numbers(self, e164s: list[str], *args: object) -> dict[str, list[object]]:
        return {}

    def for_subjects(self, subjects: list[str], *args: object) -> dict[str, list[object]]:
        return {}

    def all(self) -> list[object]:
        return []


@pytest.fixture(scope="module")
def time_check(tmp_path_factory: pytest.TempPathFactory) -> RulesCheck:
    """A database-free RulesCheck for time-rule tables and properties (fast, shared)."""
    from dncguard.config import load_settings

    settings = load_settings(home=tmp_path_factory.mktemp("rules-home"))
    fake: Any = _NoRecords()
    # module-scoped: created before the per-test environment clean-up, so fully explicit
    rules = RulesSettings(enabled=True, require_registries=False, check_freshness=True,
                          unknown_timezone="region", unknown_line_type="ignore",
                          emergencies=[], emergencies_file=None, data_dir=None)
    return RulesCheck(settings, rules_settings=rules, store=fake, consents=fake, attempts=fake)
