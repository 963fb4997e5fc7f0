"""Revision 0011: attempts written before subjects were keyed are keyed as the store keys them,
so the caps count one debt's attempts together however they were written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from dncguard.config import load_settings
from dncguard.migrations import upgrade
from dncguard.sources.rules.stores import attempts_table


def test_subjects_written_before_are_keyed(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    settings.home.mkdir(parents=True)
    engine = sa.create_engine(settings.db_url)
    upgrade(engine, "0010_list_changes")
    attempts_table.create(engine, checkfirst=True)
    at = datetime(2026, 11, 2, 15, tzinfo=UTC)
    written = [(" DEBT-42 ", " spring "), ("debt-42", "spring"), ("Ärger-7", "Fall")]
    with engine.begin() as conn:
        conn.execute(sa.insert(attempts_table), [
            {"e164": "+12025550100", "at": at, "campaign": campaign, "purpose": "collections",
             "subject": subject, "outcome": None, "created_at": at}
            for subject, campaign in written])
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(attempts_table.c.subject, attempts_table.c.campaign)
                            .order_by(attempts_table.c.id)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("debt-42", "spring"), ("debt-42", "spring"),
                                        ("ärger-7", "Fall")]
