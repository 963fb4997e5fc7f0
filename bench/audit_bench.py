"""Audit trail benchmarks: appending check records, verifying the chain, recording a job.

    python -m bench.audit_bench chain [--records 1000000] [--batch 1000] [--postgres URL]
                                      [--repeat 3] [--no-freeze]
    python -m bench.audit_bench [VERDICTS] [--repeat 3] [--prove ROW]

``chain`` appends ``--records`` check records in one process, ``--batch`` per transaction, on
a fresh SQLite home (or a fresh schema of ``--postgres``), three ways, and prints records/s:

* ``encode``: :func:`dncguard.audit.check_fields` alone (the records of a batch of checks);
* ``append_many``: each batch encoded, then chained and inserted under one lock by
  :meth:`AuditLog.append_many` (in the caller's thread, records returned), and that append
  alone;
* ``group commit``: what the service does, into a second home: each batch encoded by this
  thread and handed to an :class:`~dncguard.audit.AuditWriter`, whose thread commits it while
  the next batch is encoded (at most four batches waiting).

Beside them, the **baseline** measured in the same run, interleaved batch by batch with
``append_many``: the same encoded rows hashed with ``hashlib`` and inserted with the plain
driver (``sqlite3`` ``executemany``, or psycopg ``COPY``) into a copy of the table (same
columns, indexes and pragmas), one commit per batch: the raw cost of the storage work, which
the figures are printed as ratios of. Then ``audit verify`` over the whole chain, ``--repeat``
times, beside the baseline of reading every stored column of the same rows in chain order
with the plain driver (20,000 rows a fetch); best and median of each. Other load on the
machine shows in every figure: compare the ratios.

The fixture (up to 100,000 verdicts, reused round robin) is frozen out of the garbage
collector (``gc.freeze()``), as a server's startup heap can be: otherwise every collection
walks it and about 40% of the encoding time is the collector's (``--no-freeze`` to see it).

Otherwise it times :func:`dncguard.audit._jobs.record_job` (and one proof) on a verdict file:

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
``dncguard/audit/_jobs.py`` (for example the previous one, from ``git show
HEAD:src/dncguard/audit/_jobs.py > /tmp/jobs_old.py``). Not part of CI.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit.settings import AuditSettings
from dncguard.config import load_settings
from dncguard.engine.summary import ScrubSummary
from dncguard.store import dispose_engines


def _summary(verdicts: Path) -> ScrubSummary:
    side = verdicts.with_name(f"{verdicts.stem}.summary.json")
    if side.is_file():
        return ScrubSummary.model_validate_json(side.read_text(encoding="utf-8"))
    now = datetime.now(UTC)
    return ScrubSummary(started_at=now, finished_at=now, dial_time=now)  # type: ignore[call-arg]


def _jobs_module(path: Path | None) -> Any:
    if path is None:
        from dncguard.audit import _jobs as jobs

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


def _raw_sqlite(db_path: Path) -> Any:
    """A plain ``sqlite3`` copy of the audit table (same DDL and indexes, same pragmas as
    :mod:`dncguard.store`) beside the benchmark's database, and an insert of prebuilt rows."""
    import sqlite3

    from dncguard.audit._chain import COLUMNS

    with sqlite3.connect(db_path) as src:
        ddl = [str(sql) for (sql,) in src.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_records' AND sql IS NOT NULL")]
    raw = sqlite3.connect(db_path.with_name("raw.db"), isolation_level=None)
    for pragma in ("journal_mode=WAL", "busy_timeout=10000", "synchronous=NORMAL"):
        raw.execute(f"PRAGMA {pragma}")
    for sql in ddl:
        raw.execute(sql)
    insert = (f"INSERT INTO audit_records ({', '.join(COLUMNS)}) "
              f"VALUES ({', '.join('?' for _ in COLUMNS)})")

    def write(rows: list[tuple[Any, ...]]) -> None:
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(insert, rows)
        raw.execute("COMMIT")

    return write


def _raw_postgres(url: str) -> Any:
    """A plain psycopg copy of the audit table (``LIKE ... INCLUDING ALL``) in the benchmark's
    schema, and a ``COPY`` of prebuilt rows."""
    import psycopg

    from dncguard.audit._chain import COLUMNS

    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    conn.execute("CREATE TABLE raw_audit_records (LIKE audit_records INCLUDING ALL)")
    conn.commit()

    def write(rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cur, cur.copy(
                f"COPY raw_audit_records ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()

    return write


class _Raw:
    """The baseline: hash prebuilt records with hashlib and insert them with the plain
    driver, continuing one chain."""

    def __init__(self, write: Any, sqlite: bool) -> None:
        self.write, self.sqlite = write, sqlite
        self.seq, self.prev = 0, "0" * 64

    def append(self, many: list[Any]) -> None:
        sha = hashlib.sha256
        rows = []
        seq, prev, sqlite = self.seq, self.prev, self.sqlite
        for p in many:
            seq += 1
            digest = sha(p.head + prev.encode() + p.tail).hexdigest()
            rows.append((seq, p.at_sqlite if sqlite else p.at, p.kind, p.action, p.who,
                         p.subject, p.number_hmac, p.number_masked, p.decision, p.reason_text,
                         p.versions_text, p.data_text, prev, digest))
            prev = digest
        self.write(rows)
        self.seq, self.prev = seq, prev


def _raw_read(engine: Any, upto: int) -> int:
    """The verify baseline: every stored column of records 1 to ``upto`` in chain order with
    the plain driver, 20,000 rows a fetch."""
    from dncguard.audit._chain import COLUMNS

    mark = "%s" if engine.dialect.name == "postgresql" else "?"
    n = 0
    with engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection
        for lo in range(0, upto, 20_000):
            cur = raw.cursor()
            cur.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_records WHERE seq > {mark} "
                        f"AND seq <= {mark} ORDER BY seq", (lo, lo + 20_000))
            n += len(cur.fetchall())
            cur.close()
    return n


def _rate(records: int, seconds: float) -> str:
    return f"{records / seconds:,.0f}/s" if seconds > 0 else "-"


def chain_bench(records: int, batch: int, postgres: str | None, repeat: int = 3,
                freeze: bool = True) -> None:
    import sqlalchemy as sa

    from dncguard import audit

    schema = url = None
    if postgres:
        schema = f"bench_{new_job_id()[-8:]}"
        with sa.create_engine(postgres).begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
            conn.execute(sa.text(f'create schema "{schema}_w"'))
        url = f"{postgres}{'&' if '?' in postgres else '?'}options=-csearch_path%3D{schema}"
    try:
        with (tempfile.TemporaryDirectory(prefix="audit-bench-") as home,
              tempfile.TemporaryDirectory(prefix="audit-bench-w-") as home_w):
            settings = load_settings(home=Path(home), **({"database_url": url} if url else {}))
            log = AuditLog(settings, audit=AuditSettings(hmac_key="bench-key"))  # type: ignore[arg-type]
            audit._logs[(str(settings.home), settings.db_url, str(settings.config_file))] = log
            raw = _Raw(_raw_postgres(url) if url else _raw_sqlite(Path(home) / "dncguard.db"),
                       sqlite=url is None)
            sample = _verdicts(min(records, 100_000))
            if freeze:  # the fixture is not the work measured: keep the GC off its objects
                gc.freeze()

            def chunk(done: int) -> list[Any]:
                n = min(batch, records - done)
                return [sample[(done + i) % len(sample)] for i in range(n)]

            encode = append = base = 0.0
            cpu0 = time.process_time()
            done = 0
            while done < records:
                verdicts = chunk(done)
                t0 = time.perf_counter()
                pending = audit.check_fields(settings, verdicts, who="api:bench")
                t1 = time.perf_counter()
                log.append_many(pending)
                t2 = time.perf_counter()
                raw.append(pending)
                t3 = time.perf_counter()
                encode += t1 - t0
                append += t2 - t1
                base += t3 - t2
                done += len(verdicts)
            cpu = time.process_time() - cpu0
            db = "postgresql" if postgres else "sqlite"
            print(f"audit append ({db}, {records:,} check records, {batch:,} per transaction)")
            print(f"  baseline (hashlib + plain driver, same rows): {_rate(records, base)}")
            print(f"  encode alone: {_rate(records, encode)}")
            print(f"  append_many alone: {_rate(records, append)} = "
                  f"{base / append:.2f} x baseline")
            print(f"  encode + append_many: {_rate(records, encode + append)} "
                  f"(CPU of the whole pass, baseline included: {cpu:.2f} s)")

            # the service's path: encode here, commit on the writer's thread meanwhile
            url_w = url.replace(f"%3D{schema}", f"%3D{schema}_w") if url and schema else None
            settings_w = load_settings(home=Path(home_w),
                                       **({"database_url": url_w} if url_w else {}))
            log_w = AuditLog(settings_w, audit=AuditSettings(hmac_key="bench-key"))  # type: ignore[arg-type]
            audit._logs[(str(settings_w.home), settings_w.db_url,
                         str(settings_w.config_file))] = log_w
            writer = audit.AuditWriter(log_w, audit.health(settings_w))
            slots = threading.Semaphore(4)
            errors: list[BaseException] = []

            def done_cb(exc: BaseException | None) -> None:
                if exc is not None:
                    errors.append(exc)
                slots.release()

            t0 = time.perf_counter()
            done = 0
            while done < records:
                verdicts = chunk(done)
                slots.acquire()
                writer.submit(audit.check_fields(settings_w, verdicts, who="api:bench"),
                              done_cb)
                done += len(verdicts)
            for _ in range(4):
                slots.acquire()
            group = time.perf_counter() - t0
            writer.stop()
            if errors:
                raise errors[0]
            print(f"  group commit (encode + AuditWriter, as the service): "
                  f"{_rate(records, group)} = {(encode + append) / group:.2f} x encode + "
                  f"append_many, {(encode + base) / group:.2f} x encode + baseline")

            walls: list[float] = []
            bases: list[float] = []
            res = None
            for _ in range(repeat):
                t0 = time.perf_counter()
                _raw_read(log.engine, records)
                bases.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                res = log.verify()
                walls.append(time.perf_counter() - t0)
            assert res is not None
            print(f"audit verify ({db}, {res.checked:,} records; {repeat} runs): "
                  f"best {min(walls):.2f} s, median {statistics.median(walls):.2f} s; "
                  f"baseline (every column read with the plain driver) best "
                  f"{min(bases):.2f} s, median {statistics.median(bases):.2f} s; "
                  f"verify / baseline {min(walls) / min(bases):.2f} (best), "
                  f"{statistics.median(walls) / statistics.median(bases):.2f} (median); "
                  f"{res.message}")
            dispose_engines()
    finally:
        if schema and postgres:
            with sa.create_engine(postgres).begin() as conn:
                conn.execute(sa.text(f'drop schema "{schema}" cascade'))
                conn.execute(sa.text(f'drop schema "{schema}_w" cascade'))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["chain"]:
        cp = argparse.ArgumentParser(description="append and verify check records")
        cp.add_argument("--records", type=int, default=1_000_000)
        cp.add_argument("--batch", type=int, default=1000)
        cp.add_argument("--postgres")
        cp.add_argument("--repeat", type=int, default=3, help="verify runs")
        cp.add_argument("--no-freeze", action="store_true",
                        help="leave the verdict fixture to the garbage collector")
        a = cp.parse_args(argv[1:])
        chain_bench(a.records, a.batch, a.postgres, a.repeat, freeze=not a.no_freeze)
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
