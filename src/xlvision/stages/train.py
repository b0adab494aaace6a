"""`train`: seed → data → model → trainer → fit → validate/test the best checkpoint."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from xlvision.data.datamodule import DigitDataModule
from xlvision.languages.registry import language_from_mapping
from xlvision.models import build_classifier
from xlvision.training.builders import (
    build_optimizer,
    build_scheduler,
    build_trainer,
    finish_loggers,
)
from xlvision.training.fit import fit_and_test
from xlvision.training.module import DigitClassifierModule
from xlvision.training.tracking import log_model_artifact


def train(cfg: DictConfig) -> tuple[dict, dict]:
    """Train one model on every configured language (a head each) and test it."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    codes = [lang.code for lang in languages]

    data = DigitDataModule(cfg.data, languages, cfg.seed, cfg.paths.data_dir)
    model_spec = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_classifier(model_spec, {lang.code: lang.num_classes for lang in languages})
    scheduler, interval = build_scheduler(cfg.scheduler)
    module = DigitClassifierModule(
        model, codes, build_optimizer(cfg.optimizer), scheduler, interval, model_spec
    )
    trainer = build_trainer(cfg, output_dir, tags=[*codes, cfg.model.name, cfg.stage])

    train_time, best = fit_and_test(trainer, module, data)
    log_model_artifact(trainer.loggers, best, "model")
    finish_loggers(trainer)

    metrics = {
        **module.final,
        "train_time_s": round(train_time, 3),
        "trainable_params": sum(p.numel() for p in module.parameters() if p.requires_grad),
        "epochs": trainer.current_epoch,
    }
    artifacts = {"checkpoint": best, "confusion": module.confusion, "data_counts": data.counts}
    return metrics, artifacts
