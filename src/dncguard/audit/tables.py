"""The audit trail's tables (the hash chain's records, its head and checkpoints)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    text,
)

from ..store import metadata

GENESIS = "0" * 64
#: The partial index on (kind, subject) covers these records; queries repeat the term.
NOT_CHECKS = text("kind <> 'check'")

audit_records_table = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(20), nullable=False),  # check | job | list | prune
    Column("action", String(30), nullable=False),
    Column("who", String(200)),
    Column("subject", String(200)),  # job id, list name, or the masked number
    Column("number_hmac", String(64)),  # HMAC-SHA256 of the E.164 number, never the number
    Column("number_masked", String(40)),
    Column("decision", String(20)),
    Column("reason_codes", JSON, nullable=False),
    Column("versions", JSON, nullable=False),
    Column("data", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_records_at", "at"),
    # Jobs and lists are found by subject; checks (most records, subject = a masked number)
    # are not, and indexing them cost each append a page write in a random place of the
    # index (migration 0003). No index on hash: only a failed verification looks one up.
    Index("ix_audit_records_subject", "kind", "subject", sqlite_where=NOT_CHECKS,
          postgresql_where=NOT_CHECKS),
)

audit_head_table = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

audit_checkpoints_table = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),  # hash of the record at seq
    Column("at", DateTime(timezone=True), nullable=False),  # that record's time
    Column("created_at", DateTime(timezone=True), nullable=False),
)

AUDIT_TABLES = [audit_records_table, audit_head_table, audit_checkpoints_table]


__all__ = ["AUDIT_TABLES", "GENESIS", "NOT_CHECKS", "audit_checkpoints_table",
           "audit_head_table", "audit_records_table"]
