"""Benchmarks: dncguard beside baselines on the same deterministic data, in one run.

    python -m bench            # 10M-number registry, 1M-row campaign (a few minutes)
    python -m bench --quick    # 200k registry, 20k rows: a smoke run
    python -m bench --national 250000000   # also scrub against a 250M registry
    python -m bench --big-rows 10000000     # also scrub a 10M-row campaign

Baselines: (a) ``naive``: plain ``csv`` + ``phonenumbers`` per row + a Python set (pandas
would only add its own overhead), (b) DuckDB: digits-only normalisation in SQL and a
semi-join (``pip install duckdb``; skipped when missing). Each figure runs in its own process;
peak memory is that process's maximum RSS. The machine's other load shows in every figure, so
compare the ratios within one run. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AT = "2026-11-27T16:00:00Z"  # a fixed dial time (a weekday afternoon)


def run(module: str, args: list[str], env: dict[str, str] | None = None
        ) -> tuple[float, float, Any]:
    """(wall seconds, peak RSS MB, parsed JSON stdout or None) of ``python -m module args``
    in a child process (peak memory from the child's own VmHWM, see ``bench.peak``)."""
    with tempfile.NamedTemporaryFile(prefix="peak-", delete=False) as tmp:
        peak_file = Path(tmp.name)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.peak", module, *args],
                          capture_output=True,
                          env={**os.environ, **(env or {}), "BENCH_PEAK_FILE": str(peak_file)})
    wall = time.perf_counter() - t0
    out, err = proc.stdout, proc.stderr
    if proc.returncode not in (0, 3):
        sys.stderr.write(err.decode(errors="replace")[-2000:])
        raise SystemExit(f"failed ({proc.returncode}): {module} {' '.join(args)}")
    try:
        peak_mb = int(peak_file.read_text() or 0) / 1024
    except (OSError, ValueError):
        peak_mb = float("nan")
    finally:
        peak_file.unlink(missing_ok=True)
    try:
        parsed = json.loads(out.decode().strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        parsed = None
    return wall, peak_mb, parsed


def task(name: str, *args: str) -> tuple[float, float, Any]:
    return run("bench.tasks", [name, *args])


def ensure_data(folder: Path, registry: int, rows: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    reg = folder / f"registry-{registry}.txt"
    camp = folder / f"campaign-{rows}-r{registry}.csv"
    if not reg.exists() or not camp.exists():
        print(f"generating {reg.name} and {camp.name} ...", flush=True)
        run("bench.gen_data", ["--registry", str(registry), "--rows", str(rows),
                               "--out", str(folder), "--campaign-name", camp.name])
    return reg, camp


def scrub_figures(figures: dict[str, Any], table: list[tuple[str, str, str, str]], key: str,
                  camp: Path, rows: int, work: Path, env: dict[str, str],
                  label: str = "") -> None:
    """The whole ``dncguard scrub`` command, and the pipeline alone in a warm process."""
    what = f" ({label})" if label else ""
    wall, mem, _ = run("dncguard", ["scrub", str(camp), "-o", str(work / "out.csv"), "--at", AT],
                       env)
    figures[f"{key}cli_scrub"] = {"wall_s": wall, "peak_mb": mem, "rows_per_s": rows / wall}
    table.append((f"dncguard scrub (CLI, end to end){what}", f"{wall:.2f} s",
                  fmt_rate(rows / wall), f"{mem:.0f} MB peak"))
    _, mem, r = run("bench.tasks", ["scrub_inproc", str(camp), str(work / "inproc.csv"), AT], env)
    figures[f"{key}pipeline"] = {**r, "peak_mb": mem}
    table.append((f"dncguard pipeline in process{what}", f"{r['pipeline_s']:.2f} s",
                  fmt_rate(rows / r["pipeline_s"]), f"{mem:.0f} MB peak"))


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f}M/s" if x >= 1e6 else f"{x / 1e3:.1f}k/s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="200k registry, 20k rows")
    ap.add_argument("--registry", type=int, default=10_000_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--national", type=int, default=0,
                    help="also build a registry of this many numbers (e.g. 250000000)")
    ap.add_argument("--data", type=Path, default=Path("bench/.data"))
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--skip-scrub", action="store_true", help="skip the dncguard CLI runs")
    ap.add_argument("--big-rows", type=int, default=0,
                    help="also scrub a campaign of this many rows (e.g. 10000000)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.quick:
        args.registry, args.rows = 200_000, 20_000
    reg, camp = ensure_data(args.data, args.registry, args.rows)
    work = Path(tempfile.mkdtemp(prefix="dncguard-bench-", dir=args.data))
    figures: dict[str, Any] = {"registry": args.registry, "rows": args.rows,
                               "cpus": os.cpu_count(), "load": os.getloadavg()}
    table: list[tuple[str, str, str, str]] = []
    try:
        # -- snapshots ---------------------------------------------------------------------
        wall, mem, r = task("import_sorted", str(reg), str(work / "sorted"))
        figures["import_sorted"] = {**r, "wall_s": wall, "peak_mb": mem}
        sorted_file = r["file"]
        table.append(("snapshot build, sorted uint64", f"{r['build_s']:.2f} s",
                      f"{mem:.0f} MB peak", f"{r['bytes'] / 1e6:.0f} MB file"))
        wall, mem, r = task("import_bitmap", str(reg), str(work / "bitmap"))
        figures["import_bitmap"] = {**r, "wall_s": wall, "peak_mb": mem}
        bitmap_file = r["file"]
        table.append(("snapshot build, NANP bitmap", f"{r['build_s']:.2f} s",
                      f"{mem:.0f} MB peak", f"{r['bytes'] / 1e6:.0f} MB file"))
        for label, snap in (("sorted", sorted_file), ("bitmap", bitmap_file)):
            _, _, r = task("lookups", snap, sorted_file)
            figures[f"lookups_{label}"] = r
            table.append((f"lookups, {label}", f"open {r['open_s'] * 1e3:.1f} ms",
                          f"batch {fmt_rate(r['batch_per_s'])}",
                          f"single {r['single_us']:.2f} us"))
        # -- normalisation -------------------------------------------------------------------
        _, mem, r = task("normalise", str(camp))
        figures["normalise"] = r
        table.append(("normalise: table path", f"{r['arrays_s']:.2f} s",
                      fmt_rate(r["rows"] / r["arrays_s"]),
                      f"x{r['per_row_s_extrapolated'] / r['arrays_s']:.0f} vs per-row"))
        # -- dncguard end to end -------------------------------------------------------------
        # The home a real scrub has: the national registry, a state list for every state
        # whose rules require one, an internal list; rules on (the default).
        rows = args.rows
        home = work / "home"
        env = {"DNCGUARD_HOME": str(home)}
        if not args.skip_scrub:
            wall, mem, _ = run("dncguard", ["lists", "import", str(reg), "--kind", "national",
                                            "--name", "us-national", "--jurisdiction", "US",
                                            "--snapshot-date", "2026-11-01"], env)
            figures["cli_import"] = {"wall_s": wall, "peak_mb": mem}
            table.append(("dncguard lists import (CLI)", f"{wall:.2f} s", f"{mem:.0f} MB peak",
                          ""))
            _, _, r = run("bench.tasks", ["other_lists", str(reg), str(work / "lists")], env)
            figures["other_lists"] = r
            scrub_figures(figures, table, "", camp, rows, work, env)
        # -- baselines -----------------------------------------------------------------------
        if not args.skip_naive:
            wall, mem, r = task("naive", str(camp), str(reg), str(work / "naive.csv"))
            figures["naive"] = {**r, "wall_s": wall, "peak_mb": mem, "rows_per_s": rows / wall}
            table.append(("baseline (a) csv+phonenumbers+set", f"{wall:.2f} s",
                          fmt_rate(rows / wall), f"{mem:.0f} MB peak"))
        if not args.skip_duckdb:
            try:
                import duckdb  # noqa: F401
            except ImportError:
                print("duckdb is not installed: skipping baseline (b)")
            else:
                wall, mem, r = task("duckdb", str(camp), str(reg), str(work / "duck.csv"))
                figures["duckdb"] = {**r, "wall_s": wall, "peak_mb": mem,
                                     "rows_per_s": rows / wall}
                table.append(("baseline (b) DuckDB semi-join", f"{wall:.2f} s",
                              fmt_rate(rows / wall), f"{mem:.0f} MB peak"))
        if "cli_scrub" in figures:
            for name in ("naive", "duckdb"):
                if name not in figures:
                    continue
                theirs = figures[name]["wall_s"]
                cli = theirs / figures["cli_scrub"]["wall_s"]
                pipe = theirs / figures["pipeline"]["pipeline_s"]
                figures[f"ratio_vs_{name}"] = {"cli": cli, "pipeline": pipe}
                table.append((f"vs baseline {name}", f"CLI x{cli:.2f}", f"pipeline x{pipe:.2f}",
                              "(>1: dncguard faster)"))
        # -- national scale ----------------------------------------------------------------
        if args.national:
            big = args.data / f"registry-{args.national}.txt"
            if not big.exists():
                print(f"generating {big.name} ...", flush=True)
                run("bench.gen_data", ["--registry", str(args.national), "--rows", "0",
                                       "--out", str(args.data)])
            wall, mem, r = task("import_bitmap", str(big), str(work / "national"))
            figures["national_bitmap"] = {**r, "wall_s": wall, "peak_mb": mem}
            table.append((f"national {args.national / 1e6:.0f}M: bitmap build",
                          f"{r['build_s']:.1f} s", f"{mem:.0f} MB peak",
                          f"{r['bytes'] / 1e6:.0f} MB file"))
            _, _, r = task("lookups", r["file"], sorted_file)
            figures["national_lookups"] = r
            table.append((f"national {args.national / 1e6:.0f}M: lookups",
                          f"open {r['open_s'] * 1e3:.1f} ms",
                          f"batch {fmt_rate(r['batch_per_s'])}",
                          f"single {r['single_us']:.2f} us"))
            if not args.skip_scrub:
                # the same home with the 250M registry in place of the 10M one
                wall, mem, _ = run("dncguard", ["lists", "import", str(big), "--kind",
                                                "national", "--name", "us-national",
                                                "--jurisdiction", "US",
                                                "--snapshot-date", "2026-11-01"], env)
                figures["national_cli_import"] = {"wall_s": wall, "peak_mb": mem}
                table.append((f"national {args.national / 1e6:.0f}M: lists import (CLI)",
                              f"{wall:.1f} s", f"{mem:.0f} MB peak", ""))
                scrub_figures(figures, table, "national_", camp, rows, work, env,
                              label=f"{args.national / 1e6:.0f}M registry")
        if args.big_rows and not args.skip_scrub:
            _, big_camp = ensure_data(args.data, args.registry, args.big_rows)
            wall, mem, _ = run("dncguard", ["scrub", str(big_camp), "-o",
                                            str(work / "big.csv"), "--at", AT], env)
            registry = args.national or args.registry  # the national list in the home now
            figures["big_cli_scrub"] = {"rows": args.big_rows, "wall_s": wall, "peak_mb": mem,
                                        "registry": registry}
            table.append((f"dncguard scrub {args.big_rows / 1e6:.0f}M rows (CLI, "
                          f"{registry / 1e6:.0f}M registry)",
                          f"{wall:.2f} s", fmt_rate(args.big_rows / wall), f"{mem:.0f} MB peak"))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\ndncguard bench: registry {args.registry:,} numbers, campaign {args.rows:,} rows, "
          f"{os.cpu_count()} CPUs, load {figures['load'][0]:.1f}")
    width = max(len(t[0]) for t in table)
    for row in table:
        print(f"  {row[0]:<{width}}  {row[1]:>16}  {row[2]:>16}  {row[3]}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
