"""One measured task per process: ``python -m bench.tasks NAME ARGS...`` prints a JSON object.

``bench.__main__`` runs each task in its own process and reads the process's peak memory with
``os.wait4``, so every figure's memory is that task's alone.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BASE = 10_000_000_000


def import_sorted(registry: str, folder: str) -> dict[str, Any]:
    from dncguard.lists import _files as listfiles
    from dncguard.lists import snapshots

    t0 = time.perf_counter()
    values, report = listfiles.read_numbers(Path(registry), jurisdiction="US",
                                            default_region="US")
    t1 = time.perf_counter()
    name = snapshots.write_snapshot(Path(folder), values, layout="sorted")
    t2 = time.perf_counter()
    return {"parse_s": t1 - t0, "write_s": t2 - t1, "build_s": t2 - t0, "count": int(values.size),
            "file": str(Path(folder) / name), "bytes": (Path(folder) / name).stat().st_size}


def import_bitmap(registry: str, folder: str) -> dict[str, Any]:
    from dncguard.lists import _files as listfiles
    from dncguard.lists import snapshots

    t0 = time.perf_counter()
    report = listfiles.ParseReport()
    chunks = listfiles.iter_numbers(Path(registry), jurisdiction="US", default_region="US",
                                    report=report)
    name, count = snapshots.build_nanp_bitmap(Path(folder), chunks)
    t1 = time.perf_counter()
    return {"build_s": t1 - t0, "count": count, "file": str(Path(folder) / name),
            "bytes": (Path(folder) / name).stat().st_size}


def lookups(snapshot: str, sorted_snapshot: str) -> dict[str, Any]:
    from dncguard.lists import snapshots

    t0 = time.perf_counter()
    snap = snapshots.open_snapshot(Path(snapshot))
    open_s = time.perf_counter() - t0
    values = snapshots.open_snapshot(Path(sorted_snapshot))
    rng = np.random.default_rng(5)
    n = 1_000_000
    hits = values[rng.integers(0, values.size, n // 10)]
    misses = (BASE + rng.integers(2_000_000_000, BASE, n - hits.size)).astype(np.uint64)
    needles = np.concatenate([hits, misses]).astype(np.uint64)
    rng.shuffle(needles)
    snapshots.sorted_contains(snap, needles)  # warm the page cache
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        found = snapshots.sorted_contains(snap, needles)
        best = min(best, time.perf_counter() - t)
    singles = needles[:50_000].tolist()
    one = snapshots.single_lookup(snap)
    t = time.perf_counter()
    for x in singles:
        one(x)
    single = (time.perf_counter() - t) / len(singles)
    return {"open_s": open_s, "batch_per_s": n / best, "single_us": single * 1e6,
            "hits": int(found.sum())}


def normalise(campaign: str) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from dncguard import phones

    table = pacsv.read_csv(campaign, convert_options=pacsv.ConvertOptions(
        column_types={"phone": pa.string()}))
    raws = table.column("phone").combine_chunks()
    t = time.perf_counter()
    out = phones.normalise_arrays(raws, "US")
    arrays_s = time.perf_counter() - t
    sample = raws.to_pylist()[:30_000]
    phones._normalise_cached.cache_clear()
    t = time.perf_counter()
    for r in sample:
        phones.normalise(r, "US")
    per_row_s = (time.perf_counter() - t) / len(sample) * len(raws)
    return {"rows": len(raws), "arrays_s": arrays_s, "per_row_s_extrapolated": per_row_s,
            "per_row_rows": out.parsed_per_row}


def naive(campaign: str, registry: str, output: str) -> dict[str, Any]:
    """Baseline (a): plain csv + phonenumbers per row + a Python set of E.164 strings."""
    import phonenumbers

    t0 = time.perf_counter()
    reg: set[str] = set()
    with open(registry) as fh:
        for line in fh:
            npa, _, rest = line.strip().partition(",")
            reg.add(f"+1{npa}{rest}")
    t1 = time.perf_counter()
    seen: set[str] = set()
    rows = 0
    with open(campaign, newline="") as fin, open(output, "w", newline="") as fout:
        reader = csv.reader(fin)
        writer = csv.writer(fout)
        header = next(reader)
        phone = header.index("phone")
        writer.writerow([*header, "e164", "decision"])
        for row in reader:
            rows += 1
            e164, decision = "", "invalid"
            try:
                num = phonenumbers.parse(row[phone], "US")
                if phonenumbers.is_valid_number(num):
                    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
                    decision = "block" if e164 in reg else "allow"
            except phonenumbers.NumberParseException:
                pass
            if e164:
                seen.add(e164)
            writer.writerow([*row, e164, decision])
    t2 = time.perf_counter()
    return {"rows": rows, "load_s": t1 - t0, "scrub_s": t2 - t1, "total_s": t2 - t0}


def duck(campaign: str, registry: str, output: str) -> dict[str, Any]:
    """Baseline (b): DuckDB, digits-only normalisation in SQL and a semi-join."""
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE reg AS SELECT DISTINCT (npa * 10000000 + line + 10000000000)::BIGINT AS n
        FROM read_csv('{registry}', header=false, columns={{'npa': 'BIGINT', 'line': 'BIGINT'}})
    """)
    t1 = time.perf_counter()
    con.execute(f"""
        COPY (
          WITH c AS (
            SELECT *, row_number() OVER () AS rn,
                   regexp_replace(phone, '[^0-9]', '', 'g') AS dig
            FROM read_csv('{campaign}', all_varchar=true, header=true)
          ), n AS (
            SELECT *, CASE
                WHEN length(dig) = 10 THEN 10000000000 + dig::BIGINT
                WHEN length(dig) = 11 AND dig[1] = '1' THEN dig::BIGINT END AS e
            FROM c
          ), v AS (
            SELECT *, CASE WHEN e IS NOT NULL AND (e // 10000000) % 1000 >= 200
                                AND (e // 10000) % 1000 >= 200 THEN e END AS e164
            FROM n
          )
          SELECT id, first_name, phone, state,
                 CASE WHEN e164 IS NULL THEN '' ELSE '+' || e164::VARCHAR END AS e164,
                 CASE WHEN e164 IS NULL THEN 'invalid'
                      WHEN e164 IN (SELECT n FROM reg) THEN 'block' ELSE 'allow' END
                      AS decision
          FROM v ORDER BY rn
        ) TO '{output}' (HEADER, DELIMITER ',')
    """)
    t2 = time.perf_counter()
    return {"load_s": t1 - t0, "scrub_s": t2 - t1, "total_s": t2 - t0,
            "version": duckdb.__version__}


def other_lists(registry: str, folder: str) -> dict[str, Any]:
    """The lists beside the national registry that a real scrub reads (not timed): a state
    list for every state whose rules require one (a tenth of the registry's numbers in that
    state's area codes) and a 100k-number internal list. Imported into ``DNCGUARD_HOME``."""
    from datetime import date

    from dncguard.config import load_settings
    from dncguard.lists.store import ListStore
    from dncguard.phones import _npa_states
    from dncguard.sources.rules import load_ruleset
    from dncguard.sources.rules.schema import RegistryRule

    store = ListStore(load_settings())
    ruleset = load_ruleset()
    states = sorted({j for j, rule in ruleset.of_kind(RegistryRule, ruleset.files)
                     if j.startswith("US-") and rule.list_kind == "state"})
    numbers = np.loadtxt(registry, delimiter=",", dtype=np.int64, max_rows=2_000_000)
    e164 = BASE + numbers[:, 0] * 10_000_000 + numbers[:, 1]
    npa_state = _npa_states()
    by_npa = np.array([npa_state.get(int(n), ("", ""))[1] for n in range(1000)], dtype=object)
    where = by_npa[numbers[:, 0]]
    out: dict[str, Any] = {}
    for jur in states:
        picked = e164[where == jur[3:]][::10]
        path = Path(folder) / f"{jur}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, picked, fmt="+%d")
        store.import_file(path, kind="state", name=f"state-{jur[3:].lower()}", jurisdiction=jur,
                          snapshot_date=date(2026, 11, 1))
        out[jur] = int(picked.size)
    rng = np.random.default_rng(11)
    internal = Path(folder) / "internal.txt"
    np.savetxt(internal, BASE + rng.integers(2_000_000_000, BASE, 100_000), fmt="+%d")
    store.import_file(internal, kind="internal", name="internal")
    return {"state_lists": out, "internal": 100_000}


def scrub_inproc(campaign: str, output: str, at: str) -> dict[str, Any]:
    """The pipeline alone: ``Scrubber.scrub_file`` in a process whose checks are loaded and
    warm (one run before the timed one), as a library user or the service runs it, without
    the audit record (which the CLI figure includes)."""
    from datetime import datetime

    from dncguard.engine.scrubber import Scrubber

    scrubber = Scrubber(audit=False)
    when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    scrubber.scrub_file(Path(campaign), Path(output), at=when)
    t = time.perf_counter()
    summary = scrubber.scrub_file(Path(campaign), Path(output), at=when)
    return {"pipeline_s": time.perf_counter() - t, "rows": summary.total_rows,
            "blocked": summary.by_decision.get("block", 0)}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "import_sorted": import_sorted, "import_bitmap": import_bitmap, "lookups": lookups,
    "normalise": normalise, "naive": naive, "duckdb": duck, "other_lists": other_lists,
    "scrub_inproc": scrub_inproc,
}


if __name__ == "__main__":
    result = TASKS[sys.argv[1]](*sys.argv[2:])
    print(json.dumps(result))
