"""What a reader returns before normalization: images as stored, labels checked to be digits."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xlvision.data.errors import DataError

SPLITS = ("train", "val", "test")
"""Split names a file may provide; a file without any is read as `train` and split by seed."""

CHANNELS = (1, 3, 4)


GZIP_MAGIC = b"\x1f\x8b"


def file_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they are gzip; a user's bad file fails in one line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip ({err})") from None


@dataclass
class RawDigits:
    """Images of any size/dtype ([N, H, W], [N, H, W, C] or a list of such images), int64 labels."""

    images: np.ndarray | list[np.ndarray]
    labels: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def check_images(images: np.ndarray, where: str) -> np.ndarray:
    """Images as [N, H, W] or channels-last [N, H, W, C]; channels-first [N, C, H, W] is moved."""
    if images.dtype.kind not in "biuf":
        raise DataError(f"{where}: images must be numeric, got dtype {images.dtype}")
    if images.ndim == 4 and images.shape[-1] not in CHANNELS and images.shape[1] in CHANNELS:
        images = np.moveaxis(images, 1, -1)
    shape_ok = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in CHANNELS)
    if not shape_ok or min(images.shape[1:3], default=0) < 1:
        raise DataError(
            f"{where}: images must be N×H×W or N×H×W×C (C in 1, 3, 4), got shape {images.shape}"
        )
    if images.shape[0] == 0:
        raise DataError(f"{where}: holds no images")
    return images


def check_labels(labels: np.ndarray, count: int, where: str) -> np.ndarray:
    """Labels as int64 [N] with values 0–9, one per image."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise DataError(
            f"{where}: labels must be one value per image (shape [N]), got {labels.shape}"
        )
    if labels.dtype.kind not in "biuf":
        raise DataError(f"{where}: labels must be numbers, got dtype {labels.dtype}")
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
        raise DataError(f"{where}: labels must be whole numbers, found non-integer values")
    if labels.shape[0] != count:
        raise DataError(f"{where}: {labels.shape[0]} labels for {count} images")
    outside = (labels < 0) | (labels > 9)
    if outside.any():
        bad = ", ".join(str(v) for v in np.unique(labels[outside])[:5].tolist())
        raise DataError(
            f"{where}: labels must be digits 0–9, found {bad} ({int(outside.sum())} of {count} labels)"
        )
    return labels.astype(np.int64)


def check_groups(groups: np.ndarray, count: int, where: str) -> np.ndarray:
    """Group ids (writers, sheets) as int64 [N]: no group may span two splits."""
    if groups.ndim != 1 or groups.shape[0] != count:
        raise DataError(
            f"{where}: groups must be one id per image ({count}), got shape {groups.shape}"
        )
    if groups.dtype.kind not in "biu":
        _, groups = np.unique(groups, return_inverse=True)
    return groups.astype(np.int64)


def raw_digits(
    images: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray,
    groups: np.ndarray | None,
    where: str,
    labels_where: str | None = None,
    groups_where: str | None = None,
) -> RawDigits:
    """A validated `RawDigits`; errors name `where` (the file, or file[array]) of the culprit."""
    if isinstance(images, np.ndarray):
        images = check_images(images, where)
        count = images.shape[0]
    else:
        images = list(images)
        count = len(images)
        if count == 0:
            raise DataError(f"{where}: holds no images")
    labels = check_labels(np.asarray(labels), count, labels_where or where)
    if groups is not None:
        groups = check_groups(np.asarray(groups), count, groups_where or where)
    return RawDigits(images, labels, groups)
