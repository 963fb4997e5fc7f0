"""shared files: list snapshots and job files in the database

Revision ID: 0005_shared_files
Revises: 0004_console_sessions
Create Date: 2026-12-02 09:30:00

Replicas that share nothing but PostgreSQL (dncguard.sharedfiles): content-addressed chunks
(``shared_chunks``), the files made of them (``shared_files``) and each file's ordered chunk
list (``shared_file_chunks``). On PostgreSQL the chunks' bytes are stored uncompressed
(``STORAGE EXTERNAL``): snapshots are dense already, and reads and writes skip the
compressor. A database made by ``metadata.create_all`` may have the tables already.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_shared_files"
down_revision: str | None = "0004_console_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    if "shared_chunks" not in existing:
        op.create_table(
            "shared_chunks",
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("size", sa.Integer(), nullable=False),
            sa.Column("data", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("sha256"),
        )
        if bind.dialect.name == "postgresql":
            op.execute("ALTER TABLE shared_chunks ALTER COLUMN data SET STORAGE EXTERNAL")
    if "shared_files" not in existing:
        op.create_table(
            "shared_files",
            sa.Column("name", sa.String(length=400), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("chunks", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )
    if "shared_file_chunks" not in existing:
        op.create_table(
            "shared_file_chunks",
            sa.Column("name", sa.String(length=400), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("chunk", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("name", "seq"),
        )
        op.create_index("ix_shared_file_chunks_chunk", "shared_file_chunks", ["chunk"])


def downgrade() -> None:
    op.drop_index("ix_shared_file_chunks_chunk", table_name="shared_file_chunks")
    op.drop_table("shared_file_chunks")
    op.drop_table("shared_files")
    op.drop_table("shared_chunks")
