"""The pre-filter in the service: job summaries, the job's audit record (what the audit export
sends) and /metrics, with CXone searched live on the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dncguard.audit import audit_log
from dncguard.config import load_settings
from dncguard.sandbox import run_sandbox

from .conftest import Server, make_key, server_env, wait_for


def test_job_summary_audit_record_and_metrics_carry_prefilter_stats(
        start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = make_key(home, "jobs", "check")
    with run_sandbox() as sb:
        env = {k: v for k, v in sb.env().items() if k.startswith("DNCGUARD_CXONE_")}
        server = start_server(server_env(
            home, **env, DNCGUARD_CXONE_STALE_POLICY="live_search",
            DNCGUARD_PREFILTER_SAMPLE_RATE="0", DNCGUARD_PREFILTER_FLUSH_SECONDS="0"))
        with server.client(key) as c:
            numbers = ["+12025550101", "+16175550105", "+13125550000"]
            jobs = []
            for _ in range(2):
                job = c.post("/v1/jobs", json=numbers, params={"at": "2026-11-19T15:00:00Z"})
                assert job.status_code == 202, job.text
                jobs.append(job.json()["id"])
                wait_for(c, jobs[-1], lambda j: j["state"] == "done")
            first = c.get(f"/v1/jobs/{jobs[0]}/summary").json()["prefilter"]["cxone"]
            assert first["checked"] == 3 and first["hits"] == 0
            second = c.get(f"/v1/jobs/{jobs[1]}/summary").json()
            assert second["byDecision"]["block"] == 2
            stats = second["prefilter"]["cxone"]
            assert stats["checked"] == 3 and stats["hits"] == 2
            assert stats["remoteCallsSaved"] == 2 and stats["ttlSeconds"] == 86400.0
            assert stats["falsePositiveRate"] is None  # nothing re-verified (sample rate 0)
            metrics = c.get("/metrics").text
            assert 'dncguard_prefilter_remote_calls_saved_total{source="cxone"} 2.0' in metrics
            assert 'dncguard_prefilter_ttl_seconds{source="cxone"} 86400.0' in metrics
    rec = audit_log(load_settings(home=home)).find("job", jobs[1])
    assert rec is not None
    assert rec.data["summary"]["prefilter"]["cxone"]["remoteCallsSaved"] == 2
