"""shared objects: the chunks of job files kept in an S3-compatible object store

Revision ID: 0006_shared_objects
Revises: 0005_shared_files
Create Date: 2026-12-02 10:50:00

With ``DNCGUARD_OBJECT_STORE_URL`` set, the chunks of job files (uploads, chunk files,
results) go to the object store under ``chunks/<sha256>``; ``shared_objects`` records which
chunks are there (dncguard.sharedfiles), the files' chunk lists stay in ``shared_files`` and
``shared_file_chunks``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_shared_objects"
down_revision: str | None = "0005_shared_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if "shared_objects" not in set(sa.inspect(op.get_bind()).get_table_names()):
        op.create_table(
            "shared_objects",
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("size", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("sha256"),
        )


def downgrade() -> None:
    op.drop_table("shared_objects")
