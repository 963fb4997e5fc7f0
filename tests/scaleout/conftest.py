"""A PostgreSQL database of its own for each scale-out test (created, then dropped)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from dncguard.store import dispose_engines

from ..conftest import PG_URL, postgres_engine
from ..server.conftest import start_server

__all__ = ["s3_env", "scaleout_db", "start_server"]


@pytest.fixture
def scaleout_db() -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test (a skip without PostgreSQL,
    a failure when DNCGUARD_TEST_REQUIRE_POSTGRES is set)."""
    url = sa.make_url(PG_URL)
    admin = postgres_engine(isolation_level="AUTOCOMMIT")
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


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    """An S3 API server on loopback (moto's: no S3-compatible server is installable here) with
    a bucket, as the environment a replica needs: DNCGUARD_OBJECT_STORE_URL and AWS_*."""
    import socket

    import httpx
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        bucket = f"jobs-{uuid.uuid4().hex[:8]}"
        # moto imports its S3 backend on the first request: seconds on a loaded machine
        assert httpx.put(f"http://127.0.0.1:{port}/{bucket}", timeout=120).status_code == 200
        yield {"DNCGUARD_OBJECT_STORE_URL": f"s3://{bucket}/dncguard",
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ALLOW_HTTP": "true",
               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
               "AWS_REGION": "us-east-1"}
    finally:
        server.stop()
