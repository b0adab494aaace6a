"""Package namespaces whose names load on first use, so importing a light submodule (a config
dataclass, say) does not import torch, Lightning or matplotlib through its package."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_namespace(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """`(__getattr__, __all__)` for `package`; `exports` maps each submodule (relative to the
    package) to the names it provides, separated by spaces."""
    where = {
        name: f"{package}.{module}" for module, names in exports.items() for name in names.split()
    }

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(where)
