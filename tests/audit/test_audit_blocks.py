"""Format v2 job records (a Merkle leaf per block of rows), their proofs, and v1 records."""

from __future__ import annotations

import copy
import csv
import hashlib
import hmac
import json
import tempfile
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dncguard.audit import AuditError, AuditLog, new_job_id, verify_proof
from dncguard.audit import _jobs as jobs
from dncguard.audit._jobs import (
    ROW_LINE,
    _leaf_bytes,
    block_leaves,
    copy_sha256,
    file_sha256,
    job_folder,
    leaf_data,
    leaves,
    prove,
    record_job,
    row_lines,
)
from dncguard.audit._merkle import EMPTY_ROOT, leaf_hash, merkle_root
from dncguard.audit._numbers import hmac_digests
from dncguard.engine.summary import ScrubSummary
from dncguard.io.verdict_file import VERDICT_COLUMNS, TableWriter, output_header, verdict_cells

from .conftest import T0, DemoJob

SUMMARY = ScrubSummary(dial_time=T0, started_at=T0)


class KeyOnly:
    """What the row-line code needs of an AuditLog, with an independent reference HMAC."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def number_hmac(self, number: str) -> str:
        return hmac.new(self.key, number.encode("utf-8"), hashlib.sha256).hexdigest()


def as_log(key: bytes = b"test-key") -> AuditLog:
    return cast(AuditLog, KeyOnly(key))


def write_verdicts(path: Path, header: list[str], rows: list[list[str]], *,
                   raw: bool = False) -> None:
    """A results file as the pipeline writes it: input cells, then the five added ones."""
    writer = TableWriter(path, output_header(header), raw=raw)
    writer.write(rows)
    writer.close()


def reference_lines(log: AuditLog, path: Path) -> list[bytes]:
    """Row lines the v1 way: Python's csv module, then json.dumps per row."""
    return [_leaf_bytes(leaf_data(log, i, cells)) for i, cells in enumerate(verdict_cells(path), 1)]


def reference_blocks(lines: list[bytes], size: int) -> list[bytes]:
    return [leaf_hash(b"".join(line + b"\n" for line in lines[i:i + size]))
            for i in range(0, len(lines), size)]


# Input columns named like the added ones (the pipeline renames the added ones), and cells
# with quotes, commas, line breaks, formula starts (written with an apostrophe) and non-ASCII.
AWKWARD_HEADER = ["name, \"quoted\"", "e164", "decision", "notes\nmultiline", "phone"]
AWKWARD_ROWS = [
    ["Zoë, \"the\" 東京", "=HYPERLINK(\"x\")", "-1+1", "line one\r\nline two\n", "+1 202 555 0100",
     "+12025550100", "block", "DNC_NATIONAL", "list \"us\", national\n(2026)", ""],
    ["", "", "", "", "call me", "", "invalid", "INVALID_NUMBER", "=not a formula", ""],
    ["@user", "+cmd", "\t tab", "\"", "(415) 555-0177", "+14155550177", "defer",
     "OUTSIDE_CALLING_WINDOW", "", "2026-11-19T16:00:00Z"],
    ["Ωmega", "'quoted", "\\back\\slash", ",", "202.555.0101", "+12025550101", "allow", "", "",
     ""],
    # verdict cells a spreadsheet could run (apostrophe added on write, removed on read), and
    # ones json.dumps must escape: the line falls back to json.dumps for them
    ["x", "y", "z", "w", "312-555-0144", "+13125550144", "-weird", "=SUM(A1);É\"\\\x01", "",
     "@later"],
]


def test_awkward_cells_record_prove_and_match_the_reference(log: AuditLog, tmp_path: Path
                                                           ) -> None:
    """A file with awkward cells is read exactly as Python's csv reads it, and every row
    proves."""
    out = tmp_path / "verdicts.csv"
    write_verdicts(out, AWKWARD_HEADER, AWKWARD_ROWS)
    text = out.read_text(encoding="utf-8")
    assert "'=SUM(A1)" in text and "'-weird" in text and "'@later" in text  # defused on write
    lines = row_lines(log, out)
    assert lines == reference_lines(log, out)
    assert json.loads(lines[4]) == [5, log.number_hmac("+13125550144"), "-weird",
                                    "=SUM(A1);É\"\\\x01", "@later"]
    assert json.loads(lines[1])[1] is None  # no number: null
    job = new_job_id()
    rec = record_job(log, job, out, SUMMARY)
    merkle = rec.data["merkle"]
    assert merkle["leaf"] == "block-1024 v2" and merkle["block_rows"] == 1024
    assert merkle["rows"] == rec.data["results"]["rows"] == 5 and merkle["leaves"] == 1
    assert merkle["root"] == merkle_root(reference_blocks(lines, 1024))
    retained = log.settings.home / rec.data["results"]["retained"]
    assert retained.read_bytes() == out.read_bytes()
    assert rec.data["results"]["sha256"] == file_sha256(out)
    for row in range(1, 6):
        proof = prove(log, job, row)
        assert verify_proof(proof), row
        assert proof["leaf"] == leaf_data(log, row, next(
            c for i, c in enumerate(verdict_cells(out), 1) if i == row))
        shown = json.dumps(proof["block"]) + json.dumps(proof["leaf"])
        assert "555" not in shown  # HMACs only, never a number
    assert prove(log, job, 3)["number_masked"] == "+1415555****"


@pytest.mark.parametrize("block", [1, 7, 1024])
def test_first_last_and_middle_rows_prove(log: AuditLog, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    """Rows at block edges and in a last, partial block prove; the block size is recorded."""
    monkeypatch.setattr(jobs, "BLOCK_ROWS", block)
    n = 2 * 1024 + 300  # not a multiple of any block size tested
    rows = [["c", f"+1202{i:07d}", "block" if i % 3 else "allow",
             "DNC_NATIONAL" if i % 3 else "", "", ""] for i in range(n)]
    out = tmp_path / "v.csv"
    write_verdicts(out, ["c"], rows)
    job = new_job_id()
    rec = record_job(log, job, out, SUMMARY)
    assert rec.data["merkle"]["leaf"] == f"block-{block} v2"
    assert rec.data["merkle"]["leaves"] == -(-n // block)
    assert rec.data["merkle"]["root"] == merkle_root(reference_blocks(reference_lines(log, out),
                                                                      block))
    for row in sorted({1, 2, block, block + 1, 1024, 1025, n // 2, n - 1, n}):
        proof = prove(log, job, row)
        assert verify_proof(proof), row
        assert proof["leaf"]["row"] == row
        assert proof["leaf"]["decision"] == ("block" if (row - 1) % 3 else "allow")
        assert proof["block"]["index"] == (row - 1) // block
        assert len(proof["block"]["rows"]) == min(block, n - proof["block"]["index"] * block)
    with pytest.raises(AuditError, match=f"rows 1 to {n}, not {n + 1}"):
        prove(log, job, n + 1)


def test_tampering_is_detected(log: AuditLog, demo_job: DemoJob) -> None:
    """An edited row changes the file's hash and the root; an edited proof does not verify."""
    job = new_job_id()
    rec = record_job(log, job, demo_job.output, demo_job.summary)
    retained = log.settings.home / rec.data["results"]["retained"]
    good = prove(log, job, 5)
    original = retained.read_bytes()
    retained.write_bytes(original.replace(b",allow,", b",block,", 1))
    with pytest.raises(AuditError, match="altered"):
        prove(log, job, 5)
    # the root alone catches it too, whatever the file's recorded hash says
    assert merkle_root(block_leaves(log, retained)) != rec.data["merkle"]["root"]
    retained.write_bytes(original)
    assert verify_proof(prove(log, job, 5))

    def forged(change: Any) -> dict[str, Any]:
        proof = copy.deepcopy(good)
        change(proof)
        return proof

    def other_row(p: dict[str, Any]) -> None:
        p["block"]["rows"][0][2] = "allow" if p["block"]["rows"][0][2] != "allow" else "block"

    def claimed(p: dict[str, Any]) -> None:
        p["leaf"]["decision"] = "allow" if p["leaf"]["decision"] != "allow" else "block"
        p["block"]["rows"][4][2] = p["leaf"]["decision"]

    def swapped(p: dict[str, Any]) -> None:
        rows = p["block"]["rows"]
        rows[3][1:], rows[4][1:] = rows[4][1:], rows[3][1:]
        p["leaf"] = dict(zip(p["leaf"], rows[4], strict=True))

    def renumbered(p: dict[str, Any]) -> None:
        p["row"] = 6
        p["leaf"] = dict(zip(p["leaf"], p["block"]["rows"][5], strict=True))
        p["leaf"]["row"] = 5

    def dropped(p: dict[str, Any]) -> None:
        del p["block"]["rows"][-1]

    def moved(p: dict[str, Any]) -> None:
        p["block"]["index"] = 1

    def malformed(p: dict[str, Any]) -> None:
        del p["block"]["size"]

    for change in (other_row, claimed, swapped, renumbered, dropped, moved, malformed):
        assert not verify_proof(forged(change)), change.__name__
    assert verify_proof(forged(lambda p: None))


# A proof written by dncguard before format v2 (key "test-key", the demo job, row 7).
V1_PROOF: dict[str, Any] = {
    "job_id": "job-v1", "row": 7,
    "leaf": {"row": 7,
             "number_hmac": "2ac7d12d143f76c8a6f561f4914ddd64f104a0d6ad663db3df19f6a8c4ddfc3c",
             "decision": "block", "reason_codes": "DNC_HASHED", "next_allowed_at": None},
    "number_masked": "+1512555****",
    "leaf_hash": "1ea84a15a7ee570da3cddb934df455a01878bedcbee7164c41256d0537997b1a",
    "path": [{"side": side, "hash": h} for side, h in [
        ("right", "2464ee21e8815c0d77e9638cc25b79b018c6989c4e6c211f061e17352ff087fb"),
        ("left", "868c0058e3e7d19b8f52c809275a9e41947919669d9bcd8f41d8c57a3a8bc376"),
        ("left", "f143439e3719e25aa32cea28fd85b0f1e77b0029065658524910cdd4d9a3d6df"),
        ("right", "b8207fea89b74dba659c8372500f4b790d9e99fff1d610955f1bfcb52d7324ed"),
        ("right", "a3f5f560826df27a1daa1deb1ae5839d755b1440c8f3165991e2d1df6ae9c483"),
    ]],
    "root": "fda49dfed2c9d3cbb028a3f3f79a82b76aa53312e9c79cc75032b0991bc5b5d9", "leaves": 20,
    "record": {"seq": 12,
               "hash": "4499f530dba724a79174a9b5ae2c563d3cac824c609aec985aabc06e7dbaeaeb"},
}


def test_a_v1_proof_still_verifies() -> None:
    assert verify_proof(V1_PROOF)
    forged = copy.deepcopy(V1_PROOF)
    forged["leaf"]["decision"] = "allow"
    assert not verify_proof(forged)


def record_v1(log: AuditLog, job: str, output: Path, summary: ScrubSummary) -> None:
    """A job record as dncguard wrote it before format v2: one Merkle leaf per row."""
    folder = job_folder(log, job)
    folder.mkdir(parents=True)
    target = folder / "results.csv"
    digest = copy_sha256(output, target)
    hashes = leaves(log, target)
    log.append("job", "scrub", subject=job, data={
        "job_id": job, "summary": {},
        "merkle": {"root": merkle_root(hashes), "leaves": len(hashes),
                   "algorithm": "rfc6962-sha256", "leaf": ROW_LINE},
        "results": {"file": output.name, "sha256": digest,
                    "retained": str(target.relative_to(log.settings.home)),
                    "rows": len(hashes)}})


def test_v1_records_still_prove_and_verify(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    record_v1(log, job, demo_job.output, demo_job.summary)
    rows = list(csv.DictReader(demo_job.output.open(encoding="utf-8")))
    for n in (1, 7, 22):
        proof = prove(log, job, n)
        assert "block" not in proof and proof["leaves"] == 22
        assert verify_proof(proof), n
        assert proof["leaf"]["decision"] == rows[n - 1]["decision"]
        assert proof["leaf_hash"] == leaf_hash(_leaf_bytes(proof["leaf"])).hex()
    proof = prove(log, job, 7)
    proof["leaf"]["reason_codes"] = ""
    assert not verify_proof(proof)
    with pytest.raises(AuditError, match="rows 1 to 22"):
        prove(log, job, 23)
    assert log.verify().ok


def test_unknown_leaf_format_is_refused(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    rec = record_job(log, job, demo_job.output, demo_job.summary)
    data = dict(rec.data, merkle=dict(rec.data["merkle"], leaf="block-1024 v9"))
    log.append("job", "scrub", subject="job-future", data=data)
    with pytest.raises(AuditError, match="unknown Merkle leaf format"):
        prove(log, "job-future", 1)


@pytest.mark.parametrize(("content", "message"), [
    (b"a,e164,decision,reason_codes,detail,next_allowed_at\r\n1,2,3\r\n",
     "cannot be read as a verdict file"),
    (b"a,e164,decision,reason_codes,detail,next_allowed_at\r\nx,+1,bl\xffock,,,\r\n",
     "cannot be read as a verdict file"),
    (b"a,b\r\n1,2\r\n", "not a verdict file"),
    (b"e164,decision,reason_codes,detail,next_allowed_at,decision\r\n", "repeats"),
    (b"a,\"e164\xff\",decision,reason_codes,detail,next_allowed_at\r\n", "header line"),
])
def test_unreadable_files_give_a_clear_error(log: AuditLog, tmp_path: Path, content: bytes,
                                             message: str) -> None:
    out = tmp_path / "bad.csv"
    out.write_bytes(content)
    job = new_job_id()
    with pytest.raises(AuditError, match=message):
        record_job(log, job, out, SUMMARY)
    assert not job_folder(log, job).exists()  # nothing half-retained
    assert log.find("job", job) is None
    with pytest.raises(AuditError, match="cannot read"):
        record_job(log, new_job_id(), tmp_path / "missing.csv", SUMMARY)


def test_empty_results(log: AuditLog, tmp_path: Path) -> None:
    for name, header in (("empty.csv", None), ("header.csv", ["phone"])):
        out = tmp_path / name
        if header is None:
            out.write_bytes(b"")
        else:
            write_verdicts(out, header, [])
        rec = record_job(log, new_job_id(), out, SUMMARY)
        assert rec.data["merkle"]["root"] == EMPTY_ROOT and rec.data["merkle"]["rows"] == 0
        with pytest.raises(AuditError, match="rows 1 to 0"):
            prove(log, rec.subject or "", 1)


def test_results_not_retained(settings: Any, demo_job: DemoJob) -> None:
    from .conftest import make_log

    log = make_log(settings, retain_results=False)
    job = new_job_id()
    rec = record_job(log, job, demo_job.output, demo_job.summary)
    assert rec.data["results"]["retained"] is None and not job_folder(log, job).exists()
    assert rec.data["results"]["sha256"] == file_sha256(demo_job.output)
    assert rec.data["merkle"]["root"] == merkle_root(block_leaves(log, demo_job.output))


@given(st.binary(min_size=0, max_size=150), st.lists(st.binary(max_size=40), max_size=8))
@hsettings(max_examples=50, deadline=None)
def test_hmac_digests_equal_hmac_digest(key: bytes, values: list[bytes]) -> None:
    assert hmac_digests(key, values) == b"".join(
        hmac.digest(key, v, "sha256") for v in values)


CELL = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["", "=SUM(A1)", "+cmd", "-x", "@x", "\tx", "\rx", "'=x", "'", "\"", ",",
                     "a\r\nb", "\n", "Zoë", "東京", "\\", "\x7f", "\u2028", "null", "-1",
                     "+1 (202) 555-0100"]),
)
E164 = st.one_of(st.just(""), st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True), CELL)
HEADER = st.lists(st.one_of(CELL, st.sampled_from(list(VERDICT_COLUMNS))), min_size=1,
                  max_size=4)


@given(HEADER, st.data(), st.integers(min_value=1, max_value=9), st.booleans())
@hsettings(max_examples=80, deadline=None,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_vectorised_lines_equal_json_dumps(header: list[str], data: st.DataObject, block: int,
                                          raw: bool) -> None:
    """The pyarrow row lines and block leaves equal Python csv + json.dumps, cell for cell."""
    width = len(header)
    rows = data.draw(st.lists(st.tuples(
        st.lists(CELL, min_size=width, max_size=width), E164, CELL, CELL, CELL, CELL),
        max_size=25))
    log = as_log()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "v.csv"
        write_verdicts(out, header, [[*cells, *rest] for cells, *rest in rows], raw=raw)
        expected = reference_lines(log, out)
        assert len(expected) == len(rows)
        assert row_lines(log, out) == expected
        assert block_leaves(log, out, block) == reference_blocks(expected, block)


def test_parquet_lines_equal_the_reference(tmp_path: Path) -> None:
    log = as_log()
    out = tmp_path / "v.parquet"
    write_verdicts(out, AWKWARD_HEADER, AWKWARD_ROWS)
    assert row_lines(log, out) == reference_lines(log, out)
    assert block_leaves(log, out, 2) == reference_blocks(reference_lines(log, out), 2)
