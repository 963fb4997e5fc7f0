"""The numpy fast path of read_numbers gives exactly what the general parser gives."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dncguard.lists import _files as listfiles


def general(path: Path, monkeypatch: pytest.MonkeyPatch, country: str = "US"
            ) -> tuple[list[int], listfiles.ParseReport]:
    with monkeypatch.context() as m:
        m.setattr(listfiles, "_fixed_width_numbers", lambda block: None)
        values, report = listfiles.read_numbers(path, jurisdiction=country, default_region="US")
    return values.tolist(), report


def fast(path: Path, country: str = "US") -> tuple[list[int], listfiles.ParseReport]:
    values, report = listfiles.read_numbers(path, jurisdiction=country, default_region="US")
    return values.tolist(), report


def numbers(n: int, seed: int = 3) -> list[str]:
    rng = np.random.default_rng(seed)
    npa = rng.integers(150, 1000, n)  # some area codes below 200 are rejected
    nxx = rng.integers(100, 1000, n)
    line = rng.integers(0, 10_000, n)
    return [f"{a:03d}{b:03d}{c:04d}" for a, b, c in zip(npa, nxx, line, strict=True)]


LAYOUTS: dict[str, Callable[[str], str]] = {
    "ftc": lambda s: f"{s[:3]},{s[3:]}",
    "ten": lambda s: s,
    "eleven": lambda s: f"1{s}",
    "e164": lambda s: f"+1{s}",
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("header", ["", "areacode,phone\n"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("block_bytes", [1 << 26, 997])
def test_fast_path_matches_general_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str, header: str, newline: str,
    block_bytes: int,
) -> None:
    monkeypatch.setattr(listfiles, "BLOCK_BYTES", block_bytes)
    items = numbers(3000)
    items += items[:100]  # duplicates
    path = tmp_path / "reg.txt"
    path.write_bytes((header + newline.join(LAYOUTS[layout](s) for s in items)
                      + ("" if layout == "ten" else newline)).encode())
    got, report = fast(path)
    want, want_report = general(path, monkeypatch)
    assert got == want
    assert (report.lines, report.accepted, report.rejected) == (
        want_report.lines, want_report.accepted, want_report.rejected)
    assert report.reject_samples == want_report.reject_samples
    assert report.rejected > 0


def test_mixed_and_odd_files_fall_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = ["phone", "202,5550100", "(202) 555-0101", "", "+1 202 555 0102", "garbage",
             "2025550103", "202,555010", "+442079460123"]
    path = tmp_path / "odd.txt"
    path.write_text("\n".join(lines) + "\n")
    got, report = fast(path)
    want, want_report = general(path, monkeypatch)
    assert got == want
    assert report.reject_samples == want_report.reject_samples


def test_zipped_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = numbers(500, seed=9)
    archive = tmp_path / "reg.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.txt", "\n".join(f"{s[:3]},{s[3:]}" for s in items[:250]) + "\n")
        zf.writestr("b.txt", "\n".join(f"{s[:3]},{s[3:]}" for s in items[250:]) + "\n")
    got, report = fast(archive)
    want, want_report = general(archive, monkeypatch)
    assert got == want
    assert report.reject_samples == want_report.reject_samples


def test_non_nanp_country_uses_general_parser(tmp_path: Path) -> None:
    path = tmp_path / "gb.txt"
    path.write_text("02079460123\n02079460124\n")
    values, _ = listfiles.read_numbers(path, jurisdiction="GB", default_region="US")
    assert values.tolist() == [442079460123, 442079460124]


def test_sorted_unique_is_np_unique() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 1000, 5000).astype(np.uint64)
    assert np.array_equal(listfiles.sorted_unique(values), np.unique(values))
    assert listfiles.sorted_unique(np.zeros(0, dtype=np.uint64)).size == 0
