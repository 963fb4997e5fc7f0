"""Every field of a change record is understood or the record is rejected with its line: a
date before the add/delete flag is the record's date (never dropped, leaving file order to
decide), any other field there that is neither part of the number nor empty rejects the
record; and a record's time of day orders it (in UTC; a time without an offset is UTC), where
a date alone keeps ordering by day, then line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.lists import _files as listfiles
from dncguard.lists.store import ImportResult, ListStore

from .conftest import cli

N = "2025550105"


def _base(store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["2025550199"], "base.txt"), kind="litigator", name="lit")


def _apply(store: ListStore, write_lines: Callable[..., Path], lines: list[str]
           ) -> ImportResult:
    return store.import_file(write_lines(lines, "chg.txt"), kind="litigator", name="lit",
                             changes=True)


def _listed(store: ListStore, *numbers: str) -> list[bool]:
    return [bool(x) for x in store.index(store.get("lit")).contains_numbers(
        [f"+1{n}" for n in numbers])]


def _last_record_decides(store: ListStore, write_lines: Callable[..., Path], lines: list[str],
                         listed: bool) -> ImportResult:
    """Apply ``lines`` to the base list: nothing rejected, and the number listed or not."""
    _base(store, write_lines)
    result = _apply(store, write_lines, lines)
    assert result.report.rejected == 0
    assert _listed(store, N) == [listed]
    return result


# -- 2. a date before the flag ------------------------------------------------------------------

@pytest.mark.parametrize(("lines", "listed"), [
    ([f"{N},2026-11-21,A", f"{N},2026-11-01,D"], True),  # the reviewer's case: the add is later
    ([f"{N},2026-11-01,A", f"{N},2026-11-21,D"], False),
    ([f"{N},2026-11-21,D", f"{N},A,2026-11-01"], False),  # before and after the flag, mixed
    (["202,5550105,11/21/2026,A", "202,5550105,D,11/01/2026"], True),  # US dates
])
def test_a_date_before_the_flag_is_the_records_date(
        store: ListStore, write_lines: Callable[..., Path], lines: list[str],
        listed: bool) -> None:
    result = _last_record_decides(store, write_lines, lines, listed)
    assert (result.added, result.deleted) == ((1, 0) if listed else (0, 0))


@pytest.mark.parametrize("line", [f"{N},foo,A", f"{N},x1,A", "202,555-0105,A",
                                  f"{N},2026-11-21,A,2026-11-22", f"{N},2026-13-01,A"])
def test_a_field_before_the_flag_that_is_not_the_number_or_a_date_rejects_the_record(
        store: ListStore, write_lines: Callable[..., Path], line: str) -> None:
    _base(store, write_lines)
    result = _apply(store, write_lines, [line, "2025550106,A"])
    assert result.report.rejected == 1
    sample = result.report.reject_samples[0]
    assert sample.startswith("chg.txt:1: ") and "5550105" not in sample
    assert _listed(store, N, "2025550106") == [False, True]


def test_the_rejection_names_the_field(write_lines: Callable[..., Path]) -> None:
    path = write_lines([f"{N},foo,A", f"{N},2026-11-21,A,2026-11-22"])
    _, _, report = listfiles.read_changes(path, jurisdiction="US", default_region="US")
    assert report.reject_samples == [
        "list.txt:1: field 2 (before the A/D flag) is neither part of the number (digits) "
        "nor a date",
        "list.txt:2: two dates in the record (fields 2 and 4)"]


def test_empty_fields_before_the_flag_are_allowed(store: ListStore,
                                                  write_lines: Callable[..., Path]) -> None:
    _base(store, write_lines)
    result = _apply(store, write_lines, ["202,,5550105,A", '"202","5550106","A"'])
    assert result.report.rejected == 0
    assert _listed(store, N, "2025550106") == [True, True]


def test_cli_the_reviewers_date_before_the_flag(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    _base(store, write_lines)
    path = write_lines([f"{N},2026-11-21,A", f"{N},2026-11-01,D"], "c2.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "litigator",
                         "--name", "lit", "--changes")
    assert code == 0, err
    assert "+1 added, -0 deleted" in out
    assert _listed(store, N) == [True]


# -- 3. the time of day -------------------------------------------------------------------------

@pytest.mark.parametrize(("lines", "listed"), [
    # the reviewer's case: the add at 10:00 is later than the delete at 09:00
    ([f"{N},A,2026-11-20T10:00", f"{N},D,2026-11-20T09:00"], True),
    ([f"{N},D,2026-11-20T10:00", f"{N},A,2026-11-20T09:00"], False),
    ([f"{N},A,2026-11-20 10:00:01", f"{N},D,2026-11-20 10:00:00.5"], True),
    # offsets: compared in UTC (10:00+02:00 is 08:00Z, before the delete at 09:00Z)
    ([f"{N},D,2026-11-20T09:00Z", f"{N},A,2026-11-20T10:00+02:00"], False),
    # written on the 21st, but 20:00Z on the 20th: before the delete at 21:00Z
    ([f"{N},D,2026-11-20T21:00:00+00:00", f"{N},A,2026-11-21T01:00+05:00"], False),
    # a time without an offset is UTC: 10:00 is after 11:00+02:00 (09:00Z)
    ([f"{N},A,2026-11-20T10:00", f"{N},D,2026-11-20T11:00+02:00"], True),
    # a later day still wins whatever the times
    ([f"{N},A,2026-11-21T00:00", f"{N},D,2026-11-20T23:59"], True),
    # a record of that day without a time: that day's records in file order
    ([f"{N},A,2026-11-20T23:00", f"{N},D,2026-11-20"], False),
    ([f"{N},D,2026-11-20", f"{N},A,2026-11-20T01:00"], True),
    # ... and the time still orders against the other days
    ([f"{N},A,2026-11-21T01:00", f"{N},D,2026-11-20", f"{N},D,2026-11-20T05:00"], True),
    # a record without a date: file order for the number
    ([f"{N},A,2026-11-20T10:00", f"{N},D"], False),
])
def test_the_time_of_day_orders_records(
        store: ListStore, write_lines: Callable[..., Path], lines: list[str],
        listed: bool) -> None:
    _last_record_decides(store, write_lines, lines, listed)


def test_times_order_each_number_on_its_own(write_lines: Callable[..., Path]) -> None:
    path = write_lines([
        "2025550101,A,2026-11-20T10:00", "2025550102,D,2026-11-20T08:00",
        "2025550101,D,2026-11-20T09:00", "2025550102,A,2026-11-20T07:00",
        "2025550103,A,2026-11-20", "2025550103,D,2026-11-20"])
    adds, dels, report = listfiles.read_changes(path, jurisdiction="US", default_region="US")
    assert report.rejected == 0
    assert adds.tolist() == [12025550101]
    assert dels.tolist() == [12025550102, 12025550103]


def test_a_time_not_understood_rejects_the_record(store: ListStore,
                                                  write_lines: Callable[..., Path]) -> None:
    _base(store, write_lines)
    result = _apply(store, write_lines, [f"{N},A,2026-11-20T25:00", "2025550106,A"])
    assert result.report.reject_samples == [
        "chg.txt:1: the change date is not a date (YYYY-MM-DD)"]
    assert _listed(store, N, "2025550106") == [False, True]
