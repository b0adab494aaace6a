"""What a bundle's manifest says about its languages and its input, built from the registry."""

from __future__ import annotations

import torch

from xlvision.data.arrays import MNIST_MEAN, MNIST_STD, standardized
from xlvision.data.normalize import BOX, CANVAS
from xlvision.languages import load_language


def language_record(code: str) -> dict:
    """A language as the manifest stores it: names, digits and class names (own and English)."""
    language = load_language(code)
    return {
        "code": language.code,
        "name": language.name,
        "script": language.script,
        "group": language.group,
        "digits": list(language.digits),
        "class_names": list(language.class_names),
        "class_names_en": list(language.english_names[: language.num_classes]),
    }


def digit_preprocessing() -> dict:
    """How the training data were made: `normalize_digits` (per-image polarity for mixed
    inputs), then `(pixel / 255 - mean) / std`, as `DigitArrays.normalized` does."""
    return {
        "normalize": "normalize_digits",
        "polarity": "per_image",
        "ink_threshold": 0.25,
        "canvas": CANVAS,
        "box": BOX,
        "mean": MNIST_MEAN,
        "std": MNIST_STD,
    }


def model_input(images: torch.Tensor, preprocessing: dict) -> torch.Tensor:
    """uint8 [N, H, W] digits → the float [N, 1, H, W] input the bundle's models were trained on."""
    return standardized(images, float(preprocessing["mean"]), float(preprocessing["std"]))
