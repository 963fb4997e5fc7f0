"""Benchmark of the HTTP service at a fixed offered load (not run in CI).

    python -m bench.serve_bench [--rate 50] [--batch-rate 5] [--batch-size 1000]
                                [--duration 10] [--registry 1000000]

Starts, on loopback, ``dncguard serve`` (one uvicorn worker, SQLite, a national list of
``--registry`` numbers plus internal opt-outs) and a minimal FastAPI app that returns a constant
(the framework's ceiling on this machine). This process is the load generator: an open loop
that sends requests on a fixed schedule (``--rate`` a second) whatever the answers' speed, and
measures each latency from the *scheduled* send time, so a slow server cannot hide its queueing
(no coordinated omission). It reports achieved requests/s and p50/p99 latency for:

* ``constant``: the minimal FastAPI endpoint (``POST /const``, same JSON body),
* ``check``: ``POST /v1/check``,
* ``batch``: ``POST /v1/check/batch`` with ``--batch-size`` numbers (at ``--batch-rate``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

CONSTANT_APP = """
import sys
import uvicorn
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

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def us_numbers(rng: random.Random, n: int) -> list[str]:
    return [f"+1202{rng.randint(200, 999)}{rng.randint(0, 9999):04d}" for _ in range(n)]


def prepare_home(home: Path, registry: int) -> str:
    """A home with a national list and opt-outs; returns an API key."""
    from dncguard.config import load_settings
    from dncguard.lists import ListStore
    from dncguard.server.keys import KeyStore
    from dncguard.store import get_engine, metadata

    settings = load_settings(home=home)
    engine = get_engine(settings)
    metadata.create_all(engine)
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
    engine.dispose()
    return key


@dataclass
class Result:
    name: str
    offered: float
    sent: int
    ok: int
    errors: int
    achieved: float
    p50_ms: float
    p99_ms: float


async def drive(name: str, url: str, rate: float, duration: float, make_body: Any,
                headers: dict[str, str]) -> Result:
    """Open-loop load: request i is due at start + i / rate."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:
        for _ in range(5):  # warm up connections and caches
            await client.post(url, json=make_body())
        total = int(rate * duration)
        start = time.perf_counter() + 0.05

        async def one(i: int) -> None:
            nonlocal errors
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                resp = await client.post(url, json=make_body())
                if resp.status_code != 200:
                    errors += 1
                    return
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append(time.perf_counter() - due)

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies \
            else float("nan")

    return Result(name, rate, total, len(latencies), errors, len(latencies) / elapsed,
                  pct(0.50), pct(0.99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="single checks per second")
    parser.add_argument("--batch-rate", type=float, default=5.0, help="batches per second")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--registry", type=int, default=1_000_000,
                        help="numbers in the national list")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dncguard-bench-") as tmp:
        home = Path(tmp) / "home"
        print(f"preparing a home with {args.registry:,} registry numbers...", file=sys.stderr)
        key = prepare_home(home, args.registry)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DNCGUARD_")}
        env.update({"DNCGUARD_HOME": str(home), "DNCGUARD_SERVER_RATE_PER_SECOND": "1e9",
                    "DNCGUARD_SERVER_RATE_BURST": "1000000000",
                    "DNCGUARD_SERVER_BATCH_LIMIT": str(max(10_000, args.batch_size))})
        dport, cport = free_port(), free_port()
        dnc = subprocess.Popen([sys.executable, "-m", "dncguard.server", "serve", "--port",
                                str(dport), "--log-level", "warning"], env=env)
        const = subprocess.Popen([sys.executable, "-c", CONSTANT_APP, str(cport)], env=env)
        try:
            durl, curl = f"http://127.0.0.1:{dport}", f"http://127.0.0.1:{cport}"
            wait_up(durl, dnc)
            wait_up(curl, const)
            rng = random.Random(7)
            auth = {"Authorization": f"Bearer {key}"}

            def single() -> dict[str, Any]:
                return {"phone": us_numbers(rng, 1)[0]}

            def batch() -> dict[str, Any]:
                return {"phones": us_numbers(rng, args.batch_size)}

            results = [
                asyncio.run(drive("constant", f"{curl}/const", args.rate, args.duration,
                                  single, {})),
                asyncio.run(drive("check", f"{durl}/v1/check", args.rate, args.duration,
                                  single, auth)),
                asyncio.run(drive(f"batch x{args.batch_size}", f"{durl}/v1/check/batch",
                                  args.batch_rate, args.duration, batch, auth)),
            ]
        finally:
            for proc in (dnc, const):
                proc.terminate()
                proc.wait(10)
    if args.json:
        print(json.dumps([r.__dict__ for r in results], indent=2))
        return
    print(f"{'scenario':<14}{'offered/s':>10}{'achieved/s':>12}{'ok':>7}{'errors':>8}"
          f"{'p50 ms':>9}{'p99 ms':>9}")
    for r in results:
        print(f"{r.name:<14}{r.offered:>10.0f}{r.achieved:>12.1f}{r.ok:>7}{r.errors:>8}"
              f"{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}")
    print(f"(loopback, one uvicorn worker each, {os.cpu_count()} CPUs shared with the load "
          "generator; latency from the scheduled send time)")


if __name__ == "__main__":
    main()
