"""server job attempts: how often a job was claimed without making progress

Revision ID: 0012_server_job_attempts
Revises: 0011_attempt_subject_keys
Create Date: 2026-12-08 10:00:00

A job whose run stops its runner the same way on every claim (a kill -9 mid-run, an exception
that escapes the runner) was claimed again each time its lease ran out, forever.
``server_job_attempts`` holds one row per claimed job: the claims since the job last committed
a chunk (``attempts``), the ``chunks_done`` they were counted at, and the last claim's time. A
runner fails a job claimed more than its ``max_attempts`` times without progress, with a reason
naming the attempts; ``POST /v1/jobs/{id}/resume`` queues it again (a claim of a queued job
counts from 1). It is a table of its own, not a column of ``server_jobs``, so that databases
made by ``create_all`` before migrations stay adoptable (their ``server_jobs`` must have exactly
the columns of ``0001_initial``). Additive, so rolling-safe: replicas of the previous version
neither read nor write it (their claims are not counted). A database made by ``create_all``
may have the table already: it is then kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_server_job_attempts"
down_revision: str | None = "0011_attempt_subject_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if "server_job_attempts" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "server_job_attempts",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("chunks_done", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["server_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("server_job_attempts")
