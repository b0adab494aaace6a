"""Package namespaces whose names load on first use, so importing a light submodule (a config
dataclass, say) does not import torch, Lightning or matplotlib through its package."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` serving `name` from the module `where[name]`."""

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
