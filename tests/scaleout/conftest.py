"""A PostgreSQL database of its own for each scale-out test (created, then dropped)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dncguard.store import dispose_engines

from ..conftest import PG_URL
from ..server.conftest import start_server

__all__ = ["scaleout_db", "start_server"]


@pytest.fixture
def scaleout_db() -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test (a skip without PostgreSQL,
    a failure when DNCGUARD_REQUIRE_POSTGRES is set)."""
    import os

    url = sa.make_url(PG_URL)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        message = f"no PostgreSQL answers at {PG_URL}: {type(exc).__name__}"
        if os.environ.get("DNCGUARD_REQUIRE_POSTGRES"):
            pytest.fail(message + " (DNCGUARD_REQUIRE_POSTGRES is set)")
        pytest.skip(message)
    name = f"dncguard_scaleout_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()
