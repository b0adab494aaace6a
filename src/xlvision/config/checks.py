"""Range checks shared by the config groups validated outside the schema (finetune, integrate)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from xlvision.config.errors import ConfigError

Rule = tuple[str, Callable[[Any], bool], str]


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def check_rules(conf: Any, rules: Sequence[Rule], group: str) -> Any:
    """Raise `ConfigError` naming `<group>.<key>` for the first value its rule refuses."""
    for key, check, allowed in rules:
        value = getattr(conf, key)
        if not check(value):
            raise ConfigError(f"{group}.{key}", value, allowed)
    return conf
