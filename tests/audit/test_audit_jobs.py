"""Scrub-job records: Merkle root over every row, retained results, inclusion proofs."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr

from dncguard.audit import (
    AuditError,
    AuditLog,
    audit_log,
    new_job_id,
    record_check,
    record_checks,
    verify_proof,
)
from dncguard.audit._jobs import block_leaves, prove, record_job
from dncguard.audit._merkle import (
    EMPTY_ROOT,
    MerkleBuilder,
    inclusion_path,
    leaf_hash,
    merkle_root,
    root_from_path,
    streaming_path,
)
from dncguard.config import Settings

from .conftest import DemoJob, make_log


def test_job_record_and_every_row_proves(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    rec = record_job(log, job, demo_job.output, demo_job.summary, who="cli:alice")
    assert rec.kind == "job" and rec.subject == job and rec.who == "cli:alice"
    s = rec.data["summary"]
    assert s["totalRows"] == demo_job.summary.total_rows == 22
    assert s["byReason"] == demo_job.summary.by_reason
    assert rec.versions["lists"] == demo_job.summary.lists
    assert rec.data["merkle"]["rows"] == 22 and rec.data["merkle"]["leaves"] == 1
    assert rec.data["merkle"]["root"] == merkle_root(block_leaves(log, demo_job.output))
    retained = log.settings.home / rec.data["results"]["retained"]
    assert retained.is_file()
    demo_job.output.unlink()  # the user's copy may go; the retained one proves rows
    rows = list(csv.DictReader(retained.open(encoding="utf-8")))
    for n in range(1, 23):
        proof = prove(log, job, n)
        assert verify_proof(proof), n
        assert proof["root"] == rec.data["merkle"]["root"]
        assert proof["leaf"]["decision"] == rows[n - 1]["decision"]
        assert proof["record"] == {"seq": rec.seq, "hash": rec.hash}
        assert "+1" not in str(proof["leaf"]) + str(proof["block"])  # no raw number
    # a forged verdict does not prove
    proof = prove(log, job, 1)
    proof["leaf"]["decision"] = "allow" if proof["leaf"]["decision"] != "allow" else "block"
    assert not verify_proof(proof)
    assert log.verify().ok


def test_prove_refuses_altered_results(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    rec = record_job(log, job, demo_job.output, demo_job.summary)
    retained = log.settings.home / rec.data["results"]["retained"]
    text = retained.read_text(encoding="utf-8").replace(",block,", ",allow,", 1)
    retained.write_text(text, encoding="utf-8")
    with pytest.raises(AuditError, match="altered"):
        prove(log, job, 1)
    with pytest.raises(AuditError, match="no audit record"):
        prove(log, "job-nope", 1)
    shutil.rmtree(retained.parent)
    with pytest.raises(AuditError, match="gone"):
        prove(log, job, 1)


def test_prove_row_out_of_range_and_duplicate_job(log: AuditLog, demo_job: DemoJob) -> None:
    job = new_job_id()
    record_job(log, job, demo_job.output, demo_job.summary)
    with pytest.raises(AuditError, match="rows 1 to 22"):
        prove(log, job, 23)
    with pytest.raises(AuditError, match="already"):
        record_job(log, job, demo_job.output, demo_job.summary)


def test_parquet_results(log: AuditLog, demo_job: DemoJob, tmp_path: Path) -> None:
    out = tmp_path / "verdicts.parquet"
    inp = tmp_path / "demo" / "contacts.csv"
    summary = demo_job.scrubber.scrub_file(inp, out, at=demo_job.summary.dial_time)
    job = new_job_id()
    rec = record_job(log, job, out, summary)
    # same verdicts, same root as the CSV run
    assert rec.data["merkle"]["root"] == merkle_root(block_leaves(log, demo_job.output))
    assert verify_proof(prove(log, job, 7))


def test_check_record(settings: Settings, demo_job: DemoJob) -> None:
    verdict = demo_job.scrubber.check("(202) 555-0100")
    rec = record_check(settings, verdict, who="api:key-1", campaign="default")
    assert rec.kind == "check" and rec.decision == "block"
    assert rec.reason_codes == ["DNC_NATIONAL"]
    assert rec.versions["lists"]["us-ftc"] == "2026-11-10"
    assert rec.number_masked == "+1202555****" and rec.data["lists"] == ["us-ftc"]
    assert "5550100" not in str(rec.to_dict())
    bad = record_check(settings, demo_job.scrubber.check("call me"), who="api:key-1")
    assert bad.decision == "invalid" and bad.number_hmac is None and bad.data["input_hmac"]


@given(st.integers(min_value=1, max_value=70), st.data())
@hsettings(max_examples=60, deadline=None)
def test_merkle_proofs_for_any_size(n: int, data: st.DataObject) -> None:
    hashes = [leaf_hash(str(i).encode()) for i in range(n)]
    root = merkle_root(hashes)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    assert root_from_path(hashes[i], inclusion_path(hashes, i)) == root
    if n > 1:
        j = (i + 1) % n
        assert root_from_path(hashes[j], inclusion_path(hashes, i)) != root


@given(st.integers(min_value=0, max_value=300))
@hsettings(max_examples=40, deadline=None)
def test_streaming_root_equals_level_root(n: int) -> None:
    hashes = [leaf_hash(str(i).encode()) for i in range(n)]
    tree = MerkleBuilder()
    for h in hashes:
        tree.add(h)
    assert tree.root() == merkle_root(hashes) and tree.count == n


@given(st.integers(min_value=1, max_value=200), st.data())
@hsettings(max_examples=60, deadline=None)
def test_streaming_path_equals_level_path(n: int, data: st.DataObject) -> None:
    hashes = [leaf_hash(str(i).encode()) for i in range(n)]
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    path, root = streaming_path(iter(hashes), i, n)
    assert path == inclusion_path(hashes, i) and root == merkle_root(hashes)


def test_empty_merkle_root() -> None:
    assert merkle_root([]) == EMPTY_ROOT


def test_prove_with_another_key_is_refused(settings: Settings, log: AuditLog,
                                          demo_job: DemoJob) -> None:
    job = new_job_id()
    record_job(log, job, demo_job.output, demo_job.summary)
    other = make_log(settings)
    other.audit = other.audit.model_copy(update={"hmac_key": SecretStr("another-key")})
    with pytest.raises(AuditError, match="HMAC key differs"):
        prove(other, job, 1)


def test_batch_of_checks_is_one_stretch_of_the_chain(settings: Settings,
                                                     demo_job: DemoJob) -> None:
    verdicts = demo_job.scrubber.scrub(["(202) 555-0100", "202.555.0101", "12345"])
    base = audit_log(settings).head()[0]
    recs = record_checks(settings, verdicts, who="api:key-2")
    assert [r.seq for r in recs] == [base + 1, base + 2, base + 3]
    assert [r.decision for r in recs] == ["block", "allow", "invalid"]
    assert recs[1].prev_hash == recs[0].hash and recs[2].prev_hash == recs[1].hash
    assert audit_log(settings).verify().ok
