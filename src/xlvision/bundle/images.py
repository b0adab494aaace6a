"""Digit images from disk: files, folders or globs, read as arrays for `normalize_digits`."""

from __future__ import annotations

import glob
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from xlvision.bundle.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def find_images(spec: str) -> list[Path]:
    """An image file, every image under a folder (recursively), or the images a glob matches."""
    path = Path(spec).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        candidates = path.rglob("*")
    else:
        candidates = (Path(p) for p in glob.glob(str(path), recursive=True))
    found = sorted(p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not found:
        raise InputError(f"input={spec}: no PNG, JPEG or BMP images found")
    return found


def read_image(path: Path) -> np.ndarray:
    """[H, W] gray or [H, W, C] colour; transparency is kept for `normalize_digits` to composite."""
    try:
        with warnings.catch_warnings():
            # A digit image of over ~89 megapixels is a decompression bomb, not a scan.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            image = ImageOps.exif_transpose(image)
            if "A" in image.getbands() or image.mode == "P" or "transparency" in image.info:
                image = image.convert("RGBA")
            elif image.mode not in ("L", "RGB", "I;16"):
                image = image.convert("L")
            return np.asarray(image)
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise InputError(f"{path}: not a readable image ({reason})") from None
