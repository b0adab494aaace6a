"""Self-training on unlabeled real images of the target language (`finetune.unlabeled`)."""

from __future__ import annotations

import lightning as L
import torch

from xlvision.data.datamodule import DigitDataModule


class PseudoLabels(L.Callback):
    """At the start of every epoch the model reads the data module's unlabeled pool with the
    target's head; the images it reads with probability >= `threshold` are drawn in that
    epoch under the digit it read, each digit read an equal share of the pool's weight (so a
    digit the model favours is not drawn more for it). The pool's own labels were dropped
    when it was loaded. `kept` records the share of the pool drawn, per epoch."""

    def __init__(
        self, data: DigitDataModule, code: str, threshold: float, batch_size: int = 1024
    ) -> None:
        self.data, self.code, self.threshold, self.batch_size = data, code, threshold, batch_size
        self.kept: list[float] = []

    @torch.no_grad()
    def read_pool(self, module: L.LightningModule) -> torch.Tensor:
        """The target head's probabilities [N, classes] on the pool, in eval mode."""
        images = self.data.datasets["train"].images[self.data.unlabeled_slice]
        model = module.model
        modes = [m.training for m in model.modules()]
        model.eval()
        try:
            probs = [
                model(images[i : i + self.batch_size].to(module.device), self.code)
                .float()
                .softmax(-1)
                .cpu()
                for i in range(0, len(images), self.batch_size)
            ]
        finally:
            for m, mode in zip(model.modules(), modes, strict=True):
                m.training = mode
        return torch.cat(probs)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pool = self.data.unlabeled_slice
        confidence, digit = self.read_pool(pl_module).max(dim=1)
        keep = confidence >= self.threshold
        self.data.datasets["train"].labels[pool] = torch.where(keep, digit, -1)
        weights = torch.zeros(len(digit), dtype=torch.double)
        counts = torch.bincount(digit[keep], minlength=int(digit.max()) + 1).double()
        if keep.any():
            share = self.data.unlabeled.weight / int((counts > 0).sum())
            weights[keep] = share / counts[digit[keep]]
        # In place: the training sampler holds this very tensor.
        self.data.train_weights[pool] = weights
        self.kept.append(float(keep.float().mean()))
