"""One pen for every image: ink thinned to its centre line and drawn again at one width.

A rendered glyph and a scan differ in stroke width, ink and edge as much as in shape, and a
model can learn those as "rendered" or "handwritten" instead of the script. `OnePen` removes
them before the first layer (`model.pen=one`): the ink is thresholded, thinned to a one-pixel
centre line (Zhang–Suen) and drawn again with a 3-pixel pen, softened. It is part of the
backbone, so training, evaluation, a bundle, its ONNX export and the web page all read through
it; it has no weights.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INPUT_MEAN, INPUT_STD = 0.1307, 0.3081
"""How the inputs are standardized (MNIST's, as `data.arrays.standardized`; a test keeps them
in step): the pen thresholds ink, so it reads the pixels before standardization."""

PENS = ("as_drawn", "one")
"""`model.pen`: `as_drawn` reads images as they are; `one` redraws them with `OnePen`."""

# Bit i of a pixel's neighbourhood code: its neighbour n, ne, e, se, s, sw, w, nw; as 3×3 weights.
_CODE_WEIGHTS = ((128.0, 1.0, 2.0), (64.0, 0.0, 4.0), (32.0, 16.0, 8.0))


@cache
def thinning_tables() -> Tensor:
    """[2, 256]: for each of Zhang–Suen's two sub-steps, whether an ink pixel whose eight
    neighbours (bit i: n, ne, e, se, s, sw, w, nw) are `code` is removed: 2 to 6 ink
    neighbours, one 0 → 1 crossing around them, and the sub-step's side condition."""
    table = torch.zeros(2, 256, dtype=torch.bool)
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        n, _, e, _, s, _, w, _ = bits
        ring = [*bits, bits[0]]
        crossings = sum(ring[i] == 0 and ring[i + 1] == 1 for i in range(8))
        kept_shape = 2 <= sum(bits) <= 6 and crossings == 1
        table[0, code] = kept_shape and n * e * s == 0 and e * s * w == 0
        table[1, code] = kept_shape and n * e * w == 0 and n * s * w == 0
    return table


def pen_layer(pen: str) -> nn.Module:
    """`model.pen` as a layer: `as_drawn` → identity, `one` → `OnePen`."""
    if pen not in PENS:
        raise ValueError(f"model.pen={pen!r} is not allowed: one of {', '.join(PENS)}")
    return OnePen() if pen == "one" else nn.Identity()


class OnePen(nn.Module):
    """Normalized images [B, 1, H, W] → the same images redrawn with one pen, normalized alike.

    Ink is what exceeds `threshold` times the image's brightest pixel; `passes` thinning passes
    (each both sub-steps) reach the centre line of strokes up to about 2·`passes` pixels wide.
    A fixed number of passes (a pass that removes nothing changes nothing) keeps the graph
    the same for every input, as an ONNX export needs.
    """

    def __init__(
        self,
        mean: float = INPUT_MEAN,
        std: float = INPUT_STD,
        threshold: float = 0.4,
        passes: int = 10,
        width: int = 3,
    ) -> None:
        super().__init__()
        self.mean, self.std = mean, std
        self.threshold, self.passes, self.width = threshold, passes, width
        self.register_buffer("tables", thinning_tables().float(), persistent=False)
        self.register_buffer(
            "code_weights", torch.tensor(_CODE_WEIGHTS).view(1, 1, 3, 3), persistent=False
        )
        soften = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        self.register_buffer("soften", soften.view(1, 1, 3, 3), persistent=False)

    def centre_lines(self, ink: Tensor) -> Tensor:
        """Binary images [B, 1, H, W] (0./1.) → their one-pixel centre lines."""
        x = ink
        for _ in range(self.passes):
            for step in (0, 1):
                code = F.conv2d(x, self.code_weights, padding=1).long()
                x = x * (1 - x * self.tables[step][code])
        return x

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != 1:
            raise ValueError(f"model.pen=one reads one-channel images, got {x.shape[1]} channels")
        ink = x * self.std + self.mean
        peak = ink.amax(dim=(2, 3), keepdim=True)
        binary = (ink > self.threshold * peak.clamp(min=1e-3)).to(x.dtype)
        line = self.centre_lines(binary)
        low, high = (self.width - 1) // 2, self.width // 2
        drawn = F.max_pool2d(F.pad(line, (low, high, low, high)), self.width, 1)
        drawn = F.conv2d(drawn, self.soften, padding=1)
        return (drawn - self.mean) / self.std
