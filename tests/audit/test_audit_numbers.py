"""The number HMACs a scrub computes in a helper process while it writes its verdict file
(:class:`dncguard.audit.NumberDigests`): the same bytes as computed in process, never taken
for numbers other than those read back, and a helper that cannot start, dies or stalls
costs only the time saved, never the record."""

from __future__ import annotations

import hmac
import io
import logging
import signal
import struct
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from dncguard import audit
from dncguard.audit import NumberDigests
from dncguard.audit._jobs import block_leaves
from dncguard.audit._merkle import merkle_root
from dncguard.audit._numbers import GREETING, hmac_digests, serve
from dncguard.config import Settings
from dncguard.demo import build_demo
from dncguard.engine.scrubber import Scrubber
from dncguard.io.verdict_file import verdict_cells
from dncguard.lists.store import ListStore

from .conftest import T0

KEY = b"k" * 100  # longer than a SHA-256 block: RFC 2104 hashes it first


def reference(values: list[str], key: bytes = KEY) -> bytes:
    return b"".join(hmac.digest(key, v.encode("utf-8"), "sha256") for v in values)


def test_the_helper_answers_every_request_in_order() -> None:
    parts = [["+12025550123", "", "+441632960961"], ["+61491570156"], [], ["é", "+1"]]
    request = struct.pack("<I", len(KEY)) + KEY
    for part in parts:
        data = [v.encode("utf-8") for v in part]
        offsets = np.zeros(len(data) + 1, dtype=np.int32)
        offsets[1:] = np.cumsum([len(d) for d in data])
        request += struct.pack("<QQ", len(data), int(offsets[-1]))
        request += offsets.tobytes() + b"".join(data)
    out = io.BytesIO()
    serve(io.BytesIO(request), out)
    assert out.getvalue() == GREETING + reference([v for part in parts for v in part])


def test_the_helper_stops_at_a_cut_request() -> None:
    request = struct.pack("<I", 3) + b"key" + struct.pack("<QQ", 2, 10) + b"\0" * 4
    out = io.BytesIO()
    serve(io.BytesIO(request), out)  # returns instead of waiting or answering garbage
    assert out.getvalue() == GREETING


def columns() -> list[Any]:
    first = pa.array(["+12025550123", None, "+12025550124"])  # a null is no number
    second = pa.array(["+12025550125", "+12025550123"]).dictionary_encode()
    third = pa.array(["+12025550199"] * 6).slice(2, 3)  # an array with an offset
    return [first, second, third]


NUMBERS = ["+12025550123", "", "+12025550124", "+12025550125", "+12025550123",
           "+12025550199", "+12025550199", "+12025550199"]


@pytest.mark.parametrize("request_rows", [65_536, 2])
def test_digests_from_the_helper_are_the_in_process_ones(request_rows: int) -> None:
    digests = NumberDigests(KEY)
    digests.request_rows = request_rows  # 2: columns split over several requests
    try:
        for column in columns():
            digests.add(column)
        assert digests.take(0, pa.array(NUMBERS)) == reference(NUMBERS)
        # batches of rows that do not follow the added columns
        assert digests.take(2, pa.array(NUMBERS[2:6])) == reference(NUMBERS[2:6])
        assert digests.take(7, pa.array(NUMBERS[7:])) == hmac_digests(KEY, [b"+12025550199"])
    finally:
        digests.close()
    assert digests._proc is not None and digests._proc.poll() == 0  # it exited on its own


def test_rows_past_the_limit_are_left_to_the_record() -> None:
    digests = NumberDigests(KEY)
    digests.max_rows = 4
    try:
        for column in columns():
            digests.add(column)
        assert digests.take(0, pa.array(NUMBERS[:4])) == reference(NUMBERS[:4])
        assert digests.take(3, pa.array(NUMBERS[3:5])) is None  # row 5 was not added
    finally:
        digests.close()


def test_a_column_that_cannot_be_read_ends_the_coverage() -> None:
    digests = NumberDigests(KEY)
    try:
        digests.add(pa.array(NUMBERS[:3]))
        digests.add(pa.array([[1], [2]]))  # no strings: refused, not raised
        digests.add(pa.array(NUMBERS[3:]))  # would be misaligned: not taken either
        assert digests.take(0, pa.array(NUMBERS[:3])) == reference(NUMBERS[:3])
        assert digests.take(3, pa.array(NUMBERS[3:])) is None
    finally:
        digests.close()


def test_digests_are_not_taken_for_other_numbers() -> None:
    digests = NumberDigests(KEY)
    try:
        for column in columns():
            digests.add(column)
        changed = [*NUMBERS[:4], "+12025550126", *NUMBERS[5:]]
        assert digests.take(0, pa.array(changed)) is None
        assert digests.take(1, pa.array(NUMBERS[:4])) is None  # shifted by one row
        assert digests.take(6, pa.array(NUMBERS[6:] + ["+1"])) is None  # past the end
        assert digests.take(0, pa.array([None, *NUMBERS[1:]])) is None
        assert digests.take(0, pa.array(NUMBERS[:3])) == reference(NUMBERS[:3])
    finally:
        digests.close()


@pytest.mark.parametrize("command", [
    ["/nonexistent/python"],  # cannot start
    [sys.executable, "-c", "import sys; sys.stdin.buffer.read(50)"],  # dies without answering
    [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'x' * 40)"],  # answers short
])
def test_a_failed_helper_only_costs_time(command: list[str],
                                         caplog: pytest.LogCaptureFixture) -> None:
    digests = NumberDigests(KEY)
    digests.command = command
    digests.greet_wait = 0.5  # the second one waits for its input instead of greeting
    try:
        for column in columns():
            digests.add(column)
        with caplog.at_level(logging.WARNING, "dncguard.audit"):
            assert digests.take(0, pa.array(NUMBERS[:3])) is None
            assert digests.take(3, pa.array(NUMBERS[3:5])) is None
    finally:
        digests.close()
    warnings = [r for r in caplog.records if "computed in this process" in r.getMessage()]
    assert len(warnings) == 1  # said once


def nothing_from(command: list[str], **waits: float) -> NumberDigests:
    """A NumberDigests whose helper is ``command`` (with these waits), closed once it gave
    no digests for :data:`NUMBERS`."""
    digests = NumberDigests(KEY)
    digests.command = command
    for name, seconds in waits.items():
        setattr(digests, name, seconds)
    try:
        digests.add(pa.array(NUMBERS))
        assert digests.take(0, pa.array(NUMBERS)) is None
    finally:
        digests.close()
    return digests


def test_the_key_goes_only_to_the_helper(tmp_path: Path) -> None:
    got = tmp_path / "got"
    # a program that does not greet, and keeps whatever it is sent
    nothing_from([sys.executable, "-c", "import sys; f = open(sys.argv[1], 'wb'); "
                  "f.write(sys.stdin.buffer.raw.read(1 << 16)); f.close()", str(got)],
                 greet_wait=0.2)
    assert not got.exists() or KEY not in got.read_bytes()


def test_digests_of_another_key_are_not_taken(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "verdicts.csv"
    files = build_demo(ListStore(settings), tmp_path / "demo", date(2026, 11, 10))
    summary = Scrubber(settings, clock=lambda: T0, audit=False).scrub_file(
        files.contacts, out, at=T0)
    log = audit.audit_log(settings)
    other = NumberDigests(b"another key")
    try:
        other.add(pa.array([cells[0] for cells in verdict_cells(out)]))  # the e164 cells
        record = audit.record_job(settings, audit.new_job_id(), out, summary, numbers=other)
    finally:
        other.close()
    assert record.data["merkle"]["root"] == merkle_root(block_leaves(log, out))


def test_a_failed_scrub_stops_the_helper_at_once(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dncguard.io.verdict_file import TableWriter

    files = build_demo(ListStore(settings), tmp_path / "demo", date(2026, 11, 10))
    made: list[NumberDigests] = []
    init = NumberDigests.__init__

    def record(self: NumberDigests, key: bytes) -> None:
        init(self, key)
        made.append(self)

    def broken(self: TableWriter) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(NumberDigests, "__init__", record)
    monkeypatch.setattr(TableWriter, "close", broken)
    with pytest.raises(OSError, match="disk full"):
        Scrubber(settings, clock=lambda: T0).scrub_file(files.contacts, tmp_path / "v.csv",
                                                       at=T0)
    assert len(made) == 1 and made[0]._proc is not None
    assert made[0]._proc.poll() == -signal.SIGKILL  # killed, not left to finish
    assert made[0]._thread is not None and not made[0]._thread.is_alive()


def test_a_stalled_helper_is_killed() -> None:
    digests = nothing_from([sys.executable, "-c", "import time; time.sleep(120)"],
                           answer_wait=0.2)
    assert digests._proc is not None and digests._proc.poll() is not None


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_audited_scrub_records_the_same_root_with_the_helper(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        suffix: str) -> None:
    files = build_demo(ListStore(settings), tmp_path / "demo", date(2026, 11, 10))
    taken: list[bool] = []
    take = NumberDigests.take

    def spy(self: NumberDigests, first: int, read: Any) -> bytes | None:
        got = take(self, first, read)
        taken.append(got is not None)
        return got

    monkeypatch.setattr(NumberDigests, "take", spy)
    monkeypatch.setattr(NumberDigests, "request_rows", 5)  # several requests, not one
    out = tmp_path / f"verdicts{suffix}"
    summary = Scrubber(settings, clock=lambda: T0).scrub_file(files.contacts, out, at=T0)
    assert taken and all(taken)  # the helper's digests were used, for every batch
    log = audit.audit_log(settings)
    record = log.find("job", summary.audit_jobs[""])
    assert record is not None
    # the root computed from the file alone, every HMAC in this process
    assert record.data["merkle"]["root"] == merkle_root(block_leaves(log, out))
    assert record.data["merkle"]["rows"] == summary.total_rows
