"""console sessions

Revision ID: 0004_console_sessions
Revises: 0003_audit_append_indexes
Create Date: 2026-12-05 09:00:00

The web console's sessions (dncguard.server.console.sessions): one row per signed-in browser,
keyed by the SHA-256 of the cookie's random id, so every worker and replica honours a session
and sign-out ends it everywhere. A database made by ``metadata.create_all`` (with the console
module imported) may have the table already, so it is created only when missing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_console_sessions"
down_revision: str | None = "0003_audit_append_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if "console_sessions" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )


def downgrade() -> None:
    op.drop_table("console_sessions")
