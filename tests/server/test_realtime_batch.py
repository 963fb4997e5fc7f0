"""A batch request's slices are appended to the audit trail one at a time: a slice whose
append fails answers ``error`` (AUDIT_UNAVAILABLE), the slices that were committed answer
what was checked, and duplicates are marked across slices."""

from __future__ import annotations

import asyncio
from pathlib import Path

from dncguard.audit import AuditUnavailable, Pending
from dncguard.config import load_settings
from dncguard.server import realtime
from dncguard.server.app import create_app

from .conftest import make_key


class FailingSecond:
    """Commits every append but the second; records how many appends were in flight."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.flight = 0
        self.most = 0

    async def append_async(self, records: list[Pending]) -> None:
        self.calls.append(len(records))
        self.flight += 1
        self.most = max(self.most, self.flight)
        try:
            await asyncio.sleep(0.01)
            if len(self.calls) == 2:
                raise AuditUnavailable("disk full")
        finally:
            self.flight -= 1


def test_slices_answer_by_their_own_append(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_key(home, "check")
    svc = create_app(load_settings(home=home), run_jobs=False).state.service
    rt = svc.realtime
    writer = FailingSecond()
    rt.writer = writer  # type: ignore[assignment]
    size = realtime.SLICE
    phones = [f"+1202555{i:04d}" for i in range(size * 2 + 10)] + ["+12025550000"]
    ctx = svc.provider.prepared().context(campaign="default")
    try:
        verdicts = asyncio.run(rt.check_many(phones, ctx, {}, "api:test"))
    finally:
        rt.stop()
    assert writer.calls == [size, size, 11]
    assert writer.most == 1  # one slice in the writer at a time
    codes = [[r.code for r in v.reasons] for v in verdicts]
    assert all("AUDIT_UNAVAILABLE" not in c for c in codes[:size])
    assert all(v.decision == "error" and c[-1] == "AUDIT_UNAVAILABLE"
               for v, c in zip(verdicts[size:2 * size], codes[size:2 * size], strict=True))
    assert all("AUDIT_UNAVAILABLE" not in c for c in codes[2 * size:])
    assert "DUPLICATE" in codes[-1] and verdicts[-1].row == len(phones)
