"""attempts by subject: an index on (subject, at) of the attempt log

Revision ID: 0008_attempts_subject_index
Revises: 0007_outbox_subjects
Create Date: 2026-12-03 18:30:00

Frequency caps on a subject the row names (a debt, an offer) count the attempts on that
subject to any of the holder's numbers (Reg F, 12 CFR 1006.14(b)(2), counts calls about a
debt), not only those to the number checked. ``ix_rules_attempts_subject_at`` answers that
look-up (subject, then the window's start) without reading the whole log. A database made by
``create_all`` may have the index already: it is then kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_attempts_subject_index"
down_revision: str | None = "0007_outbox_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "rules_attempts"
INDEX = "ix_rules_attempts_subject_at"


def _has_index() -> bool:
    inspector = sa.inspect(op.get_bind())
    if TABLE not in inspector.get_table_names():
        return False
    return INDEX in {i["name"] for i in inspector.get_indexes(TABLE)}


def upgrade() -> None:
    if not _has_index():
        op.create_index(INDEX, TABLE, ["subject", "at"], unique=False)


def downgrade() -> None:
    if _has_index():
        op.drop_index(INDEX, table_name=TABLE)
