"""Backbones, per-language heads and the registry that rebuilds them by name."""

from xlvision.models.classifier import Classifier, LanguageHeads
from xlvision.models.registry import MODELS, build_backbone, build_classifier

__all__ = ["MODELS", "Classifier", "LanguageHeads", "build_backbone", "build_classifier"]
