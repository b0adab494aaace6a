"""The glyph generator: shapes, MNIST-like centring, determinism and the on-disk cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xlvision.config.schema import AugmentConf
from xlvision.data.cache import cache_key, cached_arrays
from xlvision.data.datamodule import DigitDataModule, glyph_splits
from xlvision.data.glyphs import (
    STROKE_LEVELS,
    _thin,
    augment_glyphs,
    generate_glyph_digits,
    glyph_masters,
)
from xlvision.languages import load_language

EN = load_language("en")


def test_shapes_dtype_and_class_balance():
    arrays = generate_glyph_digits(EN, "train", 30, AugmentConf(), seed=1)
    assert arrays.images.shape == (300, 28, 28)
    assert arrays.images.dtype == torch.uint8
    assert torch.bincount(arrays.labels, minlength=10).tolist() == [30] * 10


def test_bright_digit_on_dark_centred_by_mass():
    arrays = generate_glyph_digits(EN, "train", 50, AugmentConf(translation=0.0), seed=2)
    img = arrays.images.float() / 255
    border = torch.cat([img[:, :2].flatten(1), img[:, -2:].flatten(1)], dim=1).mean()
    assert border < 0.08 < img.mean()
    coords = torch.arange(28, dtype=torch.float32) + 0.5
    mass = img.sum(dim=(1, 2))
    cy = (img.sum(2) * coords).sum(1) / mass
    cx = (img.sum(1) * coords).sum(1) / mass
    assert (cx - 14).abs().mean() < 0.8 and (cy - 14).abs().mean() < 0.8


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = generate_glyph_digits(EN, "train", 20, AugmentConf(), seed=7)
    b = generate_glyph_digits(EN, "train", 20, AugmentConf(), seed=7)
    c = generate_glyph_digits(EN, "train", 20, AugmentConf(), seed=8)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_test_fonts_are_held_out():
    train, test = glyph_masters(EN, "train"), glyph_masters(EN, "test")
    assert set(EN.train_fonts).isdisjoint(EN.test_fonts)
    assert len(train.labels) == 10 * len(EN.train_fonts)
    assert len(test.labels) == 10 * len(EN.test_fonts)


def test_cache_stores_then_serves_identical_arrays(tmp_path):
    spec = {"probe": 1}
    made = []

    def make():
        made.append(1)
        return generate_glyph_digits(EN, "train", 5, AugmentConf(), seed=3)

    first = cached_arrays(tmp_path, spec, make)
    second = cached_arrays(tmp_path, spec, make)
    assert made == [1]
    assert torch.equal(first.images, second.images)
    assert (tmp_path / f"{cache_key(spec)}.safetensors").is_file()
    assert cache_key(spec) != cache_key({"probe": 2})


def test_splits_key_changes_with_config(make_config, tmp_path):
    cfg = make_config()
    splits = glyph_splits(cfg.data, EN, seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 400, "val": 100, "test": 200}
    files = sorted((tmp_path / "cache").glob("*.safetensors"))
    assert len(files) == 3
    other = make_config("data.augment.noise=0.1")
    glyph_splits(other.data, EN, seed=0)
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 6


def test_datamodule_batches_and_kshot(make_config):
    cfg = make_config("data.shots_per_class=3", "data.batch_size=8", "data.min_train_samples=0")
    dm = DigitDataModule(cfg.data, [EN], seed=0)
    dm.setup()
    assert dm.counts["en"] == {"train": 30, "val": 100, "test": 200}
    x, y, lang = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert lang.tolist() == [0] * 8
    labels = torch.cat([b[1] for b in dm.train_dataloader()])
    assert torch.bincount(labels, minlength=10).tolist() == [3] * 10


def test_thinning_leaves_a_one_pixel_centre_line():
    bar = torch.zeros(1, 20, 40, dtype=torch.bool)
    bar[0, 6:15, 5:35] = True  # 9 px thick, 30 px long
    line = _thin(bar)[0]
    columns = line[:, 10:30].sum(dim=0)
    assert columns.tolist() == [1] * 20  # one pixel per column along the bar's middle part
    assert torch.nonzero(line[:, 20]).item() == 10  # on the bar's centre row
    assert line.sum() < bar.sum() / 5


def _zhang_suen(ink: torch.Tensor) -> torch.Tensor:
    """Zhang–Suen thinning as the paper states it, pixel by pixel on one image."""
    x = ink.clone().int().tolist()
    rows, cols = len(x), len(x[0])

    def at(r: int, c: int) -> int:
        return x[r][c] if 0 <= r < rows and 0 <= c < cols else 0

    while True:
        changed = False
        for step in (0, 1):
            remove = []
            for r in range(rows):
                for c in range(cols):
                    if not x[r][c]:
                        continue
                    n, ne, e, se = at(r - 1, c), at(r - 1, c + 1), at(r, c + 1), at(r + 1, c + 1)
                    s, sw, w, nw = at(r + 1, c), at(r + 1, c - 1), at(r, c - 1), at(r - 1, c - 1)
                    ring = [n, ne, e, se, s, sw, w, nw, n]
                    crossings = sum(ring[i] == 0 and ring[i + 1] == 1 for i in range(8))
                    if step == 0:
                        side = n * e * s == 0 and e * s * w == 0
                    else:
                        side = n * e * w == 0 and n * s * w == 0
                    if 2 <= sum(ring[:8]) <= 6 and crossings == 1 and side:
                        remove.append((r, c))
            for r, c in remove:
                x[r][c] = 0
            changed |= bool(remove)
        if not changed:
            return torch.tensor(x, dtype=torch.bool)


def test_thinning_is_zhang_suen_pixel_for_pixel_on_glyphs_and_blobs():
    """The batched table lookup, which drops each image once it stops changing, against the
    rule applied pixel by pixel: every image the same."""
    masters = glyph_masters(EN, "train")
    glyphs = masters.strokes[len(STROKE_LEVELS) // 2, :12, 0] > 0.5
    gen = torch.Generator().manual_seed(0)
    blobs = F.avg_pool2d(torch.rand(6, 1, 24, 24, generator=gen), 3, 1, 1)[:, 0] > 0.5
    for batch in (glyphs, blobs):
        thinned = _thin(batch)
        assert thinned.sum() < batch.sum()
        for image, line in zip(batch, thinned, strict=True):
            assert torch.equal(line, _zhang_suen(image))


def _ink(font: str, augment: AugmentConf) -> float:
    """Mean ink of class 1 rendered from `font` alone (geometry and blur off)."""
    masters = glyph_masters(EN, "train")
    index = next(
        i for i in masters.of_class(1).tolist() if EN.font_paths("train")[i // 10].name == font
    )
    images = augment_glyphs(masters, torch.full((8,), index), augment, torch.Generator())
    return images.mean().item()


def test_monoline_pen_evens_out_font_weight():
    still = dict(
        rotation=0.0,
        shear=0.0,
        scale=[1.0, 1.0],
        aspect=0.0,
        translation=0.0,
        stroke=[0.0, 0.0],
        elastic_alpha=0.0,
        blur=[0.0, 0.0],
        noise=0.0,
    )
    outline = AugmentConf(**still, monoline=0.0)
    pen = AugmentConf(**still, monoline=1.0, pen=[2.5, 2.5])
    bold, regular = "NotoSerif-Bold.ttf", "NotoSerif-Regular.ttf"
    assert _ink(bold, outline) > 1.3 * _ink(regular, outline)
    assert _ink(bold, pen) == pytest.approx(_ink(regular, pen), rel=0.1)
    wide = AugmentConf(**still, monoline=1.0, pen=[4.0, 4.0])
    assert _ink(regular, wide) > 1.3 * _ink(regular, pen)


def test_binarized_samples_get_no_sensor_noise():
    noisy = AugmentConf(noise=0.1, binarize=0.0)
    binary = AugmentConf(noise=0.1, binarize=1.0)
    corners = lambda a: a.images[:, ::25, ::25].float().mean().item()  # noqa: E731
    assert corners(generate_glyph_digits(EN, "train", 10, noisy, seed=3)) > 1.0
    assert corners(generate_glyph_digits(EN, "train", 10, binary, seed=3)) == 0.0
