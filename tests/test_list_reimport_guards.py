"""A full re-import never replaces a list with a file that is plainly not the whole list: a
truncated file (fewer than 90% of the entries, for every kind, not only registries) or one
whose rejected lines outnumber its valid ones is refused, the list left as it was, unless
``--allow-shrink`` says so; ``--allow-shrink`` is refused where it means nothing (a change
list). And the options of an import or an opt-out are understood or refused: a salt that is
not printable ASCII (no check could hash with it), a prefix row whose comma splits digits
(``1,900`` is not the prefix ``1``), and ``dnc add --create``, which the refusal of a list that
does not exist names."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update

from dncguard.errors import ListError
from dncguard.lists.store import ListStore
from dncguard.store import lists_table

from .conftest import cli

NUMBERS = [f"20255501{i:02d}" for i in range(100)]
E164 = [f"+1{n}" for n in NUMBERS]
BAD = "not a number"


def _entries(kind: str, numbers: list[str]) -> list[str]:
    """The file rows of ``kind`` that list those numbers."""
    if kind == "hashed":
        return [hashlib.sha256(f"+1{n}".encode()).hexdigest() for n in numbers]
    if kind == "prefix":
        return [f"1{n}" for n in numbers]  # a prefix as long as the number: that number
    return numbers


def _listed(store: ListStore, name: str, numbers: list[str]) -> list[bool]:
    return [bool(x) for x in store.index(store.get(name)).contains_numbers(numbers)]


def _files(store: ListStore, name: str) -> list[str]:
    return sorted(p.name for p in store.folder(name).iterdir())


# -- 1. the shrink guard holds for every kind --------------------------------------------------

@pytest.mark.parametrize("kind", ["internal", "litigator", "wireless", "hashed", "prefix"])
def test_a_truncated_reimport_of_any_kind_is_refused(
        store: ListStore, write_lines: Callable[..., Path], kind: str) -> None:
    store.import_file(write_lines(_entries(kind, NUMBERS), "full.txt"), kind=kind, name="x")
    files = _files(store, "x")
    short = write_lines(_entries(kind, NUMBERS[:10]), "short.txt")
    with pytest.raises(ListError, match=r"10 entries against 100 in list 'x' now \(90% fewer\)"
                                        r".*truncated.*--allow-shrink.*nothing was imported"):
        store.import_file(short, kind=kind, name="x")
    assert store.get("x").count == 100 and len(store.versions("x")) == 1
    assert _files(store, "x") == files  # the refused file's snapshot is not left behind
    assert _listed(store, "x", [E164[0], E164[99]]) == [True, True]
    # 90% of the entries is a list that changed, not a truncated file
    store.import_file(write_lines(_entries(kind, NUMBERS[:90]), "most.txt"), kind=kind,
                      name="x")
    assert store.get("x").count == 90
    info = store.import_file(short, kind=kind, name="x", allow_shrink=True).info
    assert info.count == 10
    assert _listed(store, "x", [E164[0], E164[99]]) == [True, False]


def test_a_reimport_with_more_rejected_lines_than_valid_ones_is_refused(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """Not a shrink (12 of 10 entries), but a file mostly not understood: refused whole, the
    list kept; as many rejected lines as valid ones is imported (exit 1 says so)."""
    store.import_file(write_lines(NUMBERS[:10], "base.txt"), kind="litigator", name="lit")
    mostly_bad = write_lines(NUMBERS[20:32] + [BAD] * 13, "bad.txt")
    with pytest.raises(ListError) as refused:
        store.import_file(mostly_bad, kind="litigator", name="lit")
    message = str(refused.value)
    assert "13 lines rejected against 12 valid" in message
    assert "bad.txt:13:" in message and "--allow-shrink" in message
    assert "nothing was imported" in message and "\n" not in message
    assert NUMBERS[20] not in message
    assert store.get("lit").count == 10 and len(store.versions("lit")) == 1
    assert _listed(store, "lit", [E164[0], E164[20]]) == [True, False]
    half = store.import_file(write_lines(NUMBERS[20:32] + [BAD] * 12, "half.txt"),
                             kind="litigator", name="lit")
    assert half.info.count == 12 and half.report.rejected == 12
    forced = store.import_file(mostly_bad, kind="litigator", name="lit", allow_shrink=True)
    assert forced.info.count == 12 and forced.report.rejected == 13


def test_the_guards_hold_for_a_list_built_as_a_bitmap(
        store: ListStore, write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A national-scale file builds its snapshot while it is read: a refused one's file is
    discarded too."""
    import dncguard.lists.store as L

    monkeypatch.setattr(L, "NATIONAL_SCALE_BYTES", 0)
    store.import_file(write_lines(NUMBERS, "full.txt"), kind="litigator", name="lit")
    files = _files(store, "lit")
    with pytest.raises(ListError, match="10 entries against 100"):
        store.import_file(write_lines(NUMBERS[:10], "short.txt"), kind="litigator",
                          name="lit")
    with pytest.raises(ListError, match="96 lines rejected against 95 valid"):
        store.import_file(write_lines(NUMBERS[:95] + [BAD] * 96, "bad.txt"),
                          kind="litigator", name="lit")
    with pytest.raises(ListError, match="no valid entries found"):
        store.import_file(write_lines([BAD] * 3, "none.txt"), kind="litigator", name="lit")
    assert _files(store, "lit") == files
    assert store.get("lit").count == 100 and len(store.versions("lit")) == 1


def test_duplicates_count_as_valid_lines(store: ListStore,
                                         write_lines: Callable[..., Path]) -> None:
    """A file repeating a number is not 'mostly rejected': its lines are valid."""
    store.import_file(write_lines(NUMBERS[:1], "base.txt"), kind="internal", name="mine")
    info = store.import_file(write_lines(NUMBERS[:1] * 5 + [BAD] * 3, "dup.txt"),
                             kind="internal", name="mine").info
    assert info.count == 1


@pytest.mark.parametrize("kind", ["hashed", "prefix"])
def test_a_mostly_rejected_reimport_of_hashes_or_prefixes_is_refused(
        store: ListStore, write_lines: Callable[..., Path], kind: str) -> None:
    store.import_file(write_lines(_entries(kind, NUMBERS[:10]), "base.txt"), kind=kind,
                      name="x")
    rows = _entries(kind, NUMBERS[:10]) + ["12ab"] * 11
    with pytest.raises(ListError, match="11 lines rejected against 10 valid"):
        store.import_file(write_lines(rows, "bad.txt"), kind=kind, name="x")
    assert store.get("x").count == 10 and len(store.versions("x")) == 1


def test_a_first_import_with_rejected_lines_imports_the_valid_ones(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """A new list replaces nothing: its valid numbers are imported (and block), the rejects
    reported."""
    result = store.import_file(write_lines(NUMBERS[:2] + [BAD] * 5), kind="litigator",
                               name="lit")
    assert result.info.count == 2 and result.report.rejected == 5


def test_cli_the_reviewers_truncated_and_mostly_bad_litigator_files(
        capsys: pytest.CaptureFixture[str], write_lines: Callable[..., Path]) -> None:
    full = [f"{200 + i % 700:03d}555{i:04d}" for i in range(1000)]
    code, _, err = cli(capsys, "lists", "import", str(write_lines(full, "lit_full.txt")),
                       "--kind", "litigator", "--name", "lit")
    assert code == 0, err

    def count() -> int:
        code, out, _ = cli(capsys, "lists", "stats", "lit", "--json")
        assert code == 0
        return int(json.loads(out)["count"])

    assert count() == 1000
    trunc = write_lines(full[:10], "lit_trunc.txt")
    code, out, err = cli(capsys, "lists", "import", str(trunc), "--kind", "litigator",
                         "--name", "lit")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "10 entries against 1,000 in list 'lit' now (99% fewer)" in err
    assert count() == 1000
    bad = write_lines(full[:5] + ["x"] * 995, "lit_bad.txt")
    code, out, err = cli(capsys, "lists", "import", str(bad), "--kind", "litigator",
                         "--name", "lit")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "995 lines rejected against 5 valid" in err and "--allow-shrink" in err
    assert count() == 1000
    code, out, err = cli(capsys, "lists", "import", str(trunc), "--kind", "litigator",
                         "--name", "lit", "--allow-shrink")
    assert code == 0 and "imported 10 entries" in out, err
    assert count() == 10


# -- 6. --allow-shrink where it means nothing -------------------------------------------------

def test_allow_shrink_is_refused_with_a_change_list(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    store.import_file(write_lines(NUMBERS[:2], "base.txt"), kind="internal", name="mine")
    change = write_lines([f"{NUMBERS[0]},D"], "chg.txt")
    with pytest.raises(ListError, match=r"^--allow-shrink is for full imports.*change list.*"
                                        r"leave --allow-shrink out"):
        store.import_file(change, kind="internal", name="mine", changes=True,
                          allow_shrink=True)
    assert len(store.versions("mine")) == 1
    assert _listed(store, "mine", E164[:2]) == [True, True]
    code, out, err = cli(capsys, "lists", "import", str(change), "--kind", "internal",
                         "--name", "mine", "--changes", "--allow-shrink")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--allow-shrink is for full imports" in err
    assert _listed(store, "mine", E164[:2]) == [True, True]


# -- 4. a salt no check could hash with -------------------------------------------------------

@pytest.mark.parametrize("salt", ["pépé", "salt\u00a0", "tab\there", "new\nline", "\x7f",
                                  "日本"])
def test_a_salt_that_is_not_printable_ascii_is_refused(
        store: ListStore, write_lines: Callable[..., Path], salt: str) -> None:
    digest = hashlib.sha256(("x" + E164[0]).encode()).hexdigest()
    with pytest.raises(ListError) as refused:
        store.import_file(write_lines([digest]), kind="hashed", name="h", salt=salt)
    message = str(refused.value)
    assert message.startswith("--salt: ") and "printable ASCII" in message
    assert salt not in message and "\n" not in message
    assert store.all() == []


def test_a_reimport_with_a_salt_that_is_not_ascii_keeps_the_list(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    digest = hashlib.sha256(("pepper" + E164[0]).encode()).hexdigest()
    store.import_file(write_lines([digest]), kind="hashed", name="h", salt="pepper")
    with pytest.raises(ListError, match="printable ASCII"):
        store.import_file(write_lines([digest], "again.txt"), kind="hashed", name="h",
                          salt="péppér")
    assert store.get("h").salt == "pepper"
    assert _listed(store, "h", [E164[0]]) == [True]


def test_a_printable_ascii_salt_with_punctuation_and_spaces_is_kept(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    salt = " s3cr3t!~{|}\"' "
    digest = hashlib.sha256((salt + E164[0]).encode()).hexdigest()
    info = store.import_file(write_lines([digest]), kind="hashed", name="h", salt=salt).info
    assert info.salt == salt and _listed(store, "h", E164[:2]) == [True, False]


def test_cli_refuses_a_non_ascii_salt_in_one_line(
        capsys: pytest.CaptureFixture[str], write_lines: Callable[..., Path]) -> None:
    digest = hashlib.sha256(("pépé" + E164[0]).encode()).hexdigest()
    code, out, err = cli(capsys, "lists", "import", str(write_lines([digest])), "--kind",
                         "hashed", "--name", "h", "--salt", "pépé")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "printable ASCII" in err and "pépé" not in err and "Traceback" not in err
    code, out, _ = cli(capsys, "lists", "ls", "--json")
    assert code == 0 and json.loads(out) == []


def test_a_stored_salt_that_is_not_ascii_fails_the_check_with_a_list_error(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """A list stored before such salts were refused: its checks fail (never a silent miss),
    with a message that names the list and not the salt."""
    digest = hashlib.sha256(("pepper" + E164[0]).encode()).hexdigest()
    store.import_file(write_lines([digest]), kind="hashed", name="h", salt="pepper")
    with store.engine.begin() as conn:
        conn.execute(update(lists_table).where(lists_table.c.name == "h").values(salt="pépé"))
    with pytest.raises(ListError) as failed:
        store.index(store.get("h")).contains_numbers([E164[0]])
    assert "list h" in str(failed.value) and "printable ASCII" in str(failed.value)
    assert "pépé" not in str(failed.value)


# -- 5. a comma inside a prefix ---------------------------------------------------------------

def test_a_prefix_row_whose_comma_splits_digits_is_rejected(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    rows = ["1,900", "1900,premium rate", "44, 20", '"1","202"', "1202-555,01", "+61,4"]
    result = store.import_file(write_lines(rows), kind="prefix", name="p")
    assert result.info.count == 1  # 1900, with its description column
    samples = result.report.reject_samples
    assert [s.split(": ")[0] for s in samples] == [
        "list.txt:1", "list.txt:3", "list.txt:4", "list.txt:5", "list.txt:6"]
    assert "digits after the comma" in samples[0]
    assert _listed(store, "p", ["+19005550100", "+12025550100", "+442079460018",
                                "+61412345678"]) == [True, False, False, False]


def test_a_first_prefix_row_with_digits_is_never_a_header(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    """',1900' on the first line: its first column has no digit, but the row has: read (and
    rejected), never skipped as a column name."""
    result = store.import_file(write_lines([",1900", "44"]), kind="prefix", name="p")
    assert result.report.rejected == 1
    assert result.report.reject_samples[0].startswith("list.txt:1: ")
    header = store.import_file(write_lines(["prefix,note", "44"], "h.txt"), kind="prefix",
                               name="p2")
    assert header.report.rejected == 0 and header.info.count == 1


def test_cli_prefix_1_comma_900_is_rejected_not_read_as_1(
        store: ListStore, capsys: pytest.CaptureFixture[str],
        write_lines: Callable[..., Path]) -> None:
    code, out, err = cli(capsys, "lists", "import", str(write_lines(["1,900"])), "--kind",
                         "prefix", "--name", "p")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "list.txt:1:" in err and "no valid entries" in err
    assert store.all() == []


# -- 7. dnc add --create ------------------------------------------------------------------------

def test_cli_dnc_add_to_a_list_that_does_not_exist_names_create_and_create_makes_it(
        store: ListStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "dnc", "add", "2025550111", "--list", "web-optouts")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "no list named 'web-optouts'" in err and "--create" in err
    assert store.all() == []
    code, out, err = cli(capsys, "dnc", "add", "2025550111", "--list", "web-optouts",
                         "--create", "--json")
    assert code == 0, err
    assert json.loads(out)["list"] == "web-optouts"
    info = store.get("web-optouts")
    assert info.kind == "internal"
    assert _listed(store, "web-optouts", ["+12025550111", "+12025550112"]) == [True, False]
    # --create on a list that exists adds to it as it is
    code, _, err = cli(capsys, "dnc", "add", "2025550112", "--list", "web-optouts", "--create")
    assert code == 0, err
    assert _listed(store, "web-optouts", ["+12025550112"]) == [True]


def test_cli_dnc_add_create_refuses_a_list_of_another_kind(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    store.import_file(write_lines(["1900"]), kind="prefix", name="ranges")
    code, _, err = cli(capsys, "dnc", "add", "2025550111", "--list", "ranges", "--create")
    assert code == 2 and "is of kind prefix" in err
    assert store.get("ranges").count == 1
