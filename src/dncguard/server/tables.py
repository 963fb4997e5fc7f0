"""The service's tables, on :data:`dncguard.store.metadata` (created by the migrations in
:mod:`dncguard.migrations`, which :func:`dncguard.store.get_engine` applies on first use)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..store import metadata

api_keys_table = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # public part of the key, used for lookup
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False),  # SHA-256 hex of the whole key
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200)),
    Column("revoked_at", DateTime(timezone=True)),
)

server_jobs_table = Table(
    "server_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("state", String(20), nullable=False),  # queued running done failed cancelled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("created_by", String(200)),
    Column("input_name", Text),
    Column("input_format", String(10), nullable=False),  # csv parquet
    Column("params", JSON, nullable=False),  # dial time, campaign, defaults, phone column
    Column("chunk_size", Integer, nullable=False),
    Column("chunks_done", Integer, nullable=False, default=0),
    Column("rows_done", Integer, nullable=False, default=0),
    Column("counts", JSON, nullable=False),  # by decision, rows committed so far
    Column("error", Text),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime(timezone=True)),
    Index("ix_server_jobs_state", "state"),
)

#: One row per committed chunk of a job, written in the transaction that commits it: the rows
#: it holds, by decision, and the SHA-256 of its verdict rows (``chunks/<k>.csv``) and of its
#: summary (``chunks/<k>.json``). The results are assembled only from chunks that still match.
server_job_chunks_table = Table(
    "server_job_chunks",
    metadata,
    Column("job_id", String(32), ForeignKey("server_jobs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("chunk", Integer, primary_key=True, autoincrement=False),
    Column("rows", Integer, nullable=False),
    Column("counts", JSON, nullable=False),  # the chunk's rows by decision
    Column("sha256", String(64), nullable=False),
    Column("summary_sha256", String(64), nullable=False),
    Column("committed_at", DateTime(timezone=True), nullable=False),
)

#: How often a job was claimed since it last made progress (``attempts``: 1 for the claim of a
#: queued job, one more for each claim of a job left ``running`` by a runner that stopped, as
#: long as ``chunks_done`` is still the one counted with). A job claimed more than the runner's
#: ``max_attempts`` times without progress is failed (resumable) instead of being run again.
#: A table of its own, not a column of ``server_jobs`` (see ``0012_server_job_attempts``).
server_job_attempts_table = Table(
    "server_job_attempts",
    metadata,
    Column("job_id", String(32), ForeignKey("server_jobs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("chunks_done", Integer, nullable=False),  # the job's when the attempts were counted
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)

#: Verdicts served, counted per UTC hour: kind is decision, reason, source or state.
decision_counts_table = Table(
    "decision_counts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key", String(200), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("n", Integer, nullable=False),
    UniqueConstraint("hour", "kind", "key", "decision", name="uq_decision_counts"),
)
