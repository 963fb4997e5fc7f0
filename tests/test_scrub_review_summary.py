"""The summary's counts: a Canadian number with no province is counted under ``CA
(country)``, not California's ``CA``; a number is suppressed when any of its rows is decided
block, defer or error, whatever the rows' order (or slices)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncguard.config import Settings, load_settings
from dncguard.engine.run import slice_of_rows
from dncguard.engine.scrubber import Scrubber, summary_path
from dncguard.engine.summary import ScrubSummary, SummaryBuilder

#: 13:30 UTC: 08:30 in New York (callable), 05:30 in Los Angeles (not)
MORNING = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)


@pytest.fixture
def rules_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    monkeypatch.setenv("DNCGUARD_RULES_REQUIRE_REGISTRIES", "false")
    return load_settings(home=tmp_path / "home")


def test_a_country_is_not_counted_as_a_state(rules_home: Settings, tmp_path: Path,
                                            write_csv: Callable[..., Path]) -> None:
    src = write_csv([["phone"], ["4155550123"], ["6005550100"], ["+61412345678"]])
    out = tmp_path / "out.csv"
    Scrubber(rules_home, audit=False).scrub_file(src, out, at=MORNING)
    by_state = json.loads(summary_path(out).read_text())["byState"]
    assert set(by_state) == {"CA", "CA (country)", "AU (country)"}
    assert sum(by_state["CA"].values()) == 1  # San Francisco only
    from dncguard.engine.summary import place_key

    assert place_key(None, "CA") == "CA (country)" and place_key("CA", "US") == "CA"
    assert place_key(None) == "unknown"


@pytest.mark.parametrize("zones", [("America/New_York", "America/Los_Angeles"),
                                   ("America/Los_Angeles", "America/New_York")])
def test_suppression_does_not_depend_on_row_order(rules_home: Settings, tmp_path: Path,
                                                  write_csv: Callable[..., Path],
                                                  zones: tuple[str, str]) -> None:
    src = write_csv([["phone", "timezone"], ["2125550111", zones[0]],
                     ["2125550111", zones[1]], ["2125550112", "America/New_York"]])
    out = tmp_path / "out.csv"
    summary = Scrubber(rules_home, audit=False).scrub_file(src, out, at=MORNING)
    assert summary.by_decision["defer"] == 1 and summary.by_decision["allow"] == 2
    assert (summary.unique_valid, summary.unique_suppressed) == (2, 1)
    assert summary.suppression_rate == 0.5


def test_suppression_counts_a_number_once_across_slices(rules_home: Settings) -> None:
    """One row per slice: the number's allowed row first, its deferred rows later."""
    scrubber = Scrubber(rules_home, audit=False)
    ctx = scrubber.context(at=MORNING)
    builder = SummaryBuilder(ScrubSummary(dial_time=MORNING, started_at=MORNING))
    run = scrubber.run(["phone", "timezone"], ctx, builder=builder)
    rows = [["2125550111", "America/New_York"], ["2125550111", "America/Los_Angeles"],
            ["2125550111", "America/Chicago"], ["2125550111", "America/Denver"],
            ["2125550113", "America/Los_Angeles"]]

    async def scrub() -> None:
        for i, row in enumerate(rows):
            await run.scrub(slice_of_rows([row], i, 2))

    asyncio.run(scrub())
    s = builder.finish(MORNING, 1.0)
    assert s.by_decision["defer"] == 4  # but the first row (New York's 08:30)
    assert (s.unique_valid, s.unique_suppressed, s.suppression_rate) == (2, 2, 1.0)


def test_combined_summary_keeps_every_columns_prefilter_and_lists() -> None:
    """The summary of several phone columns sums the columns' pre-filter statistics and names
    every list any column used; a list whose version differs between columns is warned of."""
    from dncguard.engine.summary import combine_summaries

    def part(lists: dict[str, str | None], checked: int, hits: int) -> ScrubSummary:
        return ScrubSummary(dial_time=MORNING, started_at=MORNING, total_rows=4,
                            lists=lists, prefilter={"svc": {
                                "checked": checked, "hits": hits, "localSuppressions": 0,
                                "remoteCallsSaved": checked - hits, "reverified": hits,
                                "falsePositives": 0, "entries": 9}})

    combined = combine_summaries({
        "phone": part({"us-ftc": "2026-11-01", "internal": "v1"}, 4, 1),
        "alt": part({"us-ftc": "2026-11-01", "internal": "v2", "litigators": "v9"}, 3, 2),
    }, input="in.csv", output="out.csv")
    assert combined.prefilter["svc"]["checked"] == 7
    assert combined.prefilter["svc"]["hits"] == 3
    assert combined.lists == {"us-ftc": "2026-11-01", "internal": "v2", "litigators": "v9"}
    assert any("list internal changed between the phone columns" in w and "v1" in w
               and "column alt" in w for w in combined.warnings)
