"""The one in-memory form every data source produces."""

from __future__ import annotations

from dataclasses import dataclass

import torch

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def standardized(
    images: torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD
) -> torch.Tensor:
    """uint8 [N, H, W] digits → float [N, 1, H, W], scaled to [0, 1] then standardized: the
    models' input (MNIST's mean and std unless a bundle's preprocessing says otherwise)."""
    return ((images.float() / 255.0 - mean) / std).unsqueeze(1)


@dataclass
class DigitArrays:
    """Digits in the glyph convention: uint8 [N, 28, 28], bright ink on dark, centred by mass."""

    images: torch.Tensor
    labels: torch.Tensor
    groups: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 3:
            raise ValueError(
                f"images must be uint8 [N, H, W], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels shape {tuple(self.labels.shape)} does not match {self.images.shape[0]} images"
            )

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, index: torch.Tensor) -> DigitArrays:
        groups = None if self.groups is None else self.groups[index]
        return DigitArrays(self.images[index], self.labels[index], groups)

    @staticmethod
    def concat(parts: list[DigitArrays]) -> DigitArrays:
        """One set of digits from several (group ids kept only when every part has them)."""
        if len(parts) == 1:
            return parts[0]
        groups = None
        if all(p.groups is not None for p in parts):
            groups = torch.cat([p.groups for p in parts])
        return DigitArrays(
            torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]), groups
        )

    def normalized(self) -> torch.Tensor:
        """Float [N, 1, H, W] with MNIST's mean and std, the models' input."""
        return standardized(self.images)
