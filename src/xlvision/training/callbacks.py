"""Lightning callbacks: frozen batch norm, the training clock, random state in checkpoints,
checkpoints that follow a moved run dir."""

from __future__ import annotations

import os
import random
import re
import time
from typing import Any

import lightning as L
import numpy as np
import torch

from xlvision.finetune.strategies import keep_frozen_bn_eval


class FrozenBatchNorm(L.Callback):
    """Frozen BatchNorm layers stay in eval mode, so their running statistics do not move."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        keep_frozen_bn_eval(pl_module.model)


class TrainClock(L.Callback):
    """Logs `time/train_s`, the seconds of fitting so far, beside every epoch's validation
    metrics: metrics.csv then tells how long a run took to reach an accuracy."""

    def __init__(self) -> None:
        self.start: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start is None or trainer.sanity_checking or trainer.state.fn != "fit":
            return
        pl_module.log("time/train_s", time.perf_counter() - self.start, sync_dist=True)


class RngState(L.Callback):
    """The Python, NumPy and torch random states travel in every checkpoint, so a run resumed
    from `last.ckpt` draws the same shuffles and augmentations as one never interrupted."""

    def state_dict(self) -> dict:
        # Plain types and tensors only, so checkpoints still load with weights_only=True.
        name, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss = random.getstate()
        state = {
            "python": [version, list(internal), gauss],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
            "torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        version, internal, gauss = state_dict["python"]
        random.setstate((version, tuple(internal), gauss))
        name, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class CheckpointsFollowRunDir(L.Callback):
    """A run resumed from a dir that was moved or copied: its `ModelCheckpoint` state (read
    from last.ckpt) names files in the old place. Re-pointed here before it is restored, the
    callback knows its best score and files again: `best.ckpt` is replaced only by a better
    model and `last.ckpt` by the next epoch's, each under its own name, as if never moved."""

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        here = getattr(trainer.checkpoint_callback, "dirpath", None)
        for key, state in (checkpoint.get("callbacks") or {}).items():
            old = state.get("dirpath") if isinstance(state, dict) else None
            if not str(key).startswith("ModelCheckpoint") or not old or here is None:
                continue
            if os.path.realpath(old) != os.path.realpath(here):
                checkpoint["callbacks"][key] = _moved(state, str(old), str(here))


def _moved(value: Any, old: str, new: str) -> Any:
    """Every path under `old` in `value` (keys of dicts too) as the same path under `new`."""
    if isinstance(value, str):
        prefix = re.compile("^" + re.escape(old.rstrip("/")) + "(?=/|$)")
        return prefix.sub(lambda _: new.rstrip("/"), value)
    if isinstance(value, dict):
        return {_moved(k, old, new): _moved(v, old, new) for k, v in value.items()}
    return value
