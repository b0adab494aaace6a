"""model.pen=one: every image redrawn with one pen before the first layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xlvision.config.compose import compose_config
from xlvision.config.errors import ConfigError
from xlvision.config.models import PENS as CONFIG_PENS
from xlvision.data.arrays import MNIST_MEAN, MNIST_STD
from xlvision.data.glyphs import STROKE_LEVELS, _thin, glyph_masters
from xlvision.languages import load_language
from xlvision.models.net import Net
from xlvision.models.pen import INPUT_MEAN, INPUT_STD, PENS, OnePen
from xlvision.models.registry import build_backbone


def ring(width: float, radius: float = 8.0, contrast: float = 1.0) -> torch.Tensor:
    """A circle of ink `width` px wide on a 28×28 frame, standardized as the model reads it."""
    y, x = torch.meshgrid(torch.arange(28.0) + 0.5, torch.arange(28.0) + 0.5, indexing="ij")
    ink = (((y - 14) ** 2 + (x - 14) ** 2).sqrt() - radius).abs() < width / 2
    return ((contrast * ink.float() - INPUT_MEAN) / INPUT_STD)[None, None]


def ink(x: torch.Tensor) -> torch.Tensor:
    return x * INPUT_STD + INPUT_MEAN


def test_the_pen_reads_inputs_as_the_data_standardizes_them_and_config_knows_its_names():
    assert (INPUT_MEAN, INPUT_STD) == (MNIST_MEAN, MNIST_STD)
    assert CONFIG_PENS == PENS


def test_centre_lines_are_zhang_suen_on_glyphs_and_blobs():
    """The graph-friendly thinning (a 3×3 convolution codes each neighbourhood, a fixed number
    of passes) against the glyph masters' thinning: every image the same."""
    masters = glyph_masters(load_language("en"), "train")
    glyphs = F.avg_pool2d(masters.strokes[len(STROKE_LEVELS) // 2, :12], 4) > 0.5
    gen = torch.Generator().manual_seed(0)
    blobs = F.avg_pool2d(torch.rand(16, 1, 28, 28, generator=gen), 3, 1, 1) > 0.5
    pen = OnePen(passes=16)
    for batch in (glyphs, blobs):
        lines = pen.centre_lines(batch.float())
        assert lines.sum() < batch.sum()
        assert torch.equal(lines[:, 0].bool(), _thin(batch[:, 0]))


def test_one_pen_draws_any_width_the_same():
    """A ring 2 to 6 px wide: its ink triples as drawn, and stays within 15 % through the pen."""
    pen = OnePen()
    widths = (2, 3, 4, 5, 6)
    drawn = torch.stack([ink(ring(w)).sum() for w in widths])
    redrawn = torch.stack([ink(pen(ring(w))).sum() for w in widths])
    assert drawn.max() / drawn.min() > 2.5
    assert (redrawn / redrawn.mean() - 1).abs().max() < 0.15
    # Standardized like its input, ink in [0, 1], and the same ring wherever the line is.
    out = ink(pen(ring(4)))
    assert out.min() >= 0 and out.max() <= 1 + 1e-6
    assert out[0, 0, 14, 6] > 0.5 and out[0, 0, 14, 14] < 0.05


def test_a_faint_scan_is_read_as_a_dark_one():
    pen = OnePen()
    assert torch.allclose(pen(ring(4, contrast=0.4)), pen(ring(4)), atol=1e-6)
    blank = torch.full((1, 1, 28, 28), -INPUT_MEAN / INPUT_STD)
    assert torch.allclose(pen(blank), blank)


def test_a_net_with_the_pen_holds_the_same_tensors_and_trains():
    """No weights and no stored buffer: a bundle of either kind holds the same tensors."""
    plain = Net(channels=(8, 8), hidden=16)
    penned = build_backbone({"name": "net", "channels": [8, 8], "hidden": 16, "pen": "one"})
    assert plain.state_dict().keys() == penned.state_dict().keys()
    x = ring(3).repeat(4, 1, 1, 1)
    penned(x).sum().backward()
    assert all(p.grad is not None for p in penned.parameters())
    resnet = build_backbone({"name": "resnet18", "pen": "one"})
    assert isinstance(resnet.pen, OnePen)
    with pytest.raises(ValueError, match="model.pen='thick'"):
        build_backbone({"name": "net", "pen": "thick"})
    with pytest.raises(ValueError, match="one-channel"):
        OnePen()(torch.zeros(1, 3, 28, 28))


def test_config_refuses_an_unknown_pen_and_a_pen_on_colour_inputs():
    assert compose_config(["model.pen=one"]).model.pen == "one"
    assert compose_config([]).model.pen == "as_drawn"
    with pytest.raises(ConfigError, match=r"^model\.pen='thick' is not allowed"):
        compose_config(["model.pen=thick"])
    with pytest.raises(ConfigError, match=r"^model\.in_channels=3 is not allowed"):
        compose_config(["model.pen=one", "model.in_channels=3"])
