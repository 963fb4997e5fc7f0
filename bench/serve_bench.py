"""Benchmark of the HTTP service against the framework's ceiling, in one run (not run in CI).

    python -m bench.serve_bench [--workers 2] [--connections 16] [--duration 10]
                                [--registry 200000] [--batch-size 10000] [--batches-alone 5]
                                [--sparse 25] [--postgres URL]

Starts on loopback, with the same server stack (uvicorn, uvloop, httptools) and the same
number of workers:

* a constant FastAPI app (``POST /const`` parses the same JSON body and returns a constant:
  the ceiling of the stack on this machine),
* ``dncguard serve`` on a fresh home (SQLite, or a fresh schema of ``--postgres``) with a
  national list of ``--registry`` numbers, internal opt-outs and the rules on.

and drives them with ``wrk`` (``apt-get install wrk``), a different number per request:
``constant``, ``healthz``, ``check`` (``POST /v1/check``); then ``--batches-alone`` batches of
``--batch-size`` numbers per ``POST /v1/check/batch`` with nothing else running; then batches
sent one after another from this process while wrk keeps sending single checks beside them
(``check+batch``); then ``--sparse`` single checks sent one at a time, 0.2-0.4 s apart, beside
batches sent one after another (a dialer's occasional check beside a batch job: the latency
of each). It prints requests/s and p50/p99,
the ratio of ``check`` to ``constant``, then the audit trail the run left: its record count
against the 2xx answers, and how long ``audit verify`` took.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

CONSTANT_APP = """
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Body(BaseModel):
    phone: str


@app.post("/const")
async def const(body: Body) -> dict[str, str]:
    return {"decision": "allow"}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
"""

# A different US number per request: each wrk thread draws from its own seeded generator.
WRK_SCRIPT = """
local counter = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(id * 7919 + os.time())
end
request = function()
  counter = counter + 1
  local body
  if wrk.path == "/healthz" then
    return wrk.format("GET", wrk.path)
  end
  body = string.format('{"phone": "+1202%03d%04d"}', math.random(200, 999),
                       math.random(0, 9999))
  return wrk.format("POST", wrk.path, wrk.headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def us_numbers(rng: random.Random, n: int) -> list[str]:
    return [f"+1202{rng.randint(200, 999)}{rng.randint(0, 9999):04d}" for _ in range(n)]


def prepare_home(home: Path, registry: int, database_url: str | None) -> str:
    """A home with a national list and opt-outs; returns an API key."""
    from dncguard.config import load_settings
    from dncguard.lists.store import ListStore
    from dncguard.server.keys import KeyStore
    from dncguard.store import dispose_engines, get_engine

    settings = load_settings(home=home, **({"database_url": database_url} if database_url
                                           else {}))
    engine = get_engine(settings)
    store = ListStore(settings, engine)
    rng = random.Random(20261127)
    path = home / "registry.txt"
    with path.open("w") as fh:
        for _ in range(registry):
            fh.write(f"202,{rng.randint(200, 999)}{rng.randint(0, 9999):04d}\n")
    store.import_file(path, kind="national", name="us-ftc", jurisdiction="US",
                      snapshot_date=date.today())
    for phone in us_numbers(rng, 200):
        store.add_number(phone, reason="bench")
    key = KeyStore(engine).create("bench", ["check"])[1]
    dispose_engines()
    return key


@dataclass
class Result:
    name: str
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int


def wrk(name: str, url: str, connections: int, duration: float, threads: int,
        headers: dict[str, str], script: Path) -> Result:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration:g}s",
           "-s", str(script), "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {out.stdout}\n{out.stderr}")
    r = json.loads(line[len("RESULT "):])
    return Result(name, r["requests"], r["requests"] / (r["duration_us"] / 1e6),
                  r["p50_us"] / 1000, r["p99_us"] / 1000, r["non2xx"], r["socket_errors"])


def batches(url: str, key: str, size: int, stop: threading.Event, out: list[float],
            errors: list[str], limit: int | None = None) -> None:
    """Send batches one after another until ``stop`` (or ``limit`` sent); record the
    latency of each answered 200, and what went wrong with the others."""
    rng = random.Random(11 if limit is None else 13)
    sent = 0
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        while not stop.is_set() and (limit is None or sent < limit):
            body = {"phones": us_numbers(rng, size)}
            sent += 1
            t0 = time.perf_counter()
            try:
                resp = client.post(f"{url}/v1/check/batch", json=body)
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            took = time.perf_counter() - t0
            if resp.status_code != 200:
                errors.append(str(resp.status_code))
            else:  # a substring test, not a parse: the 2 CPUs are the server's and wrk's
                if b'"decision":"error"' in resp.content:
                    errors.append("error verdicts")
                out.append(took)


def sparse_checks(url: str, key: str, count: int, out: list[float], errors: list[str]) -> None:
    """``count`` single checks, one at a time, 0.2-0.4 s apart: the latency (ms) of each
    answered 200, and what went wrong with the others."""
    rng = random.Random(17)
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for _ in range(count):
            time.sleep(0.2 + 0.2 * rng.random())
            t0 = time.perf_counter()
            try:
                resp = client.post(f"{url}/v1/check", json={"phone": us_numbers(rng, 1)[0]})
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)
                continue
            if resp.status_code != 200:
                errors.append(str(resp.status_code))
            else:
                out.append((time.perf_counter() - t0) * 1000)


def audit_after(home: Path, database_url: str | None) -> tuple[int, float, bool]:
    from dncguard import audit
    from dncguard.config import load_settings
    from dncguard.store import dispose_engines

    settings = load_settings(home=home, **({"database_url": database_url} if database_url
                                           else {}))
    log = audit.audit_log(settings)
    t0 = time.perf_counter()
    res = log.verify()
    took = time.perf_counter() - t0
    n = log.count()
    dispose_engines()
    return n, took, res.ok


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    ap.add_argument("--registry", type=int, default=200_000)
    ap.add_argument("--batches-alone", type=int, default=5,
                    help="batches sent with no other load, before check+batch")
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--sparse", type=int, default=25,
                    help="single checks sent one at a time beside batches (0: none)")
    ap.add_argument("--postgres", help="a PostgreSQL URL: run dncguard on a fresh schema")
    ap.add_argument("--no-rules", action="store_true",
                    help="lists only (DNCGUARD_RULES_ENABLED=false): what the rules cost")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.sparse < 0:
        ap.error("--sparse: a number of checks, 0 or more")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")

    schema = None
    database_url = None
    if args.postgres:
        import sqlalchemy as sa

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
        sep = "&" if "?" in args.postgres else "?"
        database_url = f"{args.postgres}{sep}options=-csearch_path%3D{schema}"

    with tempfile.TemporaryDirectory(prefix="dncguard-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        print(f"preparing a home with {args.registry:,} registry numbers...", file=sys.stderr)
        key = prepare_home(home, args.registry, database_url)
        (Path(tmp) / "constapp.py").write_text(CONSTANT_APP)
        script = Path(tmp) / "numbers.lua"
        script.write_text(WRK_SCRIPT)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGUARD_")}
        env.update({"DNCGUARD_HOME": str(home), "DNCGUARD_SERVER_RATE_PER_SECOND": "1e9",
                    "DNCGUARD_SERVER_RATE_BURST": "1000000000",
                    "DNCGUARD_SERVER_BATCH_LIMIT": str(max(10_000, args.batch_size))})
        if database_url:
            env["DNCGUARD_DATABASE_URL"] = database_url
        if args.no_rules:
            env["DNCGUARD_RULES_ENABLED"] = "false"
        dport, cport = free_port(), free_port()
        dnc = subprocess.Popen([sys.executable, "-m", "dncguard.server", "serve", "--port",
                                str(dport), "--workers", str(args.workers),
                                "--log-level", "warning"], env=env)
        const = subprocess.Popen([sys.executable, "-m", "uvicorn", "constapp:app",
                                  "--app-dir", tmp, "--port", str(cport), "--workers",
                                  str(args.workers), "--loop", "uvloop", "--http", "httptools",
                                  "--no-access-log", "--log-level", "warning"], env=env)
        results: list[Result] = []
        batch_times: list[float] = []
        batch_errors: list[str] = []
        alone_times: list[float] = []
        alone_errors: list[str] = []
        sparse_ms: list[float] = []
        sparse_batches: list[float] = []
        sparse_errors: list[str] = []
        sparse_batch_errors: list[str] = []
        try:
            durl, curl = f"http://127.0.0.1:{dport}", f"http://127.0.0.1:{cport}"
            wait_up(durl, dnc)
            wait_up(curl, const)
            auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            plain = {"Content-Type": "application/json"}
            c, d, t = args.connections, args.duration, args.threads
            wrk("warm-up", f"{durl}/v1/check", c, 2, t, auth, script)
            results.append(wrk("constant", f"{curl}/const", c, d, t, plain, script))
            results.append(wrk("healthz", f"{durl}/healthz", c, d, t, {}, script))
            results.append(wrk("check", f"{durl}/v1/check", c, d, t, auth, script))
            stop = threading.Event()
            batches(durl, key, args.batch_size, stop, alone_times, alone_errors,
                    limit=args.batches_alone)
            sender = threading.Thread(target=batches, args=(durl, key, args.batch_size, stop,
                                                            batch_times, batch_errors))
            sender.start()
            try:
                results.append(wrk("check+batch", f"{durl}/v1/check", c, d, t, auth, script))
            finally:
                stop.set()
                sender.join()
            if args.sparse:  # batches of their own, so the figures above keep their meaning
                stop = threading.Event()
                sender = threading.Thread(target=batches, args=(
                    durl, key, args.batch_size, stop, sparse_batches, sparse_batch_errors))
                sender.start()
                try:
                    sparse_checks(durl, key, args.sparse, sparse_ms, sparse_errors)
                finally:
                    stop.set()
                    sender.join()
        finally:
            for proc in (dnc, const):
                proc.terminate()
                proc.wait(30)
        answered = sum(r.requests - r.non2xx - r.socket_errors for r in results
                       if r.name in ("check", "check+batch"))
        records, verify_s, ok = audit_after(home, database_url)
    if schema and args.postgres:
        import sqlalchemy as sa

        with sa.create_engine(args.postgres).begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))

    const_rate = next(r.rate for r in results if r.name == "constant")
    check_rate = next(r.rate for r in results if r.name == "check")
    summary: dict[str, Any] = {
        "database": "postgresql" if args.postgres else "sqlite", "workers": args.workers,
        "connections": args.connections, "results": [r.__dict__ for r in results],
        "check_over_constant": round(check_rate / const_rate, 3),
        "batch_alone": {"size": args.batch_size, "count": len(alone_times),
                        "median_s": statistics.median(alone_times) if alone_times else None,
                        "max_s": max(alone_times) if alone_times else None,
                        "errors": alone_errors[:5]},
        "batch": {"size": args.batch_size, "count": len(batch_times),
                  "median_s": statistics.median(batch_times) if batch_times else None,
                  "max_s": max(batch_times) if batch_times else None,
                  "errors": batch_errors[:5]},
        "sparse": {"count": len(sparse_ms), "batches": len(sparse_batches),
                   "median_ms": statistics.median(sparse_ms) if sparse_ms else None,
                   "p90_ms": (sorted(sparse_ms)[int(len(sparse_ms) * 0.9)] if sparse_ms
                              else None),
                   "max_ms": max(sparse_ms) if sparse_ms else None,
                   "errors": sparse_errors[:5], "batch_errors": sparse_batch_errors[:5]},
        "audit": {"records": records, "check_answers_2xx": answered,
                  "sparse_answers": len(sparse_ms),
                  "batch_numbers": (len(alone_times) + len(batch_times)
                                    + len(sparse_batches)) * args.batch_size,
                  "verify_s": round(verify_s, 2), "intact": ok},
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{summary['database']}, rules {'off' if args.no_rules else 'on'}, "
          f"{args.workers} workers, {args.connections} connections, "
          f"{args.duration:g} s per scenario, {os.cpu_count()} CPUs shared with wrk")
    print(f"{'scenario':<14}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'sock err':>9}")
    for r in results:
        print(f"{r.name:<14}{r.rate:>10.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.non2xx:>9}"
              f"{r.socket_errors:>9}")
    print(f"check / constant: {summary['check_over_constant']:.2f} (target >= 0.5)")
    b = summary["batch_alone"]
    if b["count"]:
        print(f"batch of {args.batch_size:,}: {b['count']} sent alone, one after another, "
              f"median {b['median_s']:.3f} s, max {b['max_s']:.3f} s (target <= 1 s)"
              + (f"; errors: {b['errors']}" if b["errors"] else ""))
    elif b["errors"]:
        print(f"batch of {args.batch_size:,}, sent alone: no answer; errors: {b['errors']}")
    b = summary["batch"]
    if b["count"]:
        print(f"batch of {args.batch_size:,}: {b['count']} sent beside the single checks, "
              f"median {b['median_s']:.3f} s, max {b['max_s']:.3f} s (target <= 1 s)"
              + (f"; errors: {b['errors']}" if b["errors"] else ""))
    sp = summary["sparse"]
    if sp["count"] or sp["errors"] or sp["batch_errors"]:
        print(f"single checks one at a time, 0.2-0.4 s apart, beside {sp['batches']} more "
              f"batches: {sp['count']} answered, "
              + (f"median {sp['median_ms']:.1f} ms, p90 {sp['p90_ms']:.1f} ms, max "
                 f"{sp['max_ms']:.1f} ms" if sp["count"] else "none")
              + (f"; errors: {sp['errors']}" if sp["errors"] else "")
              + (f"; batch errors: {sp['batch_errors']}" if sp["batch_errors"] else ""))
    a = summary["audit"]
    print(f"audit: {a['records']:,} records for {a['check_answers_2xx']:,} single checks "
          f"answered 2xx (+ warm-up), {a['sparse_answers']} sent one at a time and "
          f"{a['batch_numbers']:,} batch numbers; verify {a['verify_s']} s, intact: "
          f"{a['intact']}")


if __name__ == "__main__":
    main()
