"""Batch norm synchronized over DDP processes on any device.

PyTorch's `SyncBatchNorm` refuses CPU tensors, so under `device=ddp_sim` each process would
normalize by its own share of the batch and train a different model from one process. Here
every BatchNorm layer computes the batch mean and variance over all processes' shares with two
differentiable all-reduces (gloo works), which is what one process computes on the whole
batch; the running statistics are updated from those global moments.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from lightning.pytorch.plugins import LayerSync
from torch import nn


class _AllReduceSum(torch.autograd.Function):
    """The sum over processes, differentiable: the gradient is summed over them too."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(tensor)


def _synced() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceNorm:
    """Mixed into a BatchNorm class: its forward in training uses the global batch moments."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _synced()):
            return super().forward(x)
        dims = [0, *range(2, x.ndim)]
        shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
        values = x.float()
        local = values.new_tensor([values.numel() / values.shape[1]])
        moments = all_reduce(torch.cat([values.sum(dims), local]))
        count = moments[-1]
        mean = moments[:-1] / count
        centred = values - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum
                if momentum is None:  # a cumulative average
                    momentum = 1.0 / float(self.num_batches_tracked)
                unbiased = var * count / (count - 1).clamp_min(1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        out = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


class AllReduceBatchNorm1d(_AllReduceNorm, nn.BatchNorm1d):
    pass


class AllReduceBatchNorm2d(_AllReduceNorm, nn.BatchNorm2d):
    pass


SYNCED = {nn.BatchNorm1d: AllReduceBatchNorm1d, nn.BatchNorm2d: AllReduceBatchNorm2d}
PLAIN = {synced: plain for plain, synced in SYNCED.items()}


class AllReduceSyncBatchNorm(LayerSync):
    """Lightning's layer-sync plugin for `device.sync_batchnorm` where the device is not a GPU:
    it swaps each BatchNorm layer's class in place (parameters, buffers and state-dict keys
    unchanged) and swaps it back at the end."""

    def apply(self, model: nn.Module) -> nn.Module:
        for module in model.modules():
            if type(module) in SYNCED:
                module.__class__ = SYNCED[type(module)]
        return model

    def revert(self, model: nn.Module) -> nn.Module:
        for module in model.modules():
            if type(module) in PLAIN:
                module.__class__ = PLAIN[type(module)]
        return model
