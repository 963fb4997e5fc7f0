"""The library's scrub arguments: a source added with ``extra_checks=`` runs beside the
built-in checks (``checks=`` replaces them, and says so); ``purpose`` and ``call_type`` are
refused as row defaults and as columns (taken and never read, they judged a prerecorded call
as a manual one); ``scrub_file`` takes text paths and refuses ``phone_column=[]``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncguard import Scrubber
from dncguard.config import Settings, load_settings
from dncguard.errors import ConfigError, ContextError, InputError
from dncguard.lists.store import ListStore
from dncguard.models import DataVersions, Decision, Reason, ReasonCode
from dncguard.sources.protocol import Batch, CheckBase, CheckContext

from .conftest import cli, read_csv

#: 04:00 UTC: 23:00 in New York, outside every calling window
NIGHT = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
#: 19:30 UTC: 14:30 in Miami, inside the window
DAY = datetime(2026, 12, 2, 19, 30, tzinfo=UTC)


class Partner(CheckBase):
    """A partner's list: blocks 2025550177."""

    name = "partner"
    always = True

    def versions(self) -> DataVersions:
        return DataVersions(lists={"partner": None})

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        return [[Reason(code=ReasonCode.DNC_INTERNAL, decision=Decision.BLOCK, source="partner",
                        list="partner", detail="on the partner's list")]
                if e == "+12025550177" else [] for e in batch.e164]


@pytest.fixture
def rules_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    settings = load_settings(home=tmp_path / "home")
    ListStore(settings).add_number("2025550199", reason="opt-out")
    return settings


def test_extra_checks_run_beside_the_built_in_ones(rules_home: Settings) -> None:
    s = Scrubber(rules_home, audit=False, extra_checks=[Partner()])
    assert [c.name for c in s.checks][-1] == "partner"
    assert {"local", "rules"} <= {c.name for c in s.checks}
    opted_out = s.check("2025550199", at=DAY)
    assert opted_out.decision is Decision.BLOCK and "DNC_INTERNAL" in opted_out.reason_codes
    night = s.check("2025550100", at=NIGHT)
    assert night.decision is Decision.DEFER and "OUTSIDE_CALLING_WINDOW" in night.reason_codes
    partner = s.check("2025550177", at=DAY)
    assert partner.decision is Decision.BLOCK and partner.reasons[0].source == "partner"
    assert "partner" in partner.versions.lists
    # checks= replaces the built-in checks (as its docstring and the README say)
    only = Scrubber(rules_home, audit=False, checks=[Partner()])
    assert [c.name for c in only.checks] == ["partner"]
    assert "replaces" in (Scrubber.__init__.__doc__ or "") or \
        "instead of" in (Scrubber.__init__.__doc__ or "")


def test_a_check_of_a_taken_name_is_refused(rules_home: Settings) -> None:
    class Rules(Partner):
        name = "rules"

    with pytest.raises(ConfigError, match="'rules'"):
        _ = Scrubber(rules_home, audit=False, extra_checks=[Rules()]).checks
    with pytest.raises(TypeError, match="extra_checks"):
        Scrubber(rules_home, extra_checks=Partner())  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["call_type", "purpose"])
def test_scope_row_defaults_are_refused(rules_home: Settings, tmp_path: Path,
                                        write_csv: Callable[..., Path], field: str) -> None:
    src = write_csv([["phone", "line_type"], ["3055550111", "mobile"]])
    s = Scrubber(rules_home, audit=False)
    value = {"call_type": "prerecorded", "purpose": "informational"}[field]
    with pytest.raises(ContextError) as err:
        s.scrub_file(src, tmp_path / "out.csv", at=DAY, defaults={field: value})
    assert err.value.field == field and f"{field}=" in err.value.why
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(ContextError, match="not a per-row context field"):
        s.scrub_file(src, tmp_path / "out.csv", at=DAY, defaults={"colour": "red"})
    # the argument itself is read
    s.scrub_file(src, tmp_path / "kw.csv", at=DAY, call_type="prerecorded")
    assert read_csv(tmp_path / "kw.csv")[0]["reason_codes"] == "CONSENT_REQUIRED"


@pytest.mark.parametrize("column", ["call_type", "Call Type", "PURPOSE", "call-purpose"])
def test_a_scope_column_is_refused(rules_home: Settings, tmp_path: Path,
                                   write_csv: Callable[..., Path], column: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv([["phone", "line_type", column], ["3055550111", "mobile", "prerecorded"]])
    s = Scrubber(rules_home, audit=False)
    with pytest.raises(InputError, match=repr(column).replace("(", r"\(")):
        s.scrub_file(src, tmp_path / "out.csv", at=DAY)
    assert not (tmp_path / "out.csv").exists()
    code, _, err = cli(capsys, "scrub", str(src), "-o", str(tmp_path / "cli.csv"), "-q",
                       "--at", "2026-12-02T19:30:00Z")
    assert code == 2 and "--call-type" in err and not (tmp_path / "cli.csv").exists()


def test_scrub_file_takes_text_paths_and_refuses_no_phone_column(
        rules_home: Settings, tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    src = write_csv([["phone", "other_phone"], ["2025550100", "2025550101"]])
    s = Scrubber(rules_home, audit=False)
    summary = s.scrub_file(str(src), str(tmp_path / "out.csv"), at=DAY, phone_column="phone")
    assert summary.total_rows == 1 and (tmp_path / "out.summary.json").exists()
    with pytest.raises(InputError, match="names no column"):
        s.scrub_file(src, tmp_path / "none.csv", at=DAY, phone_column=[])
    with pytest.raises(TypeError, match="output_path"):
        s.scrub_file(src, 5, at=DAY)  # type: ignore[arg-type]
