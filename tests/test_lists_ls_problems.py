"""``lists ls`` names what makes a list's checks answer error, as ``lists stats``,
``GET /v1/lists`` and the console do: a snapshot that fails its integrity check
(``snapshotError``, with what to do about it) and a stored jurisdiction that is not understood
(``scopeProblem``). It showed such a list as fresh, and its ``--json`` had neither key."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from dncguard.lists.store import ListStore
from dncguard.store import lists_table

from .conftest import cli

D = date.today()


def _lists(store: ListStore, write_lines: Callable[..., Path]) -> None:
    """us-ftc with a truncated snapshot, us-fa stored with a jurisdiction no number is in
    (as an import before such jurisdictions were refused stored it), internal sound."""
    store.import_file(write_lines([f"202,555{i:04d}" for i in range(2500)], "ftc.txt"),
                      kind="national", name="us-ftc", jurisdiction="US", snapshot_date=D)
    store.import_file(write_lines(["3055550152"], "fl.txt"), kind="state", name="us-fa",
                      jurisdiction="US-FL", snapshot_date=D)
    with store.engine.begin() as conn:
        conn.execute(update(lists_table).where(lists_table.c.name == "us-fa")
                     .values(jurisdiction="US-FA"))
    store.add_number("+12025550188", reason="asked")
    snapshot = store.snapshot_path(store.get("us-ftc"))
    assert snapshot is not None
    os.truncate(snapshot, 1000)


def test_ls_json_has_snapshot_error_and_scope_problem(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    _lists(store, write_lines)
    code, out, _ = cli(capsys, "lists", "ls", "--json")
    assert code == 0
    shown: dict[str, dict[str, Any]] = {x["name"]: x for x in json.loads(out)}
    assert "truncated or extended" in shown["us-ftc"]["snapshotError"]
    assert shown["us-ftc"]["snapshotError"] == store.snapshot_problem(store.get("us-ftc"))
    assert shown["us-ftc"]["scopeProblem"] is None
    assert shown["us-fa"]["snapshotError"] is None
    assert shown["us-fa"]["scopeProblem"] == store.get("us-fa").scope_problem
    assert "list us-fa: jurisdiction US-FA" in shown["us-fa"]["scopeProblem"]
    assert shown["internal"]["snapshotError"] is None
    assert shown["internal"]["scopeProblem"] is None
    for name in ("us-ftc", "us-fa"):  # the same words as lists stats --json
        code, out, _ = cli(capsys, "lists", "stats", name, "--json")
        stats = json.loads(out)
        assert (stats["snapshotError"], stats["scopeProblem"]) == (
            shown[name]["snapshotError"], shown[name]["scopeProblem"])


def test_ls_table_says_what_answers_error_and_what_to_do(
        store: ListStore, write_lines: Callable[..., Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    _lists(store, write_lines)
    code, out, _ = cli(capsys, "lists", "ls")
    assert code == 0
    text = " ".join(out.split())
    assert "list us-ftc: snapshot not usable (" in text
    assert "truncated or extended" in text
    assert "checks against this list answer error until then: re-import the list" in text
    assert "list us-fa: jurisdiction US-FA: FA is not a US state or territory code" in text
    assert "re-import it; checks against this list answer error (SOURCE_ERROR)" in text
    assert "list internal:" not in text
    assert text.count("ERROR (below)") == 2  # not shown as fresh
    code, out, _ = cli(capsys, "lists", "stats", "us-fa")
    assert "list us-fa: jurisdiction US-FA" in " ".join(out.split())
