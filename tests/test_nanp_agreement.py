"""The table path of normalise_arrays / normalise_many gives exactly the per-row parser's
results: on generated formats, invalid numbers and every NANP area code."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dncguard import nanp
from dncguard.phones import (
    Normalised,
    _plain_inputs,
    _scan_plain,
    normalise,
    normalise_arrays,
    normalise_by_parser,
    normalise_many,
)

HINTS = ["US", "CA", "GB", "AU", None, "", "us", " ca ", "UK", "JM", "ZZ", "PR", "vi", "GU",
         "MP", "AS"]
#: the US territories' area codes (Puerto Rico, USVI, Guam, CNMI, American Samoa): US numbers
TERRITORY_NPAS = (787, 939, 340, 671, 670, 684)


def per_row(raws: list[str], hints: list[str | None]) -> list[Normalised]:
    """What phonenumbers itself says (the table never consulted)."""
    return [normalise_by_parser(r, g) for r, g in zip(raws, hints, strict=True)]


def fmt(national: str, style: int) -> str:
    a, b, c = national[:3], national[3:6], national[6:]
    return [
        f"+1{national}", f"({a}) {b}-{c}", f"{a}-{b}-{c}", national, f"1{national}",
        f"{a}.{b}.{c}", f"+1 {a} {b} {c}", f"  +1 ({a}) {b}-{c}  ", f"1-{a}-{b}-{c}",
        f"+ 1 {a} {b} {c}", f"{a} {b} {c} x123", f"tel:+1{national}", f"+{national}",
        f"{national}0", f"{national[:-1]}", f"+1{national}9", f"1 ({a}) {b}.{c}", f"0{national}",
        f"+01{national}", f"011 1 {national}", f"{a}-{b}-{c} ext. 7", f"({a}){b}{c}",
        f"+1-{a}-FLOWERS"[:15], f"-{national}", f"{a}/{b}/{c}", f"\t{national}",
        f"+1{national}\u00a0", f"1{a}{b}{c}".replace("5", "five", 1),
    ][style]


STYLES = 28

national_numbers = st.builds(
    lambda npa, nxx, line: f"{npa:03d}{nxx:03d}{line:04d}",
    st.integers(0, 999), st.integers(0, 999), st.integers(0, 9999),
)
inputs = st.builds(fmt, national_numbers, st.integers(0, STYLES - 1)) | st.text(
    alphabet="0123456789 +-().x", max_size=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(inputs, st.sampled_from(HINTS)), min_size=1, max_size=200))
def test_table_path_agrees_with_per_row_parser(pairs: list[tuple[str, str | None]]) -> None:
    raws = [r for r, _ in pairs]
    hints = [g for _, g in pairs]
    assert normalise_arrays(raws, hints).to_list(raws) == per_row(raws, hints)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(inputs, st.sampled_from(HINTS)), min_size=1, max_size=50))
def test_single_number_path_agrees_with_parser(pairs: list[tuple[str, str | None]]) -> None:
    """normalise() (which answers digits-only NANP input from the table) says what the
    parser says."""
    assert [normalise(r, g) for r, g in pairs] == per_row([r for r, _ in pairs],
                                                          [g for _, g in pairs])


def test_single_number_path_agrees_on_every_table_run() -> None:
    codes, _ = nanp.load_table()
    nationals = [f"{n:010d}" for n in nanp.sample_numbers(codes, per_code=2, seed=5)]
    for hint in ("US", "", "GB"):
        for raws in ([f"+1{n}" for n in nationals], [f"1{n}" for n in nationals], nationals):
            assert [normalise(r, hint) for r in raws] == per_row(raws, [hint] * len(raws))


@settings(max_examples=50, deadline=None)
@given(st.lists(inputs, min_size=64, max_size=300), st.sampled_from(HINTS))
def test_normalise_many_agrees_with_per_row_parser(raws: list[str], hint: str | None) -> None:
    hints = [hint] * len(raws)
    assert normalise_many(raws, hints) == per_row(raws, hints)
    assert normalise_arrays(raws, hint).to_list(raws) == per_row(raws, hints)


def test_every_nanp_area_code_agrees() -> None:
    """Every NPA 000-999, with random exchanges (including the blocks the table leaves to the
    per-row parser), in the common formats and default regions."""
    rng = np.random.default_rng(11)
    raws: list[str] = []
    hints: list[str | None] = []
    for npa in range(1000):
        for nxx in rng.integers(0, 1000, 6).tolist():
            line = int(rng.integers(0, 10_000))
            raws.append(fmt(f"{npa:03d}{nxx:03d}{line:04d}", int(rng.integers(0, 9))))
            hints.append(["US", "CA", "GB"][npa % 3])
    codes, _ = nanp.load_table()
    for prefix in np.flatnonzero(codes == nanp.FALLBACK).tolist():
        raws.append(f"+1{prefix:06d}1234")
        hints.append("US")
    out = normalise_arrays(raws, hints)
    assert out.to_list(raws) == per_row(raws, hints)
    assert out.parsed_per_row < len(raws) / 2  # most went through the table


def test_every_territory_exchange_agrees() -> None:
    """Every exchange of the US territories' area codes, in the common formats, with US,
    territory and foreign default regions: the table path gives the per-row parser's result,
    region US for the valid ones."""
    rng = np.random.default_rng(17)
    raws: list[str] = []
    hints: list[str | None] = []
    for npa in TERRITORY_NPAS:
        for nxx in range(1000):
            line = int(rng.integers(0, 10_000))
            raws.append(fmt(f"{npa:03d}{nxx:03d}{line:04d}", int(rng.integers(0, 9))))
            hints.append(["US", "PR", "GU", "CA", "GB", None][nxx % 6])
    out = normalise_arrays(raws, hints)
    expected = per_row(raws, hints)
    assert out.to_list(raws) == expected
    valid = [n for n in expected if n.ok and (n.e164 or "").startswith("+1")]
    assert len(valid) > 1000 and {n.region for n in valid} == {"US"}
    assert {(n.e164 or "")[2:5] for n in valid} == {str(n) for n in TERRITORY_NPAS}
    assert out.parsed_per_row < len(raws) / 2


def test_arrays_expose_digits_regions_and_errors() -> None:
    raws = ["(202) 555-0123", "+18765550100", "12345", "020 7946 0123", "(111) 555-0123",
            "787-555-0100"]
    out = normalise_arrays(raws, ["US", "US", "US", "GB", "US", "US"])
    assert out.e164() == ["+12025550123", "+18765550100", None, "+442079460123", None,
                          "+17875550100"]
    assert out.regions() == ["US", "JM", None, "GB", None, "US"]
    assert out.ok.tolist() == [True, False, False, True, False, True]
    assert [str(out.region_names[i]) for i in out.region.tolist()] == [
        "US", "JM", "", "GB", "", "US"]
    assert out.digits.tolist()[0] == 12025550123


def test_text_that_is_not_unicode_goes_to_the_per_row_parser() -> None:
    raws = ["\ud800", "+12025550123", "202\udcff5550123"] * 30
    hints: list[str | None] = ["US"] * len(raws)
    assert normalise_many(raws, hints) == per_row(raws, hints)


def regex_plain(text: list[str]) -> tuple[list[int], list[bool], list[int], list[int]]:
    """The plain-input decision with regular expressions only (what the byte scan of
    ``_plain_inputs`` stands in for): rows, leading '+', digit count, value of 10-11 digits."""
    rows, plus, width, value = [], [], [], []
    for i, raw in enumerate(text):
        t = re.sub(r"^(\s*\+?[0-9]{7,15})\.0+(\s*)$", r"\1\2", raw)
        if re.fullmatch(r" *\+?[0-9 ().\-]{10,40}", t) is None:
            continue
        num = re.sub(r"[^0-9]", "", t)
        rows.append(i)
        plus.append("+" in t)
        width.append(len(num))
        value.append(int(num) if 10 <= len(num) <= 11 else 0)
    return rows, plus, width, value


plainish = st.text(alphabet="0123456789 +-().\t\u00a0x٣", max_size=45) | st.builds(
    lambda n, tail: f"{n}{tail}", national_numbers,
    st.sampled_from([".0", ".00", ".0 ", ".5", "..", ".0.0", "+", "", " 1"])) | st.builds(
    fmt, national_numbers, st.integers(0, STYLES - 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(plainish, min_size=1, max_size=120), st.integers(0, 5))
def test_byte_scan_of_plain_inputs_agrees_with_the_regular_expressions(
        raws: list[str], cut: int) -> None:
    """Rows of a sliced array (its offsets do not start at 0), float cells, dots, pluses
    anywhere, long and non-ASCII inputs: the scan decides exactly what the regexes do."""
    arr = pa.array(["skip"] * cut + raws, type=pa.string()).slice(cut)
    at, plus, width, value = _plain_inputs(arr)
    assert (at.tolist(), plus.tolist(), width.tolist(), value.tolist()) == regex_plain(raws)


def test_byte_scan_takes_the_common_formats_without_regular_expressions() -> None:
    raws = [fmt("2025550123", style) for style in range(STYLES)] + ["", "2025550123.0"]
    quick, *_ = _scan_plain(pa.array(raws, type=pa.string()))
    taken = {r for r, q in zip(raws, quick.tolist(), strict=True) if q}
    assert taken >= {"+12025550123", "(202) 555-0123", "202-555-0123", "2025550123",
                     "12025550123", "202.555.0123", "+1 202 555 0123", "1-202-555-0123"}
    assert "" not in taken and "2025550123.0" not in taken  # a float cell: the regex path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(inputs | plainish, st.sampled_from(HINTS)), min_size=64, max_size=160))
def test_an_arrow_column_agrees_with_per_row_parser(pairs: list[tuple[str, str | None]]) -> None:
    """A file's phone column arrives as an Arrow array: the rows the table path leaves to the
    per-row parser (float cells among them) are read from the original text."""
    raws = [r for r, _ in pairs]
    hints = [g for _, g in pairs]
    assert normalise_arrays(pa.array(raws, pa.string()), hints).to_list(raws) == per_row(
        raws, hints)
