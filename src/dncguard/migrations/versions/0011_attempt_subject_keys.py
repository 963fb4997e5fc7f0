"""attempt subjects as compared: spaces around removed, lower case

Revision ID: 0011_attempt_subject_keys
Revises: 0010_list_changes
Create Date: 2026-12-04 04:30:00

Frequency caps count the attempts on one subject (a debt, an offer). Subjects were stored as
written (`` DEBT-42``) but compared stripped, and case-sensitively, so one debt's attempts
written two ways were counted apart, and a debt's attempts to the holder's other numbers,
found through ``ix_rules_attempts_subject_at``, were missed. dncguard now stores every subject
as ``dncguard.sources.rules.stores.subject_key`` gives it (spaces around removed, lower case)
and campaigns with spaces around removed. This revision rewrites the rows written before, one
distinct value at a time (Python's ``str.lower``, as the store uses: SQL ``lower()`` is ASCII
only on SQLite). Data only; nothing to undo on downgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_attempt_subject_keys"
down_revision: str | None = "0010_list_changes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "rules_attempts"


def upgrade() -> None:
    bind = op.get_bind()
    if TABLE not in sa.inspect(bind).get_table_names():
        return  # made, already right, when the rules first run
    t = sa.table(TABLE, sa.column("subject", sa.String()), sa.column("campaign", sa.String()))
    for column in ("subject", "campaign"):
        col = t.c[column]
        for (value,) in bind.execute(sa.select(col).distinct()).all():
            keyed = _keyed(column, value)
            if keyed and keyed != value and len(keyed) <= 200:  # the column's length
                bind.execute(sa.update(t).where(col == value).values({column: keyed}))


def _keyed(column: str, value: str | None) -> str | None:
    """A stored value as the store writes it now (None: leave it; one that would not fit the
    column, as ``İ`` lengthened by lower case, is left as written too)."""
    if value is None:
        return None
    return value.strip().lower() if column == "subject" else value.strip()


def downgrade() -> None:
    pass  # the old values are not kept; the keys compare the same under the old code
