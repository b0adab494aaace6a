"""Test-time views: an image read as the mean of its copies' features.

A bundle with `views` other than `none` passes every image through its backbones several times,
each time slightly changed, and reads the mean of the features: a reading that hinges less on
where exactly a writer put the pen, and (`shifts_thick`) on how thin the pen was. The copies are
fixed (no randomness), so a bundle reads an image the same way every time, in PyTorch and in
its ONNX export alike (pads, slices and a maximum filter: plain graph operations).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHIFTS = ((1, 0), (-1, 0), (0, 1), (0, -1))
"""One-pixel moves (right, left, down, up), as (dx, dy)."""

VIEW_SETS = ("none", "shifts", "shifts_thick")
"""`none`: the image alone; `shifts`: it and its four one-pixel moves (5 reads);
`shifts_thick`: those and the image with its strokes grown by a 3×3 maximum filter (6 reads),
the stroke step of `xlv-adapt` as one more view."""


class Views(nn.Module):
    """`forward(x)` [B, C, H, W] → [V·B, C, H, W]: the image and its copies, view-major;
    `average(features)` [V·B, D] → [B, D]. A moved image is padded by repeating its edge: the
    edge of a digit canvas is background, whatever the normalization; the maximum filter grows
    ink in any normalization that keeps ink the larger value (as MNIST's does)."""

    def __init__(self, name: str = "none") -> None:
        super().__init__()
        if name not in VIEW_SETS:
            raise ValueError(f"views={name!r}: one of {', '.join(VIEW_SETS)}")
        self.name = name
        self.shifts = SHIFTS if name != "none" else ()
        self.thick = name == "shifts_thick"
        self.count = 1 + len(self.shifts) + int(self.thick)

    def extra_repr(self) -> str:
        return f"{self.name!r}, {self.count} reads"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.count == 1:
            return x
        h, w = x.shape[-2:]
        copies = [x]
        if self.shifts:
            padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
            for dx, dy in self.shifts:  # content moved by (dx, dy): read from (x − dx, y − dy)
                copies.append(padded[..., 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w])
        if self.thick:
            copies.append(F.max_pool2d(x, 3, stride=1, padding=1))
        return torch.cat(copies)

    def average(self, features: torch.Tensor) -> torch.Tensor:
        if self.count == 1:
            return features
        return features.reshape(self.count, -1, features.shape[1]).mean(dim=0)

    def read(self, backbone: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`backbone`'s features of `x`, averaged over the views."""
        return self.average(backbone(self(x)))
