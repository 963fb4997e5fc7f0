"""Generate src/dncguard/data/nanp_zones.csv from the installed (pinned) phonenumbers.

The file gives, for every NANP area code + exchange (NPA-NXX), the time zones phonenumbers
gives its numbers, or that they depend on later digits (see
``dncguard.sources.rules._zones.NanpZones``), so a process reads them instead of finding them. Re-run
after changing the phonenumbers pin (and after ``scripts/gen_nanp_table.py``):

    python scripts/gen_nanp_zones.py

``tests/test_nanp_zones.py`` fails until the shipped file matches the installed metadata; a
process whose phonenumbers differs from the file's finds the zones itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dncguard.sources.rules import _zones as zones

OUT = Path(__file__).resolve().parents[1] / "src" / "dncguard" / "data" / zones.ZONES_FILE


def main() -> None:
    ids, tuples = zones.build_zones()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    text = zones.zones_text(ids, tuples)
    target.write_text(text, encoding="utf-8")
    per_number = int((ids == zones.PER_NUMBER).sum())
    print(f"wrote {target}: {ids.size} prefixes, {len(tuples)} zone sets, "
          f"{per_number} answered per number, {len(text.encode())} bytes")


if __name__ == "__main__":
    main()
