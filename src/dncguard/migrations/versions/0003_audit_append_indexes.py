"""audit: indexes that appends can afford

Revision ID: 0003_audit_append_indexes
Revises: 0002_audit_tables
Create Date: 2026-12-02 06:10:00

Every append wrote a page in a random place of two indexes: ``ix_audit_records_hash`` (a
random 64-character key per record) and ``ix_audit_records_subject`` (a masked number per check
record). Neither is read for checks: the hash index only served the diagnosis of a failed
verification (a scan now), and the subject index is used to find jobs and lists. The hash
index goes; the subject index covers every record but checks. (Either may be missing already
in a database adopted from ``create_all``.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_audit_append_indexes"
down_revision: str | None = "0002_audit_tables"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_CHECKS = sa.text("kind <> 'check'")


def _indexes() -> set[str]:
    return {str(ix["name"]) for ix in sa.inspect(op.get_bind()).get_indexes("audit_records")}


def upgrade() -> None:
    # A database adopted from create_all may already have the new indexes.
    existing = _indexes()
    if "ix_audit_records_hash" in existing:
        op.drop_index("ix_audit_records_hash", table_name="audit_records")
    if "ix_audit_records_subject" in existing:
        op.drop_index("ix_audit_records_subject", table_name="audit_records")
    op.create_index("ix_audit_records_subject", "audit_records", ["kind", "subject"],
                    unique=False, sqlite_where=NOT_CHECKS, postgresql_where=NOT_CHECKS)


def downgrade() -> None:
    op.drop_index("ix_audit_records_subject", table_name="audit_records")
    op.create_index("ix_audit_records_subject", "audit_records", ["kind", "subject"],
                    unique=False)
    op.create_index("ix_audit_records_hash", "audit_records", ["hash"], unique=False)
