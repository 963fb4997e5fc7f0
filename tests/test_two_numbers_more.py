"""A second number after '/x' or '\\x' (where ``phonenumbers`` cuts the text and parses the
first number only) is refused like one after ';', on the per-row and the array paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import phonenumbers.phonenumberutil as pnu
import pyarrow as pa
import pytest

from dncguard import phones
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.models import ReasonCode
from dncguard.phones import _scan_plain, normalise, normalise_arrays, normalise_by_parser

from .conftest import read_csv

TWO = ["2025550101/x3055550150", "2025550101 \\ x 3055550150",
       "+1 202 555 0101 /  x 305 555 0150", "2025550101/x12", "(202) 555-0101\\x"]


def test_the_pattern_is_phonenumbers() -> None:
    ours = phones.SECOND_NUMBER_START
    assert ours.pattern == pnu._SECOND_NUMBER_START
    assert ours.flags == pnu._SECOND_NUMBER_START_PATTERN.flags  # case-sensitive, both


@pytest.mark.parametrize("raw", TWO)
def test_text_with_a_second_number_marker_is_refused(raw: str) -> None:
    for found in (normalise(raw, "US"), normalise_by_parser(raw, "US")):
        assert found.error is ReasonCode.INVALID_NUMBER and found.e164 is None
        assert "second number" in found.message


def test_an_extension_is_still_read() -> None:
    assert normalise("2025550101 x12", "US").e164 == "+12025550101"
    assert normalise("2025550101 ext. 12", "US").e164 == "+12025550101"


def test_the_array_path_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    raws = TWO * 30 + ["2025550101"] * 10  # past the small-batch size: the array path
    arrays = normalise_arrays(pa.array(raws), "US").to_list(raws)
    assert arrays == [normalise(r, "US") for r in raws]
    assert [a.ok for a in arrays] == [False] * (len(TWO) * 30) + [True] * 10
    quick = _scan_plain(pa.array(raws))[0]  # the byte scan never takes such text as plain
    assert not quick[: len(TWO) * 30].any()


def test_a_scrub_refuses_the_cell_on_both_paths(
        write_csv: Callable[..., Path], tmp_path: Path, settings: Settings,
        store: ListStore) -> None:
    store.add_number("3055550150")  # the second number of the cells is listed
    rows = [["phone"], ["2025550101/x3055550150"], ["2025550101 \\ x 3055550150"],
            ["2025550102"]]
    for many in (False, True):
        data = rows + ([[f"+1212555{i:04d}"] for i in range(200, 300)] if many else [])
        src = write_csv(data, f"in-{many}.csv")
        for columnar in (True, False):
            out = tmp_path / f"o-{columnar}-{many}.csv"
            Scrubber(settings, columnar=columnar, audit=False).scrub_file(src, out)
            got = [(r["e164"], r["decision"]) for r in read_csv(out)][:3]
            assert got == [("", "invalid"), ("", "invalid"), ("+12025550102", "allow")]
