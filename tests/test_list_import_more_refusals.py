"""More list-file rows that are understood or refused, never read as something that matches
nothing: a prefix in national format (``202555`` would be +20, Egypt) is rejected; a change
record ends with its date (a time of day or text after it is rejected, naming the field); a
change record dated before the list's snapshot is already in it and is rejected, and a change
list older than the list's snapshot is refused whole; and ``e164``, the project's own column
name, is a header."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from dncguard.cli import run
from dncguard.errors import ListError
from dncguard.lists import _files as listfiles
from dncguard.lists.store import ListStore

BASE = date(2026, 11, 10)  # the list's snapshot date
LATER = date(2026, 11, 12)  # a change list's


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def hits(store: ListStore, name: str, numbers: list[str]) -> list[bool]:
    return [bool(x) for x in store.index(store.get(name)).contains_numbers(numbers)]


# -- 1. a prefix starts with the country code of a judged region -------------------------------

NATIONAL_PREFIX = "a prefix starts with the country code of a region dncguard judges (1, 44, 61)"


def test_the_judged_country_codes_come_from_the_supported_regions() -> None:
    assert listfiles.JUDGED_COUNTRY_CODES == ("1", "44", "61")


@pytest.mark.parametrize("row", ["202555", "900", "207946", "412", "+900", "33"])
def test_a_prefix_in_national_format_is_rejected(
        write_lines: Callable[..., Path], row: str) -> None:
    _, report = listfiles.read_prefixes(write_lines(["1202555", row]))
    assert report.rejected == 1 and report.accepted == 1
    assert report.reject_samples[0].startswith(f"list.txt:2: {NATIONAL_PREFIX}")
    assert "for 202555 write 1202555, country code first" in report.reject_samples[0]


@pytest.mark.parametrize("row", ["1202555", "+1900", "1", "44207946", "+4420", "61412",
                                 "44", "61"])
def test_a_prefix_of_a_judged_country_is_read(write_lines: Callable[..., Path],
                                              row: str) -> None:
    values, report = listfiles.read_prefixes(write_lines([row]))
    assert report.rejected == 0 and values.tolist() == [row.lstrip("+")]


def test_the_reviewers_prefix_file_is_refused(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """``202555`` and ``900`` were read as +20 and +90: two entries that blocked nothing."""
    path = write_lines(["prefix,note", "202555,DC test range", "900,premium rate"], "pfx2.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "prefix", "--name",
                         "ranges", "--json")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "pfx2.txt: no valid entries found (pfx2.txt:2: " + NATIONAL_PREFIX in err
    assert store.all() == []


def test_national_rows_beside_good_ones_are_rejected_and_reported(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(["prefix,note", "202555,DC test range", "1202555,DC test range",
                        "+1900,premium rate", "900,premium rate"], "pfx.txt")
    code, out, _ = cli(capsys, "lists", "import", str(path), "--kind", "prefix", "--name",
                       "ranges", "--json")
    summary = json.loads(out)
    assert code == 1
    assert (summary["count"], summary["rejected"]) == (2, 2)
    assert [s.split(": ")[0] for s in summary["rejectSamples"]] == ["pfx.txt:2", "pfx.txt:5"]
    assert hits(store, "ranges", ["+12025550100", "+19005551234", "+2025550100"]) == [
        True, True, False]


# -- 2. a change record ends with its date -----------------------------------------------------

def _national(store: ListStore, write_lines: Callable[..., Path], numbers: list[str],
              snapshot: date = BASE) -> None:
    store.import_file(write_lines(numbers, "base.txt"), kind="national", name="us-ftc",
                      jurisdiction="US", snapshot_date=snapshot)


def _changes(store: ListStore, write_lines: Callable[..., Path], lines: list[str],
             snapshot: date = LATER) -> Any:
    return store.import_file(write_lines(lines, "chg.txt"), kind="national", name="us-ftc",
                             snapshot_date=snapshot, changes=True)


@pytest.mark.parametrize(("line", "why"), [
    ("2025550100,A,2026-11-11,23:00",
     "field 4 is a time of day apart from the date (field 3): write the time in the date "
     "field, ISO 8601 (2026-11-20T10:00)"),
    ("2025550100,A,2026-11-11,11:00:30 PM", "field 4 is a time of day apart from the date"),
    ("202,5550100,A,2026-11-11,23:00Z", "field 5 is a time of day apart from the date (field 4)"),
    ("2025550100,2026-11-11,A,23:00", "field 4 is a time of day apart from the date (field 2)"),
    ("2025550100,A,2026-11-11,2026-11-01", "two dates in the record (fields 3 and 4)"),
    ("2025550100,A,2026-11-11,,2026-11-01", "two dates in the record (fields 3 and 5)"),
    ("2025550100,A,2026-11-11,Added by consumer",
     "field 4 follows the change date (field 3) and is not understood: a record ends with "
     "its date"),
    ("2025550100,A,2026-11-11,garbage,D", "field 4 follows the change date (field 3)"),
    ("2025550100,2026-11-11,A,x", "field 4 follows the change date (field 2)"),
    ("2025550100,A,2026-11-11,1", "field 4 follows the change date (field 3)"),
])
def test_a_field_after_the_date_rejects_the_record(
        write_lines: Callable[..., Path], line: str, why: str) -> None:
    adds, dels, report = listfiles.read_changes(write_lines([line, "2025550101,A"]),
                                                jurisdiction="US", default_region="US")
    assert report.rejected == 1 and adds.tolist() == [12025550101] and dels.size == 0
    assert report.reject_samples[0].startswith(f"list.txt:1: {why}")
    assert "5550100" not in report.reject_samples[0]  # never the number


@pytest.mark.parametrize("line", [
    "202,5550100,A,2026-11-11",  # the FTC layout: area code, number, flag, date
    '"202","5550100","A","2026-11-11"',
    "2025550100,A,2026-11-11,",  # empty fields after the date are nothing to read
    "2025550100,A,2026-11-11,,",
    "2025550100,A,,2026-11-11",
    "2025550100,A,2026-11-11T23:00",  # the time in the date field
    "2025550100,A,2026-11-11 23:00:00-05:00",
    "2025550100,2026-11-11,A,",
    "2025550100,A",
])
def test_a_record_that_ends_with_its_date_is_read(write_lines: Callable[..., Path],
                                                  line: str) -> None:
    adds, _, report = listfiles.read_changes(write_lines(["Area Code,Phone Number,Action,Date",
                                                          line]),
                                             jurisdiction="US", default_region="US")
    assert report.rejected == 0 and adds.tolist() == [12025550100]


def test_the_reviewers_time_fields_no_longer_decide(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """``23:00`` after the date was dropped: the add 'at 23:00' and the delete 'at 01:00' were
    the same day, file order decided, and the number stopped blocking; the second date of the
    third record was dropped too."""
    _national(store, write_lines, ["2025550100", "2025550199"])
    lines = ["2025550100,A,2026-11-11,23:00", "2025550100,D,2026-11-11,01:00",
             "2025550199,D,2026-11-11,2026-11-01", "2025550105,A,2026-11-11"]
    result = _changes(store, write_lines, lines)
    assert (result.added, result.deleted, result.report.rejected) == (1, 0, 3)
    assert [s.split(": ", 1)[1][:30] for s in result.report.reject_samples] == [
        "field 4 is a time of day apart", "field 4 is a time of day apart",
        "two dates in the record (field"]
    assert hits(store, "us-ftc", ["+12025550100", "+12025550199", "+12025550105"]) == [
        True, True, True]
    assert store.get("us-ftc").snapshot_date == BASE.isoformat()  # not every record applied


def test_cli_a_change_list_of_only_such_records_is_refused(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    _national(store, write_lines, ["2025550100", "2025550199"])
    path = write_lines(["2025550100,A,2026-11-11,23:00", "2025550100,D,2026-11-11,01:00",
                        "2025550199,D,2026-11-11,2026-11-01"], "ch_time.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "national", "--name",
                         "us-ftc", "--changes", "--snapshot-date", LATER.isoformat(), "--json")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no usable change records (3 records rejected; first: ch_time.txt:1: field 4" in err
    assert hits(store, "us-ftc", ["+12025550100", "+12025550199"]) == [True, True]


# -- 3. a change list applies on top of the list's snapshot ------------------------------------

STALE = f"the change is dated before the list's snapshot of {BASE.isoformat()}, which " \
        "already reflects it"


def test_a_record_dated_before_the_snapshot_is_rejected(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    _national(store, write_lines, ["2025550100", "2025550101"])
    result = _changes(store, write_lines, [
        "2025550101,D,2026-11-05",  # stale: the snapshot of the 10th has it still listed
        "2025550100,D,2026-11-09T23:59:59Z",  # the 9th in UTC: stale too
        "2025550102,A,2026-11-10",  # the snapshot's own day: it may be after the download
        "2025550103,A,2026-11-11",
        "2025550104,A",  # no date: nothing to compare
    ])
    assert result.report.rejected == 2
    assert result.report.reject_samples == [f"chg.txt:1: {STALE}", f"chg.txt:2: {STALE}"]
    assert hits(store, "us-ftc", [f"+1202555010{i}" for i in range(5)]) == [True] * 5
    assert (result.added, result.deleted) == (3, 0)
    assert store.get("us-ftc").snapshot_date == BASE.isoformat()


def test_a_stale_record_never_decides_a_number(store: ListStore,
                                              write_lines: Callable[..., Path]) -> None:
    _national(store, write_lines, ["2025550100"])
    result = _changes(store, write_lines, ["2025550101,A,2026-11-11",
                                           "2025550101,D,2026-11-09"])
    assert result.report.rejected == 1
    assert hits(store, "us-ftc", ["+12025550101"]) == [True]


def test_cli_the_reviewers_stale_change_list(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Full import of the 10th; a change list of the 12th whose only record is of the 5th:
    "-1 deleted" before, a refusal now, the number still blocked."""
    _national(store, write_lines, ["2025550100", "2025550101"])
    path = write_lines(["2025550101,D,2026-11-05"], "old_changes.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "national", "--name",
                         "us-ftc", "--changes", "--snapshot-date", LATER.isoformat())
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"old_changes.txt:1: {STALE}" in err
    assert hits(store, "us-ftc", ["+12025550101"]) == [True]
    info = store.get("us-ftc")
    assert (info.snapshot_date, info.count, len(store.versions("us-ftc"))) == (
        BASE.isoformat(), 2, 1)


@pytest.mark.parametrize("lines", [["2025550102,A,2026-11-09"], ["2025550102,A"]])
def test_a_change_list_older_than_the_snapshot_is_refused_whole(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str], lines: list[str]) -> None:
    _national(store, write_lines, ["2025550100", "2025550101"])
    with pytest.raises(ListError, match=r"^--snapshot-date 2026-11-09 is before the snapshot "
                                        r"date of list 'us-ftc' \(2026-11-10\): that download "
                                        r"already reflects this change list; nothing was "
                                        r"applied$"):
        _changes(store, write_lines, lines, snapshot=date(2026, 11, 9))
    code, out, err = cli(capsys, "lists", "import", str(write_lines(lines, "c.txt")), "--kind",
                         "national", "--name", "us-ftc", "--changes", "--snapshot-date",
                         "2026-11-09")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "is before the snapshot date of list 'us-ftc' (2026-11-10)" in err
    assert hits(store, "us-ftc", ["+12025550102"]) == [False]
    info = store.get("us-ftc")
    assert (info.snapshot_date, len(store.versions("us-ftc"))) == (BASE.isoformat(), 1)


def test_a_change_list_of_the_snapshots_own_day_applies(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    _national(store, write_lines, ["2025550100"])
    result = _changes(store, write_lines, ["2025550102,A,2026-11-10"], snapshot=BASE)
    assert (result.added, result.report.rejected) == (1, 0)


def test_a_list_that_does_not_age_takes_changes_of_any_date(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["2025550100"], "base.txt"), kind="litigator", name="lit")
    result = store.import_file(write_lines(["2025550100,D,2003-01-01"], "chg.txt"),
                               kind="litigator", name="lit", changes=True)
    assert (result.deleted, result.report.rejected) == (1, 0)


def test_a_snapshot_date_moved_while_the_changes_were_applied_refuses_them(
        store: ListStore, write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Read against the snapshot of the 10th; a full import of the 11th commits meanwhile
    (so the record of the 10th is already in it): redone on the new version it would be
    applied as if newer, so the change list is refused, changing nothing."""
    _national(store, write_lines, ["2025550100", "2025550101"])
    full = write_lines(["2025550100", "2025550101"], "full11.txt")
    commit = ListStore._commit_import
    raced: list[bool] = []

    def racing(self: ListStore, *args: Any, **kwargs: Any) -> Any:
        if kwargs["changes"] and not raced:
            raced.append(True)
            self.import_file(full, kind="national", name="us-ftc", jurisdiction="US",
                             snapshot_date=date(2026, 11, 11))
        return commit(self, *args, **kwargs)

    monkeypatch.setattr(ListStore, "_commit_import", racing)
    with pytest.raises(ListError, match=r"another import changed its snapshot date from "
                                        r"2026-11-10 to 2026-11-11 while this change list was "
                                        r"applied; this import changed nothing"):
        _changes(store, write_lines, ["2025550101,D,2026-11-10"])
    assert raced == [True]
    assert hits(store, "us-ftc", ["+12025550101"]) == [True]
    assert store.get("us-ftc").snapshot_date == "2026-11-11"


# -- 4. e164 is a header -----------------------------------------------------------------------

@pytest.mark.parametrize("header", ["e164", "E164", "E.164", "phone_e164", "e164_number",
                                    '"e164"', "e164,name"])
def test_e164_is_a_header(store: ListStore, write_lines: Callable[..., Path],
                          capsys: pytest.CaptureFixture[str], header: str) -> None:
    path = write_lines([header, "+12025550100", "+12025550101"], "e164hdr.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "internal",
                         "--jurisdiction", "US", "--name", "mine", "--json")
    summary = json.loads(out)
    assert code == 0, err
    assert (summary["count"], summary["lines"], summary["rejected"]) == (2, 3, 0)


@pytest.mark.parametrize("line", ["1e164", "e1640", "e164 2025550100", "e164x1", "2e164"])
def test_other_digits_on_the_first_line_are_never_a_header(line: str) -> None:
    assert not listfiles.is_header(line)


def test_e164_heads_change_lists_and_prefix_lists(write_lines: Callable[..., Path]) -> None:
    adds, _, report = listfiles.read_changes(
        write_lines(["e164,flag,date", "+12025550100,A,2026-11-11"]),
        jurisdiction="US", default_region="US")
    assert (report.rejected, adds.tolist()) == (0, [12025550100])
    values, report = listfiles.read_prefixes(write_lines(["e164_prefix,note", "1900,premium"]))
    assert (report.rejected, values.tolist()) == (0, ["1900"])
