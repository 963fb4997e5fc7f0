"""list changes: one row counting the committed list changes, for the list version token

Revision ID: 0010_list_changes
Revises: 0009_server_job_chunks
Create Date: 2026-12-05 10:00:00

The service prepares its checks once per *list version*, a token it reads once per batch of
pre-dial checks. It was made of maxima (the highest entry and event ids, the latest
``updated_at`` / ``synced_at`` of the lists) and the count of lists; on PostgreSQL an opt-out
that commits after a list change that started later has committed raises none of them, and the
other replicas kept checks that allow its number until some other list changed.
``list_changes`` holds one row (``id`` 1) whose ``n`` every transaction that writes list data
increments as its last write (``dncguard.store.count_list_change``); the token reads it first.
The row lock makes the increments one after the other, so the committed ``n`` moves with every
commit. A table of its own, not a column of ``lists``, so that databases made by
``create_all`` before migrations stay adoptable. Additive: replicas of the previous version
keep working during a rolling upgrade (their changes are not counted, and are seen by the
maxima as before). A database made by ``create_all`` may have the table already: it is then
kept, and given its row when it has none.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_list_changes"
down_revision: str | None = "0009_server_job_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "list_changes"


def upgrade() -> None:
    bind = op.get_bind()
    if TABLE not in set(sa.inspect(bind).get_table_names()):
        op.create_table(
            TABLE,
            sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("n", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    table = sa.table(TABLE, sa.column("id", sa.Integer()), sa.column("n", sa.BigInteger()))
    held = sa.select(sa.func.count()).select_from(table).where(table.c.id == 1)
    if bind.execute(held).scalar_one() == 0:
        op.bulk_insert(table, [{"id": 1, "n": 0}])


def downgrade() -> None:
    op.drop_table(TABLE)
