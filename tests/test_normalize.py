"""normalize_digits does what MNIST did: polarity, contrast, 20-px box, centre of mass at 14."""

from __future__ import annotations

import numpy as np
import pytest

from xlvision.data.normalize import dark_background_votes, normalize_digits


def seven(size: int = 64, top: int = 5, left: int = 8, scale: float = 1.0) -> np.ndarray:
    """A bright-on-dark '7' drawn with thick strokes, `scale` × 30 px tall at (top, left)."""
    image = np.zeros((size, size), dtype=np.uint8)
    height, width, stroke = round(30 * scale), round(20 * scale), max(2, round(4 * scale))
    image[top : top + stroke, left : left + width] = 255
    for row in range(top, top + height):
        col = left + width - stroke - round((row - top) * (width - stroke) / height / 1.5)
        image[row, col : col + stroke] = 255
    return image


def mass_centre(image: np.ndarray) -> tuple[float, float]:
    x = image.astype(np.float64)
    rows, cols = np.arange(x.shape[0]), np.arange(x.shape[1])
    return float(x.sum(1) @ rows / x.sum()), float(x.sum(0) @ cols / x.sum())


def ink_extent(image: np.ndarray, level: int = 64) -> tuple[int, int]:
    rows = np.flatnonzero((image >= level).any(1))
    cols = np.flatnonzero((image >= level).any(0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def test_output_is_uint8_28x28_per_image() -> None:
    out = normalize_digits(np.stack([seven(), seven(top=20, left=30)]))
    assert out.dtype == np.uint8 and out.shape == (2, 28, 28)
    assert int(out.max()) == 255 and int(out[:, 0, :].max()) == 0


def test_small_off_centre_digit_is_centred_by_mass_and_fits_20px() -> None:
    image = seven(size=64, top=40, left=2, scale=0.5)
    out = normalize_digits(image[None])[0]
    row, col = mass_centre(out)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5
    height, width = ink_extent(out)
    assert abs(max(height, width) - 20) <= 1
    assert abs(width - height * 20 / 30) <= 2


def test_tall_thin_digit_keeps_its_aspect_ratio() -> None:
    image = np.zeros((60, 60), dtype=np.uint8)
    image[5:55, 28:33] = 200
    out = normalize_digits(image[None])[0]
    height, width = ink_extent(out)
    assert abs(height - 20) <= 1
    assert width in (2, 3)


def test_polarity_is_detected_both_ways() -> None:
    bright = np.stack([seven(top=t, left=t) for t in (4, 10, 16)])
    dark = 255 - bright
    assert dark_background_votes(bright.astype(np.float32)).tolist() == [False] * 3
    assert dark_background_votes(dark.astype(np.float32)).tolist() == [True] * 3
    from_bright, from_dark = normalize_digits(bright), normalize_digits(dark)
    assert np.array_equal(from_bright, from_dark)


def test_polarity_can_be_forced_and_mixed_sets_decided_per_image() -> None:
    bright, dark = seven(), 255 - seven()
    forced = normalize_digits(bright[None], polarity="dark_on_bright")[0]
    detected = normalize_digits(bright[None])[0]
    assert forced.astype(np.float32).sum() < detected.astype(np.float32).sum() / 4
    mixed = normalize_digits(np.stack([bright, dark, bright]), polarity="per_image")
    assert np.array_equal(mixed[0], mixed[1]) and np.array_equal(mixed[0], mixed[2])
    majority = normalize_digits(np.stack([bright, dark, bright]), polarity="auto")
    assert np.array_equal(majority[0], mixed[0]) and not np.array_equal(majority[1], mixed[1])


def test_faint_scan_is_stretched_to_full_range() -> None:
    full = seven()
    faint = (10 + full.astype(np.float32) * 30 / 255).astype(np.uint8)
    assert faint.max() == 40 and faint.min() == 10
    out_faint, out_full = normalize_digits(np.stack([faint, full]))
    assert int(out_faint.max()) == 255
    assert np.array_equal(out_faint, out_full)


def test_isolated_specks_do_not_widen_the_crop() -> None:
    clean = seven(top=20, left=20)
    specked = clean.copy()
    specked[1, 1] = specked[62, 60] = 255
    out_clean, out_specked = normalize_digits(np.stack([clean, specked]))
    assert ink_extent(out_specked) == ink_extent(out_clean)
    assert np.abs(out_specked.astype(np.float32) - out_clean.astype(np.float32)).max() < 40


def test_colour_and_mixed_size_inputs() -> None:
    gray = seven(48, top=6, left=10)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    out_rgb = normalize_digits(rgb[None])[0]
    assert np.array_equal(out_rgb, normalize_digits(gray[None])[0])
    small, large = seven(40, top=3, left=3), seven(90, top=30, left=40, scale=2)
    out = normalize_digits([small, large, gray])
    assert out.shape == (3, 28, 28)
    assert np.array_equal(out[2], out_rgb)
    assert (
        np.corrcoef(out[0].astype(np.float32).ravel(), out[1].astype(np.float32).ravel())[0, 1]
        > 0.9
    )


def test_blank_image_gives_blank_output() -> None:
    out = normalize_digits(np.zeros((2, 32, 32), dtype=np.uint8))
    assert out.shape == (2, 28, 28) and int(out.max()) == 0


def test_unknown_polarity_is_refused() -> None:
    with pytest.raises(ValueError, match="polarity='inverted'; allowed: auto, per_image"):
        normalize_digits(np.zeros((1, 28, 28), dtype=np.uint8), polarity="inverted")
