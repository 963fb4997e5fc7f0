"""A new job's answer says what was made (``queued``), even when a runner claims the job the
moment it commits: the docs' example answer, and a client's first poll, depend on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from dncguard.config import load_settings
from dncguard.server._jobs import JobStore
from dncguard.server.tables import server_jobs_table
from dncguard.store import get_engine, metadata


def test_a_job_claimed_as_it_commits_is_answered_as_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    settings = load_settings(home=tmp_path / "home")
    engine = get_engine(settings)
    metadata.create_all(engine)
    store = JobStore(settings, engine)
    job_id = store.new_id()
    store.folder(job_id).mkdir(parents=True)
    (store.folder(job_id) / "input.csv").write_text("phone\n2025550100\n", encoding="utf-8")

    claimed: list[str] = []

    def claim(dbapi_conn: Any, record: Any) -> None:
        """Another runner takes the job as soon as it is committed: when the connection that
        made it goes back to the pool (after its commit)."""
        if claimed or not store_made[0]:
            return
        claimed.append(job_id)
        with engine.begin() as other:
            other.execute(update(server_jobs_table).where(server_jobs_table.c.id == job_id)
                          .values(state="running"))

    store_made = [False]
    real_publish = store.publish

    def publish(conn: Any, path: Path) -> Any:  # the last step inside create's transaction
        store_made[0] = True
        return real_publish(conn, path)

    monkeypatch.setattr(store, "publish", publish)
    event.listen(engine.pool, "checkin", claim)
    try:
        job = store.create(job_id, input_name="c.csv", input_format="csv", who="api:test",
                           params={"campaign": "default", "defaults": {}})
    finally:
        event.remove(engine.pool, "checkin", claim)
    assert claimed == [job_id]
    assert job.state == "queued"
    assert store.get(job_id).state == "running"  # claimed meanwhile, as a runner would
