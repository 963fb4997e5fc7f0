"""Audit trail benchmarks: appending check records, verifying the chain, recording a job.

    python -m bench.audit_bench chain [--records 1000000] [--batch 1000] [--postgres URL]
    python -m bench.audit_bench [VERDICTS] [--repeat 3] [--prove ROW]

``chain`` appends ``--records`` check records in one process, ``--batch`` per transaction
(what the service's group commit does with concurrent checks: each batch is encoded, then
chained and inserted under one lock), on a fresh SQLite home (or a fresh schema of
``--postgres``), and prints records/s for the encoding and for the whole append; then times
``audit verify`` over the whole chain.

Otherwise it times :func:`dncguard.audit.jobs.record_job` (and one proof) on a verdict file:

``VERDICTS`` is a file ``dncguard scrub`` wrote (default ``/tmp/a-out.csv``; its
``.summary.json`` beside it is used when present). Make a 1M-row one with::

    cd /tmp/benchfull && DNCGUARD_HOME=/tmp/ahome dncguard lists import registry-10000000.txt \\
        --kind national --name us-national --jurisdiction US --snapshot-date 2026-11-01
    DNCGUARD_HOME=/tmp/ahome DNCGUARD_RULES_ENABLED=false dncguard scrub \\
        campaign-1000000.csv -o /tmp/a-out.csv --at 2026-11-27T16:00:00Z

Each run records a new job in a fresh temporary home (results retained, as by default) and
prints the best and median wall and CPU time (the CPU time of all threads; other load on the
machine shows in the wall time); then one ``prove`` of ``--prove`` (default: the middle row)
is timed and checked. ``--jobs-module FILE`` times another version of
``dncguard/audit/jobs.py`` (for example the previous one, from ``git show
HEAD:src/dncguard/audit/jobs.py > /tmp/jobs_old.py``). Not part of CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit.settings import AuditSettings
from dncguard.config import load_settings
from dncguard.store import dispose_engines
from dncguard.summary import ScrubSummary


def _summary(verdicts: Path) -> ScrubSummary:
    side = verdicts.with_name(f"{verdicts.stem}.summary.json")
    if side.is_file():
        return ScrubSummary.model_validate_json(side.read_text(encoding="utf-8"))
    now = datetime.now(UTC)
    return ScrubSummary(started_at=now, finished_at=now, dial_time=now)  # type: ignore[call-arg]


def _jobs_module(path: Path | None) -> Any:
    if path is None:
        from dncguard.audit import jobs

        return jobs
    name = "dncguard.audit._bench_jobs"  # inside the package, so its relative imports work
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _verdicts(n: int) -> list[Any]:
    """``n`` distinct check verdicts shaped like the service's (a list hit, a rule)."""
    from dncguard.models import DataVersions, Decision, Reason, ReasonCode, Verdict

    now = datetime.now(UTC)
    versions = DataVersions(lists={"us-ftc": "2026-11-20", "internal": None},
                            ruleset="2026.11.0+50a3b49b")
    hit = [Reason(code=ReasonCode.DNC_NATIONAL, decision=Decision.BLOCK, source="local",
                  list="us-ftc", detail="number on national list us-ftc [US]")]
    return [Verdict(input=f"+1202555{i % 10_000:04d}", e164=f"+1202{200 + i % 800}{i % 10_000:04d}",
                    decision=Decision.BLOCK if i % 7 == 0 else Decision.ALLOW,
                    reasons=hit if i % 7 == 0 else [], region="US", state="DC",
                    dial_time=now, checked_at=now, versions=versions) for i in range(n)]


def chain_bench(records: int, batch: int, postgres: str | None) -> None:
    import sqlalchemy as sa

    from dncguard import audit

    schema = url = None
    if postgres:
        schema = f"bench_{new_job_id()[-8:]}"
        with sa.create_engine(postgres).begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
        url = f"{postgres}{'&' if '?' in postgres else '?'}options=-csearch_path%3D{schema}"
    try:
        with tempfile.TemporaryDirectory(prefix="audit-bench-") as home:
            settings = load_settings(home=Path(home), **({"database_url": url} if url else {}))
            log = AuditLog(settings, audit=AuditSettings(hmac_key="bench-key"))  # type: ignore[arg-type]
            audit._logs[(str(settings.home), settings.db_url, str(settings.config_file))] = log
            sample = _verdicts(min(records, 100_000))
            encode = append = 0.0
            cpu0 = time.process_time()
            done = 0
            while done < records:
                n = min(batch, records - done)
                chunk = [sample[(done + i) % len(sample)] for i in range(n)]
                t0 = time.perf_counter()
                pending = audit.check_fields(settings, chunk, who="api:bench")
                t1 = time.perf_counter()
                log.append_many(pending)
                t2 = time.perf_counter()
                encode += t1 - t0
                append += t2 - t0
                done += n
            cpu = time.process_time() - cpu0
            db = "postgresql" if postgres else "sqlite"
            print(f"append ({db}, {batch:,} per transaction): {records:,} records in "
                  f"{append:.2f} s = {records / append:,.0f} records/s "
                  f"(encoding alone {records / encode:,.0f}/s; CPU time of this process "
                  f"{cpu:.2f} s = {records / cpu:,.0f} records per CPU-second)")
            t0, c0 = time.perf_counter(), time.process_time()
            res = log.verify()
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"verify: {res.checked:,} records in {took:.2f} s = "
                  f"{res.checked / took:,.0f} records/s (CPU {cpu:.2f} s); {res.message}")
            dispose_engines()
    finally:
        if schema and postgres:
            with sa.create_engine(postgres).begin() as conn:
                conn.execute(sa.text(f'drop schema "{schema}" cascade'))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["chain"]:
        cp = argparse.ArgumentParser(description="append and verify check records")
        cp.add_argument("--records", type=int, default=1_000_000)
        cp.add_argument("--batch", type=int, default=1000)
        cp.add_argument("--postgres")
        a = cp.parse_args(argv[1:])
        chain_bench(a.records, a.batch, a.postgres)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("verdicts", nargs="?", type=Path, default=Path("/tmp/a-out.csv"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prove", type=int, default=0, help="row to prove (0: the middle one)")
    ap.add_argument("--jobs-module", type=Path, help="time this jobs.py instead")
    args = ap.parse_args(argv)
    jobs = _jobs_module(args.jobs_module)
    summary = _summary(args.verdicts)
    times: list[float] = []
    cpu: list[float] = []
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as home:
        settings = load_settings(home=Path(home))
        log = AuditLog(settings, audit=AuditSettings(hmac_key="bench-key"))  # type: ignore[arg-type]
        job = ""
        for _ in range(args.repeat):
            job = new_job_id()
            t0, c0 = time.perf_counter(), time.process_time()
            rec = jobs.record_job(log, job, args.verdicts, summary, who="bench")
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rows = int(rec.data["results"]["rows"])
        print(f"record_job: {rows:,} rows, leaf {rec.data['merkle'].get('leaf')!r}: "
              f"wall best {min(times):.3f} s, median {statistics.median(times):.3f} s; "
              f"CPU best {min(cpu):.3f} s; {len(times)} runs")
        row = args.prove or max(1, rows // 2)
        t0 = time.perf_counter()
        proof = jobs.prove(log, job, row)
        took = time.perf_counter() - t0
        print(f"prove row {row:,}: {took:.3f} s, verifies: {jobs.verify_proof(proof)}, "
              f"{len(str(proof)):,} characters")
        dispose_engines()


if __name__ == "__main__":
    main()
