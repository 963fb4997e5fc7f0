"""Write a new Alembic revision for dncguard (the ``alembic revision --autogenerate`` equivalent).

    python scripts/new_migration.py "add foo to lists"            # autogenerate vs. SQLite
    python scripts/new_migration.py "add foo" --url postgresql+psycopg://...   # vs. that database
    python scripts/new_migration.py "backfill foo" --empty        # hand-written data migration

Autogenerate compares ``dncguard.store.metadata`` (every module of ``TABLE_MODULES`` imported)
with a scratch SQLite database upgraded to the current head, or with the database given by
``--url`` (which must already be at head; it is not modified). The file lands in
``src/dncguard/migrations/versions/`` as ``<NNNN>_<slug>.py``: read it, fix it by hand (see
``docs/migrations.md``), then run ``python -m pytest -q tests/test_migrations.py``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

from alembic import command

from dncguard.migrations import SCRIPT_LOCATION, alembic_config, head_revision


def next_rev_id(message: str) -> str:
    numbers = [int(m.group(1)) for p in (SCRIPT_LOCATION / "versions").glob("*.py")
               if (m := re.match(r"(\d{4})_", p.name))]
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40] or "change"
    return f"{max(numbers, default=0) + 1:04d}_{slug}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("message", help="What the revision does (becomes its docstring)")
    parser.add_argument("--url",
                        help="Autogenerate against this database (default: scratch SQLite)")
    parser.add_argument("--empty", action="store_true", help="No autogenerate: an empty revision")
    args = parser.parse_args(argv)

    rev_id = next_rev_id(args.message)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'scratch.db'}"
        cfg = alembic_config(url)
        cfg.set_main_option("file_template", "%%(rev)s")  # the rev id carries the slug
        if not args.url:
            command.upgrade(cfg, "head")
        script = command.revision(cfg, message=args.message, autogenerate=not args.empty,
                                  rev_id=rev_id, head=head_revision())
    scripts = script if isinstance(script, list) else [script]
    for s in scripts:
        if s is not None:
            print(f"wrote {s.path}")
    print("now read it, fix it by hand, and run: python -m pytest -q tests/test_migrations.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
