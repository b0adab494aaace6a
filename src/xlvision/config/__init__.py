"""Config schema, composition and validation.

The names below load on first use, so `xlvision.config.checks` (imported by the config
dataclasses of other packages) can be imported without the schema that imports them back.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ConfigError", "compose_config", "validate_config"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("xlvision.config.compose"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
