"""Two pushers (two replicas, or the service and ``dncguard cxone push``) never hold two
changes of one number at once: a number's later change is claimed only with every earlier
pending one (``Outbox.claim(in_order=True)``). Before, one pusher could hold a number's
removal while another sent its re-added opt-out; the removal went out last, and CXone ended
without the record while dncguard blocked the number."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dncguard.config import Settings, load_settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout, remove_optout
from dncguard.outbox import DELIVERED, Outbox
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import TOPIC, push
from dncguard.store import get_engine

from ..fakes import FakeSleep
from .conftest import cx_settings, make_client

NUMBER = "+12025550131"


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_a_later_change_waits_for_the_earlier_one_held_elsewhere(tmp_path: Path) -> None:
    engine = get_engine(load_settings(home=tmp_path / "home"))
    clock = Clock()
    a = Outbox(engine, clock=clock, rng=random.Random(0))
    b = Outbox(engine, clock=clock, rng=random.Random(1))
    a.enqueue("t", "1", {"g": "x"}, subject=NUMBER)
    a.enqueue("t", "2", {"g": "x"}, subject=NUMBER)
    a.enqueue("t", "3", {"g": "x"}, subject="+12025550132")
    held = a.claim("t", 1, in_order=True)
    assert [it.key for it in held] == ["1"]
    assert [it.key for it in b.claim("t", 10)] == ["2", "3"]  # unordered: it would take "2"
    b.release([it.id for it in b.items("t") if it.key in ("2", "3")])
    assert [it.key for it in b.claim("t", 10, in_order=True)] == ["3"]
    a.ack([held[0].id])
    assert [it.key for it in b.claim("t", 10, in_order=True)] == ["2"]


def test_what_holds_a_later_change_back(tmp_path: Path) -> None:
    """An earlier change waiting for its retry does not (its sender finds the later one
    delivered and does not send it: test_push_order), nor one another group's pusher sends;
    an earlier change due but not taken in the same claim does."""
    engine = get_engine(load_settings(home=tmp_path / "home"))
    clock = Clock()
    box = Outbox(engine, clock=clock, rng=random.Random(0), base_delay=60)
    box.enqueue("t", "1", {"g": "x"}, subject=NUMBER)
    box.enqueue("t", "2", {"g": "x"}, subject=NUMBER)
    box.enqueue("t", "other-group", {"g": "y"}, subject="+12025550133")
    box.enqueue("t", "3", {"g": "x"}, subject="+12025550133")
    (first,) = box.claim("t", 1, in_order=True)
    box.fail(first.id, "503")  # backing off now
    x = box.claim("t", 10, where=lambda it: it.payload["g"] == "x", in_order=True)
    assert [it.key for it in x] == ["2", "3"]
    box.release([it.id for it in x])
    # "1" is due again but passed over by a claim of one item: "2" stays behind it
    clock.offset = timedelta(minutes=5)
    assert [it.key for it in box.claim("t", 1, in_order=True)] == ["1"]
    # "1" is held now, so "2" waits; "3" comes with the earlier item of its number
    assert [it.key for it in box.claim("t", 10, in_order=True)] == ["other-group", "3"]


async def test_cxone_ends_in_the_last_change_with_two_pushers(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    engine = get_engine(cxsettings)
    add_optout(store, NUMBER)
    first = Outbox(engine, rng=random.Random(0))
    async with make_client(cx_settings(sandbox), sleep) as client:
        assert (await push(client, first, "364")).delivered == 1
        remove_optout(store, NUMBER)   # the removal ...
        add_optout(store, NUMBER)      # ... and the opt-out again, seconds apart
        other = Outbox(engine, rng=random.Random(1))
        (removal,) = other.claim(TOPIC, 1)  # another pusher holds the removal
        assert removal.payload["action"] == "expire"
        report = await push(client, first, "364")
        assert report.sent == 0  # the opt-out waits for the removal
        other.release([removal.id])
        report = await push(client, first, "364")
    # the removal and the opt-out are coalesced to the opt-out: one write, the removal
    # settled with it (superseded, not sent)
    assert (report.sent, report.delivered, report.superseded) == (1, 1, 1)
    assert [it.status for it in first.items(TOPIC)] == [DELIVERED] * 3
    record = sandbox.state.records[364][NUMBER[2:]]
    assert record["_exp"] is None or record["_exp"] > datetime.now(UTC)  # blocked, as here
