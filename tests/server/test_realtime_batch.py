"""A batch request's slices are appended to the audit trail one at a time: a slice whose
append fails answers ``error`` (AUDIT_UNAVAILABLE), the slices that were committed answer
what was checked, and duplicates are marked across slices."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dncguard.audit import AuditUnavailable, Pending
from dncguard.config import load_settings
from dncguard.engine.run import slice_of_rows
from dncguard.server import _realtime as realtime
from dncguard.server.app import create_app
from dncguard.server.routes.check import BatchResponse, batch_json

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
            await asyncio.sleep(0)
            if len(self.calls) == 2:
                raise AuditUnavailable("disk full")
        finally:
            self.flight -= 1


def test_slices_answer_by_their_own_append(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    make_key(home, "check")
    svc = create_app(load_settings(home=home), run_jobs=False).state.service
    rt = svc.realtime
    writer = FailingSecond()
    rt.writer = writer  # type: ignore[assignment]
    monkeypatch.setattr(realtime, "SLICE", 10)
    monkeypatch.setattr(realtime, "APPEND_EVERY", 25)
    phones = [f"+1202555{i:04d}" for i in range(120)] + ["+12025550000"]
    ctx = svc.provider.prepared().context(campaign="default")
    try:
        verdicts = asyncio.run(rt.check_many(phones, ctx, {}, "api:test"))
    finally:
        rt.stop()
    assert writer.most == 1  # one append in the writer at a time
    assert sum(writer.calls) == len(phones) and len(writer.calls) >= 3
    assert all(n >= 25 for n in writer.calls[:-1])  # records gather between appends
    lo, hi = writer.calls[0], writer.calls[0] + writer.calls[1]  # what the failed one held
    codes = [[r.code for r in v.reasons] for v in verdicts]
    assert all("AUDIT_UNAVAILABLE" not in c for c in codes[:lo] + codes[hi:])
    assert all(v.decision == "error" and c[-1] == "AUDIT_UNAVAILABLE"
               for v, c in zip(verdicts[lo:hi], codes[lo:hi], strict=True))
    assert "DUPLICATE" in codes[-1] and verdicts[-1].row == len(phones)
    # the answer, written a slice at a time, is what the response model writes
    for step in (7, 1000):
        dups = sum(1 for c in codes if "DUPLICATE" in c)
        want = BatchResponse(count=len(verdicts), duplicates=dups, verdicts=verdicts)
        assert asyncio.run(batch_json(verdicts, step)) == want.model_dump_json().encode()
    empty = BatchResponse(count=0, duplicates=0, verdicts=[]).model_dump_json().encode()
    assert asyncio.run(batch_json([])) == empty


class Immediate:
    """Commits every append at once (no thread): what the test sees depends on the event
    loop alone."""

    def submit(self, records: list[Pending], done: Callable[[BaseException | None], None]
               ) -> None:
        done(None)

    async def append_async(self, records: list[Pending]) -> None:
        return None


def test_a_single_check_beside_a_batch_waits_for_few_slices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch request is checked a slice at a time with the event loop free between
    slices: a single check asked meanwhile is answered while the batch has moved on by at
    most one slice (``slices`` counts the single's own group too), not after the batch."""
    home = tmp_path / "home"
    make_key(home, "check")
    svc = create_app(load_settings(home=home), run_jobs=False).state.service
    rt = svc.realtime
    rt.writer = Immediate()
    monkeypatch.setattr(realtime, "SLICE", 5)
    slices: list[int] = []
    real_slice = slice_of_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        slices.append(len(slices))
        return real_slice(*args, **kwargs)

    monkeypatch.setattr(realtime, "slice_of_rows", counted)
    phones = [f"+1202555{i:04d}" for i in range(200)]
    ctx = svc.provider.prepared().context(campaign="default")

    async def scenario() -> tuple[int, int, list[Any]]:
        batch = asyncio.ensure_future(rt.check_many(phones, ctx, {}, "api:test"))
        while len(slices) < 5 and not batch.done():  # the batch is under way
            await asyncio.sleep(0)
        assert not batch.done(), batch.exception()
        asked = len(slices)
        single = await rt.check("+12025559999", ctx, {}, fixed_at=True, who="api:test")
        answered = len(slices)
        return asked, answered, [single, *(await batch)]

    try:
        asked, answered, verdicts = asyncio.run(scenario())
    finally:
        rt.stop()
    assert verdicts[0].e164 == "+12025559999" and len(verdicts) == 201
    assert answered < len(phones) // 5  # answered while the batch was still being checked
    assert answered - asked <= 2, (asked, answered)


class Counted(Immediate):
    """:class:`Immediate`, counting the records of each submission."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def submit(self, records: list[Pending], done: Callable[[BaseException | None], None]
               ) -> None:
        self.sizes.append(len(records))
        done(None)


def test_checks_of_one_batch_keep_their_own_campaigns(tmp_path: Path) -> None:
    """Checks gathered into one batch are dated by the same moment, each in its own
    campaign: a campaign that selects another list does not see the internal opt-out the
    default campaign blocks on."""
    from dncguard.lists.store import ListStore
    from dncguard.store import get_engine

    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text('[campaigns.nolists]\nlists = ["other"]\n',
                                        encoding="utf-8")
    make_key(home, "check")
    settings = load_settings(home=home)
    store = ListStore(settings, get_engine(settings))
    store.add_number("+12025550123", reason="test")
    store.add_number("+12025550199", list_name="other", reason="test", create=True)
    svc = create_app(settings, run_jobs=False).state.service
    rt = svc.realtime
    writer = Counted()
    rt.writer = writer
    prepared = svc.provider.prepared()
    ctxs = [prepared.context(campaign=c) for c in ("default", "nolists", "default", "nolists")]

    async def scenario() -> list[Any]:
        return list(await asyncio.gather(*(rt.check("+12025550123", ctx, {}, fixed_at=False,
                                                    who="api:test") for ctx in ctxs)))

    try:
        verdicts = asyncio.run(scenario())
    finally:
        rt.stop()
    assert writer.sizes == [4]  # one batch
    codes = [[r.code for r in v.reasons] for v in verdicts]
    assert ["DNC_INTERNAL" in c for c in codes] == [True, False, True, False], codes
    assert verdicts[0].decision == "block" and verdicts[1].decision != "block"
    assert len({v.dial_time for v in verdicts}) == 1
    assert verdicts[0].dial_time > ctxs[0].at  # dated when checked, not when asked


def test_groups_of_the_default_campaign_share_the_rules_day_reasons(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in default campaign is one profile object, as a configured one is: the
    rules' reasons of a day and campaign, kept per profile object, are worked out once for
    successive groups of pre-dial checks, not once per group."""
    from dncguard.sources.rules import RulesCheck

    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    home = tmp_path / "home"
    make_key(home, "check")
    settings = load_settings(home=home)
    assert settings.campaign("default") is settings.campaign("default")
    svc = create_app(settings, run_jobs=False).state.service
    rt = svc.realtime
    rt.writer = Immediate()

    at = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)

    async def scenario() -> None:
        for i in range(5):  # one at a time: five groups, each with a context of its own
            ctx = svc.provider.prepared().context(at=at, campaign="default")
            await rt.check(f"+1202555{i:04d}", ctx, {}, fixed_at=True, who="api:test")

    try:
        asyncio.run(scenario())
    finally:
        rt.stop()
    rules = next(getattr(c, "_inner", c) for c in svc.provider.refresh().direct.checks
                 if isinstance(getattr(c, "_inner", c), RulesCheck))
    assert len(rules._days) == 1
