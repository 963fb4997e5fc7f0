"""``remove_number`` checks inside its transaction that the list still exists, as
``add_number`` does: a ``lists rm`` between the list's read and the removal's commit left a
removal behind (an entry ``removed`` of a list that was gone), and a list made later under
the same name held the number unlisted: a number on its file was allowed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dncguard.errors import ListError
from dncguard.lists.store import ListIndex, ListStore
from dncguard.store import list_entries_table

NUMBER = "+12025550123"


class _RemovedAfterReading:
    """The list's index, whose lookup is followed by another process's ``lists rm``."""

    def __init__(self, index: ListIndex, remove: Callable[[], object]) -> None:
        self.index = index
        self.remove = remove

    def contains_numbers(self, *args: Any, **kwargs: Any) -> Any:
        found = self.index.contains_numbers(*args, **kwargs)
        self.remove()
        return found


def test_a_removal_on_a_list_removed_meanwhile_is_refused(
        store: ListStore, write_lines: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store.import_file(write_lines(["2025550123", "2025550124"]), kind="litigator",
                      name="litigators")
    other = ListStore(store.settings)  # another process: dncguard lists rm litigators
    real_index = store.index
    monkeypatch.setattr(store, "index", lambda info: _RemovedAfterReading(
        real_index(info), lambda: other.remove_list("litigators")))
    with pytest.raises(ListError, match="list 'litigators' was removed while the removal "
                                        "was written; nothing was changed"):
        store.remove_number(NUMBER, list_name="litigators", why="asked", who="cli:tester")
    monkeypatch.undo()
    with store.engine.connect() as conn:  # nothing left behind
        assert conn.execute(list_entries_table.select().where(
            list_entries_table.c.list_name == "litigators")).all() == []
    # the list made again under the same name lists the number of its file
    store.import_file(write_lines(["2025550123"], "again.txt"), kind="litigator",
                      name="litigators")
    info = store.get("litigators")
    assert store.index(info).contains_numbers([NUMBER]).tolist() == [True]


def test_a_removal_on_a_list_that_stands_still_works(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["2025550123"]), kind="litigator", name="litigators")
    before = store.get("litigators").updated_at
    assert store.remove_number(NUMBER, list_name="litigators", why="asked") == (NUMBER, True)
    info = store.get("litigators")
    assert store.index(info).contains_numbers([NUMBER]).tolist() == [False]
    assert info.updated_at > before  # the list's row was taken, as an opt-out takes it
