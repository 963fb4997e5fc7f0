"""Opt-outs recorded where write-back was not set up reach CXone: once write-back is in use in
the database every opt-out is queued, whichever host records it, and ``dncguard cxone push
--backfill`` queues what was recorded before (an opt-out in force that the queue does not hold,
and the expiry of a pushed number that no internal list holds now). Before, an opt-out
recorded without the CXone credentials set in that process was never queued, and nothing
queued it later: CXone kept dialing a number dncguard blocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from dncguard.cli._cxone import app
from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout, queue_writeback, remove_optout
from dncguard.outbox import Outbox
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import TOPIC, enqueue_optout
from dncguard.store import get_engine


def _queued(settings: Settings) -> list[tuple[str, str, str | None]]:
    return [(str(it.payload["action"]), str(it.payload["e164"]), it.payload.get("expires"))
            for it in Outbox(get_engine(settings)).items(TOPIC)]


def test_once_write_back_is_in_use_every_opt_out_is_queued(settings: Settings) -> None:
    store = ListStore(settings)
    add_optout(store, "+12025550101")  # no credentials here, write-back never used: not queued
    assert _queued(settings) == []
    enqueue_optout(get_engine(settings), "+12025550102")  # a host with the credentials queued
    add_optout(store, "+12025550103")
    remove_optout(store, "+12025550103")
    assert [(a, n) for a, n, _ in _queued(settings)] == [
        ("add", "+12025550102"), ("add", "+12025550103"), ("expire", "+12025550103")]


def test_backfill_queues_what_the_queue_does_not_hold(settings: Settings) -> None:
    store = ListStore(settings)
    now = datetime.now(UTC)
    later = now + timedelta(days=30)
    add_optout(store, "+12025550111")                       # in force, never queued
    add_optout(store, "+12025550112", expires=later)        # in force until later
    add_optout(store, "+12025550113", expires=now + timedelta(seconds=1))
    add_optout(store, "+12025550112", list_name="internal-2", create=True)  # never lapses there
    engine = get_engine(settings)
    enqueue_optout(engine, "+12025550114")                  # pushed once, since removed
    enqueue_optout(engine, "+12025550115", now - timedelta(days=1))  # lapsed on CXone's side
    enqueue_optout(engine, "+12025550111")                  # queued already: not again
    assert queue_writeback(store, now=now + timedelta(seconds=2)) == (1, 1)
    assert _queued(settings)[3:] == [("add", "+12025550112", None),
                                     ("expire", "+12025550114", _queued(settings)[4][2])]
    assert queue_writeback(store, now=now + timedelta(seconds=3)) == (0, 0)


def test_push_backfill_delivers_an_opt_out_recorded_before_write_back(
        settings: Settings, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    add_optout(ListStore(settings), "+12025550121")  # before the credentials were set
    for k, v in sandbox.env().items():
        monkeypatch.setenv(k, v)
    res = CliRunner().invoke(app, ["push", "--group", "364"])
    assert res.exit_code == 0, res.output
    assert "2025550121" not in sandbox.state.records[364]
    res = CliRunner().invoke(app, ["push", "--group", "364", "--backfill", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["backfilled"] == {"optouts": 1, "expiries": 0}
    assert "2025550121" in sandbox.state.records[364]
