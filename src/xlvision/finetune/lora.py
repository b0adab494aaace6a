"""LoRA adapters for Conv2d and Linear layers: a zero-initialized low-rank update to a base.

Which parameters train is decided by `apply_strategy`; the wrappers only add the update.
`merge_lora` folds the update back, so a fine-tuned model saves with the plain architecture's
keys and loads anywhere without this module.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class LoRALinear(nn.Module):
    """`base(x) + (alpha/rank)·B(A(x))`, with B zero so the wrapper starts equal to `base`."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        where = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base = base
        self.scaling = alpha / rank
        self.lora_a = nn.Linear(base.in_features, rank, bias=False, **where)
        self.lora_b = nn.Linear(rank, base.out_features, bias=False, **where)
        nn.init.zeros_(self.lora_b.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_b(self.lora_a(x)) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        return self.lora_b.weight @ self.lora_a.weight * self.scaling

    def merged(self) -> nn.Linear:
        """A plain copy of `base` whose weight includes the update."""
        layer = copy.deepcopy(self.base)
        with torch.no_grad():
            layer.weight += self.delta_weight()
        return layer


class LoRAConv2d(nn.Module):
    """`base(x) + (alpha/rank)·B(A(x))`: A has the base's geometry and `rank` outputs, B is 1×1.

    A 1×1 conv after a k×k conv is itself a k×k conv, so the update folds into one kernel.
    """

    def __init__(self, base: nn.Conv2d, rank: int, alpha: float) -> None:
        super().__init__()
        if base.groups != 1:
            raise ValueError(f"LoRAConv2d needs groups=1, got groups={base.groups}")
        where = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base = base
        self.scaling = alpha / rank
        self.lora_a = nn.Conv2d(
            base.in_channels,
            rank,
            base.kernel_size,
            stride=base.stride,
            padding=base.padding,
            dilation=base.dilation,
            bias=False,
            padding_mode=base.padding_mode,
            **where,
        )
        self.lora_b = nn.Conv2d(rank, base.out_channels, 1, bias=False, **where)
        nn.init.zeros_(self.lora_b.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.lora_b(self.lora_a(x)) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        b = self.lora_b.weight.flatten(1)
        a = self.lora_a.weight.flatten(1)
        return (b @ a).view_as(self.base.weight) * self.scaling

    def merged(self) -> nn.Conv2d:
        """A plain copy of `base` whose kernel includes the update."""
        layer = copy.deepcopy(self.base)
        with torch.no_grad():
            layer.weight += self.delta_weight()
        return layer


LORA_LAYERS = (LoRALinear, LoRAConv2d)


def add_lora(module: nn.Module, rank: int, alpha: float) -> int:
    """Wrap every Linear and (groups=1) Conv2d inside `module` in place; return how many.

    Layers already wrapped are left as they are, so applying twice adds nothing.
    """
    wrapped = 0
    for name, child in list(module.named_children()):
        if isinstance(child, LORA_LAYERS):
            continue
        if isinstance(child, nn.Linear):
            setattr(module, name, LoRALinear(child, rank, alpha))
            wrapped += 1
        elif isinstance(child, nn.Conv2d) and child.groups == 1:
            setattr(module, name, LoRAConv2d(child, rank, alpha))
            wrapped += 1
        else:
            wrapped += add_lora(child, rank, alpha)
    return wrapped


def merge_lora(module: nn.Module) -> None:
    """Replace every LoRA wrapper inside `module` with its base layer, update folded in."""
    for name, child in list(module.named_children()):
        if isinstance(child, LORA_LAYERS):
            setattr(module, name, child.merged())
        else:
            merge_lora(child)
