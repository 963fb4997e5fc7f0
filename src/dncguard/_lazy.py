"""Modules imported on first use, so that a process that never needs them never pays for them.

PyArrow and httpx take a few hundred milliseconds to import; the file scrub and the remote
sources need them, ``dncguard check`` and ``dncguard --help`` do not (issue 12: CLI start
time). A module that uses them writes, instead of ``import pyarrow as pa``::

    if TYPE_CHECKING:
        import pyarrow as pa
    else:
        pa = lazy_import("pyarrow", globals(), "pa")

and its code is unchanged: the first attribute access (``pa.array``) imports the module and
puts it in place of the stand-in, so later accesses cost nothing extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    """Stands in for a module under ``alias`` in ``namespace`` until an attribute is used."""

    __slots__ = ("_alias", "_name", "_namespace")

    def __init__(self, name: str, namespace: dict[str, Any], alias: str) -> None:
        self._name = name
        self._namespace = namespace
        self._alias = alias

    def _load(self) -> ModuleType:
        module = importlib.import_module(self._name)
        if self._namespace.get(self._alias) is self:
            self._namespace[self._alias] = module
        return module

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, imported on first use>"


def lazy_import(name: str, namespace: dict[str, Any], alias: str) -> Any:
    """A stand-in for module ``name`` bound as ``alias`` in ``namespace`` (a module's
    ``globals()``); the module is imported when one of its attributes is first used."""
    return _LazyModule(name, namespace, alias)
