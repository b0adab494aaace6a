"""MNIST's own preprocessing, batched: any digit scan becomes uint8 [N, 28, 28], bright on dark.

LeCun et al. fitted each NIST digit's bounding box into 20×20 (antialiased, aspect kept) and
placed it in 28×28 so that its centre of mass fell on the centre. Doing the same to every
real set gives the convention of `DigitArrays`, which the synthetic glyphs share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

POLARITIES = ("auto", "per_image", "bright_on_dark", "dark_on_bright")
"""`auto` decides once per call by a majority of per-image votes (a set is scanned one way);
`per_image` decides each image alone, for sets that mix both, like SVHN's house numbers."""

CANVAS = 28
BOX = 20
MASS_CENTRE = 14.0
"""Row and column (pixel indices) where the digit's centre of mass lands, as in MNIST."""

LUMA = (0.299, 0.587, 0.114)
VOTERS = 4096
"""Images sampled to decide a set's polarity; more would only cost time."""


def _gray(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Float32 [N, H, W]; colour by ITU-R 601 luma, transparency composited over white paper."""
    a = images.numpy(force=True) if isinstance(images, torch.Tensor) else np.asarray(images)
    white = float(np.iinfo(a.dtype).max) if a.dtype.kind in "ui" else 1.0
    x = torch.from_numpy(a.astype(np.float32))
    if x.ndim == 4 and x.shape[-1] == 4:
        alpha = x[..., 3:] / white
        x = x[..., :3] * alpha + white * (1 - alpha)
    if x.ndim == 4 and x.shape[-1] == 3:
        x = x @ torch.tensor(LUMA)
    elif x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"images must be [N, H, W] or [N, H, W, C], got {tuple(x.shape)}")
    return x.contiguous()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Intra-op threads off: on these small batches OpenMP's fork/join costs more than a second
    core gains, and on a busy machine it made HODA 5× slower (21 s against 4 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _border(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[:, 0, :], x[:, -1, :], x[:, 1:-1, 0], x[:, 1:-1, -1]], dim=1)


def dark_background_votes(x: torch.Tensor) -> torch.Tensor:
    """Per image: True where the border is bright, i.e. dark ink on a bright page.

    The border's median is compared with the midpoint of the image's range. Comparing the
    border's mean with the image's mean misjudges digits whose strokes run off the frame: it
    calls 80% of the Telugu CMATERdb images dark-on-bright; the median rule calls 2.5%.
    """
    low, high = x.amin(dim=(1, 2)), x.amax(dim=(1, 2))
    return _border(x).median(dim=1).values > (low + high) / 2


def _area_weights(centre: torch.Tensor, scale: torch.Tensor, size: int) -> torch.Tensor:
    """[n, CANVAS, size] resampling matrices: output pixel u averages the source interval that
    maps onto it, so shrinking is antialiased (area filter) and enlarging is bilinear."""
    u = torch.arange(CANVAS, dtype=torch.float32)
    source = centre[:, None] + (u[None, :] - MASS_CENTRE) / scale[:, None]
    half = 0.5 * torch.clamp(1.0 / scale, min=1.0)[:, None, None]
    k = torch.arange(size, dtype=torch.float32)[None, None, :]
    t = source[:, :, None]
    overlap = torch.clamp(k + 0.5, max=t + half) - torch.clamp(k - 0.5, min=t - half)
    return overlap.clamp(min=0) / (2 * half)


def _ink_box(rows: torch.Tensor, cols: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """First and last inked row and column per image (the whole image where there is no ink)."""
    h, w = rows.shape[1], cols.shape[1]
    top = rows.byte().argmax(dim=1)
    bottom = h - 1 - rows.flip(1).byte().argmax(dim=1)
    left = cols.byte().argmax(dim=1)
    right = w - 1 - cols.flip(1).byte().argmax(dim=1)
    empty = ~rows.any(dim=1)
    top, left = top.masked_fill(empty, 0), left.masked_fill(empty, 0)
    return top, bottom.masked_fill(empty, h - 1), left, right.masked_fill(empty, w - 1)


def _linked(x: torch.Tensor) -> torch.Tensor:
    """Each pixel capped by its brightest 8-neighbour: a lone speck sinks, strokes stay."""
    around = torch.zeros_like(x)
    around[:, 1:] = x[:, :-1]
    around[:, :-1].clamp_(min=x[:, 1:])
    column = torch.clamp(around, min=x)
    around[:, :, 1:].clamp_(min=column[:, :, :-1])
    around[:, :, :-1].clamp_(min=column[:, :, 1:])
    return around.clamp_(max=x)


def _inside(first: torch.Tensor, last: torch.Tensor, size: int) -> torch.Tensor:
    index = torch.arange(size)[None]
    return ((index >= first[:, None]) & (index <= last[:, None])).float()


def _normalize_batch(x: torch.Tensor, dark: torch.Tensor, ink_threshold: float) -> torch.Tensor:
    """One same-sized batch: float [n, H, W] in (modified in place), uint8 [n, 28, 28] out."""
    h, w = x.shape[1:]
    if dark.any():
        low, high = x[dark].amin(dim=(1, 2)), x[dark].amax(dim=(1, 2))
        x[dark] = (low + high)[:, None, None] - x[dark]
    image_median = x[:, ::4, ::4].flatten(1).median(dim=1).values
    background = torch.minimum(_border(x).median(dim=1).values, image_median)
    x.sub_(background[:, None, None]).clamp_(min=0)
    peak = x.amax(dim=(1, 2))

    level = (ink_threshold * peak).clamp(min=1e-12)[:, None]
    linked = _linked(x)
    ink_rows, ink_cols = linked.amax(dim=2) >= level, linked.amax(dim=1) >= level
    specks_only = ~ink_rows.any(dim=1, keepdim=True)
    ink_rows = torch.where(specks_only, x.amax(dim=2) >= level, ink_rows)
    ink_cols = torch.where(specks_only, x.amax(dim=1) >= level, ink_cols)
    top, bottom, left, right = _ink_box(ink_rows, ink_cols)
    rows, cols = _inside(top, bottom, h), _inside(left, right, w)

    row_mass = (x @ cols[:, :, None])[:, :, 0] * rows
    col_mass = (rows[:, None, :] @ x)[:, 0, :] * cols
    mass = row_mass.sum(dim=1).clamp(min=1e-12)
    centre_row = row_mass @ torch.arange(h, dtype=torch.float32) / mass
    centre_col = col_mass @ torch.arange(w, dtype=torch.float32) / mass
    scale = BOX / (torch.maximum(bottom - top, right - left).float() + 1)
    resample_rows = _area_weights(centre_row, scale, h) * rows[:, None, :]
    resample_cols = _area_weights(centre_col, scale, w) * cols[:, None, :]
    out = resample_rows @ x @ resample_cols.mT
    out.div_(out.amax(dim=(1, 2), keepdim=True).clamp(min=1e-12))
    return out.mul_(255).round_().to(torch.uint8)


def normalize_digits(
    images: np.ndarray | torch.Tensor | Sequence[np.ndarray],
    polarity: str = "auto",
    *,
    ink_threshold: float = 0.25,
    chunk_size: int = 512,
) -> torch.Tensor:
    """Digits as MNIST made them: uint8 [N, 28, 28], bright ink, ~20 px, centred by mass.

    Steps per image: grayscale; flip dark-on-bright scans (see `polarity`); subtract the
    background and divide by the image's own peak, so faint scans reach full range; crop to the
    box of pixels above `ink_threshold` × peak, ignoring isolated one-pixel specks; resize the
    box's longer side to 20 px (area filter); place the centre of mass at (14, 14).
    `images` is one array [N, H, W(, C)] or a sequence of 2-D/3-D images of mixed sizes.
    """
    if polarity not in POLARITIES:
        raise ValueError(f"polarity={polarity!r}; allowed: {', '.join(POLARITIES)}")
    if isinstance(images, (np.ndarray, torch.Tensor)):
        batches = [(images, torch.arange(len(images)))]
    else:
        batches = _same_size_batches(images)
    count = sum(len(index) for _, index in batches)
    out = torch.zeros(count, CANVAS, CANVAS, dtype=torch.uint8)
    if count == 0:
        return out
    with torch.no_grad(), _one_thread():
        set_is_dark = polarity == "dark_on_bright"
        if polarity == "auto":
            set_is_dark = _majority_dark(batches, count)
        for stack, index in batches:
            for start in range(0, len(index), chunk_size):
                x = _gray(stack[start : start + chunk_size])
                if polarity == "per_image":
                    dark = dark_background_votes(x)
                else:
                    dark = torch.full((len(x),), set_is_dark)
                out[index[start : start + chunk_size]] = _normalize_batch(x, dark, ink_threshold)
    return out


def _majority_dark(batches: list[tuple[np.ndarray, torch.Tensor]], count: int) -> bool:
    """The polarity most images vote for, from an evenly spread sample of at most VOTERS."""
    step = max(1, -(-count // VOTERS))
    votes = torch.cat([dark_background_votes(_gray(stack[::step])) for stack, _ in batches])
    return bool(votes.float().mean() > 0.5)


def _same_size_batches(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, torch.Tensor]]:
    """Mixed-size images grouped by shape, each group stacked, with its positions in the input."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(tuple(np.shape(image)), []).append(i)
    return [
        (np.stack([np.asarray(images[i]) for i in index]), torch.tensor(index))
        for index in by_shape.values()
    ]
