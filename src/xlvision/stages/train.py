"""`train`: seed → data → model → trainer → fit → validate/test the best checkpoint."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from xlvision.config.errors import ConfigError
from xlvision.data.datamodule import DigitDataModule
from xlvision.evaluation.metrics import classification_metrics
from xlvision.languages import Language
from xlvision.languages.registry import language_from_mapping
from xlvision.models.classifier import DIGIT_HEAD, LID_HEAD, Classifier
from xlvision.models.registry import build_classifier
from xlvision.training.builders import (
    build_optimizer,
    build_scheduler,
    build_trainer,
    finish_loggers,
)
from xlvision.training.fit import fit_and_test, resume_point
from xlvision.training.module import DigitClassifierModule
from xlvision.training.tracking import log_model_artifact


def objective_heads(languages: list[Language], objective: dict) -> dict[str, int]:
    """A head per language, plus the shared heads the objective trains (`_digit`, `_lid`)."""
    classes = {lang.code: lang.num_classes for lang in languages}
    if objective.get("shared_digits", 0) > 0:
        sizes = set(classes.values())
        if len(sizes) != 1:
            raise ConfigError(
                "objective.shared_digits",
                objective["shared_digits"],
                f"0: the languages have different numbers of classes ({classes})",
            )
        classes[DIGIT_HEAD] = sizes.pop()
    if objective.get("script_id", 0) > 0:
        if len(languages) < 2:
            raise ConfigError("objective.script_id", objective["script_id"], "0 for one language")
        classes[LID_HEAD] = len(languages)
    return classes


def source_metrics(model: Classifier, data: DigitDataModule, split: str) -> dict[str, float]:
    """`{split}/{lang}@{source}/acc|recall|f1` for languages scored on several sources."""
    out = {}
    model.eval()
    for code, sources in data.eval_sources.get(split, {}).items():
        for name, arrays in sources.items():
            scores = classification_metrics(model.heads[code].out_features)
            with torch.no_grad():
                for x, y in zip(
                    arrays.normalized().split(512), arrays.labels.split(512), strict=True
                ):
                    scores.update(model(x, code), y)
            out.update(
                {f"{split}/{code}@{name}/{k}": float(v) for k, v in scores.compute().items()}
            )
    return out


def train(cfg: DictConfig) -> tuple[dict, dict]:
    """Train one model on every configured language (a head each) and test it."""
    # The model's initialization and the draws follow init_seed; the data's splits follow seed.
    init_seed = cfg.get("init_seed")
    L.seed_everything(cfg.seed if init_seed is None else init_seed, workers=True, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    languages = [language_from_mapping(node) for node in cfg.language.values()]
    codes = [lang.code for lang in languages]

    objective = OmegaConf.to_container(cfg.objective, resolve=True) if "objective" in cfg else {}
    real_weight = float(objective.get("script_id_real", 1.0))
    per_domain = objective.get("script_id_prior", "pooled") == "per_domain"
    domains = (real_weight != 1.0 or per_domain) and objective.get("script_id", 0) > 0
    domains = domains or objective.get("domain_adversarial", 0) > 0
    domains = domains or objective.get("glyph_anchor", 0) > 0
    domains = domains or objective.get("mixstyle", 0) > 0
    data = DigitDataModule(cfg.data, languages, cfg.seed, cfg.paths.data_dir, domains=domains)
    data.setup()  # every file is read (or fails) before any training
    model_spec = OmegaConf.to_container(cfg.model, resolve=True)
    model = build_classifier(model_spec, objective_heads(languages, objective))
    scheduler, interval = build_scheduler(cfg.scheduler)
    module = DigitClassifierModule(
        model,
        codes,
        build_optimizer(cfg.optimizer),
        scheduler,
        interval,
        model_spec,
        objective=objective,
        groups=[lang.group for lang in languages],
        language_prior=data.language_shares(real_weight, per_domain),
    )
    resume = resume_point(cfg, output_dir)  # before the Trainer's CSV logger clears the log
    trainer = build_trainer(cfg, output_dir, tags=[*codes, cfg.model.name, cfg.stage])

    train_time, best = fit_and_test(trainer, module, data, resume)
    by_source = source_metrics(module.model, data, "test")
    log_model_artifact(trainer.loggers, best, "model")
    trainable = sum(p.numel() for p in module.model.parameters() if p.requires_grad)
    finish_loggers(trainer, {"trainable_params": trainable, "train_time_s": train_time})

    metrics = {
        **module.final,
        **by_source,
        "train_time_s": round(train_time, 3),
        "trainable_params": trainable,
        "epochs": trainer.current_epoch,
    }
    artifacts = {"checkpoint": best, "confusion": module.confusion, "data_counts": data.counts}
    return metrics, artifacts
