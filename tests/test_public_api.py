"""The package's public surface is exactly what __all__ names."""

from __future__ import annotations

import dncguard


def test_all_names_exist_and_are_sorted() -> None:
    assert dncguard.__all__ == sorted(dncguard.__all__)
    for name in dncguard.__all__:
        assert hasattr(dncguard, name), name


def test_public_names_are_exported() -> None:
    for name in dncguard.__all__:  # the package loads its names on first use
        getattr(dncguard, name)
    public = {n for n in vars(dncguard) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(dncguard, n)).__name__ == "module"}
    assert public - modules == set(dncguard.__all__) - {"__version__"}
