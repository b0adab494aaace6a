"""The fit → validate → test sequence every training stage runs, fresh or resumed."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from xlvision.records import ResumeError
from xlvision.training.tracking import log_confusion_matrices


@dataclass
class ResumePoint:
    """Where a resumed run continues: its last.ckpt, the epoch after it, and the CSV rows it
    had written (Lightning's CSV logger deletes them when the Trainer is built)."""

    checkpoint: Path
    epoch: int
    history: list[dict]


def resume_point(cfg: DictConfig, output_dir: Path) -> ResumePoint | None:
    """The run being resumed (`resume=<run dir>`), read before its Trainer exists; None for a
    fresh run."""
    if not cfg.get("resume"):
        return None
    last = output_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise ResumeError(f"{output_dir}: no checkpoints/last.ckpt to resume from")
    try:  # weights only: a checkpoint holding arbitrary objects is refused, never run
        epoch = int(torch.load(last, map_location="cpu", weights_only=True)["epoch"]) + 1
    except Exception as err:
        raise ResumeError(f"{last}: not a readable checkpoint ({type(err).__name__})") from None
    return ResumePoint(last, epoch, _csv_rows(output_dir / "csv" / "metrics.csv"))


def _csv_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def restore_csv_history(output_dir: Path, before: list[dict], resumed_epoch: int) -> None:
    """Put the epochs before the resumed one back in front of the rows the resumed run wrote."""
    path = output_dir / "csv" / "metrics.csv"
    kept = [r for r in before if r.get("epoch") and int(float(r["epoch"])) < resumed_epoch]
    if not kept or not path.is_file():
        return
    rows = kept + _csv_rows(path)
    fields = sorted({key for row in rows for key in row})
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def fit_and_test(
    trainer: L.Trainer,
    module: L.LightningModule,
    data: L.LightningDataModule,
    resume: ResumePoint | None = None,
) -> tuple[float, str | None]:
    """Fit (when resuming, from last.ckpt: weights, optimizer, scheduler, epoch and random
    state), then validate and test the best checkpoint; (training seconds, best checkpoint)."""
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=str(resume.checkpoint) if resume else None)
    train_time = time.perf_counter() - start
    best = trainer.checkpoint_callback.best_model_path or None
    trainer.validate(module, datamodule=data, ckpt_path=best, verbose=False)
    trainer.test(module, datamodule=data, ckpt_path=best, verbose=False)
    log_confusion_matrices(trainer.loggers, module.confusion)
    if resume:
        for logger in trainer.loggers:
            logger.save()
        restore_csv_history(Path(trainer.default_root_dir), resume.history, resume.epoch)
    return train_time, best
