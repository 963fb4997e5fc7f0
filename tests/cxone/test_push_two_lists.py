"""Write-back pushes a number's state across every internal list, not the changed list's.

A number opted out for good on 'internal' is also put on a second internal list, 'callback',
for 30 days. Before, the queued record took the 30-day expiry (CXone would stop blocking the
number in 30 days while 'internal' blocks it for good), and removing it from 'callback'
expired CXone's record at once. The change path now uses the backfill's rule (no expiry when
a list holds the number for good, else the latest) and queues an expiry only when no internal
list holds the number: after each change a backfill finds nothing to add."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dncguard.config import Settings
from dncguard.lists.store import ListStore
from dncguard.optouts import add_optout, queue_writeback, remove_optout
from dncguard.outbox import Outbox
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import push
from dncguard.store import get_engine

from ..fakes import FakeSleep
from .conftest import cx_settings, make_client

GROUP = 364
NUMBER = "+12025550166"


async def test_cxone_holds_the_state_across_internal_lists(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep) -> None:
    store = ListStore(cxsettings)
    box = Outbox(get_engine(cxsettings), rng=random.Random(0))
    month = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)

    async def pushed() -> tuple[datetime | None, bool]:
        """Push; then CXone's record of the number: (its expiry, whether it blocks now)."""
        async with make_client(cx_settings(sandbox), sleep) as client:
            report = await push(client, box, str(GROUP))
        assert report.ok and report.pending_after == 0
        assert queue_writeback(store) == (0, 0)  # the change path and the backfill agree
        rec = sandbox.state.records[GROUP][NUMBER[2:]]
        return rec["_exp"], rec["_exp"] is None or rec["_exp"] > datetime.now(UTC)

    add_optout(store, NUMBER, reason="never call")
    assert await pushed() == (None, True)
    add_optout(store, NUMBER, list_name="callback", create=True, expires=month)
    assert await pushed() == (None, True)  # 'internal' holds it for good
    remove_optout(store, NUMBER, list_name="callback")
    assert await pushed() == (None, True)  # still on 'internal'
    add_optout(store, NUMBER, list_name="callback", expires=month)
    remove_optout(store, NUMBER)  # off 'internal': 'callback' still holds it for 30 days
    assert await pushed() == (month, True)
    remove_optout(store, NUMBER, list_name="callback")  # on no internal list now
    expired, blocking = await pushed()
    assert expired is not None and not blocking


async def test_a_removal_does_not_expire_a_number_an_imported_list_holds(
        cxsettings: Settings, sandbox: SandboxServer, sleep: FakeSleep, tmp_path: Path) -> None:
    """The number is in the imported file of internal list 'crm' and opted out by hand on
    'internal'; removed from 'internal', it is still blocked here, so CXone keeps its record
    (the backfill leaves an imported list's numbers alone, too)."""
    store = ListStore(cxsettings)
    file = tmp_path / "crm.txt"
    file.write_text(f"{NUMBER[2:]}\n2025550167\n")
    store.import_file(file, kind="internal", name="crm")
    box = Outbox(get_engine(cxsettings), rng=random.Random(0))
    add_optout(store, NUMBER)
    remove_optout(store, NUMBER)
    async with make_client(cx_settings(sandbox), sleep) as client:
        report = await push(client, box, str(GROUP))
    assert report.ok and report.pending_after == 0
    rec = sandbox.state.records[GROUP][NUMBER[2:]]
    assert rec["_exp"] is None  # blocks: 'crm' holds the number
    assert store.index(store.get("crm")).contains_numbers([NUMBER])[0]
    assert queue_writeback(store) == (0, 0)
