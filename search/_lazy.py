"""Public names of a package that load on first use (PEP 562), for the packages' ``__init__`` modules.

Importing a room of ``search`` then costs nothing (no TensorFlow, no Ray) until one of its
names is used, so ``mtl-search --help`` stays fast and the CLI can quiet TensorFlow first.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str],
                 namespace: Mapping[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: name ``n`` is read from module ``exports[n]`` when used."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
