"""One error tree: every error class dncguard raises on purpose is drawn in ``errors.py`` and
has a status in the service's single mapping (issue 13)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import dncguard
from dncguard import errors
from dncguard.errors import ContextError, DncGuardError, InputError, ListError, SourceError
from dncguard.server._errors import STATUS, status_of


def _all_errors() -> set[type[DncGuardError]]:
    for info in pkgutil.walk_packages(dncguard.__path__, "dncguard."):
        if info.name.startswith("dncguard.migrations.") or info.name.endswith("__main__"):
            continue  # alembic's env and revisions run on import
        importlib.import_module(info.name)
    found: set[type[DncGuardError]] = set()
    todo: list[type[DncGuardError]] = [DncGuardError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_is_drawn_and_mapped() -> None:
    tree = errors.__doc__ or ""
    classes = _all_errors()
    assert len(classes) >= 10
    assert sorted(c.__name__ for c in classes if c.__name__ not in tree) == []
    assert sorted(c.__name__ for c in classes if c.__name__ not in STATUS) == []


@pytest.mark.parametrize(("exc", "status"), [
    (ContextError("state", "ZZ", "a state"), 422), (InputError("x"), 422),
    (ListError("x"), 422), (SourceError("x"), 503), (DncGuardError("x"), 500),
])
def test_status_by_class(exc: DncGuardError, status: int) -> None:
    assert status_of(exc) == status
