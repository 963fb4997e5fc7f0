"""initial: every table that ``metadata.create_all`` made before migrations existed

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27 03:02:36

Written from ``alembic revision --autogenerate`` against an empty SQLite database, then checked
by hand. Types are portable: ``sa.JSON`` is JSON on PostgreSQL and TEXT on SQLite; datetimes
are ``timestamp with time zone`` on PostgreSQL. The tables carry no server defaults because the
code supplies every value (as ``create_all`` made them, so adopted and migrated databases are
the same).

Each table is created only when absent: a database made by ``create_all`` may hold some of these
tables but not others (each module created its own on first use); :mod:`dncguard.migrations`
checks the present ones match and this revision adds the rest. The audit tables are not here:
they come in their own revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = (
    "lists", "list_versions", "list_entries", "list_events", "outbox", "rules_consent",
    "rules_attempts", "api_keys", "server_jobs", "decision_counts",
)


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())

    # -- dncguard.store ------------------------------------------------------------------------
    if "lists" not in existing:
        op.create_table(
            "lists",
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("kind", sa.String(length=20), nullable=False),
            sa.Column("jurisdiction", sa.String(length=10), nullable=True),
            sa.Column("snapshot_date", sa.String(length=10), nullable=True),
            sa.Column("current_file", sa.Text(), nullable=True),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.Column("salt", sa.Text(), nullable=True),
            sa.Column("meta", sa.JSON(), nullable=False),
            sa.Column("created_at", _tz(), nullable=False),
            sa.Column("updated_at", _tz(), nullable=False),
            sa.Column("synced_at", _tz(), nullable=True),
            sa.PrimaryKeyConstraint("name"),
        )
    if "list_versions" not in existing:
        op.create_table(
            "list_versions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("list_name", sa.String(length=200), nullable=False),
            sa.Column("file", sa.Text(), nullable=False),
            sa.Column("snapshot_date", sa.String(length=10), nullable=True),
            sa.Column("count", sa.Integer(), nullable=False),
            sa.Column("changes", sa.Boolean(), nullable=False),
            sa.Column("source_file", sa.Text(), nullable=True),
            sa.Column("created_at", _tz(), nullable=False),
            sa.Column("created_by", sa.String(length=200), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_list_versions_list_name", "list_versions", ["list_name"])
    if "list_entries" not in existing:
        op.create_table(
            "list_entries",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("list_name", sa.String(length=200), nullable=False),
            sa.Column("value", sa.String(length=80), nullable=False),
            sa.Column("origin", sa.String(length=20), nullable=False),
            sa.Column("removed", sa.Boolean(), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("added_by", sa.String(length=200), nullable=True),
            sa.Column("added_at", _tz(), nullable=False),
            sa.Column("expires_at", _tz(), nullable=True),
            sa.Column("meta", sa.JSON(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("list_name", "value", name="uq_list_entries_value"),
        )
    if "list_events" not in existing:
        op.create_table(
            "list_events",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("at", _tz(), nullable=False),
            sa.Column("list_name", sa.String(length=200), nullable=False),
            sa.Column("action", sa.String(length=30), nullable=False),
            sa.Column("who", sa.String(length=200), nullable=True),
            sa.Column("why", sa.Text(), nullable=True),
            sa.Column("detail", sa.JSON(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_list_events_list_name", "list_events", ["list_name"])

    # -- dncguard.outbox -----------------------------------------------------------------------
    if "outbox" not in existing:
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("topic", sa.String(length=100), nullable=False),
            sa.Column("key", sa.String(length=400), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", _tz(), nullable=False),
            sa.Column("claimed_until", _tz(), nullable=True),
            sa.Column("claimed_by", sa.String(length=100), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("created_at", _tz(), nullable=False),
            sa.Column("updated_at", _tz(), nullable=False),
            sa.Column("delivered_at", _tz(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("topic", "key", name="uq_outbox_topic_key"),
        )
        op.create_index("ix_outbox_due", "outbox", ["topic", "status", "next_attempt_at"])

    # -- dncguard.sources.rules.stores --------------------------------------------------
    if "rules_consent" not in existing:
        op.create_table(
            "rules_consent",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("e164", sa.String(length=20), nullable=False),
            sa.Column("type", sa.String(length=20), nullable=False),
            sa.Column("granted", sa.Date(), nullable=False),
            sa.Column("expires", sa.Date(), nullable=True),
            sa.Column("revoked", sa.Date(), nullable=True),
            sa.Column("source", sa.String(length=300), nullable=True),
            sa.Column("created_at", _tz(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_rules_consent_e164", "rules_consent", ["e164"])
    if "rules_attempts" not in existing:
        op.create_table(
            "rules_attempts",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("e164", sa.String(length=20), nullable=False),
            sa.Column("at", _tz(), nullable=False),
            sa.Column("campaign", sa.String(length=200), nullable=False),
            sa.Column("purpose", sa.String(length=20), nullable=False),
            sa.Column("subject", sa.String(length=200), nullable=False),
            sa.Column("outcome", sa.String(length=40), nullable=True),
            sa.Column("created_at", _tz(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_rules_attempts_e164", "rules_attempts", ["e164"])

    # -- dncguard.server.tables ----------------------------------------------------------------
    if "api_keys" not in existing:
        op.create_table(
            "api_keys",
            sa.Column("id", sa.String(length=32), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("key_hash", sa.String(length=64), nullable=False),
            sa.Column("scopes", sa.JSON(), nullable=False),
            sa.Column("created_at", _tz(), nullable=False),
            sa.Column("created_by", sa.String(length=200), nullable=True),
            sa.Column("revoked_at", _tz(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    if "server_jobs" not in existing:
        op.create_table(
            "server_jobs",
            sa.Column("id", sa.String(length=32), nullable=False),
            sa.Column("state", sa.String(length=20), nullable=False),
            sa.Column("created_at", _tz(), nullable=False),
            sa.Column("updated_at", _tz(), nullable=False),
            sa.Column("finished_at", _tz(), nullable=True),
            sa.Column("created_by", sa.String(length=200), nullable=True),
            sa.Column("input_name", sa.Text(), nullable=True),
            sa.Column("input_format", sa.String(length=10), nullable=False),
            sa.Column("params", sa.JSON(), nullable=False),
            sa.Column("chunk_size", sa.Integer(), nullable=False),
            sa.Column("chunks_done", sa.Integer(), nullable=False),
            sa.Column("rows_done", sa.Integer(), nullable=False),
            sa.Column("counts", sa.JSON(), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("lease_owner", sa.String(length=64), nullable=True),
            sa.Column("lease_until", _tz(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_server_jobs_state", "server_jobs", ["state"])
    if "decision_counts" not in existing:
        op.create_table(
            "decision_counts",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("hour", _tz(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("key", sa.String(length=200), nullable=False),
            sa.Column("decision", sa.String(length=16), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("hour", "kind", "key", "decision", name="uq_decision_counts"),
        )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)  # drops the table's indexes with it
