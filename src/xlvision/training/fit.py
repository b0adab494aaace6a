"""The fit → validate → test sequence every training stage runs, fresh or resumed."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from xlvision.records import write_atomic
from xlvision.rundir import CONTINUE, ResumeError, RunDir
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
    run_dir = RunDir(output_dir)
    plan = run_dir.resume_plan(cfg.get("stage"))
    if plan.action != CONTINUE:
        raise ResumeError(f"{output_dir}: {plan.reason}")
    last = run_dir.last_checkpoint
    try:  # weights only: a checkpoint holding arbitrary objects is refused, never run
        epoch = int(torch.load(last, map_location="cpu", weights_only=True)["epoch"]) + 1
    except Exception as err:
        raise ResumeError(f"{last}: not a readable checkpoint ({type(err).__name__})") from None
    return ResumePoint(last, epoch, _csv_rows(run_dir.csv_file))


def _csv_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return [_columns_only(row) for row in csv.DictReader(file)]


def _columns_only(row: dict) -> dict:
    """A CSV row without what has no column: a row longer than its header, left by a second
    writer, is read with its extra values under the key None."""
    return {k: v for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}


def restore_csv_history(csv_file: Path, before: list[dict], resumed_epoch: int) -> None:
    """Put the epochs before the resumed one back in front of the rows the resumed run wrote,
    under the union of both parts' columns."""
    epochs = [(_epoch(row), row) for row in before]
    kept = [
        _columns_only(row) for epoch, row in epochs if epoch is not None and epoch < resumed_epoch
    ]
    if not kept:
        return
    rows = kept + _csv_rows(csv_file)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=sorted({key for row in rows for key in row}))
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(csv_file, text.getvalue())


def _epoch(row: dict) -> int | None:
    try:
        return int(float(row.get("epoch") or ""))
    except (TypeError, ValueError):
        return None


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
        csv_file = RunDir(trainer.default_root_dir).csv_file
        restore_csv_history(csv_file, resume.history, resume.epoch)
    return train_time, best
