"""A folder with one subfolder per digit (`0/` … `9/`) of image files of any size and mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from xlvision.data.errors import DataError
from xlvision.data.readers.raw import RawDigits, raw_digits

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
CLASS_FOLDERS = tuple(str(d) for d in range(10))
WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _grayscale(image: Image.Image) -> np.ndarray:
    """One 2-D array: 16-bit and float scans keep their range, transparency is laid on white."""
    if image.mode in WIDE_MODES:
        return np.asarray(image, dtype=np.float32)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        page = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(page, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.uint8)


def read_image(path: Path) -> np.ndarray:
    """One image file as a 2-D grayscale array."""
    try:
        with Image.open(path) as image:
            image.load()
            return _grayscale(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{path}: not a readable image ({err})") from None


def read_image_folder(root: Path) -> RawDigits:
    """Every image under `root/<digit>/`; labels come from the folder names."""
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected one subfolder per digit 0–9)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    strangers = [p.name for p in folders if p.name not in CLASS_FOLDERS]
    if strangers:
        raise DataError(
            f"{root}: subfolders must be named 0–9 (one per digit), found {', '.join(strangers)}"
        )
    if not folders:
        raise DataError(f"{root}: empty folder, expected subfolders 0–9 holding digit images")
    images, labels = [], []
    for folder in folders:
        files = sorted(
            p
            for p in folder.iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not files:
            raise DataError(
                f"{folder}: empty class folder (no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files)"
            )
        images.extend(read_image(path) for path in files)
        labels.extend([int(folder.name)] * len(files))
    return raw_digits(images, np.asarray(labels, dtype=np.int64), None, str(root))
