"""Loggers that keep one record per run where Lightning's defaults would split it."""

from __future__ import annotations

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only


class TensorBoardLogger(LightningTensorBoardLogger):
    """One event file per run. Lightning finalizes a logger after `fit` and again after
    `test`, and each later use (the test metrics, the confusion figures) opened a new writer,
    so one run left four or five event files. Here `finalize` only flushes; `close` (at the
    end of the stage, `finish_loggers`) closes the one writer."""

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._experiment is not None:
            self._experiment.flush()
        if status == "success":
            self.save()

    @rank_zero_only
    def close(self) -> None:
        super().finalize("success")


class WandbLogger(LightningWandbLogger):
    """Lightning passes W&B `anonymous=None`, which W&B takes as set and warns about on every
    run ("The anonymous setting has no effect"); it is left out unless asked for."""

    def __init__(self, *args, anonymous: bool | None = None, **kwargs) -> None:
        super().__init__(*args, anonymous=anonymous, **kwargs)
        if not anonymous:
            self._wandb_init.pop("anonymous", None)
