"""Architectures by registry name: how a config or a bundle's manifest becomes a model.

Nothing is instantiated from a `_target_` read from a file; only these builders run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from xlvision.models.classifier import Classifier
from xlvision.models.copies import Copies
from xlvision.models.net import Net
from xlvision.models.resnet import ResNet


def _net(args: Mapping[str, Any]) -> nn.Module:
    return Net(
        in_channels=args.get("in_channels", 1),
        image_size=args.get("image_size", 28),
        channels=tuple(args.get("channels", (64, 64, 128))),
        hidden=args.get("hidden", 512),
        dropout=args.get("dropout", 0.25),
        batch_norm=args.get("batch_norm", True),
        pen=args.get("pen", "as_drawn"),
    )


def _resnet(arch: str) -> Callable[[Mapping[str, Any]], nn.Module]:
    def build(args: Mapping[str, Any]) -> nn.Module:
        return ResNet(
            arch,
            args.get("in_channels", 1),
            args.get("small_stem", True),
            args.get("weights"),
            args.get("pen", "as_drawn"),
        )

    return build


MODELS: dict[str, Callable[[Mapping[str, Any]], nn.Module]] = {
    "net": _net,
    "resnet18": _resnet("resnet18"),
    "resnet34": _resnet("resnet34"),
    "resnet50": _resnet("resnet50"),
}


def build_backbone(args: Mapping[str, Any]) -> nn.Module:
    """The backbone named `args["name"]`, built from the remaining arguments."""
    name = args["name"]
    if name not in MODELS:
        raise ValueError(f"model.name={name!r} is not allowed: one of {', '.join(sorted(MODELS))}")
    return MODELS[name](args)


def build_classifier(args: Mapping[str, Any], classes: dict[str, int]) -> Classifier | Copies:
    """A classifier of `args`; with `copies` ≥ 2 in them (a bundle's member made of copies
    trained apart), that many side by side, read as one (`Copies`)."""
    copies = args.get("copies", 1)
    if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
        raise ValueError(f"copies={copies!r}: a whole number ≥ 1")
    if copies == 1:
        return Classifier(build_backbone(args), classes)
    one = {k: v for k, v in args.items() if k != "copies"}
    return Copies([Classifier(build_backbone(one), classes) for _ in range(copies)])
