"""Lightning callbacks for fine-tuning."""

from __future__ import annotations

import lightning as L

from xlvision.finetune.strategies import keep_frozen_bn_eval


class FrozenBatchNorm(L.Callback):
    """Frozen BatchNorm layers stay in eval mode, so their running statistics do not move."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        keep_frozen_bn_eval(pl_module.model)
