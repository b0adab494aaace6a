"""Backbones, per-language heads and the registry that rebuilds them by name."""

from __future__ import annotations

from xlvision.moved import moved_names

# What this package handed on before each name was imported from its own module.
__getattr__ = moved_names(
    __name__,
    {
        "xlvision.models.classifier": "DIGIT_HEAD LID_HEAD Classifier LanguageHeads language_codes",
        "xlvision.models.registry": "MODELS build_backbone build_classifier",
    },
)
