"""A prefix list row is one some judged number can start with, or it is rejected with its line.

Rows that no callable number can start with used to import and then match nothing: the
country code followed by the trunk 0 (``+4402079``, ``6102``), a NANP area code starting with
0 or 1 or the trunk 1 (``1020555``, ``11``), a prefix longer than any number of its country
(``120255501101``), or one no number of its country's numbering plan begins with
(``612987654321``: 12 national digits, as some ``+611`` numbers have, but ``+612`` numbers
have nine). A prefix that is only the beginning of a country code (``4``, ``6``) was
read as every ``+4...`` number; it is rejected too: a prefix starts with a whole judged country
code (``44``), as the README says. The lengths and trunk prefixes come from the
``phonenumbers`` metadata of the judged regions, the NANP area codes from the package's
NPA-NXX table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.cli import run
from dncguard.lists import _files as listfiles
from dncguard.lists.store import ListStore

TRUNK = "the national trunk prefix, which no number in international format holds"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("row", "why"), [
    ("+4402079", f"the country code 44 is followed by 0, {TRUNK}: leave it out (for 4402079 "
                 "write 442079)"),
    ("6102", f"the country code 61 is followed by 0, {TRUNK}: leave it out (for 6102 write "
             "612)"),
    ("11", f"the country code 1 is followed by 1, {TRUNK}"),
    ("11202555", f"the country code 1 is followed by 1, {TRUNK}: leave it out (for 11202555 "
                 "write 1202555)"),
    ("1020555", "after the country code 1 comes a NANP area code, which never starts with 0"),
    ("10", "after the country code 1 comes a NANP area code, which never starts with 0"),
    ("1555", "no valid number of country code 1 starts with 1555 (no such area code or "
             "exchange is assigned)"),
    ("120255501101", "12 digits: longer than any number of country code 1 (11 digits with the "
                     "country code), so it matches none"),
    ("4420794600181", "13 digits: longer than any number of country code 44 (12 digits"),
    ("611300123456789", "15 digits: longer than any number of country code 61 (14 digits"),
    ("612987654321", "no valid number of country code 61 starts with 612987654321 (the "
                     "numbering plan has no number of that range and length)"),
    ("614123456789", "no valid number of country code 61 starts with 614123456789"),
    ("4460", "no valid number of country code 44 starts with 4460 (the numbering plan"),
    ("4", "4 is only the beginning of a country code (44): a prefix starts with a whole "
          "country code (write 44 to block every +44 number)"),
    ("6", "6 is only the beginning of a country code (61)"),
])
def test_a_prefix_no_judged_number_starts_with_is_rejected_with_its_line(
        write_lines: Callable[..., Path], row: str, why: str) -> None:
    values, report = listfiles.read_prefixes(write_lines(["1202555", row]))
    assert values.tolist() == ["1202555"]
    assert report.rejected == 1, report.reject_samples
    assert report.reject_samples[0].startswith(f"list.txt:2: {why}"), report.reject_samples


def test_the_longest_prefix_of_each_country_is_read_and_one_digit_more_is_not(
        write_lines: Callable[..., Path]) -> None:
    """The bounds are the metadata's: a whole number of each country is a prefix (the UK's
    12 digits, a 14-digit Australian 1300 number, which ``dncguard check`` accepts), one digit
    more matches nothing."""
    assert listfiles.COUNTRY_RULES == {"1": ("1", 10), "44": ("0", 10), "61": ("0", 12)}
    whole = ["12025550110", "442079460018", "61130012345678", "61412345678", "44", "61", "1",
             "1876"]
    values, report = listfiles.read_prefixes(write_lines(whole + [w + "1" for w in whole[:3]]))
    assert sorted(values.tolist()) == sorted(whole)
    assert [s.split(": ")[1] for s in report.reject_samples] == [
        "12 digits", "13 digits", "15 digits"]


def test_the_reviewers_dead_prefix_file_is_refused_whole(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """``+4402079``, ``6102``, ``11``, ``1020555`` and ``120255501101`` imported with exit 0
    and matched nothing: none is a prefix of a callable number, so the file is refused."""
    path = write_lines(["+4402079", "6102", "11", "1020555", "120255501101"], "p_dead.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "prefix", "--name",
                         "p", "--json")
    assert code == 2 and out == ""
    assert "p_dead.txt: no valid entries found (p_dead.txt:1: the country code 44 is " \
           "followed by 0" in err
    assert store.all() == []


def test_dead_rows_beside_good_ones_are_counted_and_the_good_ones_block(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(["prefix,note", "442079,London", "+4402079,London with its 0",
                        "612,Sydney", "6102,Sydney with its 0", "4,every +4"], "pfx.txt")
    code, out, _ = cli(capsys, "lists", "import", str(path), "--kind", "prefix", "--name",
                       "ranges", "--json")
    summary = json.loads(out)
    assert code == 1
    assert (summary["count"], summary["rejected"]) == (2, 3)
    assert [s.split(": ")[0] for s in summary["rejectSamples"]] == [
        "pfx.txt:3", "pfx.txt:5", "pfx.txt:6"]
    index = store.index(store.get("ranges"))
    assert [bool(x) for x in index.contains_numbers(
        ["+442079460018", "+61212345678", "+441134960000"])] == [True, True, False]
