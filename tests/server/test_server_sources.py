"""Readiness and metrics for remote sources: a CXone group past its maximum sync age makes
the replica not ready; retries and the audit outbox backlog are on /metrics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.store import lists_table, utcnow

from .conftest import Server, make_key, server_env


def test_stale_cxone_group_makes_the_replica_not_ready(
        tmp_path: Path, start_server: Callable[..., Server]) -> None:
    home = tmp_path / "home"
    admin = make_key(home, "admin")
    store = ListStore(load_settings(home=home))
    store.ensure("cxone:364", "cxone", meta={"group_id": "364", "active": True})
    store.ensure("cxone:366", "cxone", meta={"group_id": "366", "active": False})
    with store.engine.begin() as conn:  # synced 30 hours ago; the default limit is 24 h
        conn.execute(lists_table.update().where(lists_table.c.name == "cxone:364")
                     .values(synced_at=utcnow() - timedelta(hours=30)))
    server = start_server(server_env(home))
    with server.client(admin) as c:
        ready = c.get("/readyz")
        assert ready.status_code == 503
        reasons = ready.json()["reasons"]
        assert any("cxone:364" in r and "dncguard cxone sync" in r for r in reasons)
        assert not any("cxone:366" in r for r in reasons)  # inactive groups do not block
        metrics = c.get("/metrics").text
        assert "dncguard_remote_retries" in metrics
        assert 'dncguard_audit_outbox{what="pending"}' in metrics
    with store.engine.begin() as conn:
        conn.execute(lists_table.update().where(lists_table.c.name == "cxone:364")
                     .values(synced_at=utcnow()))
    with server.client(admin) as c:
        assert c.get("/readyz").status_code == 200
