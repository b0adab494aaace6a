"""Backbones, per-language heads and the registry that rebuilds them by name."""

from __future__ import annotations

from xlvision.lazy import lazy_namespace

__getattr__, __all__ = lazy_namespace(
    __name__,
    {
        "classifier": "DIGIT_HEAD LID_HEAD Classifier LanguageHeads language_codes",
        "registry": "MODELS build_backbone build_classifier",
    },
)
