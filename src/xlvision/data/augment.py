"""The glyph augmentation, applied to digits already in the 28×28 convention (real examples).

A few real examples per class are easy to memorize; drawn afresh every time with the glyph
generator's stroke, geometry, elastic, blur and noise ranges (`data.augment`), they teach the
variation of a hand rather than ten particular images.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor

from xlvision.data.glyphs import OUTPUT_SIZE, _morph, _uniform, warp_and_blur

SCALE_JITTER = 0.1  # a real digit already fills its 20-px box: ± this share, not the glyph range
UPSAMPLE = 2  # stroke changes happen at twice the resolution, in half-pixel steps


def scaled_augment(augment, level: float) -> SimpleNamespace:
    """`augment` with every range `augment_digits` draws from (stroke, aspect, rotation, shear,
    translation, elastic displacement, blur, noise) multiplied by `level`: 0 leaves a digit
    nearly as it is, 1 is the glyph augmentation, above 1 stronger."""
    out = SimpleNamespace(**{k: augment[k] for k in augment})
    for key in ("aspect", "rotation", "shear", "translation", "elastic_alpha", "noise"):
        setattr(out, key, float(augment[key]) * level)
    out.stroke = [float(v) * level for v in augment["stroke"]]
    out.blur = [float(v) * level for v in augment["blur"]]
    return out


def augment_digits(images: Tensor, augment, gen: torch.Generator) -> Tensor:
    """Augmented copies of uint8-range float digits [N, 28, 28] in [0, 1], same shape."""
    n = images.shape[0]
    x = images.unsqueeze(1)
    # Stroke width: dilate or erode at twice the resolution by a whole number of half pixels.
    big = F.interpolate(x, scale_factor=UPSAMPLE, mode="bilinear", align_corners=False)
    low, high = max(augment.stroke[0], -1.0), min(augment.stroke[1], 1.0)
    steps = _uniform(n, low, high, gen).round().long()
    for px in steps.unique().tolist():
        where = steps == px
        big[where] = _morph(big[where], px).clamp(0, 1)
    src = F.avg_pool2d(big, UPSAMPLE)

    scale = 1 + _uniform(n, -SCALE_JITTER, SCALE_JITTER, gen)
    aspect = torch.exp(_uniform(n, -augment.aspect, augment.aspect, gen))
    angle = torch.deg2rad(_uniform(n, -augment.rotation, augment.rotation, gen))
    shear = _uniform(n, -augment.shear, augment.shear, gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear_m = torch.eye(2).repeat(n, 1, 1)
    shear_m[:, 0, 1] = shear
    stretch = torch.zeros(n, 2, 2)
    stretch[:, 0, 0] = aspect / scale
    stretch[:, 1, 1] = 1 / (scale * aspect)
    linear = stretch @ shear_m @ rot
    shift = _uniform(n * 2, -augment.translation, augment.translation, gen).view(n, 2)
    theta = torch.cat([linear, (shift / (OUTPUT_SIZE / 2)).unsqueeze(-1)], dim=2)
    out = warp_and_blur(src, theta, augment, gen)
    if augment.noise > 0:
        out = out + torch.randn(out.shape, generator=gen) * augment.noise
    return out.clamp(0, 1).squeeze(1)
