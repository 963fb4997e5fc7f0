"""``dncguard audit ...`` and ``dncguard report`` refuse what they cannot honour (exit 2, one
line naming the flag or setting) and say when a delivery failed (exit 3, ``--json`` alone on
stdout); through the real command line (:func:`dncguard.cli.run`)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit._jobs import record_job
from dncguard.audit.export import EXPORT_TOPIC, outbox_for
from dncguard.audit.settings import AuditSettings
from dncguard.config import Settings
from dncguard.errors import InputError
from dncguard.outbox import DEAD, PENDING, Outbox
from dncguard.store import utcnow

from ..conftest import cli
from .conftest import DemoJob, FakeClock, Receiver, make_log


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "test-key")


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run a command that must be refused: exit 2, nothing on stdout, one line on stderr
    (no traceback); returns that line."""
    code, out, err = cli(capsys, *args)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _recent_log(settings: Settings) -> tuple[AuditLog, FakeClock]:
    """A log of 6 records written in the last hour, checkpointed every 2."""
    clock = FakeClock(utcnow() - timedelta(hours=1))
    log = make_log(settings, clock, checkpoint_interval=2)
    for i in range(6):
        log.append("list", "add", who="cli:bob", subject="internal", number=f"+1202555010{i}")
        clock.advance(minutes=1)
    return log, clock


def _job(log: AuditLog, clock: FakeClock, demo: DemoJob) -> str:
    job = new_job_id(clock.now)
    record_job(log, job, demo.output, demo.summary, who="cli:bob")
    return job


# -- 1. prune ---------------------------------------------------------------------------------


@pytest.mark.parametrize("days", ["-1", "0"])
def test_prune_refuses_retention_days_below_one(settings: Settings, days: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``-1`` used to delete the whole checkpointed trail, ``0`` to mean the default."""
    log, _ = _recent_log(settings)
    before = [r.seq for r in log.records()]
    line = refused(capsys, "audit", "prune", "--retention-days", days)
    assert "--retention-days" in line
    assert [r.seq for r in log.records()] == before


def test_prune_library_refuses_retention_days_below_one(settings: Settings) -> None:
    log, clock = _recent_log(settings)
    before = [r.seq for r in log.records()]
    for days in (0, -1):
        with pytest.raises(InputError, match="retention_days"):
            log.prune(now=clock.now, retention_days=days)
    assert [r.seq for r in log.records()] == before
    # 1 day is honoured (nothing that old yet); None is the setting
    assert log.prune(now=clock.now, retention_days=1)["deleted"] == 0
    assert log.prune(now=clock.now + timedelta(days=3), retention_days=1)["deleted"] == 6


# -- 2. outbox --deliver: the outcome of this run -------------------------------------------


def _pending_job(settings: Settings, receiver: Receiver, demo: DemoJob,
                 monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_URL", receiver.url)
    log, clock = _recent_log(settings)
    _job(log, clock, demo)
    return log


def test_outbox_deliver_json_alone_on_stdout_and_exit_3_when_a_delivery_failed(
        settings: Settings, demo_job: DemoJob, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    log = _pending_job(settings, receiver, demo_job, monkeypatch)
    receiver.mode = "flaky"  # its first answer is a 503
    code, out, err = cli(capsys, "audit", "outbox", "--deliver", "--json")
    assert code == 3, err
    got = json.loads(out)  # the whole of stdout is the document
    assert got["delivery"] == {"delivered": 0, "failed": 1, "dead": 0, "lost": 0}
    assert got["pending"] == 1 and got["failing"] == 1
    assert "failed 1" in err
    (item,) = outbox_for(log).items(EXPORT_TOPIC)
    assert item.status == PENDING and item.attempts == 1  # retried later, never lost


def test_outbox_deliver_text_exit_3_and_success_exit_0(
        settings: Settings, demo_job: DemoJob, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    log = _pending_job(settings, receiver, demo_job, monkeypatch)
    receiver.mode = "flaky"
    code, out, _ = cli(capsys, "audit", "outbox", "--deliver")
    assert code == 3 and "delivered 0, failed 1" in out
    # due again now, without waiting through the backoff
    box = outbox_for(log)
    (item,) = box.items(EXPORT_TOPIC)
    box.fail(item.id, "parked by the test", permanent=True)
    code, out, err = cli(capsys, "audit", "outbox", "--requeue", "--deliver", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["requeued"] == 1
    assert got["delivery"] == {"delivered": 1, "failed": 0, "dead": 0, "lost": 0}
    assert got["delivered"] == 1 and got["pending"] == 0
    assert "1 dead items requeued" in err and "delivered 1" in err


# -- 3. the failing items are found whatever the size of the outbox --------------------------


def _many_delivered(log: AuditLog, n: int) -> None:
    """``n`` delivered items of the export topic, written in one statement (SQLite)."""
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")  # as SQLAlchemy stores it in SQLite
    with log.engine.begin() as conn:
        conn.execute(text(
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < :n) "
            "INSERT INTO outbox (topic, key, payload, status, attempts, next_attempt_at, "
            "created_at, updated_at, delivered_at) SELECT :topic, 'old-' || n, '{}', "
            "'delivered', 1, :now, :now, :now, :now FROM c"), {"n": n, "topic": EXPORT_TOPIC,
                                                               "now": now})


def test_outbox_lists_failing_items_after_100000_others(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    log, _ = _recent_log(settings)
    _many_delivered(log, 100_001)
    box = outbox_for(log)
    box.enqueue(EXPORT_TOPIC, "job:late", {})
    (late,) = box.items(EXPORT_TOPIC, PENDING)
    box.fail(late.id, "HTTP 503: try later")
    code, out, err = cli(capsys, "audit", "outbox")
    assert code == 0, err
    assert "job:late" in out and "HTTP 503" in out
    code, out, _ = cli(capsys, "audit", "outbox", "--show", "0")
    assert code == 0 and "job:late" not in out


def test_outbox_failing_query(settings: Settings) -> None:
    box = Outbox(make_log(settings).engine)
    for key in ("fresh", "retrying", "delivered", "dead", "retrying2"):
        box.enqueue("t", key, {})
    ids = {i.key: i.id for i in box.items("t")}
    box.fail(ids["retrying"], "x")
    box.fail(ids["delivered"], "x")
    box.ack([ids["delivered"]])
    box.fail(ids["dead"], "x", permanent=True)
    box.fail(ids["retrying2"], "x")
    box.enqueue("other", "elsewhere", {})
    box.fail(box.items("other")[0].id, "x")
    assert [(i.key, i.status) for i in box.failing("t")] == [
        ("retrying", PENDING), ("dead", DEAD), ("retrying2", PENDING)]
    assert [i.key for i in box.failing("t", limit=2)] == ["retrying", "dead"]


# -- 4. flags that would be ignored ------------------------------------------------------------


def test_outbox_follow_needs_deliver(settings: Settings,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    line = refused(capsys, "audit", "outbox", "--follow")
    assert "--follow" in line and "--deliver" in line


def test_outbox_refuses_a_negative_show(settings: Settings,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert "--show" in refused(capsys, "audit", "outbox", "--show", "-1")


def test_report_refuses_a_negative_sample(settings: Settings, demo_job: DemoJob, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    log, clock = _recent_log(settings)
    job = _job(log, clock, demo_job)
    html = tmp_path / "report.html"
    assert "--sample" in refused(capsys, "report", job, "-o", str(html), "--sample", "-5")
    assert not html.exists()
    code, _, err = cli(capsys, "report", job, "-o", str(html), "--sample", "0")
    assert code == 0 and html.is_file(), err


def test_export_refuses_an_empty_range(settings: Settings, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _recent_log(settings)
    out = tmp_path / "a.ndjson"
    line = refused(capsys, "audit", "export", "--since", "2026-02-01", "--until", "2026-01-01",
                   "-o", str(out))
    assert "range is empty" in line and "since" in line and "until" in line
    day = "2026-01-01T00:00:00Z"
    assert "range is empty" in refused(capsys, "audit", "export", "--since", day, "--until", day,
                                       "-o", str(out))
    assert not out.exists()


# -- 7. the export URL -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["127.0.0.1:18931/hook", "ftp://example.com/in", "https://",
                                 "http://example.com:port/in"])
def test_an_export_url_nothing_could_be_delivered_to_is_refused(
        settings: Settings, url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_URL", url)
    line = refused(capsys, "audit", "outbox")
    assert "export_url" in line and "http" in line


def test_a_refused_export_url_from_the_settings_file_never_shows_its_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dncguard.toml").write_text(
        '[audit]\nexport_url = "svc:pw-s3cret@receiver.example/in"\n', encoding="utf-8")
    line = refused(capsys, "audit", "outbox", "--json")
    assert "export_url" in line and "pw-s3cret" not in line


def test_export_urls_that_can_be_delivered_to_are_accepted() -> None:
    for url in ("https://receiver.example/in", "http://127.0.0.1:18931/hook",
                "https://svc:pw@receiver.example:8443/in?x=1", "HTTPS://[::1]/in"):
        assert AuditSettings(export_url=url).export_url == url
    assert AuditSettings(export_url=" http://h/x ").export_url == "http://h/x"
    # a blank URL is refused (it turned export off without a word): leave it out for none
    with pytest.raises(ValueError, match="export_url"):
        AuditSettings(export_url="")
    assert AuditSettings().export_url is None
