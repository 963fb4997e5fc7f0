"""Generate the ``zip3_zones`` table of ``src/dncguard/sources/rules/data/_zones.yaml`` from the
``zipcodes`` package (already the source of ``data/zip_states.csv``).

A ZIP code's candidate zones are its ZIP3's entry in ``zip3_zones``, else every zone of its
state (``subdivision_zones``). The zones of a ZIP3 are every zone any of its ZIP codes has in
``zipcodes`` (standard, PO box, unique and retired ones alike), so a ZIP3 that a zone line
crosses gets all of them, plus the few zones of :data:`ADDED` (local practice the package does
not record), less the ZIP codes of :data:`WRONG` (zones the package gives wrongly). A zone is
written under the name the state's list gives the same local time (``zone_signature``:
``America/Indiana/Knox`` is written ``America/Chicago`` for Indiana), else under the name
``zipcodes`` gives. A ZIP3 gets an entry where its zones are not exactly its state's. A ZIP3
shared by states gets one only where its ZIP codes have the same zones in every state (834:
Idaho and Wyoming, Mountain); else (967: Hawaii and American Samoa; 969: Guam, the Northern
Mariana Islands and the Freely Associated States) each ZIP code keeps its state's zones.
Consecutive ZIP3s with the same zones (ZIP3s with no ZIP code in between) share a line.

Re-run after upgrading ``zipcodes`` or editing ``subdivision_zones``:

    python scripts/gen_zip3_zones.py

It rewrites ``_zones.yaml`` from the line ``zip3_zones:`` (the file's last table) to the end.
``tests/rules/test_zone_data.py`` fails while the shipped table differs from this output, and
checks every ZIP code's zone against the zones the engine gives it.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml
import zipcodes

from dncguard.sources.rules._zones import _valid_zone, zone_signature

ZONES_YAML = (Path(__file__).resolve().parents[1] / "src" / "dncguard" / "sources" / "rules"
              / "data" / "_zones.yaml")
MARKER = "zip3_zones:"

#: ZIP3 -> zones its ZIP codes keep that ``zipcodes`` gives none of them, and why
ADDED: dict[str, tuple[tuple[str, ...], str]] = {
    "368": (("America/New_York",),
            "Phenix City and the rest of Russell County AL are Central by law and keep Eastern "
            "time in practice (reference section 4.2, the note to area code 334)"),
    "739": (("America/Denver",),
            "Kenton OK (73946, Cimarron County) is Central by law and keeps Mountain time in "
            "practice"),
    "588": (("America/Denver",),
            "McKenzie County ND south of the Little Missouri River is Mountain (Watford City "
            "Farmer, 30 Jan 2019); its ZIP areas (Watford City 58854) follow roads, not the river"),
    "898": (("America/Denver",),
            "West Wendover NV (89883) is Mountain since 31 Oct 1999 (DOT final rule, 64 FR "
            "56705); Jackpot, Owyhee, Mountain City and Jarbidge (Elko County) keep Mountain "
            "time unofficially; zipcodes gives Elko County Pacific"),
}
#: ZIP code -> why the zone ``zipcodes`` gives it is wrong (the ZIP code is left out)
WRONG: dict[str, str] = {
    "79942": "an El Paso PO box ZIP code (city El Paso); zipcodes 3.0.0 puts it in Crockett "
             "County and gives it Central time. El Paso County is Mountain.",
}


def zip_zones() -> Iterator[tuple[str, str, str]]:
    """(ZIP code, state, zone) of every ZIP code ``zipcodes`` gives a valid zone, except the
    ZIP codes of :data:`WRONG`."""
    for z in zipcodes.list_all():
        tz = z.get("timezone") or ""
        if tz and _valid_zone(tz) and z["zip_code"] not in WRONG:
            yield z["zip_code"], z["state"], tz


def _canonical(zone: str, state_zones: Sequence[str]) -> str:
    sig = zone_signature(zone)
    return next((s for s in state_zones if zone_signature(s) == sig), zone)


def zip3_table(subdivision_zones: Mapping[str, Sequence[str]]) -> list[tuple[int, int, list[str]]]:
    """(first ZIP3, last ZIP3, zones) runs of the table."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for code, state, tz in zip_zones():
        found[code[:3]][state].add(tz)
    for zip3, (extra, _why) in ADDED.items():
        for zones in found[zip3].values():
            zones.update(extra)
    entries: dict[int, list[str]] = {}
    for zip3, by_state in found.items():
        per_state = []
        for state in sorted(by_state):
            own = list(subdivision_zones.get(state, []))
            names = {_canonical(z, own) for z in by_state[state]}
            per_state.append((own, [z for z in own if z in names] + sorted(names - set(own))))
        signatures = {frozenset(zone_signature(z) for z in zones) for _, zones in per_state}
        if len(signatures) == 1 and any(own != zones for own, zones in per_state):
            entries[int(zip3)] = per_state[0][1]
    runs: list[tuple[int, int, list[str]]] = []
    for n in sorted(entries):
        if runs and runs[-1][2] == entries[n] \
                and not any(f"{m:03d}" in found for m in range(runs[-1][1] + 1, n)):
            runs[-1] = (runs[-1][0], n, runs[-1][2])
        else:
            runs.append((n, n, entries[n]))
    return runs


def table_text(subdivision_zones: Mapping[str, Sequence[str]]) -> str:
    """The ``zip3_zones`` section of ``_zones.yaml``, from its ``zip3_zones:`` line on."""
    lines = [
        MARKER,
        f"  # generated by scripts/gen_zip3_zones.py from zipcodes {zipcodes.__version__}; do not",
        "  # edit by hand: change ADDED or WRONG in the script and re-run it",
    ]
    lines += [f'  "{a:03d}-{b:03d}": [{", ".join(zones)}]'
              for a, b, zones in zip3_table(subdivision_zones)]
    return "\n".join(lines) + "\n"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ZONES_YAML
    text = target.read_text("utf-8")
    head, marker, _ = text.partition(f"\n{MARKER}\n")
    if not marker:
        raise SystemExit(f"{target}: no line {MARKER!r}")
    subdivisions = yaml.safe_load(text)["subdivision_zones"]
    target.write_text(f"{head}\n{table_text(subdivisions)}", encoding="utf-8")
    print(f"wrote {target}: {len(zip3_table(subdivisions))} ZIP3 runs")


if __name__ == "__main__":
    main()
