"""The CXone write-back finds a number's last outbox item by an indexed equality lookup
(``outbox_subjects``, revision 0007), not by a ``LIKE`` over every key of the topic; items
queued before that revision are backfilled by it and still found."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dncguard.config import Settings
from dncguard.migrations import alembic_config, current_revision, head_revision, upgrade
from dncguard.outbox import (
    DELIVERED,
    PENDING,
    Outbox,
    OutboxItem,
    outbox_subjects_table,
    outbox_table,
)
from dncguard.sources.cxone import TOPIC, enqueue_expire, enqueue_optout
from dncguard.store import get_engine, metadata

BEFORE = "0006_shared_objects"
INDEX = "ix_outbox_subjects_lookup"
T0 = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
A, B, C = "+12025550101", "+12125550102", "+13055550103"


def _old_latest(box: Outbox, e164: str) -> OutboxItem | None:
    """What the lookup before revision 0007 answered: the newest item whose key holds
    ``:<number>:`` and whose payload names the number."""
    found = [it for it in box.items(TOPIC, limit=None)
             if f":{e164}:" in it.key and it.payload.get("e164") == e164]
    return found[-1] if found else None


def _fill(engine: sa.Engine, box: Outbox, numbers: int = 60) -> list[str]:
    """Opt-outs, expiries and re-adds for many numbers, interleaved."""
    phones = [f"+1202555{n:04d}" for n in range(numbers)]
    for round_ in range(3):
        for i, e164 in enumerate(phones):
            at = T0 + timedelta(days=round_)
            if (i + round_) % 3 == 1:
                enqueue_expire(engine, e164, at, outbox=box)
            else:
                enqueue_optout(engine, e164, at + timedelta(days=90), group_id="364", outbox=box)
    return phones


@pytest.fixture
def captured() -> Iterator[tuple[list[tuple[str, Any]], Any]]:
    seen: list[tuple[str, Any]] = []

    def listen(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    yield seen, listen


def _latest_statement(engine: sa.Engine, box: Outbox, e164: str,
                      captured: tuple[list[tuple[str, Any]], Any]) -> tuple[str, Any]:
    seen, listen = captured
    seen.clear()
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        box.latest(TOPIC, e164)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    selects = [s for s in seen if s[0].lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, seen
    return selects[0]


# -- the lookup uses the index ----------------------------------------------------------------


def test_latest_is_an_equality_lookup_through_the_index_sqlite(
        settings: Settings, captured: tuple[list[tuple[str, Any]], Any]) -> None:
    engine = get_engine(settings)
    box = Outbox(engine, rng=random.Random(0))
    phones = _fill(engine, box)

    statement, params = _latest_statement(engine, box, phones[7], captured)
    assert " LIKE " not in statement.upper()
    with engine.connect() as conn:
        plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, params))
    assert re.search(rf"SEARCH \w+ USING (COVERING )?INDEX {INDEX} \(topic=\? AND subject=\?\)",
                     plan), plan
    assert "SCAN outbox" not in plan, plan  # the items are read by id, not scanned
    assert "TEMP B-TREE" not in plan, plan  # newest first straight from the index

    # the same items as the key search found
    for e164 in (*phones, A):
        new, old = box.latest(TOPIC, e164), _old_latest(box, e164)
        assert (new.id if new else None) == (old.id if old else None), e164
    assert box.latest(TOPIC, phones[7]) is not None


@pytest.mark.postgres
def test_latest_is_an_equality_lookup_through_the_index_postgres(
        postgres_url: str, tmp_path: Path,
        captured: tuple[list[tuple[str, Any]], Any]) -> None:
    from dncguard.config import load_settings

    engine = get_engine(load_settings(home=tmp_path / "home", database_url=postgres_url))
    box = Outbox(engine, rng=random.Random(0))
    phones = _fill(engine, box, numbers=20)
    statement, params = _latest_statement(engine, box, phones[4], captured)
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: ask what it can use
        plan = "\n".join(str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + statement, params))
        conn.rollback()
    assert INDEX in plan, plan
    assert re.search(r"Index Cond: \(\(\(?topic\)?.*= .*subject", plan), plan
    for e164 in phones:
        new, old = box.latest(TOPIC, e164), _old_latest(box, e164)
        assert new is not None and old is not None and new.id == old.id, e164


def test_enqueue_writes_the_subject_with_the_item(settings: Settings) -> None:
    engine = get_engine(settings)
    box = Outbox(engine)
    assert enqueue_optout(engine, A, outbox=box)
    assert not enqueue_optout(engine, A, outbox=box)  # the same change: not queued twice
    assert enqueue_expire(engine, A, T0, outbox=box)
    assert box.enqueue("other.topic", "k", {"x": 1})  # no subject: no row
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_subjects_table).order_by(
            outbox_subjects_table.c.item_id)).all()
    items = box.items(TOPIC)
    assert [(r.item_id, r.topic, r.subject) for r in rows] == [
        (items[0].id, TOPIC, A), (items[1].id, TOPIC, A)]
    assert items[1].key.endswith(f":{items[0].id}")  # chained to the previous item


# -- items queued before revision 0007 ----------------------------------------------------------


def _old_rows(engine: sa.Engine) -> dict[str, int]:
    """Items as the code before revision 0007 wrote them (no subject), keys in its format
    ``<action>:<group or *>:<number>:<expiry or ->:<previous item id>``."""
    later = "2027-02-17T15:00:00Z"
    rows: list[tuple[str, str, dict[str, Any], str]] = []
    ids: dict[str, int] = {}

    def put(name: str, topic: str, key: str, payload: dict[str, Any],
            status: str = DELIVERED) -> None:
        with engine.begin() as conn:
            pk = conn.execute(sa.insert(outbox_table).values(
                topic=topic, key=key, payload=payload, status=status, attempts=1,
                next_attempt_at=T0, created_at=T0, updated_at=T0)).inserted_primary_key
            assert pk is not None
            ids[name] = int(pk[0])
        rows.append((name, topic, payload, key))

    def cx(action: str, e164: str, expires: str | None, group: str | None) -> dict[str, Any]:
        return {"action": action, "e164": e164, "group_id": group, "expires": expires}

    put("a1", TOPIC, f"add:*:{A}:-:0", cx("add", A, None, None))
    put("b1", TOPIC, f"add:364:{B}:{later}:0", cx("add", B, later, "364"), PENDING)
    put("a2", TOPIC, f"expire:*:{A}:2026-11-19T15:00:00Z:{ids['a1']}",
        cx("expire", A, "2026-11-19T15:00:00Z", None))
    put("audit", "audit.export", f"x:{A}:y", {"e164": A})  # another topic: not a CXone item
    put("a3", TOPIC, f"add:364:{A}:{later}:{ids['a2']}", cx("add", A, later, "364"), PENDING)
    # a key naming A with a payload naming C: the old lookup found it for neither
    put("odd", TOPIC, f"add:*:{A}:-:999", cx("add", C, None, None))
    return ids


def _check_old_rows_found(engine: sa.Engine, ids: dict[str, int]) -> None:
    assert current_revision(engine) == head_revision()  # 0007 ran, and whatever follows
    with engine.connect() as conn:
        subjects = {int(r.item_id): (r.topic, r.subject)
                    for r in conn.execute(sa.select(outbox_subjects_table))}
    assert subjects == {ids["a1"]: (TOPIC, A), ids["a2"]: (TOPIC, A), ids["a3"]: (TOPIC, A),
                        ids["b1"]: (TOPIC, B)}
    box = Outbox(engine)
    last_a, last_b = box.latest(TOPIC, A), box.latest(TOPIC, B)
    assert last_a is not None and last_a.id == ids["a3"]
    assert last_b is not None and last_b.id == ids["b1"]
    assert box.latest(TOPIC, C) is None
    for e164 in (A, B, C):
        new, old = box.latest(TOPIC, e164), _old_latest(box, e164)
        assert (new.id if new else None) == (old.id if old else None)
    # the write-back carries on from the old items: the same change is not queued again, a
    # new one is chained to the old last item
    later = datetime(2027, 2, 17, 15, 0, tzinfo=UTC)
    assert not enqueue_optout(engine, A, later, group_id="364", outbox=box)
    assert enqueue_expire(engine, A, T0 + timedelta(days=1), group_id="364", outbox=box)
    newest = box.latest(TOPIC, A)
    assert newest is not None and newest.key.endswith(f":{ids['a3']}")
    assert newest.payload["action"] == "expire"


def test_migration_backfills_items_of_a_database_at_0006_sqlite(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, BEFORE)
    assert "outbox_subjects" not in sa.inspect(engine).get_table_names()
    ids = _old_rows(engine)
    upgrade(engine)
    assert INDEX in {ix["name"] for ix in sa.inspect(engine).get_indexes("outbox_subjects")}
    _check_old_rows_found(engine, ids)
    engine.dispose()


@pytest.mark.postgres
def test_migration_backfills_items_of_a_database_at_0006_postgres(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    upgrade(engine, BEFORE)
    ids = _old_rows(engine)
    upgrade(engine)
    assert INDEX in {ix["name"] for ix in sa.inspect(engine).get_indexes("outbox_subjects")}
    _check_old_rows_found(engine, ids)
    engine.dispose()


def test_migration_backfills_a_create_all_database_that_has_the_table(tmp_path: Path) -> None:
    """A database made by ``create_all`` (adopted, then upgraded) may hold ``outbox_subjects``
    already: the items without a subject row get one, the others are left as they are."""
    from dncguard.migrations import load_table_modules

    load_table_modules()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'all.db'}")
    metadata.create_all(engine)
    ids = _old_rows(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(outbox_subjects_table).values(
            item_id=ids["b1"], topic=TOPIC, subject=B))
    upgrade(engine)
    _check_old_rows_found(engine, ids)
    engine.dispose()


def test_downgrade_to_0006_and_upgrade_again_backfills_everything(tmp_path: Path) -> None:
    from alembic import command

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    box = Outbox(engine)
    for e164 in (A, B):
        enqueue_optout(engine, e164, outbox=box)
    enqueue_expire(engine, A, T0, outbox=box)
    expected = {e164: box.latest(TOPIC, e164) for e164 in (A, B)}
    assert "outbox_subjects" in sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        command.downgrade(alembic_config(connection=conn), BEFORE)
        conn.commit()
    assert "outbox_subjects" not in sa.inspect(engine).get_table_names()
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(outbox_subjects_table)) == 3
    for e164, item in expected.items():
        assert item is not None and box.latest(TOPIC, e164) == item
    engine.dispose()
