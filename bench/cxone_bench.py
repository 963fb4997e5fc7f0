"""CXone and http-batch benchmarks against the sandbox (not part of CI).

    python -m bench.cxone_bench [--records 200000] [--rate R] [--requests 300]

Reports:

* **sync**: records per second of a full sync of one group (pages of 1000 over loopback, into
  SQLite), and the time and request count of a re-sync with nothing changed;
* **http-batch**: the achieved rate of successful batch requests (1000 contacts each) as a
  ratio of the sandbox's configured limit (429 above it, no ``Retry-After``), and how many 429s
  the adaptive concurrency caused. Without ``--rate`` the limit is half the capacity measured
  in a first, unlimited run, so the result measures the client's control, not the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dncguard.config import load_settings
from dncguard.sandbox import SandboxConfig, run_sandbox
from dncguard.sources.cxone import CxoneClient, CxoneSettings, CxoneSync
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.remote import HttpBatchCheck, HttpBatchSettings
from dncguard.store import dispose_engines


def numbers(n: int) -> list[str]:
    out: list[str] = []
    area = 201
    while len(out) < n:
        if str(area)[1] != "9" and area % 100 != 11:
            out.extend(f"{area}555{i:04d}" for i in range(min(10_000, n - len(out))))
        area += 1
    return out


async def bench_sync(records: int) -> None:
    with tempfile.TemporaryDirectory() as home, run_sandbox(SandboxConfig(max_top=1000),
                                                             data={}) as sb:
        settings = load_settings(home=Path(home))
        gid = sb.state.add_group("Bench")
        sb.state.bulk_records(gid, numbers(records))
        cfg = sb.state.config
        key, secret = next(iter(cfg.access_keys.items()))
        cx = CxoneSettings(issuer=sb.url, client_id=cfg.client_id,
                           client_secret=cfg.client_secret, access_key_id=key,
                           access_key_secret=secret, concurrency=8, max_concurrency=8)
        async with CxoneClient(cx) as client:
            sync = CxoneSync(settings, cx, client)
            t0 = time.perf_counter()
            report = await sync.sync([str(gid)])
            full = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = await sync.sync([str(gid)])
            inc = time.perf_counter() - t0
        g = report.groups[0]
        print(f"sync: {g.fetched:,} records in {full:.2f} s = {g.fetched / full:,.0f} records/s "
              f"({report.requests} requests)")
        print(f"re-sync, nothing changed: {inc * 1000:.0f} ms, {again.requests} requests, "
              f"mode {again.groups[0].mode}")
        dispose_engines()


SERVE = """
import json, sys
from dncguard.sandbox import SandboxConfig, SandboxServer, SandboxState, default_seed
state = SandboxState(SandboxConfig(**json.loads(sys.argv[1])))
state.seed(default_seed())
server = SandboxServer(state)
print(server.url, flush=True)
server.server.run(sockets=[server.sock])
"""


async def bench_http_batch(rate: float, requests: int) -> float:
    """The sandbox runs in its own process, so client and server do not share one GIL.
    Returns the achieved rate of successful requests."""
    config = SandboxConfig(batch_rate_limit=rate, batch_burst=max(5, int(rate // 5)))
    proc = subprocess.Popen([sys.executable, "-c", SERVE, config.model_dump_json()],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        hb = HttpBatchSettings(base_url=url, token_url=f"{url}/oauth/token",
                               client_id=config.batch_client_id,
                               client_secret=config.batch_client_secret,
                               list_ids=["remote-dnc"], concurrency=4, max_concurrency=64,
                               max_attempts=12)
        check = HttpBatchCheck(hb)
        nums = [f"+1{n}" for n in numbers(requests * 1000)]
        batch = Batch.of(nums, ["US"] * len(nums), [None] * len(nums))
        t0 = time.perf_counter()
        out = await check.check(batch, CheckContext(at=datetime.now(UTC)))
        elapsed = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    stats = check.last_resilient.stats if check.last_resilient else None
    assert stats is not None
    ok = stats.requests - stats.throttled - stats.server_errors - stats.transport_errors
    errors = sum(1 for r in out if r and r[0].code == "SOURCE_ERROR")
    achieved = ok / elapsed
    print(f"http-batch: {ok} requests ({len(nums):,} numbers) in {elapsed:.1f} s = "
          f"{achieved:.1f} req/s against a limit of {rate:g} req/s: ratio {achieved / rate:.2f}; "
          f"{stats.throttled} answered 429; {errors} numbers unchecked; final concurrency "
          f"{check.limiter.limit:.1f}, paced at "
          f"{check.limiter.rate or 0:.1f} req/s")
    return achieved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=None,
                        help="Sandbox limit (default: half the measured unthrottled capacity, "
                        "so the limit, not this machine, is what binds)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(bench_sync(args.records))
    rate = args.rate
    if rate is None:
        print("http-batch capacity without a limit:")
        capacity = asyncio.run(bench_http_batch(1e9, max(50, args.requests // 3)))
        rate = max(1.0, round(capacity * 0.5))
    asyncio.run(bench_http_batch(rate, args.requests))


if __name__ == "__main__":
    main()
