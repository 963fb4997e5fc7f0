"""Deterministic synthetic data for benchmarks: a registry download and a campaign file.

    python -m bench.gen_data --registry 10000000 --rows 1000000 --out bench/.data

writes ``registry-<N>.txt`` (FTC-style ``NPA,NXXXXXX`` lines) and ``campaign-<M>.csv`` with
realistic formats, about 10% registry hits, 5% duplicates and 1% bad rows. Numbers are drawn
from valid US area codes and exchanges with a fixed seed, so every run sees the same data.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from dncguard.lists._files import sorted_unique
from dncguard.phones import _npa_states

SEED = 20261126


def us_area_codes() -> np.ndarray:
    return np.array(sorted(n for n, (region, _) in _npa_states().items() if region == "US"),
                    dtype=np.int64)


def random_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` ten-digit US numbers (NPA + NXX 200-999 + line)."""
    npas = us_area_codes()
    npa = npas[rng.integers(0, npas.size, n)]
    nxx = rng.integers(200, 1000, n)
    line = rng.integers(0, 10_000, n)
    return npa * 10_000_000 + nxx * 10_000 + line


def write_registry(path: Path, size: int, rng: np.random.Generator) -> np.ndarray:
    numbers = sorted_unique(random_numbers(rng, int(size * 1.02)))
    while numbers.size < size:  # large registries collide more often: draw the shortfall
        extra = random_numbers(rng, int((size - numbers.size) * 1.2) + 10)
        numbers = sorted_unique(np.concatenate([numbers, extra]))
    numbers = numbers[:size]
    rng.shuffle(numbers)
    with path.open("wb") as fh:
        for block in np.array_split(numbers, max(1, numbers.size // 1_000_000)):
            fh.write(ftc_lines(block))
    return numbers


def ftc_lines(numbers: np.ndarray) -> bytes:
    """``NPA,NXXXXXX\n`` lines for ten-digit numbers, formatted with numpy."""
    out = np.empty((numbers.size, 12), dtype=np.uint8)
    value = numbers.astype(np.int64)
    for col in (10, 9, 8, 7, 6, 5, 4, 2, 1, 0):
        out[:, col] = 48 + value % 10
        value //= 10
    out[:, 3] = ord(",")
    out[:, 11] = ord("\n")
    return out.tobytes()


def fmt(n: int, style: int) -> str:
    s = str(n)
    a, b, c = s[:3], s[3:6], s[6:]
    return [f"+1{s}", f"({a}) {b}-{c}", f"{a}-{b}-{c}", s, f"1{s}", f"{a}.{b}.{c}",
            f"+1 {a} {b} {c}"][style]


def write_campaign(path: Path, rows: int, registry: np.ndarray,
                   rng: np.random.Generator) -> None:
    hits = registry[rng.integers(0, registry.size, rows // 10)]
    fresh = random_numbers(rng, rows - hits.size)
    numbers = np.concatenate([hits, fresh])
    rng.shuffle(numbers)
    dup_at = rng.random(rows) < 0.05
    numbers[dup_at] = numbers[rng.integers(0, rows, int(dup_at.sum()))]
    styles = rng.integers(0, 7, rows)
    bad = rng.random(rows) < 0.01
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "first_name", "phone", "state"])
        for i, (n, st, b) in enumerate(zip(numbers.tolist(), styles.tolist(), bad.tolist(),
                                           strict=True)):
            phone = "12345" if b else fmt(n, st)
            w.writerow([i, f"name{i % 997}", phone, ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--registry", type=int, default=10_000_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path("bench/.data"))
    ap.add_argument("--campaign-name", help="file name of the campaign (default campaign-M.csv)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    reg = write_registry(args.out / f"registry-{args.registry}.txt", args.registry, rng)
    print(f"wrote {args.out}/registry-{args.registry}.txt")
    if args.rows:
        name = args.campaign_name or f"campaign-{args.rows}.csv"
        write_campaign(args.out / name, args.rows, reg, rng)
        print(f"wrote {args.out}/{name}")


if __name__ == "__main__":
    main()
