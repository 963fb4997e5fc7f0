"""outbox subjects: the number of each CXone write-back item, found through an index

Revision ID: 0007_outbox_subjects
Revises: 0006_shared_objects
Create Date: 2026-12-03 09:00:00

Queuing a CXone opt-out or expiry looks up the number's newest outbox item. That lookup was a
``key LIKE '%:<number>:%'`` over every item of the topic, and the outbox is never purged.
``outbox_subjects`` (dncguard.outbox) holds one row per item that has a subject (the number,
for the write-back), written with the item, and ``ix_outbox_subjects_lookup`` (topic, subject,
item id) answers the lookup by equality, newest first. It is a table of its own, not a column
of ``outbox``, so that databases made by ``create_all`` before migrations stay adoptable (their
``outbox`` must have exactly the columns of ``0001_initial``).

Existing write-back items (topic ``cxone.push``) are backfilled. Their keys read
``<action>:<group or *>:<number>:<expiry or ->:<previous item id>`` and their payload names the
number (``e164``); the old lookup found an item for a number when its key held ``:<number>:``
and its payload named that number, so exactly those items get that number as their subject.
A database made by ``create_all`` may have the table already: it is then kept, and only the
items without a subject row are backfilled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007_outbox_subjects"
down_revision: str | None = "0006_shared_objects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOPIC = "cxone.push"
BATCH = 1000

_outbox = sa.table("outbox", sa.column("id", sa.Integer()), sa.column("topic", sa.String()),
                   sa.column("key", sa.String()), sa.column("payload", sa.JSON()))
_subjects = sa.table("outbox_subjects", sa.column("item_id", sa.Integer()),
                     sa.column("topic", sa.String()), sa.column("subject", sa.String()))


def _number(key: str, payload: Any) -> str | None:
    """The number the old lookup found this item by (None: it found it by none)."""
    e164 = payload.get("e164") if isinstance(payload, dict) else None
    if isinstance(e164, str) and 0 < len(e164) <= 100 and f":{e164}:" in key:
        return e164
    return None


def _backfill(bind: sa.Connection) -> None:
    o, s = _outbox, _subjects
    after = 0
    while True:
        rows = bind.execute(
            sa.select(o.c.id, o.c.key, o.c.payload)
            .select_from(o.outerjoin(s, s.c.item_id == o.c.id))
            .where(o.c.topic == TOPIC, o.c.id > after, s.c.item_id.is_(None))
            .order_by(o.c.id).limit(BATCH)).all()
        if not rows:
            return
        after = int(rows[-1].id)
        found = [{"item_id": r.id, "topic": TOPIC, "subject": n} for r in rows
                 if (n := _number(str(r.key), r.payload)) is not None]
        if found:
            bind.execute(sa.insert(s), found)


def upgrade() -> None:
    bind = op.get_bind()
    if "outbox_subjects" not in set(sa.inspect(bind).get_table_names()):
        op.create_table(
            "outbox_subjects",
            sa.Column("item_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("topic", sa.String(length=100), nullable=False),
            sa.Column("subject", sa.String(length=100), nullable=False),
            sa.ForeignKeyConstraint(["item_id"], ["outbox.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("item_id"),
        )
        op.create_index("ix_outbox_subjects_lookup", "outbox_subjects",
                        ["topic", "subject", "item_id"])
    _backfill(bind)


def downgrade() -> None:
    op.drop_index("ix_outbox_subjects_lookup", table_name="outbox_subjects")
    op.drop_table("outbox_subjects")
