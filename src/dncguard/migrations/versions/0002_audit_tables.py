"""audit tables

Revision ID: 0002_audit_tables
Revises: 0001_initial
Create Date: 2026-11-27 03:14:09

The audit trail's tables (dncguard.audit.log). Databases that ran the audit trail before
this revision already have them (the module created them itself), so each table is created
only when missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_audit_tables"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "audit_checkpoints" not in existing:
        op.create_table(
            "audit_checkpoints",
            sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.Column("at", _tz(), nullable=False),
            sa.Column("created_at", _tz(), nullable=False),
            sa.PrimaryKeyConstraint("seq"),
        )
    if "audit_head" not in existing:
        op.create_table(
            "audit_head",
            sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.Column("updated_at", _tz(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if "audit_records" not in existing:
        op.create_table(
            "audit_records",
            sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("at", _tz(), nullable=False),
            sa.Column("kind", sa.String(length=20), nullable=False),
            sa.Column("action", sa.String(length=30), nullable=False),
            sa.Column("who", sa.String(length=200), nullable=True),
            sa.Column("subject", sa.String(length=200), nullable=True),
            sa.Column("number_hmac", sa.String(length=64), nullable=True),
            sa.Column("number_masked", sa.String(length=40), nullable=True),
            sa.Column("decision", sa.String(length=20), nullable=True),
            sa.Column("reason_codes", sa.JSON(), nullable=False),
            sa.Column("versions", sa.JSON(), nullable=False),
            sa.Column("data", sa.JSON(), nullable=False),
            sa.Column("prev_hash", sa.String(length=64), nullable=False),
            sa.Column("hash", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("seq"),
        )
        with op.batch_alter_table("audit_records", schema=None) as batch_op:
            batch_op.create_index("ix_audit_records_at", ["at"], unique=False)
            batch_op.create_index("ix_audit_records_hash", ["hash"], unique=False)
            batch_op.create_index("ix_audit_records_subject", ["kind", "subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_records_subject")
        batch_op.drop_index("ix_audit_records_hash")
        batch_op.drop_index("ix_audit_records_at")
    op.drop_table("audit_records")
    op.drop_table("audit_head")
    op.drop_table("audit_checkpoints")
