"""What a bundle's manifest says about its languages and its input, built from the registry."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from xlvision.data.arrays import MNIST_MEAN, MNIST_STD, standardized
from xlvision.data.normalize import BOX, CANVAS
from xlvision.languages import available_languages, load_language


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


def language_groups(manifest: dict) -> dict[str, str]:
    """Script group per language, from the manifest (older bundles: the registry's)."""
    out = {}
    for record in manifest.get("languages") or []:
        code = record.get("code")
        group = record.get("group")
        if group is None and code in available_languages():
            group = load_language(code).group
        out[code] = group or code
    return out


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


def thickened(images: torch.Tensor, passes: int) -> torch.Tensor:
    """uint8 [N, H, W] digits (bright ink on a dark ground) with their strokes grown by a 3×3
    maximum filter `passes` times (0: as they are): a thin pen made to look like the strokes
    the model was trained on (`preprocessing.thicken`, set by the stroke step of adaptation)."""
    if not passes:
        return images
    grown = images.unsqueeze(1).float()
    for _ in range(passes):
        grown = F.max_pool2d(grown, 3, stride=1, padding=1)
    return grown.squeeze(1).to(images.dtype)


def model_input(images: torch.Tensor, preprocessing: dict) -> torch.Tensor:
    """uint8 [N, H, W] digits → the float [N, 1, H, W] input the bundle's models were trained on
    (strokes grown first if the bundle was adapted to a thin pen: `thickened`)."""
    images = thickened(images, int(preprocessing.get("thicken", 0)))
    return standardized(images, float(preprocessing["mean"]), float(preprocessing["std"]))
