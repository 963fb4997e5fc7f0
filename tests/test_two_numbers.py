"""A cell holding a second number (after ';', or as a number-long extension) is refused on
both reading paths, never judged by its first number alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore

from .conftest import read_csv


def test_a_cell_with_two_numbers_is_refused_on_both_paths(
        write_csv: Callable[..., Path], tmp_path: Path, settings: Settings,
        store: ListStore) -> None:
    store.add_number("3055550150")  # the second number of the cells is listed
    src = write_csv([["phone"], ["2025550101;3055550150"], ["2025550101 ext 3055550150"],
                     ["2025550102 x12"]])
    for columnar in (True, False):
        out = tmp_path / f"o-{columnar}.csv"
        Scrubber(settings, columnar=columnar, audit=False).scrub_file(src, out)
        assert [(r["e164"], r["decision"]) for r in read_csv(out)] == [
            ("", "invalid"), ("", "invalid"), ("+12025550102", "allow")]
