"""Generate src/dncguard/data/nanp_table.csv from the installed (pinned) phonenumbers.

The table gives, for every NANP area code + exchange (NPA-NXX), whether phonenumbers calls
the numbers in that block valid and in which region, or that the block needs the per-row
parser (see ``dncguard.nanp``). Re-run after changing the phonenumbers pin:

    python scripts/gen_nanp_table.py

``tests/test_nanp_table.py`` fails until the shipped table matches the installed metadata.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dncguard import nanp

OUT = Path(__file__).resolve().parents[1] / "src" / "dncguard" / "data" / nanp.TABLE_FILE


def main() -> None:
    codes, regions = nanp.build_table()
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    target.write_text(nanp.table_text(codes, regions), encoding="utf-8")
    fallback = int((codes == nanp.FALLBACK).sum())
    print(f"wrote {target}: {codes.size} prefixes, {fallback} left to the per-row parser")


if __name__ == "__main__":
    main()
