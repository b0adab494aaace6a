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


REJECT_ALLOWED = "auto, none, or a probability in [0, 1]"


def is_reject_value(v: Any) -> bool:
    """`reject=` of xlv-predict and xlv-eval: auto, none (or null), or a number in [0, 1]."""
    if v is None or v in ("auto", "none"):
        return True
    return is_number(v) and 0 <= v <= 1
