"""Time :func:`dncguard.audit.jobs.record_job` (and one proof) on a verdict file.

    python -m bench.audit_bench [VERDICTS] [--repeat 3] [--prove ROW]

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


def main(argv: list[str] | None = None) -> None:
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
