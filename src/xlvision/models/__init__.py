"""Backbones, per-language heads and the registry that rebuilds them by name.

Names load on first use, so importing a light submodule (its config dataclass, say)
does not import torch."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "DIGIT_HEAD": "xlvision.models.classifier",
    "LID_HEAD": "xlvision.models.classifier",
    "Classifier": "xlvision.models.classifier",
    "LanguageHeads": "xlvision.models.classifier",
    "language_codes": "xlvision.models.classifier",
    "MODELS": "xlvision.models.registry",
    "build_backbone": "xlvision.models.registry",
    "build_classifier": "xlvision.models.registry",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
