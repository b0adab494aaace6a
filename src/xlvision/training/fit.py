"""The fit → validate → test sequence every training stage runs."""

from __future__ import annotations

import time

import lightning as L

from xlvision.training.tracking import log_confusion_matrices


def fit_and_test(
    trainer: L.Trainer, module: L.LightningModule, data: L.LightningDataModule
) -> tuple[float, str | None]:
    """Fit, then validate and test the best checkpoint; (training seconds, best checkpoint)."""
    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    train_time = time.perf_counter() - start
    best = trainer.checkpoint_callback.best_model_path or None
    trainer.validate(module, datamodule=data, ckpt_path=best, verbose=False)
    trainer.test(module, datamodule=data, ckpt_path=best, verbose=False)
    log_confusion_matrices(trainer.loggers, module.confusion)
    return train_time, best
