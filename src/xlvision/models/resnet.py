"""torchvision ResNets with a small-image stem: 3×3 conv, no max-pool, 1-channel input."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tv

from xlvision.models.errors import CheckpointError
from xlvision.models.pen import pen_layer

ARCHS = {"resnet18": tv.resnet18, "resnet34": tv.resnet34, "resnet50": tv.resnet50}


def imagenet_state_dict(arch: str, weights: str) -> dict[str, torch.Tensor]:
    """ImageNet weights from a local file, or by torchvision enum name (downloads when online)."""
    path = Path(weights).expanduser()
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            # torch's refusal of an unsafe pickle explains itself over dozens of lines
            reason = type(err).__name__
            raise CheckpointError(f"{path}: not a torchvision state dict ({reason})") from None
    enum = tv.get_model_weights(arch)
    if weights not in enum.__members__:
        raise ValueError(
            f"model.weights={weights!r} is neither a file nor one of {list(enum.__members__)}"
        )
    choice = enum[weights]
    try:
        return choice.get_state_dict(progress=False)
    except Exception as err:
        target = Path(torch.hub.get_dir()) / "checkpoints" / Path(choice.url).name
        raise RuntimeError(
            f"cannot download {arch} {weights} ({type(err).__name__}); offline, put the file at "
            f"{target} or pass model.weights=<path to the .pth file>"
        ) from None


def adapt_stem(rgb: torch.Tensor, in_channels: int, kernel: int) -> torch.Tensor:
    """Sum the RGB filters into `in_channels` and resize them to `kernel`², keeping each sum."""
    grey = rgb.sum(dim=1, keepdim=True) / in_channels
    if grey.shape[-1] != kernel:
        sums = grey.sum(dim=(2, 3), keepdim=True)
        grey = F.interpolate(grey, size=(kernel, kernel), mode="area")
        new = grey.sum(dim=(2, 3), keepdim=True)
        grey = grey * torch.where(new.abs() > 1e-8, sums / new, torch.ones_like(new))
    return grey.repeat(1, in_channels, 1, 1)


class ResNet(nn.Module):
    """A torchvision ResNet trunk without its classifier; outputs pooled features."""

    def __init__(
        self,
        arch: str = "resnet18",
        in_channels: int = 1,
        small_stem: bool = True,
        weights: str | None = None,
        pen: str = "as_drawn",
    ) -> None:
        super().__init__()
        self.pen = pen_layer(pen)
        net = ARCHS[arch](weights=None)
        if weights:
            net.load_state_dict(imagenet_state_dict(arch, weights))
        rgb = net.conv1.weight.detach()
        kernel, stride, pad = (3, 1, 1) if small_stem else (7, 2, 3)
        if small_stem or in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel, stride=stride, padding=pad, bias=False)
            if weights:
                net.conv1.weight.data.copy_(adapt_stem(rgb, in_channels, kernel))
        if small_stem:
            net.maxpool = nn.Identity()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = net.fc.in_features

    @property
    def blocks(self) -> list[nn.Module]:
        """Input to output, for strategies that freeze all but the last k."""
        return [self.stem, self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pen(x)
        for block in self.blocks:
            x = block(x)
        return self.pool(x)
