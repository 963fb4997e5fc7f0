"""The package's shape: no import cycles at module level, and no module reaching into
another package's private names (issue 13)."""

from __future__ import annotations

import ast
from pathlib import Path

import dncguard

ROOT = Path(dncguard.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _package(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rsplit(".", 1)[0]


def _imports(name: str, anywhere: bool = False) -> list[tuple[str, list[str]]]:
    """(imported module, names) of every module-level import (not under TYPE_CHECKING and
    not inside functions: those are how a cycle is deliberately broken), or of every import
    anywhere in the module."""
    tree = ast.parse(MODULES[name].read_text("utf-8"))
    out: list[tuple[str, list[str]]] = []
    for node in (ast.walk(tree) if anywhere else tree.body):
        if isinstance(node, ast.Import):
            out.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package(name).split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            if node.module is None:  # from . import x: the submodules
                out.extend((f"{target}.{n}", []) for n in names)
            else:
                out.append((target, names))
    return out


def test_no_import_cycles() -> None:
    graph = {m: {t for t, _ in _imports(m) if t in MODULES and t != m} for m in MODULES}
    seen: dict[str, int] = {}  # 1: on the path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for t in sorted(graph[m]):
            if seen.get(t) == 1:
                cycles.append([*path[path.index(t):], t])
            elif t not in seen:
                visit(t, [*path, t])
        seen[m] = 2

    for m in sorted(graph):
        if m not in seen:
            visit(m, [m])
    assert cycles == []


def test_no_private_names_from_another_package() -> None:
    found = []
    for m in MODULES:
        here = _package(m)
        for target, names in _imports(m, anywhere=True):
            if not target.startswith("dncguard") or target not in MODULES:
                continue
            if _package(target) == here:
                continue
            found.extend(f"{m} imports {target}.{n}" for n in names
                         if n.startswith("_") and not n.startswith("__"))
    assert found == []
