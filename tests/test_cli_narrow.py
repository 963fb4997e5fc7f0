"""``lists ls`` and ``dnc ls`` never cut a value: a table when it fits the terminal, else each
list or entry as lines. At 80 columns ``lists ls`` cut its kinds to ``int…`` and ``sta…``, and
at 60 its kind and entries columns were empty."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from dncguard.lists.store import ListStore

from .test_cli_ops import subprocess_cli


def test_narrow_terminals_get_lines_wide_ones_a_table(
        store: ListStore, write_lines: Callable[..., Path]) -> None:
    store.import_file(write_lines(["202,5550100", "202,5550101"]), kind="national",
                      name="us-national-registry", jurisdiction="US",
                      snapshot_date=date(2026, 11, 1))
    store.add_number("2025550123", reason="asked on a call, in writing too", who="cli:alice")
    for columns in (60, 80):
        lists = subprocess_cli(store.settings.home, "lists", "ls", columns=columns)
        optouts = subprocess_cli(store.settings.home, "dnc", "ls", "--all", columns=columns)
        for proc in (lists, optouts):
            assert proc.returncode == 0, proc.stderr
            assert "…" not in proc.stdout and "┃" not in proc.stdout, proc.stdout
        assert "us-national-registry\n  kind: national\n  jurisdiction: US\n  entries: 2\n" \
            in lists.stdout, lists.stdout
        assert "  reason: asked on a call, in writing too\n" in optouts.stdout, optouts.stdout
    wide = subprocess_cli(store.settings.home, "lists", "ls", columns=250)
    assert "┃ name" in wide.stdout and "…" not in wide.stdout, wide.stdout
