"""The shipped NANP table must match what the installed phonenumbers says."""

from __future__ import annotations

import numpy as np
import phonenumbers

from dncguard import nanp


def test_shipped_table_matches_installed_phonenumbers() -> None:
    """Fails after a phonenumbers upgrade until ``python scripts/gen_nanp_table.py`` is run."""
    from importlib import resources

    text = resources.files("dncguard.data").joinpath(nanp.TABLE_FILE).read_text("utf-8")
    shipped, regions, header = nanp.parse_table_text(text)
    assert header["phonenumbers"] == phonenumbers.__version__, "regenerate the NANP table"
    assert header["metadata"] == nanp.metadata_fingerprint(), "regenerate the NANP table"
    built, built_regions = nanp.build_table()
    assert regions == built_regions
    assert np.array_equal(shipped, built), "regenerate the NANP table"
    # the text form round-trips
    again, _, _ = nanp.parse_table_text(nanp.table_text(built, built_regions))
    assert np.array_equal(again, built)


def test_table_agrees_with_phonenumbers_in_every_run() -> None:
    """A few numbers from every run of prefixes get the table's verdict from phonenumbers."""
    codes, regions = nanp.load_table()
    for national in nanp.sample_numbers(codes, per_code=2, seed=7):
        code = int(codes[national // 10_000])
        if code == nanp.FALLBACK:
            continue
        number = phonenumbers.PhoneNumber(country_code=1, national_number=national)
        region = phonenumbers.region_code_for_number(number)
        valid = region is not None and phonenumbers.is_valid_number_for_region(number, region)
        assert code == (regions.index(region) + 1 if valid else nanp.INVALID), national


def test_few_prefixes_need_the_per_row_parser() -> None:
    codes, _ = nanp.load_table()
    assert int((codes == nanp.FALLBACK).sum()) < 1000
