"""MNIST's own preprocessing, batched: any digit scan becomes uint8 [N, 28, 28], bright on dark.

LeCun et al. fitted each NIST digit's bounding box into 20×20 (antialiased, aspect kept) and
placed it in 28×28 so that its centre of mass fell on the centre. Doing the same to every
real set gives the convention of `DigitArrays`, which the synthetic glyphs share.

NumPy only: prediction from an exported ONNX file runs it without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

POLARITIES = ("auto", "per_image", "bright_on_dark", "dark_on_bright")
"""`auto` decides once per call by a majority of per-image votes (a set is scanned one way);
`per_image` decides each image alone, for sets that mix both, like SVHN's house numbers."""

CANVAS = 28
BOX = 20
MASS_CENTRE = 14.0
"""Row and column (pixel indices) where the digit's centre of mass lands, as in MNIST."""

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
VOTERS = 4096
"""Images sampled to decide a set's polarity; more would only cost time."""


def _as_array(images) -> np.ndarray:
    """A NumPy view of an array or tensor (a torch tensor is read without importing torch)."""
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        return images.detach().cpu().numpy()
    return np.asarray(images)


def _gray(images) -> np.ndarray:
    """Float32 [N, H, W]; colour by ITU-R 601 luma, transparency composited over white paper."""
    a = _as_array(images)
    white = float(np.iinfo(a.dtype).max) if a.dtype.kind in "ui" else 1.0
    x = a.astype(np.float32)
    if x.ndim == 4 and x.shape[-1] == 4:
        alpha = x[..., 3:] / np.float32(white)
        x = x[..., :3] * alpha + np.float32(white) * (1 - alpha)
    if x.ndim == 4 and x.shape[-1] == 3:
        x = x @ LUMA
    elif x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"images must be [N, H, W] or [N, H, W, C], got {tuple(x.shape)}")
    return np.ascontiguousarray(x, dtype=np.float32)


def lower_median(x: np.ndarray, axis: int = 1) -> np.ndarray:
    """The lower of the two middle values for an even count (torch's median), along `axis`."""
    k = (x.shape[axis] - 1) // 2
    return np.take(np.partition(x, k, axis=axis), k, axis=axis)


def _border(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[:, 0, :], x[:, -1, :], x[:, 1:-1, 0], x[:, 1:-1, -1]], axis=1)


def dark_background_votes(images) -> np.ndarray:
    """Per image: True where the border is bright, i.e. dark ink on a bright page.

    The border's median is compared with the midpoint of the image's range. Comparing the
    border's mean with the image's mean misjudges digits whose strokes run off the frame: it
    calls 80% of the Telugu CMATERdb images dark-on-bright; the median rule calls 2.5%.
    """
    x = _as_array(images).astype(np.float32, copy=False)
    low, high = x.min(axis=(1, 2)), x.max(axis=(1, 2))
    return lower_median(_border(x)) > (low + high) / 2


def _area_weights(centre: np.ndarray, scale: np.ndarray, size: int) -> np.ndarray:
    """[n, CANVAS, size] resampling matrices: output pixel u averages the source interval that
    maps onto it, so shrinking is antialiased (area filter) and enlarging is bilinear."""
    u = np.arange(CANVAS, dtype=np.float32)
    source = centre[:, None] + (u[None, :] - np.float32(MASS_CENTRE)) / scale[:, None]
    half = np.float32(0.5) * np.maximum(np.float32(1.0) / scale, np.float32(1.0))[:, None, None]
    k = np.arange(size, dtype=np.float32)[None, None, :]
    t = source[:, :, None]
    overlap = np.minimum(k + np.float32(0.5), t + half) - np.maximum(k - np.float32(0.5), t - half)
    return np.maximum(overlap, 0) / (2 * half)


def _ink_box(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, ...]:
    """First and last inked row and column per image (the whole image where there is no ink)."""
    h, w = rows.shape[1], cols.shape[1]
    top = rows.argmax(axis=1)
    bottom = h - 1 - rows[:, ::-1].argmax(axis=1)
    left = cols.argmax(axis=1)
    right = w - 1 - cols[:, ::-1].argmax(axis=1)
    empty = ~rows.any(axis=1)
    top, left = np.where(empty, 0, top), np.where(empty, 0, left)
    return top, np.where(empty, h - 1, bottom), left, np.where(empty, w - 1, right)


def _linked(x: np.ndarray) -> np.ndarray:
    """Each pixel capped by its brightest 8-neighbour: a lone speck sinks, strokes stay."""
    around = np.zeros_like(x)
    around[:, 1:] = x[:, :-1]
    np.maximum(around[:, :-1], x[:, 1:], out=around[:, :-1])
    column = np.maximum(around, x)
    np.maximum(around[:, :, 1:], column[:, :, :-1], out=around[:, :, 1:])
    np.maximum(around[:, :, :-1], column[:, :, 1:], out=around[:, :, :-1])
    return np.minimum(around, x, out=around)


def _inside(first: np.ndarray, last: np.ndarray, size: int) -> np.ndarray:
    index = np.arange(size)[None]
    return ((index >= first[:, None]) & (index <= last[:, None])).astype(np.float32)


def _normalize_batch(x: np.ndarray, dark: np.ndarray, ink_threshold: float) -> np.ndarray:
    """One same-sized batch: float32 [n, H, W] in (modified in place), uint8 [n, 28, 28] out."""
    h, w = x.shape[1:]
    if dark.any():
        low, high = x[dark].min(axis=(1, 2)), x[dark].max(axis=(1, 2))
        x[dark] = (low + high)[:, None, None] - x[dark]
    image_median = lower_median(x[:, ::4, ::4].reshape(len(x), -1))
    background = np.minimum(lower_median(_border(x)), image_median)
    x -= background[:, None, None]
    np.maximum(x, 0, out=x)
    peak = x.max(axis=(1, 2))

    level = np.maximum(np.float32(ink_threshold) * peak, np.float32(1e-12))[:, None]
    linked = _linked(x)
    ink_rows, ink_cols = linked.max(axis=2) >= level, linked.max(axis=1) >= level
    specks_only = ~ink_rows.any(axis=1, keepdims=True)
    ink_rows = np.where(specks_only, x.max(axis=2) >= level, ink_rows)
    ink_cols = np.where(specks_only, x.max(axis=1) >= level, ink_cols)
    top, bottom, left, right = _ink_box(ink_rows, ink_cols)
    rows, cols = _inside(top, bottom, h), _inside(left, right, w)

    row_mass = (x @ cols[:, :, None])[:, :, 0] * rows
    col_mass = (rows[:, None, :] @ x)[:, 0, :] * cols
    mass = np.maximum(row_mass.sum(axis=1), np.float32(1e-12))
    centre_row = row_mass @ np.arange(h, dtype=np.float32) / mass
    centre_col = col_mass @ np.arange(w, dtype=np.float32) / mass
    scale = (BOX / (np.maximum(bottom - top, right - left) + 1)).astype(np.float32)
    resample_rows = _area_weights(centre_row, scale, h) * rows[:, None, :]
    resample_cols = _area_weights(centre_col, scale, w) * cols[:, None, :]
    out = resample_rows @ x @ resample_cols.transpose(0, 2, 1)
    out /= np.maximum(out.max(axis=(1, 2), keepdims=True), np.float32(1e-12))
    return np.round(out * 255).astype(np.uint8)


def normalize_digits(
    images,
    polarity: str = "auto",
    *,
    ink_threshold: float = 0.25,
    chunk_size: int = 512,
) -> np.ndarray:
    """Digits as MNIST made them: uint8 [N, 28, 28], bright ink, ~20 px, centred by mass.

    Steps per image: grayscale; flip dark-on-bright scans (see `polarity`); subtract the
    background and divide by the image's own peak, so faint scans reach full range; crop to the
    box of pixels above `ink_threshold` × peak, ignoring isolated one-pixel specks; resize the
    box's longer side to 20 px (area filter); place the centre of mass at (14, 14).
    `images` is one array (or tensor) [N, H, W(, C)] or a sequence of 2-D/3-D images of mixed
    sizes.
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity={polarity!r}; allowed: {', '.join(POLARITIES)}")
    if isinstance(images, np.ndarray) or hasattr(images, "numpy"):
        images = _as_array(images)
        batches = [(images, np.arange(len(images)))]
    else:
        batches = _same_size_batches(images)
    count = sum(len(index) for _, index in batches)
    out = np.zeros((count, CANVAS, CANVAS), dtype=np.uint8)
    if count == 0:
        return out
    set_is_dark = polarity == "dark_on_bright"
    if polarity == "auto":
        set_is_dark = _majority_dark(batches, count)
    for stack, index in batches:
        for start in range(0, len(index), chunk_size):
            x = _gray(stack[start : start + chunk_size])
            if polarity == "per_image":
                dark = dark_background_votes(x)
            else:
                dark = np.full(len(x), set_is_dark)
            out[index[start : start + chunk_size]] = _normalize_batch(x, dark, ink_threshold)
    return out


def _majority_dark(batches: list[tuple[np.ndarray, np.ndarray]], count: int) -> bool:
    """The polarity most images vote for, from an evenly spread sample of at most VOTERS."""
    step = max(1, -(-count // VOTERS))
    votes = np.concatenate([dark_background_votes(_gray(stack[::step])) for stack, _ in batches])
    return bool(votes.mean() > 0.5)


def _same_size_batches(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mixed-size images grouped by shape, each group stacked, with its positions in the input."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(tuple(np.shape(image)), []).append(i)
    return [
        (np.stack([np.asarray(images[i]) for i in index]), np.array(index))
        for index in by_shape.values()
    ]
