"""A hashed list is understood or refused: a row with a second column (``hash,salt``: a salt
per row, which lookups never use) is rejected with its line, never read as its first column;
``lists import --kind hashed --expect NUMBER`` proves the file's hashes are made as lookups
make them (SHA-256 of the salt and the E.164 number with its '+') and refuses the whole
import, naming the number, when the file does not hold it. ``dnc remove`` on a hashed or
prefix list says to re-import the whole list (change lists apply to number lists only)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.cli import run
from dncguard.errors import ListError
from dncguard.lists import _files as listfiles
from dncguard.lists.store import ListStore

NUMBERS = ["+12025550110", "+12025550111", "+12025550112"]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# -- a second column ---------------------------------------------------------------------------

def test_a_row_with_a_salt_column_is_rejected_not_read_as_its_digest(
        write_lines: Callable[..., Path]) -> None:
    rows = [f"{sha(f's{i}' + n)},s{i}" for i, n in enumerate(NUMBERS)]
    values, report = listfiles.read_hashes(write_lines(["hash,salt", *rows,
                                                        sha(NUMBERS[0]) + ",", sha("x")]))
    assert report.rejected == 3 and report.accepted == 2
    assert report.reject_samples[0] == (
        "list.txt:2: column 2 beside the digest: a hashed list holds one digest per line "
        "(SHA-256 of --salt and the E.164 number), and a column it does not read, such as a "
        "salt per row, is not dropped")
    # an empty column after the digest (a trailing comma) hides nothing
    assert sorted(v.hex() for v in values.tolist()) == sorted([sha(NUMBERS[0]), sha("x")])


def test_the_reviewers_row_salted_file_is_refused(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = [f"{sha(f's{i}' + n)},s{i}" for i, n in enumerate(NUMBERS)]
    path = write_lines(["hash,salt", *rows], "r_rowsalt.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "hashed", "--name",
                         "h")
    assert code == 2 and out == ""
    assert "r_rowsalt.txt: no valid entries found (r_rowsalt.txt:2: column 2 beside" in err
    assert store.all() == []


# -- --expect ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("made", "salt"), [
    (lambda n: sha(n[1:]), None),  # without the '+'
    (lambda n: sha(n[2:]), None),  # national format
    (lambda n: sha("pepper" + n), None),  # salted, imported without --salt
    (lambda n: hashlib.sha3_256(n.encode()).hexdigest(), None),
    (lambda n: sha(n + "pepper"), "pepper"),  # the salt after the number
])
def test_expect_refuses_a_file_hashed_another_way(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str], made: Callable[[str], str],
        salt: str | None) -> None:
    path = write_lines([made(n) for n in NUMBERS], "h.txt")
    args = ["lists", "import", str(path), "--kind", "hashed", "--name", "h",
            "--expect", "+1 202 555 0110"]
    code, out, err = cli(capsys, *args, *(["--salt", salt] if salt else []))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "h.txt: --expect +1 202 555 0110: its hash (SHA-256 of " in err
    assert "+12025550110, in hex, as lookups make it) is not in the file" in err
    assert "nothing was imported" in err
    assert store.all() == []


def test_expect_accepts_a_file_hashed_as_lookups_hash(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines([sha("pepper" + n) for n in NUMBERS], "h.txt")
    code, out, err = cli(capsys, "lists", "import", str(path), "--kind", "hashed", "--name",
                         "h", "--salt", "pepper", "--expect", "2025550110", "--expect",
                         "+12025550112", "--json")
    assert code == 0, err
    assert json.loads(out)["count"] == 3
    index = store.index(store.get("h"))
    assert [bool(x) for x in index.contains_numbers(["+12025550110", "+12025550113"])] == [
        True, False]
    # a re-import keeps the stored salt, and --expect hashes with it
    path = write_lines([sha(n) for n in NUMBERS], "unsalted.txt")
    with pytest.raises(ListError, match=r"--expect \+12025550111: its hash \(SHA-256 of the "
                                        r"salt and \+12025550111"):
        store.import_file(path, kind="hashed", name="h", salt="pepper",
                          expect=["+12025550111"])
    assert store.get("h").count == 3


def test_expect_names_the_first_missing_number_and_counts_the_others(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    path = write_lines([sha(NUMBERS[0])])
    with pytest.raises(ListError, match=r"--expect \+12025550111 \(and 1 more --expect\)"):
        store.import_file(path, kind="hashed", name="h",
                          expect=[NUMBERS[0], NUMBERS[1], NUMBERS[2]])
    assert store.all() == []


def test_expect_is_for_hashed_lists_and_valid_numbers(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    path = write_lines(["2025550110"])
    with pytest.raises(ListError, match="--expect is for hashed lists only"):
        store.import_file(path, kind="internal", name="n", expect=["2025550110"])
    with pytest.raises(ListError, match="--expect: not a valid number") as refused:
        store.import_file(write_lines([sha(NUMBERS[0])]), kind="hashed", name="h",
                          expect=["12"])
    assert "'12'" not in str(refused.value)  # a number, mistyped or not, is not echoed
    assert store.all() == []


# -- dnc remove on a hashed or prefix list ---------------------------------------------------

@pytest.mark.parametrize(("kind", "row", "held"), [("hashed", sha(NUMBERS[0]), "hashes"),
                                                   ("prefix", "1202555", "digit prefixes")])
def test_dnc_remove_on_a_hashed_or_prefix_list_says_to_reimport_it(
        store: ListStore, write_lines: Callable[..., Path], kind: str, row: str,
        held: str) -> None:
    store.import_file(write_lines([row]), kind=kind, name="l")
    with pytest.raises(ListError) as caught:
        store.remove_number(NUMBERS[0], list_name="l")
    assert str(caught.value) == (
        f"list 'l' is of kind {kind}; it holds {held}, not numbers, and change lists apply "
        "to number lists only: re-import the whole list without the entry (lists import "
        "with the same --name replaces it)")
    # and the advice is one the import follows: a change list is refused for it
    with pytest.raises(ListError, match="change lists apply to number lists only"):
        store.import_file(write_lines([row + ",D"]), kind=kind, name="l", changes=True)
