"""The shipped NANP time-zone table must give what ``NanpZones`` finds from phonenumbers."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import phonenumbers
import pytest

from dncguard import nanp
from dncguard.sources.rules import _zones as zones
from dncguard.sources.rules._zones import PER_NUMBER, NanpZones


def _shipped() -> tuple[npt.NDArray[np.int32], list[tuple[str, ...]], dict[str, str]]:
    return zones.parse_zones_text(zones._shipped_text())


def _sample(ids: npt.NDArray[np.int32]) -> npt.NDArray[np.int64]:
    """The first and last prefix of every run of the shipped table, a random one inside it,
    every per-number prefix and every prefix the NANP table leaves to the per-row parser."""
    rng = np.random.default_rng(11)
    starts = np.flatnonzero(np.diff(ids, prepend=-1))
    ends = np.append(starts[1:], ids.size)
    codes, _ = nanp.load_table()
    picked = np.concatenate([starts, ends - 1, rng.integers(starts, ends),
                             np.flatnonzero(ids == PER_NUMBER),
                             np.flatnonzero(codes == nanp.FALLBACK)])
    return rng.permutation(picked).astype(np.int64)


def _answers(found: NanpZones, prefixes: npt.NDArray[np.int64]) -> list[object]:
    """Per prefix: its zones, or PER_NUMBER (comparable across differently numbered ids)."""
    return [found.tuples[i] if i >= 0 else i for i in found.zone_ids(prefixes).tolist()]


def test_shipped_zones_match_installed_phonenumbers() -> None:
    """Fails after a phonenumbers upgrade until ``python scripts/gen_nanp_zones.py`` is run."""
    shipped, tuples, header = _shipped()
    assert header["phonenumbers"] == phonenumbers.__version__, "regenerate the NANP zones"
    assert header["metadata"] == nanp.metadata_fingerprint(), "regenerate the NANP zones"
    built, built_tuples = zones.build_zones()
    assert tuples == built_tuples, "regenerate the NANP zones"
    assert np.array_equal(shipped, built), "regenerate the NANP zones"
    # the text form round-trips
    again, again_tuples, _ = zones.parse_zones_text(zones.zones_text(built, built_tuples))
    assert np.array_equal(again, built)
    assert again_tuples == built_tuples


def test_loaded_table_agrees_with_lazy_path() -> None:
    """A process with the pinned phonenumbers takes the shipped answers, which are the lazy
    path's for the same prefixes, asked in any order (per-number prefixes included)."""
    ids, _, _ = _shipped()
    sample = _sample(ids)
    loaded = NanpZones()
    lazy = NanpZones(shipped=False)
    answers = _answers(loaded, sample)
    assert loaded.shipped and not lazy.shipped
    assert PER_NUMBER in answers and () in answers
    assert answers == _answers(lazy, sample)
    assert not lazy.shipped
    # every answer is phonenumbers' own for a number of the block
    rng = np.random.default_rng(5)
    for prefix, answer in zip(sample.tolist(), answers, strict=True):
        if answer != PER_NUMBER:
            number = f"+1{prefix:06d}{int(rng.integers(10_000)):04d}"
            assert answer == zones._pn_zones_uncached(number), number


def test_version_mismatch_falls_back_to_the_lazy_path(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A table built from another phonenumbers is not used: the zones are found as prefixes
    are seen, and that is logged once."""
    text = zones._shipped_text()
    line = f"# phonenumbers {phonenumbers.__version__}\n"
    assert line in text
    monkeypatch.setattr(zones, "_shipped_text", lambda: text.replace(line, "# phonenumbers 0.1\n"))
    ids, _, _ = _shipped()
    sample = _sample(ids)
    found = NanpZones()
    with caplog.at_level(logging.INFO, logger=zones.log.name):
        first = _answers(found, sample[:300])
        rest = _answers(found, sample[300:])
        one = found.zone_id(int(sample[0]))
    assert not found.shipped
    notes = [r for r in caplog.records if "phonenumbers 0.1" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    # only what was asked was found (lazily), and it is the shipped answer
    asked = np.flatnonzero(found._ids != zones._NOT_YET)
    assert np.array_equal(asked, np.unique(sample))
    monkeypatch.undo()
    assert first + rest == _answers(NanpZones(), sample)
    assert one == found.zone_id(int(sample[0]))


def test_lazy_path_finds_only_what_is_asked() -> None:
    """Without the shipped table a prefix is answered when first asked, not before."""
    found = NanpZones(shipped=False)
    assert found.zone_id(212_555) >= 0
    assert found.tuples[found.zone_id(212_555)] == ("America/New_York",)
    assert int((found._ids != zones._NOT_YET).sum()) == 1


def _first_run(text: str, pattern: str, repl: str) -> str:
    """``text`` with ``pattern`` replaced in the first run line."""
    head, runs = text.split("first,last,id\n", 1)
    line, rest = runs.split("\n", 1)
    edited = re.sub(pattern, repl, line)
    assert edited != line
    return f"{head}first,last,id\n{edited}\n{rest}"


@pytest.mark.parametrize("edit", [
    pytest.param(lambda t: _first_run(t, r"^000000,", "000001,"), id="gap-at-start"),
    pytest.param(lambda t: t.rstrip("\n").rsplit("\n", 1)[0] + "\n", id="missing-last-run"),
    pytest.param(lambda t: _first_run(t, r",[^,]*$", ",999"), id="unknown-id"),
    pytest.param(lambda t: _first_run(t, r",[^,]*$", ",-5"), id="negative-id"),
    pytest.param(lambda t: _first_run(t, r",[^,]*$", ",*").replace("\n1,", "\n2,", 1),
                 id="ids-out-of-order"),
])
def test_a_damaged_table_is_refused(edit: Callable[[str], str]) -> None:
    """Runs that leave a prefix out or name an unknown zone set are an error, not zeros."""
    text = zones._shipped_text()
    damaged = edit(text)
    assert damaged != text
    with pytest.raises(ValueError):
        zones.parse_zones_text(damaged)
