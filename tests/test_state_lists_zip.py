"""A row's ZIP or postal code brings in its state's DNC list, as its area code and its address
state do: each is a candidate state, as for the calling rules (docs/rules.md), so a number
that may be on a list that applies is never reported callable; a row with no address at all
gets every state list of its country. Per-row ``zip`` columns and the
``--zip`` default, on the row-by-row path (a few rows) and the array path (many rows)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from dncguard.cli import run
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import Decision, Verdict
from dncguard.sources.local import applies_to
from dncguard.sources.protocol import Batch

from .conftest import AT, read_csv

D = date(2026, 11, 1)
NY = "+12125550111"  # area code 212: New York
ON_ALL = "+12125550114"  # on the Georgia, Florida and New York lists
TOLL_FREE = "+18005550100"  # no state by area code
TORONTO = "+14165550100"  # area code 416: Ontario
ATLANTA, MANHATTAN = "30301", "10001"


@pytest.fixture
def lists(store: ListStore, write_lines: Callable[..., Path]) -> ListStore:
    for name, numbers in (("us-ga", [NY, ON_ALL, TOLL_FREE]), ("us-fl", [ON_ALL, TOLL_FREE]),
                          ("us-ny", [ON_ALL]), ("us-tx", [ON_ALL]), ("ca-qc", [TORONTO])):
        store.import_file(write_lines(numbers, f"{name}.txt"), kind="state", name=name,
                          jurisdiction=name.upper(), snapshot_date=D)
    return store


def _lists(v: Verdict) -> list[str]:
    return sorted(r.list or "" for r in v.reasons)


class TestLibrary:
    def test_the_zip_codes_state_list_applies(self, lists: ListStore,
                                              scrubber: Scrubber) -> None:
        # a New York area code says nothing of where its subscriber lives: without an
        # address every state list applies, and the reason says why
        v = scrubber.check(NY, at=AT)
        assert (v.decision, _lists(v)) == (Decision.BLOCK, ["us-ga"])
        assert v.reasons[0].detail.endswith("the row gives no state or ZIP: an area code "
                                            "does not show where the subscriber lives")
        assert scrubber.check(NY, at=AT, state="NY").decision is Decision.ALLOW
        v = scrubber.check(NY, at=AT, zip=ATLANTA)
        assert (v.decision, v.reason_codes, _lists(v)) == (Decision.BLOCK, ["DNC_STATE"],
                                                           ["us-ga"])
        # explainable: the verdict names the ZIP's state (the address), and the reason says
        # that the list applies by it, not by the area code
        assert v.state == "GA"
        assert v.reasons[0].detail == ("number on state list us-ga [US-GA] (snapshot "
                                       "2026-11-01); it applies by the ZIP or postal code's "
                                       "state (GA)")
        assert scrubber.check(NY, at=AT, zip="30301-1234").decision is Decision.BLOCK
        assert scrubber.check(NY, at=AT, zip=MANHATTAN).decision is Decision.ALLOW

    def test_every_candidate_states_list_applies(self, lists: ListStore,
                                                 scrubber: Scrubber) -> None:
        """Area code (NY), address (FL) and ZIP (GA) all differ: each one's list applies,
        as the area code's and the address's already both did; Texas is no candidate."""
        assert _lists(scrubber.check(ON_ALL, at=AT, state="FL")) == ["us-fl", "us-ny"]
        v = scrubber.check(ON_ALL, at=AT, state="FL", zip=ATLANTA)
        assert _lists(v) == ["us-fl", "us-ga", "us-ny"]
        details = {r.list: r.detail for r in v.reasons}
        assert "ZIP" in details["us-ga"]
        assert "ZIP" not in details["us-fl"] and "ZIP" not in details["us-ny"]
        # a list that applies by area code or address as well needs no ZIP to explain it
        v = scrubber.check(ON_ALL, at=AT, state="GA", zip=ATLANTA)
        assert _lists(v) == ["us-ga", "us-ny"]
        assert all("ZIP" not in r.detail for r in v.reasons)

    def test_a_zip_counts_as_the_address_state_does(self, lists: ListStore,
                                                    scrubber: Scrubber) -> None:
        """A number without a state by area code gets every state list of its country; a
        ZIP code, like a ``state``, names the candidate state instead."""
        assert _lists(scrubber.check(TOLL_FREE, at=AT)) == ["us-fl", "us-ga"]
        assert _lists(scrubber.check(TOLL_FREE, at=AT, state="GA")) == ["us-ga"]
        assert _lists(scrubber.check(TOLL_FREE, at=AT, zip=ATLANTA)) == ["us-ga"]

    def test_a_canadian_postal_codes_province(self, lists: ListStore,
                                              scrubber: Scrubber) -> None:
        assert scrubber.check(TORONTO, at=AT).decision is Decision.BLOCK  # no address
        assert scrubber.check(TORONTO, at=AT, state="ON").decision is Decision.ALLOW
        v = scrubber.check(TORONTO, at=AT, zip="H2X 1Y4")  # Montreal, Quebec
        assert (v.decision, _lists(v)) == (Decision.BLOCK, ["ca-qc"])
        assert v.reasons[0].detail.endswith("state (QC)")
        assert scrubber.check(TORONTO, at=AT, zip="K1A 0B1").decision is Decision.ALLOW

    def test_the_default_zip_of_a_scrub(self, lists: ListStore, scrubber: Scrubber) -> None:
        got = scrubber.scrub([NY, "+12125550199"], at=AT, zip=ATLANTA)
        assert [v.decision for v in got] == [Decision.BLOCK, Decision.ALLOW]

    def test_applies_to_reads_the_zip_of_each_number(self) -> None:
        batch = Batch.of([NY, NY, NY, TOLL_FREE], ["US"] * 4, [None] * 4,
                         [{"zip": ATLANTA}, {"zip": MANHATTAN}, {}, {"zip": "30301-1234"}])
        assert applies_to("US-GA", batch).tolist() == [True, False, True, True]
        assert applies_to("US-NY", batch).tolist() == [True, True, True, False]


def _rows(n: int) -> list[list[str]]:
    """``n`` rows (n >= 5): the New York number with an Atlanta ZIP, a ZIP+4, a New York ZIP,
    none, and filler numbers on no list."""
    rows = [["phone", "zip"], [NY, ATLANTA], [NY, "30301-1234"], [NY, MANHATTAN], [NY, ""],
            [ON_ALL, ATLANTA]]
    rows += [[f"+1212555{i:04d}", ATLANTA] for i in range(200, 200 + n - 5)]
    return rows


@pytest.mark.parametrize("n", [5, 300], ids=["few-rows", "many-rows"])
def test_a_zip_column_in_a_scrubbed_file(n: int, lists: ListStore, scrubber: Scrubber,
                                         tmp_path: Path,
                                         write_csv: Callable[..., Path]) -> None:
    out = tmp_path / "out.csv"
    summary = scrubber.scrub_file(write_csv(_rows(n)), out, at=AT)
    got = read_csv(out)
    assert [r["decision"] for r in got[:5]] == [
        "block", "block", "allow", "block", "block"]  # the fourth row gives no ZIP
    assert got[0]["reason_codes"] == "DNC_STATE"
    assert "us-ga" in got[0]["detail"] and "state (GA)" in got[0]["detail"]
    assert "us-ga" in got[4]["detail"] and "us-ny" in got[4]["detail"]  # ZIP, area code
    assert "us-fl" not in got[4]["detail"] and "us-tx" not in got[4]["detail"]
    assert {r["decision"] for r in got[5:]} <= {"allow"}
    assert summary.total_rows == n and summary.by_list["us-ga"] >= 3
    # the default ZIP fills the rows without one; a row's own ZIP wins
    out2 = tmp_path / "out2.csv"
    scrubber.scrub_file(write_csv(_rows(n), "in2.csv"), out2, at=AT,
                        defaults={"zip": ATLANTA})
    assert [r["decision"] for r in read_csv(out2)[:4]] == [
        "block", "block", "allow", "block"]


@pytest.mark.parametrize("n", [5, 300], ids=["few-rows", "many-rows"])
def test_an_unknown_zip_is_refused_not_allowed(n: int, lists: ListStore, scrubber: Scrubber,
                                               tmp_path: Path,
                                               write_csv: Callable[..., Path]) -> None:
    rows = _rows(n)
    rows[3] = [NY, "99999"]  # no such ZIP code
    out = tmp_path / "out.csv"
    scrubber.scrub_file(write_csv(rows), out, at=AT)
    row = read_csv(out)[2]
    assert (row["decision"], row["reason_codes"]) == ("error", "CONTEXT_INVALID")
    assert "99999" in row["detail"]


class TestCli:
    def _check(self, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
        code = run(["check", *args, "--at", "2026-11-19T15:00:00Z", "--json"])
        out, _ = capsys.readouterr()
        assert code in (0, 1), out
        found: dict[str, object] = json.loads(out)
        return found

    def test_check_with_zip(self, lists: ListStore,
                            capsys: pytest.CaptureFixture[str]) -> None:
        assert self._check(capsys, NY)["decision"] == "block"  # no address
        assert self._check(capsys, NY, "--state", "NY")["decision"] == "allow"
        assert self._check(capsys, NY, "--state", "GA")["decision"] == "block"
        got = self._check(capsys, NY, "--zip", ATLANTA)
        assert got["decision"] == "block"
        reasons = got["reasons"]
        assert isinstance(reasons, list)
        assert [(r["code"], r["list"]) for r in reasons] == [("DNC_STATE", "us-ga")]
        assert "state (GA)" in reasons[0]["detail"]

    def test_check_with_an_unknown_zip_is_refused(self, lists: ListStore,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
        assert run(["check", NY, "--zip", "99999"]) == 2
        assert "not a known US ZIP code" in capsys.readouterr().err

    def test_scrub_with_zip_column_and_default(self, lists: ListStore, tmp_path: Path,
                                               write_csv: Callable[..., Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
        src = write_csv(_rows(300))
        assert run(["scrub", str(src), "-o", str(tmp_path / "o.csv"), "--at",
                    "2026-11-19T15:00:00Z"]) == 0
        got = read_csv(tmp_path / "o.csv")
        assert [r["decision"] for r in got[:4]] == ["block", "block", "allow",
                                                             "block"]
        assert run(["scrub", str(src), "-o", str(tmp_path / "d.csv"), "--at",
                    "2026-11-19T15:00:00Z", "--zip", ATLANTA]) == 0
        got = read_csv(tmp_path / "d.csv")
        assert [r["decision"] for r in got[:4]] == ["block", "block", "allow",
                                                             "block"]
        capsys.readouterr()



def test_a_large_file_finds_what_each_number_finds_alone(
        lists: ListStore, scrubber: Scrubber, tmp_path: Path,
        write_csv: Callable[..., Path]) -> None:
    """From SORT_FROM numbers a batch's lookups go through its numbers sorted once: each
    row's lists (in the file's own, unsorted order, with and without an address) are those
    of its number checked alone with the same address."""
    import random

    from dncguard.sources.local import SORT_FROM

    rng = random.Random(5)
    phones = [NY, ON_ALL, TOLL_FREE, TORONTO] * 60 + [
        f"+1212555{i:04d}" for i in rng.sample(range(200, 9999), SORT_FROM)]
    rng.shuffle(phones)
    places = [("", ""), ("", ATLANTA), ("NY", ""), ("", MANHATTAN), ("FL", "")]
    rows = [[p, *rng.choice(places)] for p in phones]
    out = tmp_path / "out.csv"
    scrubber.scrub_file(write_csv([["phone", "state", "zip"], *rows]), out, at=AT)
    got = read_csv(out)
    assert len(got) == len(rows)
    for i in rng.sample(range(len(rows)), 80) + [i for i, r in enumerate(rows)
                                                  if r[0] == ON_ALL][:10]:
        phone, state, zip_code = rows[i]
        given = {k: v for k, v in (("state", state), ("zip", zip_code)) if v}
        alone = scrubber.check(phone, at=AT, **given)
        assert got[i]["decision"] == alone.decision.value, (phone, given)
        assert sorted(filter(None, (r.list for r in alone.reasons))) == sorted(
            x for x in _lists_named(got[i]["detail"])), (phone, given)


def _lists_named(detail: str) -> list[str]:
    return [name for name in ("us-ga", "us-fl", "us-ny", "us-tx", "ca-qc")
            if f"list {name} " in detail]
