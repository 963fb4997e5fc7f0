"""server job chunks: each committed chunk's row count and checksums

Revision ID: 0009_server_job_chunks
Revises: 0008_attempts_subject_index
Create Date: 2026-12-04 10:00:00

A job's results are assembled from its chunk files (``chunks/<k>.csv`` and ``.json``). On
SQLite nothing recorded what a chunk held, so a chunk file emptied or a summary lost went
unnoticed and the job still ended ``done``. ``server_job_chunks`` holds one row per committed
chunk, written in the transaction that commits it: its rows, its rows by decision, and the
SHA-256 of its verdict rows and of its summary; the runner checks every chunk against it before
a job can be ``done``. It is a table of its own, not columns of ``server_jobs``, so that
databases made by ``create_all`` before migrations stay adoptable (their ``server_jobs`` must
have exactly the columns of ``0001_initial``). Chunks committed before this revision have no
row: they are checked against their own summary only. A database made by ``create_all`` may
have the table already: it is then kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_server_job_chunks"
down_revision: str | None = "0008_attempts_subject_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if "server_job_chunks" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "server_job_chunks",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("summary_sha256", sa.String(length=64), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["server_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "chunk"),
    )


def downgrade() -> None:
    op.drop_table("server_job_chunks")
