"""Two export workers never send one summary both, and a report counts what it delivered.

Before, a batch of items was leased for a fixed 120 s whatever the request timeout: while the
first request of a slow batch ran, the rest of the batch's leases ran out, a second worker
sent them, and the first sent them again (and counted every one as sent, its
acknowledgements changing nothing). Now each item's lease is renewed, for longer than a
request can take, just before its POST, and an item another worker took over is skipped;
a killed worker's unsent items come back after a short claim lease, not the whole batch's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from dncguard.audit import AuditLog, ExportWorker, new_job_id
from dncguard.audit._jobs import record_job
from dncguard.audit.export import EXPORT_TOPIC, LEASE_MARGIN, outbox_for
from dncguard.config import Settings

from .conftest import DemoJob, FakeClock, Receiver, make_log

TIMEOUT = 150.0  # seconds per export request


class Before(httpx.BaseTransport):
    """Sends to the real receiver; ``before(request)`` runs first (a request that takes
    time, or a worker that dies on it)."""

    def __init__(self, before: Callable[[httpx.Request], None]) -> None:
        self.inner = httpx.HTTPTransport()
        self.before = before

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.before(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _jobs(log: AuditLog, demo: DemoJob, n: int) -> list[str]:
    ids = [f"job-{i}-{new_job_id()}" for i in range(n)]
    for job in ids:
        record_job(log, job, demo.output, demo.summary, who="cli:alice")
    return [f"job:{j}" for j in ids]


def test_a_slow_batch_is_not_sent_twice(settings: Settings, demo_job: DemoJob,
                                        clock: FakeClock, receiver: Receiver) -> None:
    log = make_log(settings, clock, export_url=receiver.url, export_timeout=TIMEOUT)
    keys = _jobs(log, demo_job, 3)
    other = ExportWorker(log, outbox=outbox_for(log, clock))
    seen: list[str] = []

    def slow_first(request: httpx.Request) -> None:
        if not seen:  # the first request takes 130 s (within its timeout) ...
            seen.append(request.headers["Idempotency-Key"])
            clock.advance(130)
            got = other.run_once()  # ... while the second worker runs
            assert (got.sent, got.lost) == (2, 0)

    first = ExportWorker(log, outbox=outbox_for(log, clock),
                         client=httpx.Client(transport=Before(slow_first), timeout=TIMEOUT))
    report = first.run_once()
    first.close()
    other.close()
    assert Counter(receiver.requests) == Counter(keys)  # each summary sent once
    assert seen == [keys[0]]
    assert (report.sent, report.failed, report.lost) == (1, 0, 2)
    assert outbox_for(log).stats(EXPORT_TOPIC)["delivered"] == 3


class Died(BaseException):
    """The worker's process is killed (nothing of it runs on)."""


def test_a_killed_workers_unsent_items_come_back_soon(
        settings: Settings, demo_job: DemoJob, clock: FakeClock, receiver: Receiver) -> None:
    log = make_log(settings, clock, export_url=receiver.url, export_timeout=TIMEOUT)
    keys = _jobs(log, demo_job, 3)

    def die(_request: httpx.Request) -> None:
        raise Died

    doomed = ExportWorker(log, outbox=outbox_for(log, clock),
                          client=httpx.Client(transport=Before(die), timeout=TIMEOUT))
    with pytest.raises(Died):
        doomed.run_once()  # killed while its first POST was on its way
    clock.advance(LEASE_MARGIN + 1)
    after = ExportWorker(log, outbox=outbox_for(log, clock))
    assert after.run_once().sent == 2  # the two it had not started on
    clock.advance(TIMEOUT)  # the one it was sending: after its request's timeout + margin
    assert after.run_once().sent == 1
    after.close()
    assert sorted(receiver.requests) == sorted(keys)


def test_a_lease_shorter_than_a_request_is_refused(settings: Settings, clock: FakeClock,
                                                   receiver: Receiver) -> None:
    log = make_log(settings, clock, export_url=receiver.url, export_timeout=TIMEOUT)
    with pytest.raises(ValueError, match="shorter than the request timeout"):
        ExportWorker(log, lease=120)
    assert ExportWorker(log).lease == TIMEOUT + LEASE_MARGIN
