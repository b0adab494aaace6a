"""Backbones, per-language heads and the registry that rebuilds them by name."""

from xlvision.models.classifier import (
    DIGIT_HEAD,
    LID_HEAD,
    Classifier,
    LanguageHeads,
    language_codes,
)
from xlvision.models.registry import MODELS, build_backbone, build_classifier

__all__ = [
    "DIGIT_HEAD",
    "LID_HEAD",
    "MODELS",
    "Classifier",
    "LanguageHeads",
    "build_backbone",
    "build_classifier",
    "language_codes",
]
