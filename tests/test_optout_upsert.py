"""Two opt-outs of one number at once (two replicas on PostgreSQL): both succeed, the later
expiry of the two stands (none beats any), and each keeps its audit record and list event.
The second used to fail on the unique key (503 "database unavailable (IntegrityError)"),
losing its reason and expiry. The CXone write-back carries the expiry that stands."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from dncguard.audit.tables import audit_records_table
from dncguard.config import load_settings
from dncguard.lists.store import ListInfo, ListStore
from dncguard.optouts import add_optout
from dncguard.outbox import Outbox
from dncguard.sources.cxone import TOPIC
from dncguard.store import list_entries_table, list_events_table

PHONE = "+12025550111"
#: The first statement of an opt-out's transaction that writes the list or its entries.
_WRITE = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(lists|list_entries)"
                    r"\"?[\s(]", re.I)


@pytest.fixture
def pg_store(postgres_url: str, tmp_path: Path) -> ListStore:
    store = ListStore(load_settings(home=tmp_path / "home", database_url=postgres_url))
    store.ensure("internal", "internal")
    return store


def _days(n: int | None) -> datetime | None:
    return None if n is None else datetime.now(UTC) + timedelta(days=n)


def _two_at_once(store: ListStore, first: datetime | None, second: datetime | None) -> None:
    """T1 opts PHONE out (``first``) and is held open, its writes done and not committed;
    T2 opts it out (``second``) from another thread, and once T2 writes (behind T1's locks,
    or, as before, after reading no prior opt-out), T1 commits. Raises what either raised."""
    held, release, writing = threading.Event(), threading.Event(), threading.Event()
    second_thread: list[int] = []

    def hold(conn: Connection, e164: str, info: ListInfo) -> None:
        held.set()
        assert release.wait(60), "never released"

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if threading.get_ident() in second_thread and _WRITE.match(sql):
            writing.set()

    def t2() -> str:
        second_thread.append(threading.get_ident())
        return add_optout(store, PHONE, reason="callback later", expires=second, who="api:b")

    sa.event.listen(store.engine, "before_cursor_execute", statement)
    try:
        with ThreadPoolExecutor(2) as pool:
            one = pool.submit(store.add_number, PHONE, reason="never call me", expires=first,
                              who="api:a", then=hold)
            assert held.wait(60), one.exception()
            two = pool.submit(t2)
            assert writing.wait(60), two.exception()
            release.set()
            one.result(timeout=60)
            two.result(timeout=60)
    finally:
        release.set()
        sa.event.remove(store.engine, "before_cursor_execute", statement)


@pytest.mark.postgres
@pytest.mark.parametrize(("first", "second", "stands"), [
    pytest.param(None, 30, None, id="never-then-30-days"),
    pytest.param(30, None, None, id="30-days-then-never"),
    pytest.param(60, 10, 60, id="60-then-10-days"),
    pytest.param(10, 60, 60, id="10-then-60-days"),
])
def test_two_opt_outs_of_one_number_at_once_both_stand(
        pg_store: ListStore, first: int | None, second: int | None, stands: int | None) -> None:
    """Both transactions commit; one entry, with the later expiry of the two (none: never);
    two list events and two audit records, each with its own reason and the expiry the
    entry has after it."""
    e1, e2 = _days(first), _days(second)
    _two_at_once(pg_store, e1, e2)
    (entry,) = pg_store.entries("internal")
    expected = {None: None, first: e1, second: e2}[stands]
    assert entry["expires_at"] == expected
    assert (entry["reason"], entry["added_by"], entry["removed"]) == (
        "callback later", "api:b", False)
    index = pg_store.index(pg_store.get("internal"))
    assert index.contains_numbers([PHONE], at=datetime.now(UTC) + timedelta(days=45))[0] == (
        stands is None or stands > 45)
    with pg_store.engine.connect() as conn:
        events = conn.execute(sa.select(list_events_table.c.who, list_events_table.c.why)
                              .where(list_events_table.c.action == "add")
                              .order_by(list_events_table.c.id)).all()
        records = conn.execute(sa.select(audit_records_table.c.who, audit_records_table.c.data)
                               .where(audit_records_table.c.kind == "list",
                                      audit_records_table.c.action == "add")
                               .order_by(audit_records_table.c.seq)).all()
        rows = conn.execute(sa.select(sa.func.count()).select_from(list_entries_table)
                            ).scalar_one()
    assert rows == 1
    assert [tuple(e) for e in events] == [("api:a", "never call me"), ("api:b", "callback later")]
    assert [(r.who, r.data["why"]) for r in records] == [
        ("api:a", "never call me"), ("api:b", "callback later")]
    # the second's record says what the entry holds after it: the later expiry of the two
    final = records[1].data["expires"]
    assert final == (expected.isoformat() if expected is not None else None)


@pytest.mark.postgres
def test_an_opt_out_replaces_a_removal_of_a_snapshot_number_held_open(
        pg_store: ListStore, tmp_path: Path) -> None:
    """A number removed from an imported list (a removal entry), opted out by two replicas at
    once: both succeed and the number is listed, with the later expiry."""
    path = tmp_path / "list.txt"
    path.write_text(PHONE + "\n", encoding="utf-8")
    pg_store.import_file(path, kind="internal", name="internal")
    pg_store.remove_number(PHONE)
    assert [e["removed"] for e in pg_store.entries("internal")] == [True]
    _two_at_once(pg_store, _days(5), _days(9))
    (entry,) = pg_store.entries("internal")
    assert entry["removed"] is False
    assert entry["expires_at"] is not None and entry["expires_at"] > _days(8)  # type: ignore[operator]
    assert pg_store.index(pg_store.get("internal")).contains_numbers([PHONE])[0]


def test_the_cxone_write_back_carries_the_expiry_that_stands(
        store: ListStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """'Never call me again', then 'call back in 30 days': the number stays listed for good
    here, and the write-back queued for CXone says so too (it queued the 30 days, which would
    have replaced CXone's permanent record with one that lapses)."""
    monkeypatch.setattr("dncguard.optouts._cxone_configured", lambda store: True)
    add_optout(store, PHONE, reason="never call me again")
    add_optout(store, PHONE, reason="call back later", expires=_days(30))
    (entry,) = store.entries("internal")
    assert entry["expires_at"] is None
    latest = Outbox(store.engine).latest(TOPIC, PHONE)
    assert latest is not None
    assert (latest.payload["action"], latest.payload["expires"]) == ("add", None)
    store.remove_number(PHONE)  # after a removal, an expiry is as given
    later = _days(90)
    add_optout(store, PHONE, reason="moved", expires=later)
    latest = Outbox(store.engine).latest(TOPIC, PHONE)
    assert latest is not None and latest.payload["expires"] is not None
    assert datetime.fromisoformat(latest.payload["expires"]) == later
