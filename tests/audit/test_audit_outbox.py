"""Summary export through the durable outbox to a real HTTP receiver on loopback.

No test sleeps through a backoff: the outbox's clock is moved by hand.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dncguard.audit import AuditLog, ExportWorker, new_job_id, outbox_metrics, verify_proof
from dncguard.audit._jobs import prove, record_job
from dncguard.audit.export import EXPORT_TOPIC, export_payload, outbox_for
from dncguard.config import Settings, load_settings
from dncguard.demo import build_demo
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.store import dispose_engines

from .conftest import T0, DemoJob, FakeClock, Receiver, make_log

N_JOBS = 6


def _jobs(log: AuditLog, demo: DemoJob, n: int = N_JOBS) -> list[str]:
    ids = [f"job-{i}-{new_job_id()}" for i in range(n)]
    for job in ids:
        record_job(log, job, demo.output, demo.summary, who="cli:alice")
    return ids


def _pending(log: AuditLog) -> int:
    return outbox_for(log).stats(EXPORT_TOPIC)["pending"]


def test_payload_fields(settings: Settings, demo_job: DemoJob, clock: FakeClock,
                        receiver: Receiver) -> None:
    log = make_log(settings, clock, export_url=receiver.url)
    (job,) = _jobs(log, demo_job, 1)
    rec = log.find("job", job)
    assert rec is not None
    p = export_payload(rec)
    s = demo_job.summary
    assert p["idempotencyKey"] == f"job:{job}"
    assert p["totalContacts"] == s.total_rows
    assert p["allowed"] == s.by_decision["allow"]
    assert p["suppressed"] == sum(s.by_decision[d] for d in ("block", "defer", "error"))
    assert p["suppressionRate"] == s.suppression_rate
    assert p["falsePositiveRate"] is None
    assert p["throughputPerSec"] == s.rows_per_second
    assert p["byReason"] == s.by_reason
    assert p["dataVersions"] == {"lists": s.lists, "ruleset": s.ruleset}
    assert p["timestamp"]
    worker = ExportWorker(log, outbox=outbox_for(log, clock))
    assert worker.run_once().sent == 1
    worker.close()
    assert receiver.bodies[f"job:{job}"] == p


def test_jobs_recorded_without_an_export_url_wait_for_one(
        log: AuditLog, settings: Settings, demo_job: DemoJob, clock: FakeClock,
        receiver: Receiver) -> None:
    """A job recorded by a process without ``export_url`` (a shell lacking the service's
    environment) is not lost: its export waits, and a process with the URL delivers it."""
    jobs = _jobs(log, demo_job, 2)
    assert outbox_for(log).stats(EXPORT_TOPIC) == {"pending": 2, "delivered": 0, "dead": 0}
    later = make_log(settings, clock, export_url=receiver.url)
    worker = ExportWorker(later, outbox=outbox_for(later, clock))
    assert worker.run_once().sent == 2
    worker.close()
    assert sorted(receiver.bodies) == sorted(f"job:{j}" for j in jobs)


def test_flaky_and_down_receiver_gets_everything_once(
        settings: Settings, demo_job: DemoJob, clock: FakeClock, receiver: Receiver) -> None:
    receiver.mode = "flaky"
    log = make_log(settings, clock, export_url=receiver.url, export_base_delay=30,
                   export_max_delay=600)
    jobs = _jobs(log, demo_job)
    client = httpx.Client(timeout=5)
    worker = ExportWorker(log, client=client, outbox=outbox_for(log, clock))

    # a first pass against the flaky receiver: some succeed, some fail
    first = worker.run_once()
    assert first.sent + first.failed == N_JOBS and first.failed > 0

    # the receiver goes down for a while: every attempt fails, nothing is lost
    receiver.stop()
    for _ in range(3):
        clock.advance(601)
        down = worker.run_once()
        assert down.sent == 0
    m = outbox_metrics(log, now=clock.now)
    assert m["pending"] == _pending(log) > 0 and m["failing"] == m["pending"]
    assert m["oldest_pending_age_seconds"] >= 1800 and m["dead"] == 0

    # back up (same port), still failing half its requests: retry until all delivered
    receiver.start()
    rounds = 0
    while _pending(log) and rounds < 40:
        clock.advance(601)  # past the longest backoff: everything failed is due again
        worker.run_once()
        rounds += 1
    worker.close()
    assert _pending(log) == 0, f"still pending after {rounds} rounds"
    keys = {f"job:{j}" for j in jobs}
    assert set(receiver.requests) == keys  # every record arrived at least once
    assert len(receiver.requests) > N_JOBS  # with retries and duplicates on the wire
    assert set(receiver.bodies) == keys and all(receiver.counted[k] == 1 for k in keys)
    assert outbox_metrics(log)["delivered"] == N_JOBS


def test_backlog_survives_restart(settings: Settings, demo_job: DemoJob, clock: FakeClock,
                                  receiver: Receiver) -> None:
    log = make_log(settings, clock, export_url=receiver.url)
    jobs = _jobs(log, demo_job, 3)
    dispose_engines()  # "restart": fresh engine, fresh objects, same database
    log2 = make_log(settings, clock, export_url=receiver.url)
    assert _pending(log2) == 3
    worker = ExportWorker(log2, outbox=outbox_for(log2, clock))
    assert worker.run().sent == 3
    worker.close()
    assert set(receiver.bodies) == {f"job:{j}" for j in jobs}


_CHILD = textwrap.dedent("""
    from dncguard.audit import AuditLog, ExportWorker
    from dncguard.config import load_settings
    log = AuditLog(load_settings())
    ExportWorker(log, lease=120).run(until_idle=True)
""")


def test_killed_mid_delivery_redelivers(settings: Settings, demo_job: DemoJob,
                                        receiver: Receiver, tmp_path: Path) -> None:
    receiver.mode = "hang"  # the first request is received, then never answered
    env = {**os.environ, "DNCGUARD_HOME": str(settings.home),
           "DNCGUARD_AUDIT_EXPORT_URL": receiver.url, "DNCGUARD_AUDIT_HMAC_KEY": "test-key"}
    log = make_log(settings, FakeClock(), export_url=receiver.url)
    jobs = _jobs(log, demo_job, 4)
    src = str(Path(__file__).resolve().parents[2] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    child = subprocess.Popen([sys.executable, "-c", _CHILD], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert receiver.got_request.wait(60), child.stderr.read() if child.stderr else ""
        time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    receiver.release.set()
    assert child.returncode == -signal.SIGKILL
    first_key = receiver.requests[0]
    assert first_key not in receiver.bodies  # received, never acknowledged

    # items the dead worker leased stay pending; once its lease is over, a new worker
    # (a restarted service) delivers them all
    dispose_engines()
    later = FakeClock(datetime.now(UTC) + timedelta(hours=1))  # the child used real time
    log2 = make_log(settings, later, export_url=receiver.url)
    assert _pending(log2) == 4
    receiver.mode = "ok"
    worker = ExportWorker(log2, outbox=outbox_for(log2, later))
    assert worker.run().sent == 4
    worker.close()
    keys = {f"job:{j}" for j in jobs}
    assert set(receiver.bodies) == keys and all(receiver.counted[k] == 1 for k in keys)
    assert receiver.requests.count(first_key) == 2  # sent twice, counted once
    assert _pending(log2) == 0


@pytest.mark.postgres
def test_postgres_job_export_prove_prune(postgres_url: str, tmp_path: Path,
                                         receiver: Receiver) -> None:
    settings = load_settings(home=str(tmp_path / "pg-home"), database_url=postgres_url)
    files = build_demo(ListStore(settings), tmp_path / "demo", T0.date())
    out = tmp_path / "v.csv"
    summary = Scrubber(settings, clock=lambda: T0).scrub_file(files.contacts, out, at=T0)
    clock = FakeClock()
    log = make_log(settings, clock, export_url=receiver.url, checkpoint_interval=2)
    jobs = _jobs(log, DemoJob(out, summary, Scrubber(settings)), 3)
    assert log.verify().ok
    assert verify_proof(prove(log, jobs[0], 4))
    worker = ExportWorker(log, outbox=outbox_for(log, clock))
    assert worker.run().sent == 3
    worker.close()
    assert set(receiver.bodies) == {f"job:{j}" for j in jobs}
    assert log.prune(now=clock.now + timedelta(days=2000))["deleted"] >= 2
    res = log.verify()
    assert res.ok and res.anchored_at >= 2, res.message


def test_the_export_urls_password_is_never_shown(settings: Settings, demo_job: DemoJob,
                                                 clock: FakeClock,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed delivery's error (kept in the outbox, shown by `audit outbox`) and the
    command's endpoint line mask the password of the URL's user part."""
    from dncguard.cli import run

    url = "https://exporter:hunter2@export.invalid/hook"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} (from {url})", request=request)

    log = make_log(settings, clock, export_url=url)
    _jobs(log, demo_job, 1)
    worker = ExportWorker(log, client=httpx.Client(transport=httpx.MockTransport(refuse)),
                          outbox=outbox_for(log, clock))
    assert worker.run_once().failed == 1
    worker.close()
    (item,) = outbox_for(log).items(EXPORT_TOPIC, limit=10)
    assert item.last_error and "hunter2" not in item.last_error
    assert "exporter:***@export.invalid" in item.last_error
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_URL", url)
    monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "test-key")
    assert run(["audit", "outbox"]) == 0
    out = capsys.readouterr().out
    assert "endpoint: https://exporter:***@export.invalid/hook" in out
    assert "hunter2" not in out
