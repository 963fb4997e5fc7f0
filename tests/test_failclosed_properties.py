"""Property tests for the promise itself, across the shipped rule data (issue 11, item 6).

(a) Replacing a valid context value by one that is not understood never turns a stop
    (``defer``, ``block``, ``error``) into ``allow``.
(b) Adding a listing, removing a consent or adding an attempt never turns a stop into
    ``allow``.
(c) A row's verdict does not depend on which other rows are in the file.

Each example builds a real home (SQLite file, list snapshots) and runs the real scrubber with
the rules on, at dial times spread over a week of day and night hours.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dncguard.config import Settings, load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import Decision
from dncguard.sources.rules import AttemptStore, ConsentStore
from dncguard.store import dispose_engines

from .conftest import read_csv

#: Area codes across zones and state rules: NY, FL, CA, TX, split-zone FL panhandle, AK, HI,
#: DC, MA, NV, a Canadian and an Indiana one.
NPAS = ["212", "305", "415", "512", "850", "907", "808", "202", "617", "702", "416", "317"]
STATES = ["NY", "Florida", "fla.", "CA", "Texas", "UT", "ma", "ON", ""]
ZIPS = ["10001", "33101", "73301", "94105", "84101", "02134", ""]
ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu", ""]
LINES = ["mobile", "landline", "voip", "wireless", ""]
UNKNOWN = {"state": ["ZZ", "Atlantis", "Flor."], "zip": ["00000", "2134", "ABCDE"],
           "timezone": ["EST", "Eastern", "Mars/Base"], "line_type": ["fax", "pager"]}
START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday

number = st.builds(lambda npa, k: f"+1{npa}55501{k:02d}", st.sampled_from(NPAS),
                   st.integers(0, 99))
dial_time = st.integers(0, 7 * 24 * 4 - 1).map(lambda q: START + timedelta(minutes=15 * q))
row = st.fixed_dictionaries({"phone": number, "state": st.sampled_from(STATES),
                             "zip": st.sampled_from(ZIPS), "timezone": st.sampled_from(ZONES),
                             "line_type": st.sampled_from(LINES)})
COLUMNS = ["phone", "state", "zip", "timezone", "line_type"]
PROPS = settings(max_examples=12, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _rules_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")


@pytest.fixture
def new_home() -> Iterator[Path]:
    """A folder for one example's home (hypothesis runs many examples per test)."""
    folders: list[Path] = []

    def make() -> Path:
        folders.append(Path(tempfile.mkdtemp(prefix="dncguard-prop-")))
        return folders[-1]

    yield make  # type: ignore[misc]
    dispose_engines()
    for f in folders:
        shutil.rmtree(f, ignore_errors=True)


def _home(folder: Path, listed: list[str]) -> Settings:
    """Fresh US registry (with ``listed``), a Florida list, a wireless list, an autodialed
    campaign."""
    (folder / "dncguard.toml").write_text(
        '[campaigns.robo]\ncall_type = "autodialed"\n', encoding="utf-8")
    cfg = load_settings(home=folder)
    store = ListStore(cfg)
    for name, kind, jur, numbers in (("us-ftc", "national", "US", listed),
                                     ("us-fl", "state", "US-FL", ["+13055550150"]),
                                     ("ca-dncl", "national", "CA", ["+14165550150"]),
                                     ("wireless", "wireless", None, ["+12125550100",
                                                                     "+14155550101"])):
        path = folder / f"{name}.txt"
        path.write_text("\n".join(numbers) + "\n", encoding="utf-8")
        store.import_file(path, kind=kind, name=name, jurisdiction=jur,
                          snapshot_date=date(2026, 11, 25) if kind != "wireless" else None)
    return cfg


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.DictWriter(fh, COLUMNS)
        out.writeheader()
        out.writerows(rows)
    return path


def _scrub(cfg: Settings, rows: list[dict[str, str]], at: datetime, name: str,
           campaign: str = "robo") -> list[dict[str, str]]:
    src = _write(cfg.home / f"{name}.csv", rows)
    out = cfg.home / f"{name}.out.csv"
    Scrubber(cfg).scrub_file(src, out, at=at, campaign=campaign)
    return read_csv(out)


def _stop(decision: str) -> bool:
    return decision != Decision.ALLOW.value


@PROPS
@given(rows=st.lists(row, min_size=1, max_size=8), at=dial_time,
       field=st.sampled_from(sorted(UNKNOWN)), pick=st.integers(0, 10))
def test_an_unknown_value_never_turns_a_stop_into_allow(
        new_home: object, rows: list[dict[str, str]], at: datetime, field: str,
        pick: int) -> None:
    cfg = _home(new_home(), ["+12125550150", "+18505550150"])  # type: ignore[operator]
    before = _scrub(cfg, rows, at, "before")
    spoiled = [{**r, field: UNKNOWN[field][pick % len(UNKNOWN[field])]} for r in rows]
    after = _scrub(cfg, spoiled, at, "after")
    for b, a in zip(before, after, strict=True):
        assert not (_stop(b["decision"]) and a["decision"] == "allow"), (b, a)
        assert a["decision"] == "error" and "CONTEXT_INVALID" in a["reason_codes"]


@PROPS
@given(rows=st.lists(row, min_size=1, max_size=6), at=dial_time,
       change=st.sampled_from(["listing", "consent", "attempt"]), which=st.integers(0, 5))
def test_more_evidence_never_turns_a_stop_into_allow(
        new_home: object, rows: list[dict[str, str]], at: datetime, change: str,
        which: int) -> None:
    cfg = _home(new_home(), ["+12125550150"])  # type: ignore[operator]
    target = rows[which % len(rows)]["phone"]
    consents = ConsentStore(cfg)
    if change == "consent":  # every number starts with consent; one loses it
        for r in rows:
            consents.add(r["phone"], "express", date(2026, 6, 1))
    before = _scrub(cfg, rows, at, "before")
    if change == "listing":
        path = cfg.home / "more.txt"
        path.write_text(f"+12125550150\n{target}\n", encoding="utf-8")
        ListStore(cfg).import_file(path, kind="national", name="us-ftc", jurisdiction="US",
                                   snapshot_date=date(2026, 11, 25))
    elif change == "consent":
        consents.add(target, "express", date(2026, 6, 1), revoked=date(2026, 11, 1))
    else:
        for minutes in (30, 60, 90, 120):
            AttemptStore(cfg, clock=lambda: at).record(
                target, at - timedelta(minutes=minutes), campaign="robo", subject="robo",
                outcome="no_answer")
    after = _scrub(cfg, rows, at, "after")
    for b, a in zip(before, after, strict=True):
        assert not (_stop(b["decision"]) and a["decision"] == "allow"), (change, b, a)


@PROPS
@given(rows=st.lists(row, min_size=2, max_size=8), at=dial_time, data=st.data())
def test_a_rows_verdict_does_not_depend_on_the_other_rows(
        new_home: object, rows: list[dict[str, str]], at: datetime,
        data: st.DataObject) -> None:
    cfg = _home(new_home(), ["+12125550150", "+14155550100"])  # type: ignore[operator]
    whole = _scrub(cfg, rows, at, "whole")
    keep = data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=1, unique=True))
    part = _scrub(cfg, [rows[i] for i in reversed(keep)], at, "part")

    def verdict(r: dict[str, str]) -> tuple[str, list[str], str]:
        codes = [c for c in r["reason_codes"].split(";") if c != "DUPLICATE"]
        return r["decision"], codes, r["next_allowed_at"]

    for i, got in zip(reversed(keep), part, strict=True):
        assert verdict(got) == verdict(whole[i]), (rows[i], got, whole[i])
