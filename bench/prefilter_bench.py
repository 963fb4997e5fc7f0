"""The hash pre-filter of remote sources (not part of CI).

    python -m bench.prefilter_bench [--entries 1000000] [--probes 10000000] [--quick]

Reports:

* **structural false-positive rate**: a filter of ``--entries`` salted SHA-256 keys (sized
  for them), probed with ``--probes`` numbers never inserted; the measured rate beside its
  target and their ratio, for the default target (1e-5) and for 1e-3; build and lookup rates
  and the file size;
* **remote calls saved**: a synthetic repeat-check workload over two simulated days (a fake
  clock, no sleeping): each hour a dialer re-checks ``--checks`` numbers drawn from a
  population in which ``--listed`` are on the source's list, while numbers join and leave
  the list. Calls with and without the pre-filter, for a source answering one number per
  call (CXone live search) and 1000 per call (http-batch); the false-positive rate of
  re-verified hits, the TTL it led to, and the true share of local suppressions that were
  stale (known here, unknowable in production).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dncguard.sources.remote.prefilter import (
    Prefilter,
    PrefilterSettings,
    PrefilterStore,
    key_part,
)

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def structural(entries: int, probes: int, target: float, folder: Path) -> None:
    clock = Clock()
    pf = PrefilterSettings(capacity=entries, target_fp_rate=target, flush_seconds=0)
    store = PrefilterStore(folder / f"fp-{target:g}.npz", pf, b"bench-salt", source="bench",
                           clock=clock)
    t0 = time.perf_counter()
    members = store.hasher.keys(key_part("ns", "l", f"+1{2_000_000_000 + i}")
                                for i in range(entries))
    t1 = time.perf_counter()
    store.add(members)
    t2 = time.perf_counter()
    store.flush()
    t3 = time.perf_counter()
    found, gens = store.lookup(members)
    assert (found >= 0).all(), "a false negative"
    t4 = time.perf_counter()
    false_hits = 0
    step = 1_000_000
    for start in range(0, probes, step):
        n = min(step, probes - start)
        keys = store.hasher.keys(key_part("ns", "l", f"+1{4_000_000_000 + start + i}")
                                 for i in range(n))
        false_hits += int((store.lookup(keys)[0] >= 0).sum())
    t5 = time.perf_counter()
    rate = false_hits / probes
    expected = target * probes
    print(f"  target {target:g}: {entries:,} entries in {len(gens)} generations, "
          f"file {store.path.stat().st_size / 1e6:.1f} MB")
    print(f"    measured {rate:.3g} ({false_hits:,} of {probes:,} probes; about "
          f"{expected:,.0f} +- {math.sqrt(expected):,.0f} expected at the target) -> "
          f"ratio to target {rate / target:.2f} (estimate from the bits: "
          f"{store.structural_fp():.3g})")
    print(f"    hash {entries / (t1 - t0):,.0f} keys/s, insert {entries / (t2 - t1):,.0f} keys/s, "
          f"flush {t3 - t2:.2f} s, member lookups {entries / (t4 - t3):,.0f}/s, "
          f"probes incl. hashing {probes / (t5 - t4):,.0f}/s")


def workload(population: int, listed_share: float, checks: int, hours: int,
             folder: Path, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    nums = [f"+1{3_000_000_000 + i}" for i in range(population)]
    listed = rng.random(population) < listed_share
    churn_out = 0.0005  # per hour: listed numbers leaving the list
    churn_in = 0.0005  # per hour: of the population, new opt-outs
    for per_call in (1, 1000):
        clock = Clock()
        pf = PrefilterSettings(capacity=population, flush_seconds=3600)
        store = PrefilterStore(folder / f"work-{per_call}.npz", pf, b"bench-salt",
                               source=f"per{per_call}", clock=clock)
        gate = Prefilter(f"per{per_call}", store, namespace="ns", per_call=per_call,
                         rng=random.Random(seed))
        state = listed.copy()
        calls = calls_without = sent = stale_local = 0
        t0 = time.perf_counter()
        for _ in range(hours):
            leave = state & (rng.random(population) < churn_out)
            join = ~state & (rng.random(population) < churn_in)
            state = (state & ~leave) | join
            idx = rng.choice(population, size=checks, replace=False)
            batch = [nums[i] for i in idx]
            plan = gate.plan(batch, ["l"])
            answers = {j: (["l"] if state[idx[j]] else []) for j in plan.remote}
            gate.settle(plan, answers)
            stale_local += sum(1 for j in plan.local if not state[idx[j]])
            calls += math.ceil(len(plan.remote) / per_call)
            calls_without += math.ceil(checks / per_call)
            sent += len(plan.remote)
            clock.now += 3600
        store.flush()
        elapsed = time.perf_counter() - t0
        s = gate.stats()
        label = "per-number source (CXone live search)" if per_call == 1 else \
            "http-batch (1000 per call)"
        print(f"  {label}: {hours} hourly rounds of {checks:,} checks, {listed_share:.0%} listed")
        print(f"    remote calls {calls:,} vs {calls_without:,} without the pre-filter: "
              f"{s['remoteCallsSaved']:,} saved ({s['remoteCallsSaved'] / calls_without:.1%}); "
              f"numbers sent {sent:,} of {hours * checks:,} "
              f"({s['localSuppressions']:,} answered locally)")
        stale = stale_local / s["localSuppressions"] if s["localSuppressions"] else 0.0
        print(f"    re-verified {s['reverified']:,}, false positives {s['falsePositives']:,} "
              f"(rate {s['falsePositiveRate']}); TTL now {s['ttlSeconds'] / 3600:g} h; "
              f"true stale share of local suppressions {stale:.4f}; "
              f"{s['entries']:,} entries; {elapsed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=10_000_000,
                        help="non-members probed at the default target (1e-5)")
    parser.add_argument("--population", type=int, default=200_000)
    parser.add_argument("--listed", type=float, default=0.1)
    parser.add_argument("--checks", type=int, default=50_000, help="checks per hour")
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.probes = 100_000, 1_000_000
        args.population, args.checks, args.hours = 20_000, 5_000, 24
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("structural false-positive rate (salted SHA-256 keys, numbers never inserted)")
        structural(args.entries, args.probes, 1e-5, folder)
        structural(args.entries, max(args.probes // 10, 100_000), 1e-3, folder)
        print("remote calls saved (synthetic repeat checks, fake clock)")
        workload(args.population, args.listed, args.checks, args.hours, folder)


if __name__ == "__main__":
    main()
