"""List files are read as the check side reads a number, or their rows are rejected with
their line: a listed number never comes back ``allow`` because the list side stored other
digits. ``+`` rows other than ``+1`` and ten digits (``+44 (0)20 ...``, an extension, a
missing country code) are normalised as :func:`dncguard.phones.normalise` does; a damaged
zip is refused, never read as text; prefixes and hashed-list headers are read as written."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from dncguard.cli import run
from dncguard.errors import ListError
from dncguard.lists import _files as listfiles
from dncguard.lists.store import ListStore
from dncguard.phones import normalise, normalise_arrays

D = date(2026, 11, 1)
AT = "2026-11-19T15:00:00Z"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def listed_by(capsys: pytest.CaptureFixture[str], phone: str, list_name: str) -> bool:
    """Whether ``dncguard check PHONE`` blocks on ``list_name`` (and never allows then)."""
    code, out, _ = cli(capsys, "check", phone, "--json", "--at", AT)
    assert code == 0
    verdict = json.loads(out)
    hit = any(r.get("list") == list_name for r in verdict["reasons"])
    assert not (hit and verdict["decision"] == "allow")
    return hit


def hits(store: ListStore, name: str, numbers: list[str]) -> list[bool]:
    return [bool(x) for x in store.index(store.get(name)).contains_numbers(numbers)]


# -- '+' rows: read as the check side reads them ---------------------------------------------

@pytest.mark.parametrize(("row", "jurisdiction", "e164"), [
    ("+44 (0)20 7946 0018", "GB", "+442079460018"),
    ("+4402079460018", "GB", "+442079460018"),
    ("+61 (0)4 1234 5678", "AU", "+61412345678"),
    ("+44 (0)20 7946 0018", None, "+442079460018"),  # an internal list of no jurisdiction
])
def test_a_plus_row_with_a_trunk_zero_is_the_number_the_check_reads(
        store: ListStore, write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str],
        row: str, jurisdiction: str | None, e164: str) -> None:
    assert normalise(row, jurisdiction).e164 == e164  # what the check side reads
    result = store.import_file(write_lines([row]), kind="internal", name="mine",
                               jurisdiction=jurisdiction)
    assert (result.info.count, result.report.rejected) == (1, 0)
    assert hits(store, "mine", [e164]) == [True]
    assert listed_by(capsys, row, "mine")
    assert listed_by(capsys, e164, "mine")


@pytest.mark.parametrize("row", ["+1 (202) 555-0148 x12", "+1 202 555 0148 ext. 12",
                                 "+1 202 555 0148;ext=12", "+12025550148 x1"])
def test_a_plus_row_with_an_extension_is_stored_without_it(
        store: ListStore, write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str],
        row: str) -> None:
    result = store.import_file(write_lines([row, "+1 202 555 0199"]), kind="internal",
                               name="mine", jurisdiction="US")
    assert (result.info.count, result.report.rejected) == (2, 0)
    assert hits(store, "mine", ["+12025550148", "+12025550199"]) == [True, True]
    assert listed_by(capsys, "+12025550148", "mine")
    assert listed_by(capsys, row, "mine")


def test_plus_rows_the_check_side_refuses_are_rejected_with_their_line(
        store: ListStore, write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing country code, an extension as long as a number, a second number after a
    ';': each rejected and named, nothing else stored in their place."""
    rows = ["+1 202 555 0199", "+2025550147", "+1 202 555 0148 ext. 1234567",
            "+1 202 555 0146;+1 202 555 0145"]
    result = store.import_file(write_lines(rows), kind="internal", name="mine",
                               jurisdiction="US")
    assert result.info.count == 1
    assert result.report.rejected == 3
    assert [s.split(": ")[0] for s in result.report.reject_samples] == [
        "list.txt:2", "list.txt:3", "list.txt:4"]
    code, _, err = cli(capsys, "lists", "import", str(write_lines(rows, "again.txt")),
                       "--kind", "internal", "--name", "again", "--jurisdiction", "US")
    assert code == 1  # imported, but not every line
    assert "3 lines rejected" in err and "again.txt:2:" in err


def test_a_national_row_with_an_extension_is_not_read_as_more_digits(
        store: ListStore, write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """``0800 123 456 x7`` is +44800123456 on the check side, not +448001234567."""
    row = "0800 123 456 x7"
    assert normalise(row, "GB").e164 == "+44800123456"
    result = store.import_file(write_lines([row]), kind="national", name="tps",
                               jurisdiction="GB", snapshot_date=D)
    assert (result.info.count, result.report.rejected) == (1, 0)
    assert hits(store, "tps", ["+44800123456", "+448001234567"]) == [True, False]


ROWS = ["+44 (0)20 7946 0018", "+4402079460018", "+61 (0)4 1234 5678", "+61 412 345 678",
        "+1 (202) 555-0148 x12", "+2025550147", "+1 202 555 0100 ext 12", "+12025550100",
        "+1 202 555 01001", "+33 1 23 45 67 89", "+44 20 7946 0000", "+1-202-555-0100 #3",
        "+1 202 555 0100 ext. 1234567", "+1 202 555 0100;foo=1", "+ 1 202 555 0100",
        "+12025550100.0", "+1 800 555 0100", "020 7946 0000 ext 9", "202-555-0100 x123",
        "tel:+1-202-555-0101", "+442079460018 x12345"]


@pytest.mark.parametrize("jurisdiction", ["US", "GB", "AU"])
def test_every_row_is_the_checks_number_or_a_reject(
        tmp_path: Path, jurisdiction: str) -> None:
    """Row by row: stored as what ``normalise`` reads (in the list's country), or rejected."""
    for k, row in enumerate(ROWS):
        path = tmp_path / f"row{k}.txt"
        path.write_text(row + "\n", encoding="utf-8")
        values, report = listfiles.read_numbers(path, jurisdiction=jurisdiction,
                                                default_region="US")
        want = normalise(row, jurisdiction).e164
        got = [f"+{v}" for v in values.tolist()]
        assert got in ([want], []), (row, got, want)
        assert report.rejected == (not got), row


def test_rows_the_digit_path_reads_never_reach_the_per_row_parser(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain digit rows stay on the array path; other rows are normalised once per distinct
    text (a large file of the same few rows is fast)."""
    seen: list[list[str]] = []
    def spy(raws: object, regions: object) -> object:
        seen.append(list(raws.to_pylist()))  # type: ignore[attr-defined]
        return normalise_arrays(raws, regions)  # type: ignore[arg-type]

    monkeypatch.setattr("dncguard.lists._files.normalise_arrays", spy)
    path = tmp_path / "mixed.txt"
    plain = ["(202) 555-0100", "202.555.0101", "202,5550102", "+12025550103", "12025550104"]
    odd = ["+44 (0)20 7946 0018", "+1 202 555 0105 x1"]
    path.write_text("\n".join(plain + odd * 5000) + "\n", encoding="utf-8")
    values, report = listfiles.read_numbers(path, jurisdiction="US", default_region="US")
    assert report.rejected == 0
    assert values.tolist() == [12025550100, 12025550101, 12025550102, 12025550103,
                               12025550104, 12025550105, 442079460018]
    assert [sorted(s) for s in seen] == [sorted(odd)]


def test_a_change_list_plus_row_is_read_as_the_check_reads_it(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["020 7946 0999"], "base.txt"), kind="national",
                      name="tps", jurisdiction="GB", snapshot_date=D)
    result = store.import_file(write_lines(["+4402079460018,A", "+4402,D"], "chg.txt"),
                               kind="national", name="tps", snapshot_date=D, changes=True)
    assert result.added == 1 and result.report.rejected == 1
    assert hits(store, "tps", ["+442079460018", "+4402079460018"]) == [True, False]


# -- damaged zip archives --------------------------------------------------------------------

def _stored_zip_with_text_header(n: int = 400) -> bytes:
    """An uncompressed zip of numbers whose local header is valid UTF-8 (so, truncated, its
    first half would read as text)."""
    for extra in range(10_000):
        body = "".join(f"2025{(i * 7 + extra) % 1000:03d}{i % 1000:03d}\n"
                       for i in range(n)).encode()
        header = struct.pack("<II", zlib.crc32(body), len(body))
        if all(b < 0x80 for b in header):
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
                info = zipfile.ZipInfo("numbers.txt", date_time=(1980, 1, 1, 0, 0, 0))
                zf.writestr(info, body)
            return buf.getvalue()
    raise AssertionError("no such body")


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("name", ["registry.zip", "registry.txt"])
def test_a_truncated_zip_is_refused_not_read_as_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], compression: int,
        name: str) -> None:
    if compression == zipfile.ZIP_STORED:
        whole = _stored_zip_with_text_header()
        whole[: len(whole) // 2].decode("utf-8")  # the half the text reader would import
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression) as zf:
            zf.writestr("numbers.txt", "".join(f"2025{i:06d}\n" for i in range(4000)))
        whole = buf.getvalue()
    path = tmp_path / name
    path.write_bytes(whole[: len(whole) // 2])
    assert not zipfile.is_zipfile(path)
    code, _, err = cli(capsys, "lists", "import", str(path), "--kind", "national",
                       "--jurisdiction", "US", "--snapshot-date", "2026-11-01",
                       "--name", "us-ftc")
    assert code == 2
    assert err.strip() == (f"error: {path}: damaged zip archive (its central directory is "
                           "missing: truncated?); nothing was imported")
    code, out, _ = cli(capsys, "lists", "ls", "--json")
    assert code == 0 and out.strip() == "[]"


def test_a_text_file_named_zip_is_refused(store: ListStore,
                                          write_lines: Callable[..., Path]) -> None:
    with pytest.raises(ListError, match=r"list\.zip: damaged zip archive"):
        store.import_file(write_lines(["2025550100"], "list.zip"), kind="internal",
                          name="mine")
    assert store.all() == []


# -- prefixes ----------------------------------------------------------------------------------

def test_prefixes_with_a_trunk_zero_or_separators_are_rejected_with_their_line(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["prefix", "0207946", "1900-1999", "+1 202-555-01", "+44207946", "1202 555"]
    result = store.import_file(write_lines(rows), kind="prefix", name="p")
    assert result.info.count == 1
    assert result.report.rejected == 4
    samples = result.report.reject_samples
    assert [s.split(": ")[0] for s in samples] == [
        "list.txt:2", "list.txt:3", "list.txt:4", "list.txt:6"]
    assert "none starts with 0" in samples[0]
    assert "a range such as 1900-1999 is not read" in samples[1]
    assert hits(store, "p", ["+442079460018", "+19001999000", "+12025550100"]) == [
        True, False, False]
    code, _, err = cli(capsys, "lists", "import", str(write_lines(rows, "p2.txt")),
                       "--kind", "prefix", "--name", "p2")
    assert code == 1 and "4 lines rejected" in err and "p2.txt:3:" in err


# -- hashed-list headers ----------------------------------------------------------------------

@pytest.mark.parametrize("header", ["sha256", "SHA256", "e164_sha256", "hash", "digest,name"])
def test_a_hashed_list_header_is_not_a_reject(
        store: ListStore, write_lines: Callable[..., Path], capsys: pytest.CaptureFixture[str],
        header: str) -> None:
    digest = hashlib.sha256(b"+12025550100").hexdigest()
    code, out, err = cli(capsys, "lists", "import", str(write_lines([header, digest])),
                         "--kind", "hashed", "--name", "h")
    assert code == 0
    assert "imported 1 entries from 2 lines" in out and "rejected" not in out + err
    result = store.import_file(write_lines([header, digest], "h2.txt"), kind="hashed",
                               name="h")
    assert (result.report.lines, result.report.rejected) == (2, 0)
    assert hits(store, "h", ["+12025550100", "+12025550101"]) == [True, False]
    assert listed_by(capsys, "+12025550100", "h")


@pytest.mark.parametrize("first", ["86f59081f4faa8d43e9ba08d89975024", "12345",
                                   # a full digest with a typo past 'f': not a header
                                   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
                                   "7852b85g"])
def test_a_first_line_that_is_a_damaged_digest_is_still_a_reject(
        store: ListStore, write_lines: Callable[..., Path], first: str) -> None:
    digest = hashlib.sha256(b"+12025550100").hexdigest()
    result = store.import_file(write_lines([first, digest]), kind="hashed", name="h")
    assert result.report.rejected == 1
    assert result.report.reject_samples[0].startswith("list.txt:1: ")
    assert np.array_equal(hits(store, "h", ["+12025550100"]), [True])
