"""The package's shape: no import cycles (module level or inside functions: a function-level
import is not a way around a cycle), layers that only call downwards, no module reaching
into another package's private names, and private implementation modules, as httpx keeps
them: a module that no other package imports is named ``_name``, and no other package imports
a ``_name`` module (issue 13)."""

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


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The nodes under ``if TYPE_CHECKING:`` (annotations only: never imported at run time)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(sub) for sub in ast.walk(node))
    return skip


def _imports(name: str, anywhere: bool = False) -> list[tuple[str, list[str]]]:
    """(imported module, names) of every module-level import (not under TYPE_CHECKING), or of
    every import anywhere in the module (functions included)."""
    tree = ast.parse(MODULES[name].read_text("utf-8"))
    skip = _type_checking_only(tree)
    out: list[tuple[str, list[str]]] = []
    for node in (ast.walk(tree) if anywhere else tree.body):
        if id(node) in skip:
            continue
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
                # from package import module: that module too
                out.extend((f"{target}.{n}", []) for n in names if f"{target}.{n}" in MODULES)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    """Every import counts, those inside functions too (TYPE_CHECKING ones do not)."""
    graph = {m: {t for t, _ in _imports(m, anywhere=True) if t in MODULES and t != m}
             for m in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


#: What each layer must not import (docs/architecture.md draws the layers).
BANNED = {
    "dncguard.engine": ("dncguard.cli", "dncguard.server", "dncguard.sandbox"),
    "dncguard.sources": ("dncguard.engine.scrubber", "dncguard.engine.run", "dncguard.cli",
                         "dncguard.server", "dncguard.sandbox"),
    "dncguard.lists": ("dncguard.engine", "dncguard.sources", "dncguard.cli",
                       "dncguard.server", "dncguard.sandbox"),
    "dncguard.io": ("dncguard.engine", "dncguard.sources", "dncguard.lists", "dncguard.audit",
                    "dncguard.cli", "dncguard.server", "dncguard.sandbox"),
}


def test_the_layers_only_call_downwards() -> None:
    """The engine never imports the apps (CLI, server, sandbox); the sources never import the
    engine's scrubber or the apps; the lists neither; io imports none of them."""
    found = []
    for m in MODULES:
        for layer, banned in BANNED.items():
            if m != layer and not m.startswith(layer + "."):
                continue
            found.extend(f"{m} imports {t}" for t, _ in _imports(m, anywhere=True)
                         if any(t == b or t.startswith(b + ".") for b in banned))
    assert found == []


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


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _private_module(name: str) -> bool:
    last = name.rsplit(".", 1)[1]
    return last.startswith("_") and not last.startswith("__")


def _named_imports() -> dict[str, set[str]]:
    """Modules imported by name, through importlib: the tables' modules that the migrations
    load (``migrations.TABLE_MODULES``) and the settings sections that ``config show`` lists
    (``config.SECTION_CLASSES``), by the module that names them."""
    from dncguard.config import SECTION_CLASSES
    from dncguard.migrations import TABLE_MODULES

    return {"dncguard.migrations": set(TABLE_MODULES),
            "dncguard.config": {v.split(":")[0] for v in SECTION_CLASSES.values()}}


NAMED = _named_imports()


def test_the_named_imports_are_modules() -> None:
    assert all(m in MODULES for names in NAMED.values() for m in names)


def _imported_modules(name: str) -> set[str]:
    """The package modules ``name`` imports (``from pkg import mod`` counts as ``pkg.mod``,
    and a module named in a string for importlib counts too)."""
    out = set(NAMED.get(name, ()))
    for target, names in _imports(name, anywhere=True):
        out.update(t for t in [target, *(f"{target}.{n}" for n in names)] if t in MODULES)
    return out


def test_no_private_module_from_another_package() -> None:
    found = sorted(f"{m} imports {t}" for m in MODULES for t in _imported_modules(m)
                   if _private_module(t) and not _inside(m, _package(t)))
    assert found == []


def test_modules_no_other_package_imports_are_private() -> None:
    """A sub-package's public modules are its interface: each is imported by another package
    (or is the package's ``__main__``). Alembic's own files keep the names Alembic expects."""
    used_outside = {t for m in MODULES for t in _imported_modules(m)
                    if not _inside(m, _package(t))}
    found = sorted(m for m in MODULES
                   if m.count(".") >= 2 and MODULES[m].name != "__init__.py"
                   and not m.rsplit(".", 1)[1].startswith("_")
                   and not m.startswith("dncguard.migrations.")
                   and m not in used_outside)
    assert found == []
