"""Config nodes → optimizer and scheduler factories, loggers and the Trainer."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from omegaconf import DictConfig, OmegaConf

from xlvision.records import resolved_config
from xlvision.rundir import RunDir
from xlvision.training.callbacks import CheckpointsFollowRunDir, RngState, TrainClock
from xlvision.training.speed import SpeedSwitches, apply_threads, resolve_precision
from xlvision.training.sync_bn import AllReduceSyncBatchNorm

STEP_SCHEDULERS = {"torch.optim.lr_scheduler.OneCycleLR"}


def _without_unset(node: DictConfig) -> DictConfig:
    """The schema lists every optimizer's arguments; pass on only those a config set."""
    data = OmegaConf.to_container(node, resolve=True)
    return OmegaConf.create({k: v for k, v in data.items() if v is not None})


def build_optimizer(node: DictConfig):
    """A partial optimizer: call it with the parameters (or parameter groups)."""
    return instantiate(_without_unset(node))


def build_scheduler(node: DictConfig | None):
    """(partial scheduler or None, "epoch" or "step")."""
    if node is None or node.get("_target_") is None:
        return None, "epoch"
    interval = "step" if node._target_ in STEP_SCHEDULERS else "epoch"
    return instantiate(_without_unset(node)), interval


def sweep_name() -> str | None:
    """The multirun sweep directory's name, which groups a sweep's runs in dashboards."""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return Path(HydraConfig.get().sweep.dir).name
    return None


def run_label(output_dir: str | Path) -> str:
    """A dashboard's name for a run: the last two parts of its dir (`18-02-11_ab12/3`,
    `<pipeline run>/pretrain`), the same on every dashboard and findable on disk."""
    parts = Path(output_dir).parts
    return "/".join(parts[-2:])


def build_loggers(cfg: DictConfig, tags: list[str]) -> list:
    """The configured loggers, each run named after its dir and tagged alike (languages,
    model, stage; the sweep as the W&B group and an MLflow tag)."""
    loggers = []
    label = run_label(cfg.paths.output_dir)
    for node in (cfg.get("logger") or {}).values():
        if node is None:
            continue
        if node._target_.endswith("WandbLogger"):
            extra = {"tags": sorted({*node.get("tags", []), *tags})}
            if node.get("group") is None:
                extra["group"] = sweep_name()
            if node.get("name") is None:
                extra["name"] = label
            node = OmegaConf.create({**OmegaConf.to_container(node, resolve=True), **extra})
        if node._target_.endswith("MLFlowLogger"):
            # Without a name every run got the same seeded random one; tags as W&B's.
            marks = {tag: "true" for tag in tags}
            extra = {"tags": {**marks, "run_dir": str(cfg.paths.output_dir)}}
            if sweep_name():
                extra["tags"]["sweep"] = sweep_name()
            if node.get("run_name") is None:
                extra["run_name"] = label
            node = OmegaConf.create({**OmegaConf.to_container(node, resolve=True), **extra})
            if str(node.tracking_uri).startswith("file:"):
                # MLflow 3 refuses its plain-file store unless asked; a run dir is exactly that.
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        loggers.append(instantiate(node))
    if loggers:
        config = resolved_config(cfg)
        config.pop("logger", None)
        for logger in loggers:
            logger.log_hyperparams(config)
    return loggers


def build_trainer(
    cfg: DictConfig,
    output_dir: Path,
    tags: list[str] = (),
    callbacks: list = (),
    monitor: str | None = None,
    select_last: bool = False,
) -> L.Trainer:
    """A Trainer that saves `last.ckpt` and the best checkpoint by `monitor` (default
    `cfg.monitor`); with `select_last`, `best.ckpt` is simply the last epoch's weights.
    Both keep their names when a run is resumed, moved or copied (never `best-v1.ckpt`)."""
    run_dir = RunDir(output_dir)
    checkpoint = ModelCheckpoint(
        dirpath=run_dir.checkpoints,
        filename=run_dir.best_checkpoint.stem,
        monitor=None if select_last else monitor or cfg.monitor,
        mode="max",
        save_last=True,
        enable_version_counter=False,
    )
    callbacks = [checkpoint, CheckpointsFollowRunDir(), RngState(), TrainClock(), *callbacks]
    device = cfg.device
    if device.get("channels_last") or device.get("compile"):
        callbacks.append(SpeedSwitches(device.channels_last, device.compile))
    apply_threads(device)
    sync_bn = bool(device.get("sync_batchnorm", False))
    on_cpu = device.accelerator == "cpu"
    if cfg.trainer.enable_progress_bar:
        callbacks.append(RichProgressBar(leave=False))
    return L.Trainer(
        accelerator=device.accelerator,
        devices=device.devices,
        strategy=device.strategy,
        precision=resolve_precision(device),
        # PyTorch's SyncBatchNorm refuses CPU tensors: there batch norm syncs by all-reduce.
        sync_batchnorm=sync_bn and not on_cpu,
        plugins=[AllReduceSyncBatchNorm()] if sync_bn and on_cpu else None,
        # The data module cuts each batch into the ranks' shares itself (RankShare).
        use_distributed_sampler=False,
        max_epochs=cfg.trainer.max_epochs,
        limit_train_batches=cfg.trainer.limit_train_batches,
        limit_val_batches=cfg.trainer.limit_val_batches,
        limit_test_batches=cfg.trainer.limit_test_batches,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        gradient_clip_val=cfg.trainer.gradient_clip_val or None,
        deterministic=cfg.trainer.deterministic,
        enable_progress_bar=cfg.trainer.enable_progress_bar,
        enable_model_summary=False,
        logger=build_loggers(cfg, list(tags)) or False,
        callbacks=callbacks,
        default_root_dir=output_dir,
    )


def finish_loggers(trainer: L.Trainer, summary: dict[str, float] | None = None) -> None:
    """Log the run's `summary` numbers (e.g. trainable_params) to every logger, then flush and
    close runs that outlive the Trainer (W&B keeps a process per run; TensorBoard's writer)."""
    for logger in trainer.loggers:
        if summary and type(logger).__name__ != "CSVLogger":  # metrics.json holds them
            logger.log_metrics(dict(summary), step=trainer.global_step)
        if type(logger).__name__ == "WandbLogger":
            logger.experiment.finish()
        elif hasattr(logger, "close"):
            logger.close()
