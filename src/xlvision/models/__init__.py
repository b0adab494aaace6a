"""Backbones, per-language heads and the registry that rebuilds them by name.

Names load on first use, so importing a light submodule (its config dataclass, say)
does not import torch."""

from __future__ import annotations

from xlvision.lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _WHERE)
