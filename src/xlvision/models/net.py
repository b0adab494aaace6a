"""`Net`: the small CNN of the seed article, sized from its input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xlvision.models.pen import pen_layer


def conv_block(in_channels: int, out_channels: int, batch_norm: bool) -> nn.Sequential:
    """3×3 conv, (BatchNorm), ReLU, 2×2 max-pool."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers)


class Net(nn.Module):
    """Three conv blocks (64, 64, 128 channels) and an FC layer; outputs `hidden` features.
    With `pen="one"` every image is first redrawn with one pen (`models.pen.OnePen`)."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        channels: Sequence[int] = (64, 64, 128),
        hidden: int = 512,
        dropout: float = 0.25,
        batch_norm: bool = True,
        pen: str = "as_drawn",
    ) -> None:
        super().__init__()
        self.pen = pen_layer(pen)
        convs, width = [], in_channels
        for out in channels:
            convs.append(conv_block(width, out, batch_norm))
            width = out
        side = image_size
        for _ in channels:
            side //= 2
        if side < 1:
            raise ValueError(
                f"image_size={image_size} is too small for {len(channels)} pooling blocks"
            )
        self.convs = nn.Sequential(*convs)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.out_features = hidden

    @property
    def blocks(self) -> list[nn.Module]:
        """Input to output, for strategies that freeze all but the last k."""
        return [*self.convs, self.fc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(self.pen(x)))
