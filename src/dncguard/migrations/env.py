"""Alembic environment for dncguard, run programmatically (see :mod:`dncguard.migrations`).

``target_metadata`` is :data:`dncguard.store.metadata` after importing every module listed in
:data:`dncguard.migrations.TABLE_MODULES`, so autogenerate sees every table. The connection normally
comes from :func:`dncguard.migrations.upgrade` (``config.attributes["connection"]``), which holds
the migration lock around it; without one, an engine is made from ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from dncguard.migrations import load_table_modules
from dncguard.store import metadata

config = context.config
load_table_modules()
target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=config.attributes.get("include_object"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
