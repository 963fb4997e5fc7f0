"""Reading a file as a table and reading it row by row give the same verdict file.

``Scrubber(columnar=False)`` reads a file row by row (:func:`dncguard.io.tables.open_table`);
the default reads it as a table (:func:`dncguard.io.tables.read_table`). Both readers feed the
one engine (:mod:`dncguard.engine.run`), on the same home (national, state, internal and
wireless lists, rules on), and must give the same verdict file, byte for byte, and the same
summary, for generated files: every NANP area code, awkward CSV cells, context columns,
duplicates across slices, bad numbers, Parquet.
"""

from __future__ import annotations

import csv
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dncguard.config import Settings, load_settings
from dncguard.engine import scrubber as engine
from dncguard.engine.scrubber import Scrubber
from dncguard.io import tables
from dncguard.lists.store import ListStore
from dncguard.phones import _npa_states

from .conftest import AT

_VOLATILE = ("input", "output", "started_at", "finished_at", "rowsPerSecond")
FORMATS = ["{n}", "+1{n}", "1{n}", "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}",
           " +1 {a} {b} {c} ", "1-{a}-{b}-{c}", "tel:{n}", "+1{n} ext 12", "{a}{b}"]
NPAS = sorted(_npa_states())
#: valid numbers of the US territories' area codes (PR 787/939, VI 340, GU 671, MP 670, AS 684,
#: an American Samoa mobile exchange among them): US numbers on both paths
TERRITORY_NUMBERS = ["7872345678", "9392345678", "3406421234", "6713001234", "6702345678",
                     "6846221234", "6842481234"]


def _fmt(number: str, style: str) -> str:
    return style.format(n=number, a=number[:3], b=number[3:6], c=number[6:])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Lists of every kind the local check and the rules read, one home for the module."""
    root = tmp_path_factory.mktemp("columnar")
    cfg = load_settings(home=root / "home")
    store = ListStore(cfg)
    numbers = [f"+1{npa}555{k:04d}" for npa in NPAS for k in range(0, 40, 7)]

    def imp(name: str, lines: list[str], **kw: Any) -> None:
        path = root / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        store.import_file(path, name=name, **kw)

    imp("us-national", numbers[::2], kind="national", jurisdiction="US",
        snapshot_date=date(2026, 11, 1))
    imp("fl-state", numbers[1::5], kind="state", jurisdiction="US-FL",
        snapshot_date=date(2026, 11, 2))
    imp("internal", numbers[::3], kind="internal")
    imp("carrier", numbers[::4], kind="wireless")
    return cfg


def _both(cfg: Settings, path: Path, tmp: Path, **kw: Any) -> tuple[bytes, dict[str, Any]]:
    """Scrub ``path`` both ways; assert they agree; the verdict file and summary."""
    out: list[tuple[bytes, dict[str, Any]]] = []
    suffix = kw.pop("suffix", ".csv")
    for flag in (False, True):
        target = tmp / f"out-{int(flag)}{suffix}"
        Scrubber(cfg, clock=lambda: AT, columnar=flag).scrub_file(path, target, at=AT, **kw)
        summary = json.loads(target.with_name(f"{target.stem}.summary.json").read_text())
        for key in _VOLATILE:
            summary.pop(key, None)
        data = (target.read_bytes() if suffix == ".csv"
                else json.dumps(pq.read_table(target).to_pylist(), default=str).encode())
        out.append((data, summary))
    (rows_a, sum_a), (rows_b, sum_b) = out
    assert sum_b == sum_a
    assert rows_b == rows_a
    return out[1]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture(params=[False, True], ids=["lists", "rules"])
def cfg(request: pytest.FixtureRequest, home: Settings,
        monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true" if request.param else "false")
    return load_settings(home=home.home)


def test_every_area_code_and_format(cfg: Settings, tmp_path: Path) -> None:
    rows = [["id", "phone", "note"]]
    for i, npa in enumerate(NPAS):
        for j, style in enumerate(FORMATS):
            number = f"{npa}555{(i * 7 + j) % 40:04d}"
            rows.append([str(len(rows)), _fmt(number, style), f"n{i}"])
    rows += [["x", "12345", ""], ["y", "+442079460000", ""], ["z", "", ""],
             ["w", "+1 800 555 0100", ""], ["v", "+12125550000", "again"]]
    _, summary = _both(cfg, _write(tmp_path / "in.csv", rows), tmp_path)
    assert summary["totalRows"] == len(rows) - 1
    assert summary["byReason"].get("DNC_NATIONAL", 0) > 0  # the lists were hit


def test_territory_numbers(cfg: Settings, tmp_path: Path) -> None:
    """The US territories' numbers in every format, with state and region columns: the same
    verdicts both ways, judged as US numbers (the national list applies to them)."""
    assert {787, 939, 340, 671, 670, 684} <= set(NPAS)
    rows = [["phone", "state", "region"]]
    for i, number in enumerate(TERRITORY_NUMBERS + [f"{npa}555{k:04d}" for npa in
                                                    (787, 939, 340, 671, 670, 684)
                                                    for k in (0, 7, 14)]):
        for j, style in enumerate(FORMATS):
            rows.append([_fmt(number, style), ["", "PR", "FL", "gu"][(i + j) % 4],
                         ["", "US", "us", "CA"][(i * 3 + j) % 4]])
    _, summary = _both(cfg, _write(tmp_path / "in.csv", rows), tmp_path)
    assert summary["byReason"].get("DNC_NATIONAL", 0) > 0
    assert "UNSUPPORTED_REGION" not in summary["byReason"]
    assert {"PR", "VI", "GU", "MP", "AS"} <= set(summary["byState"])


def test_duplicates_across_slices(cfg: Settings, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SLICE_ROWS", 7)
    numbers = [f"{NPAS[k % 7]}555{k % 5:04d}" for k in range(60)]
    rows = [["phone", "state", "zip", "line_type"]]
    rows += [[_fmt(n, FORMATS[k % 5]), ["", "FL", "ny"][k % 3], ["", "33101"][k % 2],
              ["", "mobile", "landline"][k % 3]] for k, n in enumerate(numbers)]
    path = _write(tmp_path / "in.csv", rows)
    data, summary = _both(cfg, path, tmp_path)
    assert summary["duplicates"] > 0
    # one slice checked at a time, or several in flight: the same file
    for slices in (1, 3):
        one = cfg.model_copy(update={"concurrency": slices})
        target = tmp_path / f"in-flight-{slices}.csv"
        Scrubber(one, clock=lambda: AT).scrub_file(path, target, at=AT)
        assert target.read_bytes() == data


_CELL = st.text(alphabet=st.sampled_from(list("ab1+-=@ ,\"'\n\r\t;é(")), max_size=6)
_PHONE = st.one_of(
    st.builds(_fmt, st.builds(lambda npa, rest: f"{npa}{rest:07d}", st.sampled_from(NPAS),
                              st.integers(0, 9_999_999)), st.sampled_from(FORMATS)),
    st.sampled_from(["", "12345", "+442079460000", "+61 2 9876 5432", "abc", "=1+2",
                     "+1 212 555 0002", "212-555-0007"]),
    _CELL)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_PHONE, _CELL, st.sampled_from(["", "FL", " tx ", "zz"]),
                               st.sampled_from(["", "US", "CA", "GB"])),
                     min_size=1, max_size=40))
def test_generated_files(cfg: Settings, tmp_path: Path,
                         rows: list[tuple[str, str, str, str]]) -> None:
    path = _write(tmp_path / "gen.csv",
                  [["phone", "remark", "state", "region"], *[list(r) for r in rows]])
    _both(cfg, path, tmp_path)


def test_parquet_in_and_out(cfg: Settings, tmp_path: Path) -> None:
    phones = [_fmt(f"{NPAS[k]}5550{k % 10:03d}", FORMATS[k % 4]) for k in range(50)]
    pq.write_table(pa.table({"phone": phones + ["12345"], "who": ["=cmd"] * 51}),
                   tmp_path / "in.parquet")
    _both(cfg, tmp_path / "in.parquet", tmp_path, suffix=".parquet")


def test_files_that_are_not_tables_go_row_by_row(home: Settings, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("phone,name\n2125550100,a\n2125550101\n2125550102,b,c\n", "utf-8")
    caplog.set_level(logging.INFO, logger="dncguard.engine.scrubber")
    _, summary = _both(home, path, tmp_path)
    assert "row by row" in caplog.text
    assert summary["rowErrorCount"] == 2
    with pytest.raises(tables.NotColumnar):
        tables.read_table(path)


def test_a_few_rows_and_many_read_their_contexts_alike(cfg: Settings, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A slice of a few rows (a group of single checks) reads its context columns row by row,
    a larger one per distinct value: the same verdicts, refusals and summary."""
    from dncguard.engine import run as engine_run

    rows = [["phone", "state", "zip", "timezone", "line_type"]]
    for k in range(50):
        rows.append([_fmt(f"{NPAS[k % 9]}555{k % 7:04d}", FORMATS[k % 3]),
                     ["", "FL", "ny", "ZZ", " tx "][k % 5], ["", "33101", "99999x"][k % 3],
                     ["", "America/New_York", "Mars/Base"][k % 4 % 3],
                     ["", "mobile", "fax"][k % 6 % 3]])
    path = _write(tmp_path / "ctx.csv", rows)
    outs = []
    for few in (0, 10**6):
        monkeypatch.setattr(engine_run, "_FEW_ROWS", few)
        target = tmp_path / f"few-{few}.csv"
        Scrubber(cfg, clock=lambda: AT).scrub_file(path, target, at=AT)
        summary = json.loads(target.with_name(f"{target.stem}.summary.json").read_text())
        for key in _VOLATILE:
            summary.pop(key, None)
        outs.append((target.read_bytes(), summary))
    assert outs[0] == outs[1]
    assert b"CONTEXT_INVALID" in outs[0][0] and outs[0][1]["rowErrorCount"] > 0
