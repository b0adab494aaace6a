"""The speed switches of `device`: precision `auto`, channels-last, `torch.compile`, threads.

Each is one config key; `bench/train_speed.py` measures what each buys (bench/RESULTS.md).
"""

from __future__ import annotations

import shutil
import sys

import lightning as L
import torch
from omegaconf import DictConfig


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); emulated bf16 is slower
    than fp32, so `precision=auto` uses it only here."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def resolve_precision(device: DictConfig) -> str:
    """`device.precision`, with `auto` made concrete: bf16-mixed where the hardware has bf16
    (a CUDA GPU that supports it, a CPU with AVX-512 BF16 or AMX), else 32-true."""
    precision = str(device.precision)
    if precision != "auto":
        return precision
    accelerator = str(device.accelerator)
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return "bf16-mixed" if supported else "32-true"
    if accelerator in ("cpu", "auto"):
        return "bf16-mixed" if cpu_supports_bf16() else "32-true"
    return "32-true"


def apply_threads(device: DictConfig) -> None:
    """`device.threads` intra-op threads (null: PyTorch's default, one per physical core)."""
    threads = device.get("threads")
    if threads:
        torch.set_num_threads(int(threads))


def compile_unavailable() -> str | None:
    """Why `torch.compile` cannot run here, or None when it can."""
    try:
        import torch._dynamo as dynamo
    except Exception as err:  # a build without dynamo
        return f"torch.compile is not in this PyTorch ({type(err).__name__})"
    if not dynamo.is_dynamo_supported():
        return f"torch.compile does not support Python {sys.version_info.major}.{sys.version_info.minor}"
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return "torch.compile needs a C++ compiler (c++, g++ or clang++), none found"
    return None


class SpeedSwitches(L.Callback):
    """Channels-last weights and a compiled backbone while the Trainer runs.

    The model is back in the default memory format after each fit, validate or test, so
    whatever is saved or exported from it afterwards holds plain contiguous tensors.
    """

    def __init__(self, channels_last: bool = False, compile: bool = False) -> None:
        self.channels_last = channels_last
        self.compile = compile

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.channels_last:
            pl_module.model.to(memory_format=torch.channels_last)
        if self.compile and "backbone" not in pl_module.compiled:
            reason = compile_unavailable()
            if reason is None:
                pl_module.compiled["backbone"] = torch.compile(pl_module.model.backbone)
            else:
                print(f"device.compile: {reason}; training uncompiled", file=sys.stderr)
                self.compile = False

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.channels_last:
            pl_module.model.to(memory_format=torch.contiguous_format)
