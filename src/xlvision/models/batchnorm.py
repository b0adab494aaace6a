"""BatchNorm statistics for merged weights, which no batch has ever gone through."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def reestimate_batchnorm(module: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace every BatchNorm layer's running statistics by the cumulative average over
    `batches` (momentum None); return how many images went through.

    Only the BatchNorm layers run in train mode, so dropout does not perturb the features
    the later layers' statistics are taken on. Modes and momenta are restored afterwards.
    """
    layers = batchnorm_layers(module)
    if not layers:
        return 0
    modes = {m: m.training for m in module.modules()}
    momenta = [m.momentum for m in layers]
    module.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    seen = 0
    try:
        for x in batches:
            module(x)
            seen += len(x)
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        for m, mode in modes.items():
            m.train(mode)
    if not seen:
        raise ValueError("BatchNorm re-estimation needs at least one batch of images")
    return seen
